"""Datapath overhead: TCP throughput between two lab pods with and without the tc programs.

Runs iperf3 between two pods of a bench lab, alternating rounds with the collector's programs
attached to both pods' interfaces and rounds without them, in one run; prints the throughput
ratio (target: at least 0.90, aim 0.97). During the attached rounds the kernel's BPF run-time
statistics (kernel.bpf_stats_enabled) give the programs' average run time per packet
(target: under 100 ns); an empty program measured the same way gives the statistics' own
cost, which is subtracted. With --policy, policies of 1,000 rules (bench/run policy-throughput's)
are in force at both pods throughout. Needs root, iperf3 and BCC.

    .venv/bin/python bench/run datapath-overhead [--rounds 6] [--seconds 3] [--policy]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from datapath_lab import bench_lab, cpu_model, in_pod, popen_in

from flowscope.collector import tc
from flowscope.collector.collector import Collector, Config
from flowscope.collector.labconfig import LabConfig
from flowscope.collector.loader import PIN_DIR, bpf_dir

STATS_SYSCTL = Path("/proc/sys/kernel/bpf_stats_enabled")


def iperf(config: LabConfig, server_ip: str, seconds: int) -> float:
    out = subprocess.run(in_pod(config, "bench/client",
                                ["iperf3", "-c", server_ip, "-t", str(seconds), "-J"]),
                         capture_output=True, text=True, check=True).stdout
    return float(json.loads(out)["end"]["sum_received"]["bits_per_second"])


def prog_stats(fds: list[int]) -> tuple[int, int]:
    """(run time ns, run count) summed over programs, from their fdinfo."""
    run_time = run_count = 0
    for fd in fds:
        for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == "run_time_ns":
                run_time += int(value)
            elif key == "run_cnt":
                run_count += int(value)
    return run_time, run_count


def baseline(config: LabConfig, server_ip: str, interfaces: list[str],
             seconds: int) -> tuple[int, int]:
    """Run time statistics of an empty program attached where the collector's were."""
    from bcc import BPF  # type: ignore[import-untyped]

    empty = BPF(src_file=str(bpf_dir() / "bench_empty.bpf.c").encode())
    fd = empty.load_func(b"fs_bench_empty", BPF.SCHED_CLS).fd
    try:
        for ifname in interfaces:
            for direction in ("ingress", "egress"):
                tc.attach(ifname, direction, fd, PIN_DIR)
        iperf(config, server_ip, seconds)
        return prog_stats([fd])
    finally:
        for ifname in interfaces:
            tc.detach(ifname)
        empty.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="rounds of each kind")
    parser.add_argument("--seconds", type=int, default=3, help="seconds per iperf3 round")
    parser.add_argument("--policy", action="store_true",
                        help="with policies of 1,000 rules in force")
    args = parser.parse_args()
    with bench_lab() as (config, state_dir):
        server = config.find("bench/server")
        iperf_server = popen_in(config, "bench/server", ["iperf3", "-s"])
        time.sleep(0.5)
        collector = Collector(Config(node_name="bench", lab_state_dir=state_dir,
                                     identity_state=None))
        collector.start()
        if args.policy:
            # Imported here: bench_policy_throughput imports this module.
            from bench_policy_throughput import bench_policies

            collector.policies.apply(bench_policies(1000))
        interfaces = sorted(collector.datapath.attached_interfaces)
        stats_before = STATS_SYSCTL.read_text()
        STATS_SYSCTL.write_text("1\n")
        with_bps: list[float] = []
        without_bps: list[float] = []
        fds = collector.datapath.program_fds()
        try:
            for _ in range(args.rounds):
                for ifname in interfaces:
                    collector.datapath.detach(ifname)
                without_bps.append(iperf(config, server.ipv4, args.seconds))
                for ifname in interfaces:
                    collector.datapath.attach(ifname)
                with_bps.append(iperf(config, server.ipv4, args.seconds))
            run_ns, run_cnt = prog_stats(fds)
            for ifname in interfaces:
                collector.datapath.detach(ifname)
            empty_ns, empty_cnt = baseline(config, server.ipv4, interfaces, args.seconds)
        finally:
            STATS_SYSCTL.write_text(stats_before)
            collector.stop()
            iperf_server.kill()
            iperf_server.wait()
    ratio = statistics.median(with_bps) / statistics.median(without_bps)
    print(f"TCP throughput without programs: {statistics.median(without_bps) / 1e9:.2f} Gbit/s"
          f" (median of {args.rounds} x {args.seconds} s)")
    print(f"TCP throughput with programs:    {statistics.median(with_bps) / 1e9:.2f} Gbit/s")
    print(f"throughput ratio (with / without): {ratio:.3f}  (target >= 0.90, aim 0.97)")
    per_run, floor = run_ns / max(run_cnt, 1), empty_ns / max(empty_cnt, 1)
    print(f"tc program run time: {per_run:.1f} ns per packet over {run_cnt} runs; an empty "
          f"program measures {floor:.1f} ns")
    policy = ", 1,000 policy rules in force" if args.policy else ""
    print(f"tc program cost net of the measurement: {per_run - floor:.1f} ns per packet{policy}"
          "  (target < 100 ns)")
    print(f"host: {cpu_model()}, {os.cpu_count()} "
          f"CPUs, Linux {Path('/proc/sys/kernel/osrelease').read_text().strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
