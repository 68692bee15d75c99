"""Shared setup of the datapath benchmarks: a lab of their own, commands inside its pods.

The bench lab ("bench", 10.196.0.0/16) has its state in a temporary folder and is removed
when the benchmark ends, so it neither touches nor is observed by a user's own lab.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flowscope.collector.labconfig import LabConfig, parse_lab
from flowscope.collector.labnet import create_lab, destroy_lab

BENCH_LAB = {
    "name": "bench",
    "network": {"ipv4": "10.196.0.0/16", "ipv6": "fd00:196::/64",
                "pod_ipv4": "10.196.1.0/24", "pod_ipv6": "fd00:196::1:0/112"},
    "namespaces": {"bench": {}},
    "pods": [
        {"namespace": "bench", "name": "client", "labels": {"app": "client"}},
        {"namespace": "bench", "name": "server", "labels": {"app": "server"}},
    ],
    "world": [{"name": "internet"}],
}


@contextmanager
def bench_lab() -> Iterator[tuple[LabConfig, Path]]:
    config = parse_lab(BENCH_LAB, "bench lab")
    with tempfile.TemporaryDirectory(prefix="flowscope-bench-") as state:
        state_dir = Path(state)
        destroy_lab(config.name, state_dir)
        create_lab(config, state_dir)
        try:
            yield config, state_dir
        finally:
            destroy_lab(config.name, state_dir)


def in_pod(config: LabConfig, ref: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", config.netns(config.find(ref)), *argv]


def popen_in(config: LabConfig, ref: str, argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(in_pod(config, ref, argv), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"
