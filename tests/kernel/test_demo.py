"""`flowscope demo` end to end: its lab, policies and traffic, the printed policy verdicts in
Hubble's compact format, real enforcement while it runs, and a complete teardown at Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from labtools import TRAFFIC, kernel_ready

from flowscope.cli.demo import DEMO_LAB, NGINX
from flowscope.collector.labconfig import LabConfig, parse_lab

pytestmark = pytest.mark.kernel

LISTEN = "localhost:14298"
RELAY = "localhost:14299"
UI = "127.0.0.1:14300"
TIME = r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d\.\d{3}"
ID = r"\(ID:\d+\)"
EXPECTED = {
    "allowed": (rf"{TIME}: default/client:\d+ {ID} -> default/{NGINX}:80 {ID} "
                r"policy-verdict:L3-L4 INGRESS ALLOWED \(TCP Flags: SYN\)"),
    "allowed at egress": (rf"{TIME}: default/client:\d+ {ID} -> default/{NGINX}:80 {ID} "
                          r"policy-verdict:L3-Only EGRESS ALLOWED \(TCP Flags: SYN\)"),
    "denied": (rf"{TIME}: default/unauthorized-client:\d+ {ID} <> default/{NGINX}:80 {ID} "
               r"policy-verdict:none INGRESS DENIED \(TCP Flags: SYN\)"),
    "denied by a deny rule": (rf"{TIME}: default/unauthorized-client:\d+ {ID} <> "
                              rf"data/db-0:5432 {ID} policy-verdict:none INGRESS DENIED "
                              r"\(TCP Flags: SYN\)"),
    "audited": (rf"{TIME}: default/unauthorized-client:\d+ {ID} -> data/dns:53 {ID} "
                r"policy-verdict:none INGRESS AUDITED \(UDP\)"),
    "world": (rf"{TIME}: default/client:\d+ {ID} -> 10\.194\.255\.254:443 \(ID:16777217\) "
              r"policy-verdict:L3-L4 EGRESS ALLOWED \(TCP Flags: SYN\)"),
}


def in_pod(lab: LabConfig, ref: str, *argv: str) -> int:
    return subprocess.run(["ip", "netns", "exec", lab.netns(lab.find(ref)), *argv],
                          timeout=30, check=False).returncode


def test_demo_end_to_end(tmp_path: Path) -> None:
    reason = kernel_ready()
    if reason:
        pytest.skip(reason)
    lab = parse_lab(DEMO_LAB, "demo lab")
    # The relay runs as the unprivileged service user: its store must be reachable by it,
    # which pytest's private tmp_path is not.
    relay_dir = Path(tempfile.mkdtemp(prefix="flowscope-demo-"))
    relay_dir.chmod(0o755)
    demo = subprocess.Popen(
        [sys.executable, "-m", "flowscope.cli.main", "demo", "--print", "--duration", "90",
         "--interval", "0.5", "--lab-state-dir", str(tmp_path),
         "--control-socket", str(tmp_path / "collector.sock"),
         "--node-listen-address", LISTEN, "--relay-listen-address", RELAY,
         "--ui-listen-address", UI,
         "--store", str(relay_dir / "store"), "--log-dir", str(relay_dir / "log")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    assert demo.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
                any(re.fullmatch(p, line.rstrip("\n")) for line in list(lines))
                for p in EXPECTED.values()):
            assert demo.poll() is None, demo.stderr.read() if demo.stderr else ""
            time.sleep(0.2)
        nginx, db = lab.find(f"default/{NGINX}").ipv4, lab.find("data/db-0").ipv4
        get = ("import urllib.request,sys; "
               "urllib.request.urlopen(f'http://{sys.argv[1]}/', timeout=1).read()")
        python = sys.executable
        # The allowed connections really succeed, the denied ones really fail.
        assert in_pod(lab, "default/client", python, "-c", get, nginx) == 0
        assert in_pod(lab, "default/unauthorized-client", python, "-c", get, nginx) != 0
        assert in_pod(lab, "default/client", python, TRAFFIC, "reach", db, "5432", "1") == 0
        assert in_pod(lab, "default/unauthorized-client", python, TRAFFIC, "reach", db,
                      "5432", "0.6") == 3
        # The node server serves the same verdicts to `flowscope observe`.
        observed = subprocess.run(
            [python, "-m", "flowscope.cli.main", "observe", "--server", LISTEN, "-t",
             "policy-verdict", "--last", "50"], capture_output=True, text=True, timeout=30,
            check=True).stdout.splitlines()
        assert len(observed) == 50
        assert any(re.fullmatch(EXPECTED["allowed"], line) for line in observed)
        assert any(re.fullmatch(EXPECTED["denied"], line) for line in observed)
        # So does the relay, from its store: the demo runs the whole stack, as `up` does.
        stored = subprocess.run(
            [python, "-m", "flowscope.cli.main", "observe", "--server", RELAY, "-t",
             "policy-verdict", "--since", "5m", "--verdict", "DROPPED"],
            capture_output=True, text=True, timeout=30, check=True).stdout.splitlines()
        assert any(re.fullmatch(EXPECTED["denied"], line) for line in stored)
        assert all(" DENIED " in line for line in stored)
        # And the web UI, running unprivileged like the relay, draws the denied edge.
        with urllib.request.urlopen(f"http://{UI}/api/map?range=5m&group=pod") as answer:
            edges = json.load(answer)["edges"]
        assert any(edge["source"] == "default/unauthorized-client"
                   and edge["destination"] == f"default/{NGINX}" and edge["port"] == 80
                   and edge["verdicts"].get("DROPPED", 0) > 0
                   for edge in edges), edges
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=30) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        shutil.rmtree(relay_dir, ignore_errors=True)
    reader.join(timeout=5)
    printed = [line.rstrip("\n") for line in lines]
    for what, pattern in EXPECTED.items():
        assert any(re.fullmatch(pattern, line) for line in printed), f"no {what} line"
    assert all("policy-verdict:" in line for line in printed)
    # Ctrl-C removed everything: namespaces, bridge, state, control socket, tc filters.
    assert not [ns for ns in os.listdir("/run/netns") if ns.startswith("fs-demo-")]
    assert not Path("/sys/class/net/fsbr-demo").exists()
    assert list(tmp_path.iterdir()) == []
