"""Policy apply latency: from `flowscope policy apply` returning to enforcement in the datapath.

With the collector serving its control socket and 1,000 rules in force, the benchmark
alternates two versions of the policy (the client allowed to the server's port, then not),
applying each with the `flowscope policy apply` command. A probe inside the client pod
connects to the server every few milliseconds; the figure is the time from the command's
return to the first probe that sees the new verdict (target: under 1 s). The command's own
duration (parse, compile, map writes, process start) is printed beside it. Needs root and BCC.

    .venv/bin/python bench/run policy-apply [--rounds 10] [--rules 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_policy_throughput import IPERF_PORT, policy_text
from datapath_lab import bench_lab, cpu_model, in_pod

from flowscope.collector.collector import Collector, Config

# Inside the client pod: for each line "ok" or "refused" read, connect again and again until
# the outcome is the wanted one, then print how long that took after the line arrived. A
# dropped connection is known by its timeout (5 ms, a hundred lab round trips): the figure's
# resolution for revocations.
PROBE = """
import socket, sys, time
address, port = sys.argv[1], int(sys.argv[2])
def reached():
    try:
        with socket.create_connection((address, port), timeout=0.005) as sock:
            sock.sendall(b"x"); return sock.recv(1) == b"x"
    except OSError:
        return False
print("ready", flush=True)
for line in sys.stdin:
    want, started = line.strip() == "ok", time.monotonic()
    while reached() != want:
        time.sleep(0.002)
    print(time.monotonic() - started, flush=True)
"""
ECHO = """
import socket, threading
def serve(conn):
    with conn:
        while data := conn.recv(4096):
            conn.sendall(data)
with socket.create_server(("0.0.0.0", int(__import__("sys").argv[1]))) as server:
    while True:
        threading.Thread(target=serve, args=(server.accept()[0],), daemon=True).start()
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="apply/revoke pairs")
    parser.add_argument("--rules", type=int, default=1000, help="policy rules in force")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flowscope-bench-") as folder, \
            bench_lab() as (config, state_dir):
        allow, deny = Path(folder, "allow.yaml"), Path(folder, "deny.yaml")
        allow.write_text(policy_text(args.rules))
        deny.write_text(policy_text(args.rules, client_port=IPERF_PORT + 1))
        control = Path(folder, "collector.sock")
        server_ip = config.find("bench/server").ipv4
        echo = subprocess.Popen(in_pod(config, "bench/server",
                                       [sys.executable, "-c", ECHO, str(IPERF_PORT)]))
        probe = subprocess.Popen(in_pod(config, "bench/client", [
            sys.executable, "-c", PROBE, server_ip, str(IPERF_PORT)]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert probe.stdin is not None and probe.stdout is not None
        assert probe.stdout.readline().strip() == "ready"
        collector = Collector(Config(node_name="bench", lab_state_dir=state_dir,
                                     identity_state=None, control_socket=control))
        collector.start()
        command = [sys.executable, "-m", "flowscope.cli.main", "policy", "--socket",
                   str(control), "apply", "-f"]
        took: dict[str, list[float]] = {"ok": [], "refused": []}
        commands: list[float] = []
        try:
            for _ in range(args.rounds):
                for path, want in ((allow, "ok"), (deny, "refused")):
                    started = time.monotonic()
                    subprocess.run([*command, str(path)], check=True, capture_output=True)
                    commands.append(time.monotonic() - started)
                    probe.stdin.write(want + "\n")
                    probe.stdin.flush()
                    took[want].append(float(probe.stdout.readline()))
        finally:
            collector.stop()
            for process in (probe, echo):
                process.kill()
                process.wait()
    every = took["ok"] + took["refused"]
    print(f"enforcement after `policy apply` returned ({args.rules} rules, {args.rounds} "
          f"rounds): median {statistics.median(every) * 1e3:.1f} ms, max "
          f"{max(every) * 1e3:.1f} ms  (target < 1 s)")
    print(f"  allow taking effect: median {statistics.median(took['ok']) * 1e3:.1f} ms; "
          f"revoke taking effect: median {statistics.median(took['refused']) * 1e3:.1f} ms")
    print(f"`flowscope policy apply` command itself: median "
          f"{statistics.median(commands) * 1e3:.0f} ms (process start, parse, compile, "
          "map writes)")
    print(f"host: {cpu_model()}, {os.cpu_count()} "
          f"CPUs, Linux {Path('/proc/sys/kernel/osrelease').read_text().strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
