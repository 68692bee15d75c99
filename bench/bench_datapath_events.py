"""Event capacity: the highest rate of flow events the collector records with zero loss.

A client pod of a bench lab sends UDP datagrams, each on a new 5-tuple (a new connection), at
increasing rates, to a server pod and to a world host. Every datagram gives several flow events
(from-endpoint, to-endpoint, and the kernel's drop at the closed port). For each rate the
figures are: events recorded per second of sending, events lost (every loss the collector
counts: ring full, perf losses, rate limit), the collector's CPU time per 1,000 events, and the
new connections per second; the counts come from the collector's counters, since a step's
events can outnumber its ring. At the end, the collector's resident memory
with a full ring of 65,535 flows, and the time of one counter sweep of the connection map
(one record per connection). Target: at least 20,000 events/s with zero loss on 2 vCPUs.
Needs root and BCC.

    .venv/bin/python bench/run datapath-events [--seconds 3] [--rates 2000,4000,...]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from datapath_lab import bench_lab, cpu_model, in_pod

from flowscope.collector.collector import Collector, Config

SOCKETS = 8
LOSSES = ("lost_transport_full", "lost_rate_limited", "perf_lost_reported")
FIRST_PORT, PORTS = 1024, 64512


def generate(targets: list[str], first: int, count: int, rate: int) -> None:
    """Send `count` datagrams at `rate` per second, datagram i on tuple number first + i;
    print the seconds the sending took."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(SOCKETS)]
    start = time.monotonic()
    for n in range(count):
        i = first + n
        sock = socks[i % SOCKETS]
        slot = i // SOCKETS
        sock.sendto(b"x", (targets[(slot // PORTS) % len(targets)], FIRST_PORT + slot % PORTS))
        if n % 64 == 63:
            ahead = start + (n + 1) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    print(time.monotonic() - start)


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per rate")
    parser.add_argument("--rates", default="2000,4000,8000,12000,16000,20000,24000",
                        help="datagrams (new connections) per second, comma-separated")
    parser.add_argument("--generate", nargs=4, metavar=("TARGETS", "FIRST", "COUNT", "RATE"),
                        help=argparse.SUPPRESS)  # the traffic side, run inside the client pod
    args = parser.parse_args()
    if args.generate:
        targets, first, count, rate = args.generate
        generate(targets.split(","), int(first), int(count), int(rate))
        return 0

    with bench_lab() as (config, state_dir):
        targets = f"{config.find('bench/server').ipv4},{config.find('world/internet').ipv4}"
        collector = Collector(Config(node_name="bench", lab_state_dir=state_dir,
                                     identity_state=None, sweep_interval=3600))
        collector.start()
        idle_memory = rss_mib()
        best = 0.0
        sent = 0
        try:
            print(f"{'conn/s':>8} {'events/s':>9} {'lost':>7} {'CPU ms/1000 ev':>15}")
            for rate in (int(r) for r in args.rates.split(",")):
                count = int(rate * args.seconds)
                before = collector.stats()
                cpu0 = time.process_time()
                sender = subprocess.run(in_pod(config, "bench/client", [
                    sys.executable, __file__, "--generate", targets, str(sent), str(count),
                    str(rate)]), check=True, capture_output=True, text=True)
                time.sleep(1.5)  # let the reader drain and the loss counters be reported
                cpu, wall = time.process_time() - cpu0, float(sender.stdout.split()[-1])
                sent += count
                # The collector's counters, not the ring: a step's events can outnumber it.
                after = collector.stats()
                events = after.flows - before.flows
                lost = sum(getattr(after, name) - getattr(before, name) for name in LOSSES)
                per_second = events / wall
                print(f"{count / wall:>8.0f} {per_second:>9.0f} {lost:>7} "
                      f"{1000 * cpu / max(events, 1) * 1000:>15.1f}")
                if lost == 0:
                    best = max(best, per_second)
            ring_full = len(collector.ring) == collector.ring.capacity
            memory = rss_mib()
            flows_before = collector.stats().flows
            sweep_start = time.perf_counter()
            collector.sweep()
            sweep_ms = (time.perf_counter() - sweep_start) * 1000
            records = collector.stats().flows - flows_before
        finally:
            collector.stop()
    print(f"highest rate with zero loss: {best:.0f} flow events/s (target >= 20,000)")
    print(f"collector RSS: {memory:.0f} MiB with {'a full' if ring_full else 'a partly filled'}"
          f" ring of {collector.ring.capacity} entries; {idle_memory:.0f} MiB after start "
          "(BCC and its compiler included)")
    print(f"counter sweep: {sweep_ms:.0f} ms for {records} connection records")
    print(f"host: {cpu_model()}, {os.cpu_count()} CPUs, "
          f"Linux {Path('/proc/sys/kernel/osrelease').read_text().strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
