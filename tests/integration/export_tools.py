"""Helpers of the export tests: an exporter on a thread, and what the file sink wrote."""

from __future__ import annotations

import gzip
import threading
from pathlib import Path

import orjson

from flowscope.cli.client import ServerOptions, connect
from flowscope.cli.exporters import Sink
from flowscope.cli.exporters.state import StateFile
from flowscope.cli.exporters.stream import ExportConfig, Exporter
from flowscope.proto.observer import observer_pb2

Key = tuple[str, int]
FAST = ExportConfig(batch_size=200, backoff_min=0.05, backoff_max=0.3)


class ExporterThread:
    """An Exporter run on a thread against the relay at `address`."""

    def __init__(
        self,
        address: str,
        sink: Sink,
        state_dir: Path,
        start_ns: int,
        request: observer_pb2.GetFlowsRequest | None = None,
    ) -> None:
        options = ServerOptions(address, timeout=2.0, request_timeout=2.0)
        self.warnings: list[str] = []
        self.exporter = Exporter(
            lambda: connect(options),
            request or observer_pb2.GetFlowsRequest(),
            sink,
            StateFile(state_dir),
            start_ns,
            FAST,
            warn=self.warnings.append,
        )
        self._sink = sink
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.exporter.run()
        except BaseException as err:  # reported by stop()
            self.error = err

    def stop(self) -> None:
        self.exporter.stop.set()
        self._thread.join(timeout=20)
        self._sink.close()
        assert not self._thread.is_alive()
        assert self.error is None, self.error


def export_lines(path: Path) -> list[bytes]:
    """The lines of the file sink's backups (oldest first) and then of its current file;
    read again when a running exporter rotates or compresses a file meanwhile."""
    while True:
        try:
            return _read_lines(path)
        except FileNotFoundError:
            continue


def _read_lines(path: Path) -> list[bytes]:
    stem, suffix = path.stem, path.suffix
    names = {p.name for p in path.parent.glob(f"{stem}-*{suffix}*")}
    backups = sorted(
        name
        for name in names
        if not name.endswith(".tmp") and f"{name}.gz" not in names  # compressed already
    )
    lines: list[bytes] = []
    for name in backups:
        data = (path.parent / name).read_bytes()
        lines += (gzip.decompress(data) if name.endswith(".gz") else data).splitlines()
    if path.exists():
        lines += path.read_bytes().splitlines()
    return lines


def exported_keys(path: Path) -> list[Key]:
    """(node, sequence) of every exported flow, in file order."""
    keys = []
    for line in export_lines(path):
        flow = orjson.loads(line).get("flow")
        if flow is not None:
            keys.append((flow["node_name"], int(flow["node_sequence"])))
    return keys


def check_exactly_once(keys: list[Key], expected: set[Key]) -> None:
    """Every expected flow once, and each node's flows in sequence order."""
    assert len(keys) == len(set(keys)), "a flow was exported twice"
    assert set(keys) == expected
    for node in {node for node, _ in keys}:
        sequences = [sequence for name, sequence in keys if name == node]
        assert sequences == sorted(sequences), f"{node}'s flows out of order"
