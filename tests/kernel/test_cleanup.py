"""No tc filter outlives the collector: not after stop, not after kill -9 and the next start."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from labtools import start_collector

from flowscope.collector import tc
from flowscope.collector.command import run
from flowscope.collector.labconfig import LabConfig
from flowscope.collector.loader import PIN_DIR

pytestmark = pytest.mark.kernel

RUN_COLLECTOR = """
import sys, time
sys.path.insert(0, {tests!r})
from labtools import start_collector
from pathlib import Path
start_collector(Path({state!r}))
print("ready", flush=True)
time.sleep(120)
"""


def interfaces(config: LabConfig) -> list[str]:
    return [config.host_ifname(p) for p in config.pods if not p.is_world]


def program_ids(ifname: str) -> list[int]:
    ids = []
    for direction in ("ingress", "egress"):
        for entry in json.loads(run(["tc", "-j", "filter", "show", "dev", ifname, direction])):
            prog = entry.get("options", {}).get("prog", {})
            if prog.get("name") in tc.PROGRAM_NAMES.values():
                ids.append(prog["id"])
    return ids


def test_stop_detaches_everything(lab: tuple[LabConfig, Path]) -> None:
    config, state_dir = lab
    collector = start_collector(state_dir)
    try:
        assert all(len(program_ids(i)) == 2 for i in interfaces(config))
    finally:
        collector.stop()
    assert all(program_ids(i) == [] for i in interfaces(config))
    assert not PIN_DIR.exists()


def test_filters_of_a_killed_collector_are_removed_on_next_start(
        lab: tuple[LabConfig, Path], tmp_path: Path) -> None:
    config, state_dir = lab
    script = RUN_COLLECTOR.format(tests=str(Path(__file__).parent), state=str(state_dir))
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        left = {i: program_ids(i) for i in interfaces(config)}
        assert all(len(ids) == 2 for ids in left.values())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # The filters keep the dead collector's programs alive...
    assert {i: program_ids(i) for i in interfaces(config)} == left
    # ... until the next start, which removes them even from interfaces it does not observe
    # (this collector has no endpoints at all).
    collector = start_collector(tmp_path)
    try:
        assert all(program_ids(i) == [] for i in interfaces(config))
    finally:
        collector.stop()
    # A collector observing the lab again attaches once per hook.
    collector = start_collector(state_dir)
    try:
        assert all(len(program_ids(i)) == 2 for i in interfaces(config))
    finally:
        collector.stop()
    assert all(program_ids(i) == [] for i in interfaces(config))
