"""`flowscope export` to a file under faults, with traffic flowing all along: the exporter
killed (SIGKILL) and started again, the relay killed and started again, the store failing
for a while. Every flow the nodes saw ends up in the file exactly once, in order per node."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from export_tools import ExporterThread, check_exactly_once, exported_keys
from relay_cluster import Node, start_relay, wait_for

from flowscope.cli.exporters.rotating import FileSink, RotatingFile
from flowscope.proto.observer import observer_pb2, observer_pb2_grpc
from flowscope.relay.storage import StoreBackend
from flowscope.relay.store import Store, StoreConfig

pytestmark = pytest.mark.store

RUN_RELAY = """
import sys
from flowscope.cli import relay_cmd
from flowscope.cli.main import _Parser
parser = _Parser(prog="flowscope")
relay_cmd.register(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def _store_config(engine: Path, tmp_path: Path) -> StoreConfig:
    return StoreConfig(
        dsn=f"chdb://{engine}",
        database=f"faults_{uuid.uuid4().hex[:12]}",
        spool_dir=tmp_path / "spool",
        batch_max_wait=0.2,
        retry_interval=0.2,
    )


@contextmanager
def traffic(nodes: list[Node]) -> Iterator[None]:
    """Flows on every node, about 1,000 a second, until the block ends."""
    stop = threading.Event()

    def emit() -> None:
        while not stop.is_set():
            for node in nodes:
                node.emit(5)
            time.sleep(0.01)

    emitter = threading.Thread(target=emit)
    emitter.start()
    try:
        yield
    finally:
        stop.set()
        emitter.join()


def all_keys(nodes: list[Node]) -> set[tuple[str, int]]:
    return {
        (node.name, sequence)
        for node in nodes
        for sequence in range(node.ring.first_seq(), node.ring.next_seq())
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_serving(address: str) -> None:
    with grpc.insecure_channel(address) as channel:
        observer_pb2_grpc.ObserverStub(channel).ServerStatus(
            observer_pb2.ServerStatusRequest(), timeout=30, wait_for_ready=True
        )


def _rfc3339(nanos: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(nanos // 1_000_000_000))


def test_sigkilled_exporter_resumes_exactly_once(
    nodes: list[Node], engine: Path, tmp_path: Path
) -> None:
    store = StoreBackend.open(_store_config(engine, tmp_path))
    relay = start_relay(nodes, store)
    path = tmp_path / "out" / "flows.log"
    since = _rfc3339(time.time_ns() - 2_000_000_000)
    command = [sys.executable, "-m", "flowscope.cli.main", "export"]
    command += ["--server", f"127.0.0.1:{relay.port}", "--sink", "file", "--file", str(path)]
    command += ["--max-size-mb", "0.05", "--max-backups", "0", "--compress"]
    command += ["--state-dir", str(tmp_path / "state"), "--since", since]
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)

    exporter = start()
    try:
        with traffic(nodes):
            for _ in range(3):
                time.sleep(1.5)
                os.kill(exporter.pid, signal.SIGKILL)
                exporter.wait()
                exporter = start()
            time.sleep(1.0)
        expected = all_keys(nodes)
        wait_for(lambda: len(exported_keys(path)) >= len(expected), timeout=30)
        exporter.send_signal(signal.SIGTERM)
        assert exporter.wait(timeout=20) == 0
    finally:
        if exporter.poll() is None:
            exporter.kill()
        relay.stop()
        store.close()
    check_exactly_once(exported_keys(path), expected)
    assert any(name.endswith(".log.gz") for name in os.listdir(path.parent))


def test_killed_relay_export_continues_exactly_once(nodes: list[Node], tmp_path: Path) -> None:
    pytest.importorskip("chdb")
    address = f"127.0.0.1:{_free_port()}"
    peers = ",".join(f"{node.name}={node.address}" for node in nodes)
    command = [sys.executable, "-c", RUN_RELAY, "relay", "--listen-address", address]
    command += ["--peers", peers, "--store", str(tmp_path / "store")]
    command += ["--spool-dir", str(tmp_path / "spool"), "--node-name", "relay-kill"]

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, stderr=subprocess.DEVNULL)

    relay = start()
    path = tmp_path / "flows.log"
    exporter: ExporterThread | None = None
    try:
        with traffic(nodes):
            _wait_until_serving(address)
            time.sleep(1.0)  # the relay stores for a while
            exporter = ExporterThread(
                address,
                FileSink(RotatingFile(path, 1 << 20, 5, False)),
                tmp_path / "state",
                start_ns=1,
            )
            time.sleep(1.5)
            os.kill(relay.pid, signal.SIGKILL)
            relay.wait()
            time.sleep(0.5)
            relay = start()
            time.sleep(3.0)
        expected = all_keys(nodes)
        wait_for(lambda: len(exported_keys(path)) >= len(expected), timeout=30)
        exporter.stop()
    finally:
        if exporter is not None:
            exporter.exporter.stop.set()
        relay.send_signal(signal.SIGTERM)
        relay.wait(timeout=20)
    check_exactly_once(exported_keys(path), expected)


def test_failing_store_export_continues_exactly_once(
    nodes: list[Node], engine: Path, tmp_path: Path
) -> None:
    failing = threading.Event()

    def before_insert(table: str) -> None:
        if failing.is_set():
            raise ConnectionError(f"injected failure inserting into {table}")

    inner = Store(_store_config(engine, tmp_path), before_insert=before_insert)
    inner.start()
    store = StoreBackend(inner)
    relay = start_relay(nodes, store)
    path = tmp_path / "flows.log"

    def exporter() -> ExporterThread:
        sink = FileSink(RotatingFile(path, 1 << 20, 5, False))
        return ExporterThread(f"127.0.0.1:{relay.port}", sink, tmp_path / "state", start_ns=1)

    running = exporter()
    try:
        with traffic(nodes):
            time.sleep(1.0)
            failing.set()
            time.sleep(1.0)
            running.stop()  # and start again while the store fails: it must wait for it
            running = exporter()
            time.sleep(1.5)
            failing.clear()
            time.sleep(1.0)
        expected = all_keys(nodes)
        wait_for(lambda: len(exported_keys(path)) >= len(expected), timeout=30)
        running.stop()
        spooled = inner.counters().writer.spooled
    finally:
        running.exporter.stop.set()
        relay.stop()
        store.close()
    check_exactly_once(exported_keys(path), expected)
    assert spooled > 0
    assert any("catching up" in warning for warning in running.warnings)
