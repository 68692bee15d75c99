"""The export channel end to end on loopback: GetFlows' resume cursors on a relay over an
embedded chDB store, and `flowscope export`'s exporter writing a rotated file (exactly
once across restarts), with filters and field masks."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import grpc
import orjson
import pytest
from export_tools import ExporterThread, check_exactly_once, export_lines, exported_keys
from relay_cluster import Node, flows_of, observer, relay_config, start_relay, wait_for

from flowscope.cli.export import build_request
from flowscope.cli.exporters.rotating import FileSink, RotatingFile
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2
from flowscope.relay.fanout import HubConfig
from flowscope.relay.relay import Relay
from flowscope.relay.storage import StoreBackend

pytestmark = pytest.mark.store


def emit_interleaved(nodes: list[Node], count: int) -> None:
    start = time.time_ns()
    for index in range(count):
        nodes[index % len(nodes)].emit(1, start + index * 1000)


def all_keys(nodes: list[Node]) -> set[tuple[str, int]]:
    return {
        (node.name, sequence)
        for node in nodes
        for sequence in range(node.ring.first_seq(), node.ring.next_seq())
    }


def stored(store: StoreBackend, count: int) -> bool:
    store.flush()
    covered = store.covered()
    return covered is not None and covered.flows >= count


class Stream:
    """A GetFlows call read on a thread."""

    def __init__(self, relay: Relay, request: observer_pb2.GetFlowsRequest) -> None:
        self._channel, stub = observer(relay)
        self._call = stub.GetFlows(request)
        self.responses: list[observer_pb2.GetFlowsResponse] = []
        self.started = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> Stream:
        self._thread.start()
        return self

    def _read(self) -> None:
        try:
            for response in self._call:
                self.responses.append(response)
        except grpc.RpcError:
            pass

    def keys(self) -> list[tuple[str, int]]:
        return [(f.node_name, f.node_sequence) for f in flows_of(list(self.responses))]

    def close(self) -> None:
        self._call.cancel()
        self._thread.join()
        self._channel.close()


def test_resume_after_continues_each_node_after_its_cursor(
    nodes: list[Node], store: StoreBackend
) -> None:
    relay = start_relay(nodes, store)
    one, two = (node.ring.next_seq() for node in nodes)  # each node's first sequence
    try:
        emit_interleaved(nodes, 40)
        wait_for(lambda: stored(store, 40))
        cursor = observer_pb2.NodeCursor(node_name="node-1", sequence=one + 9)
        request = observer_pb2.GetFlowsRequest(follow=True, resume_after=[cursor])
        request.since.FromNanoseconds(1)
        stream = Stream(relay, request).start()
        wait_for(lambda: len(stream.keys()) == 30)
        emit_interleaved(nodes, 20)
        wait_for(lambda: len(stream.keys()) == 50)
        time.sleep(0.3)
        stream.close()
        first = {"node-1": one, "node-2": two}
        stored_after = [
            (name, first[name] + index // 2)
            for index in range(40)
            for name in [nodes[index % 2].name]
            if name == "node-2" or index // 2 >= 10
        ]
        assert stream.keys()[:30] == stored_after
        assert sorted(stream.keys()[30:]) == sorted(
            (name, first[name] + index) for name in first for index in range(20, 30)
        )
        # Without follow: the stored flows after the cursors only.
        _, stub = observer(relay)
        history = stub.GetFlows(
            observer_pb2.GetFlowsRequest(
                resume_after=[
                    observer_pb2.NodeCursor(node_name="node-1", sequence=one + 28),
                    observer_pb2.NodeCursor(node_name="node-2", sequence=two + 29),
                ]
            ),
            timeout=10,
        )
        assert [(f.node_name, f.node_sequence) for f in flows_of(history)] == [("node-1", one + 29)]
    finally:
        relay.stop()


def test_a_slow_resumable_stream_continues_from_the_store(
    nodes: list[Node], store: StoreBackend
) -> None:
    config = relay_config(nodes)
    relay = Relay(dataclasses.replace(config, hub=HubConfig(1000, 0.5, client_queue=8)), store)
    relay.start()
    try:
        wait_for(lambda: len(relay.nodes()) == 2)
        request = observer_pb2.GetFlowsRequest(follow=True)
        request.since.FromNanoseconds(1)
        stream = Stream(relay, request)  # not read yet: its queue overflows
        time.sleep(0.5)
        for _ in range(10):
            emit_interleaved(nodes, 300)
            time.sleep(0.05)
        wait_for(lambda: stored(store, 3000), timeout=30)
        stream.start()
        wait_for(lambda: len(stream.keys()) >= 3000, timeout=30)
        time.sleep(0.3)
        stream.close()
        check_exactly_once(stream.keys(), all_keys(nodes))
        assert not [r for r in stream.responses if r.HasField("lost_events")]
    finally:
        relay.stop()


def test_export_to_a_rotated_file_resumes_exactly_once(
    nodes: list[Node], store: StoreBackend, tmp_path: Path
) -> None:
    relay = start_relay(nodes, store)
    address = f"127.0.0.1:{relay.port}"
    path = tmp_path / "out" / "flows.log"

    def exporter() -> ExporterThread:
        sink = FileSink(RotatingFile(path, 20_000, max_backups=0, compress=True))
        return ExporterThread(address, sink, tmp_path / "state", start_ns=1)

    try:
        running = exporter()
        emit_interleaved(nodes, 200)
        wait_for(lambda: len(exported_keys(path)) == 200)
        running.stop()
        emit_interleaved(nodes, 200)  # while no exporter runs
        running = exporter()
        wait_for(lambda: len(exported_keys(path)) == 400)
        emit_interleaved(nodes, 100)
        wait_for(lambda: len(exported_keys(path)) == 500)
        running.stop()
    finally:
        relay.stop()
    check_exactly_once(exported_keys(path), all_keys(nodes))
    backups = sorted(p.name for p in path.parent.iterdir() if p.name != "flows.log")
    assert backups and all(name.endswith(".log.gz") for name in backups)
    for backup in path.parent.iterdir():
        assert backup.stat().st_size <= 20_000
    lines = [orjson.loads(line) for line in export_lines(path)]
    line = next(line for line in lines if "flow" in line)
    assert sorted(line) == ["flow", "node_name", "time"]
    status = next(line for line in lines if "node_status" in line)
    assert status["node_status"] == {
        "state_change": "NODE_CONNECTED",
        "node_names": ["node-1", "node-2"],
    }
    assert line["flow"]["source"]["namespace"] in ("shop", "payments", "kube-system")


def test_export_applies_allow_and_deny_lists_and_field_masks(
    nodes: list[Node], store: StoreBackend, tmp_path: Path
) -> None:
    relay = start_relay(nodes, store)
    path = tmp_path / "flows.log"
    request = build_request(
        ['{"verdict":["DROPPED","AUDIT"]}'],
        ['{"source_pod":["kube-system/"]}'],
        ["verdict,source.namespace"],
    )
    try:
        sent = []
        start = time.time_ns()
        for index in range(48):
            sent += nodes[index % 2].emit(1, start + index * 1000)
        running = ExporterThread(
            f"127.0.0.1:{relay.port}",
            FileSink(RotatingFile(path, 1 << 20, 5, False)),
            tmp_path / "state",
            start_ns=1,
            request=request,
        )
        expected = [
            flow
            for flow in sent
            if flow.verdict in (flow_pb2.DROPPED, flow_pb2.AUDIT)
            and flow.source.namespace != "kube-system"
        ]
        wait_for(lambda: len(exported_keys(path)) == len(expected))
        time.sleep(0.3)
        running.stop()
    finally:
        relay.stop()
    lines = [orjson.loads(line) for line in export_lines(path)]
    assert [line["flow"] for line in lines if "flow" in line] == [
        {
            "verdict": flow_pb2.Verdict.Name(flow.verdict),
            "source": {"namespace": flow.source.namespace},
            "node_name": flow.node_name,
            "uuid": flow.uuid,
            "node_sequence": str(flow.node_sequence),
        }
        for flow in expected
    ]
