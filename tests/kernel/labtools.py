"""Helpers of the kernel tests: the test lab, traffic inside pods, waiting for flows.

The test lab is a dedicated one (name "ktest", 10.198.0.0/16) whose state lives in a temporary
folder, so a user's own lab is neither touched nor observed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from flowscope.collector.collector import Collector, Config
from flowscope.collector.labconfig import LabConfig, LabPod
from flowscope.collector.loader import DatapathConfig
from flowscope.collector.ring import Event
from flowscope.proto.flow import flow_pb2

TRAFFIC = str(Path(__file__).with_name("traffic.py"))

TEST_LAB = {
    "name": "ktest",
    "network": {"ipv4": "10.198.0.0/16", "ipv6": "fd00:198::/64",
                "pod_ipv4": "10.198.1.0/24", "pod_ipv6": "fd00:198::1:0/112"},
    "namespaces": {"shop": {"team": "shop"}, "data": {"team": "data"}},
    "pods": [
        {"namespace": "shop", "name": "client", "labels": {"app": "client"},
         "workload": {"name": "client", "kind": "Deployment"}},
        {"namespace": "data", "name": "server", "labels": {"app": "server"},
         "workload": {"name": "server", "kind": "StatefulSet"}},
        {"namespace": "data", "name": "other", "labels": {"app": "other"}},
    ],
    "world": [{"name": "internet"}],
}


def kernel_ready() -> str | None:
    """Why the kernel tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "kernel tests need root"
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return "iproute2 (ip, tc) is not installed"
    try:
        import bcc  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return "BCC's Python module is not installed (python3-bpfcc)"
    if not Path("/sys/kernel/btf/vmlinux").exists():
        return "the kernel has no BTF (/sys/kernel/btf/vmlinux)"
    return None


def start_collector(state_dir: Path, idle_timeout: float = 60.0,
                    control_socket: Path | None = None, **datapath: object) -> Collector:
    """A collector observing the labs in `state_dir`; tests call its sweep() themselves."""
    collector = Collector(Config(
        node_name="ktest-node", lab_state_dir=state_dir, identity_state=None,
        sweep_interval=3600, idle_timeout=idle_timeout, control_socket=control_socket,
        datapath=DatapathConfig(**datapath)))  # type: ignore[arg-type]
    collector.start()
    return collector


def pod(config: LabConfig, ref: str) -> LabPod:
    return config.find(ref)


def run_in(config: LabConfig, ref: str, *args: str, check: bool = True) -> int:
    """Run traffic.py inside a pod and wait for it."""
    done = subprocess.run(["ip", "netns", "exec", config.netns(pod(config, ref)),
                           sys.executable, TRAFFIC, *args], timeout=30, check=False)
    if check:
        assert done.returncode == 0, f"traffic {args} in {ref} failed ({done.returncode})"
    return done.returncode


def start_in(config: LabConfig, ref: str, *args: str,
             ready: str = "listening") -> subprocess.Popen[str]:
    """Start traffic.py inside a pod; returns once it printed `ready`."""
    proc = subprocess.Popen(["ip", "netns", "exec", config.netns(pod(config, ref)),
                             sys.executable, TRAFFIC, *args], stdout=subprocess.PIPE,
                            stdin=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == ready
    return proc


def wait_for(collector: Collector, start: int, done: Callable[[list[Event]], bool],
             timeout: float = 5.0) -> list[Event]:
    """Ring entries from `start` on, once `done` accepts them (or the timeout passes)."""
    deadline = time.monotonic() + timeout
    while True:
        entries, _ = collector.ring.read(start, limit=100_000)
        events = [e for _, e in entries]
        if done(events) or time.monotonic() > deadline:
            return events
        collector.ring.wait(start + len(entries), timeout=0.1)


def flows(events: list[Event], **match: object) -> list[flow_pb2.Flow]:
    """The flows among `events` whose IP source/destination and ports match."""
    selected = []
    for event in events:
        if not isinstance(event, flow_pb2.Flow):
            continue
        fields = {
            "src": event.IP.source, "dst": event.IP.destination,
            "sport": _port(event, "source_port"), "dport": _port(event, "destination_port"),
        }
        if all(fields[k] == v for k, v in match.items()):
            selected.append(event)
    return selected


def _port(flow: flow_pb2.Flow, name: str) -> int:
    case = flow.l4.WhichOneof("protocol")
    return getattr(getattr(flow.l4, case), name, 0) if case in ("TCP", "UDP") else 0
