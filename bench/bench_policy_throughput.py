"""Policy overhead: TCP throughput between two lab pods with 1,000 policy rules vs no policy.

Runs iperf3 between the bench lab's pods with the collector attached throughout, alternating
rounds with no policy and rounds with policies of 1,000 rules in force (the server's ingress:
1,000 CIDR rules on distinct ports, plus the rule that allows the client; the client's egress:
the rule toward the server), and prints the throughput ratio (target: at least 0.95) and the
tc programs' run time per packet in both kinds of round (kernel BPF statistics). Needs root,
iperf3 and BCC.

    .venv/bin/python bench/run policy-throughput [--rounds 6] [--seconds 3] [--rules 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from bench_datapath_overhead import STATS_SYSCTL, iperf, prog_stats
from datapath_lab import bench_lab, cpu_model, popen_in

from flowscope.collector.collector import Collector, Config
from flowscope.collector.policy import parse_policies
from flowscope.collector.policy.model import Policy

IPERF_PORT = 5201


def policy_text(rules: int, client_port: int = IPERF_PORT) -> str:
    """`rules` ingress rules at the server (one allows the client to `client_port`), one
    egress rule at the client (to IPERF_PORT)."""
    cidr_rules = "".join(
        f"    - fromCIDR: [10.250.{i // 256}.{i % 256}/32]\n"
        f"      toPorts: [{{ports: [{{port: \"{20000 + i}\", protocol: TCP}}]}}]\n"
        for i in range(rules - 1))
    return f"""\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {{name: server-ingress, namespace: bench}}
spec:
  endpointSelector: {{matchLabels: {{app: server}}}}
  ingress:
    - fromEndpoints: [{{matchLabels: {{app: client}}}}]
      toPorts: [{{ports: [{{port: "{client_port}", protocol: TCP}}]}}]
{cidr_rules}---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {{name: client-egress, namespace: bench}}
spec:
  endpointSelector: {{matchLabels: {{app: client}}}}
  egress:
    - toEndpoints: [{{matchLabels: {{app: server}}}}]
      toPorts: [{{ports: [{{port: "{IPERF_PORT}", protocol: TCP}}]}}]
"""


def bench_policies(rules: int) -> list[Policy]:
    return parse_policies(policy_text(rules), "bench-policies.yaml")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="rounds of each kind")
    parser.add_argument("--seconds", type=int, default=3, help="seconds per iperf3 round")
    parser.add_argument("--rules", type=int, default=1000, help="policy rules in force")
    args = parser.parse_args()
    policies = bench_policies(args.rules)
    with bench_lab() as (config, state_dir):
        server = config.find("bench/server")
        iperf_server = popen_in(config, "bench/server", ["iperf3", "-s"])
        time.sleep(0.5)
        collector = Collector(Config(node_name="bench", lab_state_dir=state_dir,
                                     identity_state=None))
        collector.start()
        fds = collector.datapath.program_fds()
        stats_before = STATS_SYSCTL.read_text()
        STATS_SYSCTL.write_text("1\n")
        bps: dict[bool, list[float]] = {False: [], True: []}
        run_time: dict[bool, list[int]] = {False: [0, 0], True: [0, 0]}
        try:
            for _ in range(args.rounds):
                for with_policy in (False, True):
                    if with_policy:
                        change = collector.policies.apply(policies)
                    before = prog_stats(fds)
                    bps[with_policy].append(iperf(config, server.ipv4, args.seconds))
                    after = prog_stats(fds)
                    for i in (0, 1):
                        run_time[with_policy][i] += after[i] - before[i]
                    if with_policy:
                        for policy in policies:
                            collector.policies.delete(str(policy.id), policy.id.kind)
            entries = len(change.compiled.entries)
        finally:
            STATS_SYSCTL.write_text(stats_before)
            collector.stop()
            iperf_server.kill()
            iperf_server.wait()
    without, with_ = statistics.median(bps[False]), statistics.median(bps[True])
    print(f"TCP throughput, no policy:        {without / 1e9:.2f} Gbit/s (median of "
          f"{args.rounds} x {args.seconds} s)")
    print(f"TCP throughput, {args.rules} rules ({entries} policy map entries): "
          f"{with_ / 1e9:.2f} Gbit/s")
    print(f"throughput ratio (rules / no policy): {with_ / without:.3f}  (target >= 0.95)")
    for with_policy, label in ((False, "no policy"), (True, f"{args.rules} rules")):
        ns, count = run_time[with_policy]
        print(f"tc program run time, {label}: {ns / max(count, 1):.1f} ns per packet "
              f"({count} runs)")
    print(f"host: {cpu_model()}, {os.cpu_count()} "
          f"CPUs, Linux {Path('/proc/sys/kernel/osrelease').read_text().strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
