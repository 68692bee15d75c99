"""The relay end to end on loopback: two node servers over FlowRings of synthetic flows,
one relay in front of them on an embedded chDB store, clients over gRPC and the CLI."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from relay_cluster import Node, flows_of, observer, relay_config, start_relay, wait_for

import flowscope
from flowscope.cli import list_cmd, observe, status, top
from flowscope.cli.main import _Parser
from flowscope.common.filters import compile_predicate
from flowscope.proto.aggregate import aggregate_pb2, aggregate_pb2_grpc
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2
from flowscope.proto.peer import peer_pb2, peer_pb2_grpc
from flowscope.proto.relay import relay_pb2
from flowscope.relay.peers import Announcer, Peer
from flowscope.relay.relay import Relay
from flowscope.relay.storage import StoreBackend
from flowscope.relay.store import HistoryRequest

pytestmark = pytest.mark.store


@pytest.fixture
def relay(nodes: list[Node], store: StoreBackend) -> Iterator[Relay]:
    running = start_relay(nodes, store)
    yield running
    running.stop()


class Reader:
    """Reads a GetFlows stream on a thread, keeping every response."""

    def __init__(self, relay: Relay, request: observer_pb2.GetFlowsRequest) -> None:
        self._channel, stub = observer(relay)
        self._call = stub.GetFlows(request)
        self.responses: list[observer_pb2.GetFlowsResponse] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for response in self._call:
                self.responses.append(response)
        except grpc.RpcError:
            pass

    def flows(self) -> list[flow_pb2.Flow]:
        return flows_of(list(self.responses))

    def statuses(self) -> list[relay_pb2.NodeStatusEvent]:
        return [r.node_status for r in list(self.responses) if r.HasField("node_status")]

    def close(self) -> None:
        self._call.cancel()
        self._thread.join()
        self._channel.close()


def keys(flows: list[flow_pb2.Flow]) -> list[tuple[str, int]]:
    return [(flow.node_name, flow.node_sequence) for flow in flows]


def test_live_stream_merges_the_nodes_in_time_order(relay: Relay, nodes: list[Node]) -> None:
    reader = Reader(relay, observer_pb2.GetFlowsRequest(follow=True))
    wait_for(lambda: len(reader.statuses()) == 1)
    start = time.time_ns()
    emitted = []
    for index in range(60):  # the nodes' flows interleave in time
        emitted += nodes[index % 2].emit(1, start + index * 1000)
    wait_for(lambda: len(reader.flows()) == 60)
    reader.close()
    flows = reader.flows()
    assert [flow.uuid for flow in flows] == [flow.uuid for flow in emitted]
    first = reader.statuses()[0]
    assert (first.state_change, list(first.node_names)) == (
        relay_pb2.NODE_CONNECTED,
        ["node-1", "node-2"],
    )


FILTERS = [
    ("everything", [], []),
    ("namespace", [{"source_pod": ["shop/"]}], []),
    ("verdict", [{"verdict": ["DROPPED"]}], []),
    ("port or label", [{"destination_port": ["5432"]}, {"source_label": ["app=client-1"]}], []),
    ("node and ip", [{"node_name": ["node-2"], "source_ip": ["10.0.3.0/24"]}], []),
    ("blacklist", [], [{"destination_pod": ["kube-system/"]}]),
    ("both", [{"verdict": ["FORWARDED"]}], [{"destination_port": ["443"]}]),
]


def _filters(documents: list[dict[str, list[str]]]) -> list[flow_pb2.FlowFilter]:
    return [json_format.ParseDict(document, flow_pb2.FlowFilter()) for document in documents]


def test_history_equals_the_in_memory_predicate(relay: Relay, nodes: list[Node]) -> None:
    start = time.time_ns() - 10_000_000_000
    emitted = nodes[0].emit(90, start, step_ns=2000) + nodes[1].emit(90, start + 1000, 2000)
    emitted.sort(key=lambda flow: flow.time.ToNanoseconds())
    wait_for(lambda: relay.seen_flows() == 180)
    channel, stub = observer(relay)
    since = flow_pb2.Flow().time
    since.FromNanoseconds(start)
    with channel:
        for name, whitelist, blacklist in FILTERS:
            request = observer_pb2.GetFlowsRequest(
                whitelist=_filters(whitelist), blacklist=_filters(blacklist), since=since
            )
            keep = compile_predicate(request.whitelist, request.blacklist)
            expected = [flow.uuid for flow in emitted if keep(flow)]
            assert [f.uuid for f in flows_of(stub.GetFlows(request))] == expected, name
            request.ClearField("since")
            request.number = 7
            assert [f.uuid for f in flows_of(stub.GetFlows(request))] == expected[-7:], name
            request.first = True
            assert [f.uuid for f in flows_of(stub.GetFlows(request))] == expected[:7], name
        masked = observer_pb2.GetFlowsRequest(number=1)
        masked.field_mask.paths.extend(["source.namespace", "verdict"])
        last = emitted[-1]
        assert flows_of(stub.GetFlows(masked)) == [
            flow_pb2.Flow(
                source=flow_pb2.Endpoint(namespace=last.source.namespace), verdict=last.verdict
            )
        ]


def test_since_follow_hands_over_with_no_gap_and_no_duplicate(
    relay: Relay, nodes: list[Node]
) -> None:
    start = time.time_ns()
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            for node in nodes:
                node.emit(5)
            time.sleep(0.005)

    emitter = threading.Thread(target=traffic)
    emitter.start()
    time.sleep(0.5)
    since = flow_pb2.Flow().time
    since.FromNanoseconds(start)
    reader = Reader(relay, observer_pb2.GetFlowsRequest(since=since, follow=True))
    time.sleep(0.5)
    stop.set()
    emitter.join()
    total = sum(node.emitted for node in nodes)
    wait_for(lambda: len(reader.flows()) >= total)
    time.sleep(0.2)
    reader.close()
    received = keys(reader.flows())
    assert len(received) == len(set(received)) == total
    for node in nodes:
        sequences = sorted(seq for name, seq in received if name == node.name)
        assert sequences == list(range(sequences[0], sequences[0] + node.emitted))


def test_a_node_that_stops_is_reported_and_picked_up_again(relay: Relay, nodes: list[Node]) -> None:
    reader = Reader(relay, observer_pb2.GetFlowsRequest(follow=True))
    wait_for(lambda: len(reader.statuses()) == 1)
    nodes[0].emit(10)
    nodes[1].emit(10)
    wait_for(lambda: len(reader.flows()) == 20)
    nodes[0].stop()
    wait_for(lambda: any(s.state_change == relay_pb2.NODE_UNAVAILABLE for s in reader.statuses()))
    down = next(s for s in reader.statuses() if s.state_change == relay_pb2.NODE_UNAVAILABLE)
    assert list(down.node_names) == ["node-1"]
    nodes[1].emit(10)  # the stream goes on
    nodes[0].emit(10)  # kept in the stopped node's ring
    wait_for(lambda: len(reader.flows()) == 30)
    nodes[0].start()
    wait_for(lambda: len(reader.flows()) == 40)
    reader.close()
    back = reader.statuses()[-1]
    assert (back.state_change, list(back.node_names)) == (relay_pb2.NODE_CONNECTED, ["node-1"])
    node1 = [seq for name, seq in keys(reader.flows()) if name == "node-1"]
    assert node1 == list(range(node1[0], node1[0] + 20))


def test_a_restarted_relay_resumes_each_node_at_its_stored_cursor(
    nodes: list[Node], store: StoreBackend
) -> None:
    first = start_relay(nodes, store)
    for node in nodes:
        node.emit(100)
    wait_for(lambda: first.seen_flows() == 200)
    first.stop()
    for node in nodes:
        node.emit(100)
    second = start_relay(nodes, store)
    try:
        wait_for(lambda: second.seen_flows() == 200)
    finally:
        second.stop()
    store.flush()
    covered = store.covered()
    assert covered is not None and covered.flows == 400
    assert sorted(store.cursors().items()) == [(node.name, node.ring.next_seq()) for node in nodes]
    history = store.history(HistoryRequest(first=True)).flows
    assert len(set(keys(history))) == 400


def _parse(register: Any, argv: list[str]) -> argparse.Namespace:
    parser = _Parser(prog="flowscope")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_status_nodes_and_namespaces_through_the_cli(
    relay: Relay, nodes: list[Node], store: StoreBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    emitted = [flow for node in nodes for flow in node.emit(6)]
    wait_for(lambda: relay.seen_flows() == 12)
    store.flush()
    server = f"127.0.0.1:{relay.port}"
    channel, stub = observer(relay)
    with channel:
        _, call = stub.ServerStatus.with_call(observer_pb2.ServerStatusRequest())
    assert ("hubble-relay-version", flowscope.__version__) in call.initial_metadata()
    with grpc.insecure_channel(server) as channel:
        talkers = aggregate_pb2_grpc.AggregatesStub(channel).TopTalkers(
            aggregate_pb2.TopTalkersRequest(
                range=aggregate_pb2.AggregateRequest(
                    since_ns=time.time_ns() - 3_600_000_000_000,
                    until_ns=time.time_ns() + 60_000_000_000,
                    grouping=aggregate_pb2.NAMESPACE,
                )
            )
        )
    assert [(t.name, t.flows) for t in talkers.talkers] == [
        ("kube-system", 4),
        ("payments", 4),
        ("shop", 4),
    ]

    args = _parse(top.register, ["top", "--server", server, "--group", "namespace"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.splitlines() == [
        "SOURCE        FLOWS   BYTES",
        "kube-system   4       0",
        "payments      4       0",
        "shop          4       0",
    ]
    args = _parse(top.register, ["top", "--server", server, "--group", "namespace",
                                 "--not", "--from-namespace", "shop", "--limit", "1"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["kube-system   4       0"]

    args = _parse(status.register, ["status", "--server", server])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"Healthcheck (via {server}): Ok"
    assert lines[1] == "Current/Max Flows: 12/0"
    assert re.fullmatch(r"Flows/s: \d+\.\d\d", lines[2])
    assert lines[3] == "Connected Nodes: 2/2"
    assert re.fullmatch(r"Stored Flows: \S+Z - \S+Z", lines[4])

    args = _parse(list_cmd.register, ["list", "nodes", "--server", server])
    assert args.func(args) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "AGE", "FLOWS/S", "CURRENT/MAX-FLOWS"]
    for line, node in zip(table[1:], nodes, strict=True):
        assert re.fullmatch(rf"{node.name} +Connected +\d+s +\d+\.\d\d +6/20000 \(  0\.03%\)", line)

    args = _parse(list_cmd.register, ["list", "namespaces", "--server", server])
    assert args.func(args) == 0
    assert capsys.readouterr().out == "NAMESPACE\nkube-system\npayments\nshop\n"

    args = _parse(observe.register, ["observe", "--server", server, "--last", "2", "-o", "json"])
    assert args.func(args) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["flow"]["uuid"] for line in printed] == [flow.uuid for flow in emitted[-2:]]


def test_announced_and_nameless_nodes_are_picked_up_during_a_follow(
    nodes: list[Node], store: StoreBackend
) -> None:
    relay = start_relay([], store)
    reader = Reader(relay, observer_pb2.GetFlowsRequest(follow=True))
    wait_for(lambda: relay.live_clients() == 1)
    announcer = Announcer(f"127.0.0.1:{relay.port}", "node-1", nodes[0].address, interval=0.2)
    try:
        nodes[0].emit(3)
        announcer.start()
        wait_for(lambda: len(reader.flows()) == 3)
        nodes[1].emit(2)
        relay.peers.add(Peer(nodes[1].address))  # its name comes with its first batch
        wait_for(lambda: len(reader.flows()) == 5)
        announcer.stop()
        wait_for(lambda: [node.name for node in relay.nodes()] == ["node-2"])
        # The relay's view changes before the client's stream has carried the news.
        wait_for(lambda: len(reader.statuses()) == 3)
    finally:
        reader.close()
        relay.stop()
    events = [(s.state_change, list(s.node_names)) for s in reader.statuses()]
    assert events == [
        (relay_pb2.NODE_CONNECTED, ["node-1"]),
        (relay_pb2.NODE_CONNECTED, ["node-2"]),
        (relay_pb2.NODE_GONE, ["node-1"]),
    ]
    assert sorted(keys(reader.flows())) == sorted(
        (node.name, seq)
        for node in nodes
        for seq in range(node.ring.first_seq(), node.ring.next_seq())
    )


def test_history_before_the_store_comes_with_a_notice(relay: Relay, nodes: list[Node]) -> None:
    start = time.time_ns() - 3_600_000_000_000
    nodes[0].emit(2, start + 60_000_000_000)
    wait_for(lambda: relay.seen_flows() == 2)
    since = flow_pb2.Flow().time
    since.FromNanoseconds(start)
    channel, stub = observer(relay)
    with channel:
        responses = list(stub.GetFlows(observer_pb2.GetFlowsRequest(since=since)))
    notices = [r.node_status for r in responses if r.HasField("node_status")][1:]
    assert len(flows_of(responses)) == 2
    assert [(n.state_change, list(n.node_names)) for n in notices] == [
        (relay_pb2.UNKNOWN_NODE_STATE, ["relay-test"])
    ]
    assert re.fullmatch(
        r"the history reaches before the store: asked for flows since \S+Z, "
        r"the store holds 2 flows from \S+Z to \S+Z",
        notices[0].message,
    )


class PeerService(peer_pb2_grpc.PeerServicer):
    """A peer.Peer service that lists fixed nodes, then holds the stream open."""

    def __init__(self, changes: list[peer_pb2.ChangeNotification]) -> None:
        self._changes = changes

    def Notify(
        self, request: peer_pb2.NotifyRequest, context: grpc.ServicerContext
    ) -> Iterator[peer_pb2.ChangeNotification]:
        yield from self._changes
        while context.is_active():
            time.sleep(0.05)


def test_peers_come_from_a_peer_service(nodes: list[Node], store: StoreBackend) -> None:
    changes = [
        peer_pb2.ChangeNotification(name=node.name, address=node.address, type=peer_pb2.PEER_ADDED)
        for node in nodes
    ]
    service = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    peer_pb2_grpc.add_PeerServicer_to_server(PeerService(changes), service)
    port = service.add_insecure_port("127.0.0.1:0")
    service.start()
    config = dataclasses.replace(relay_config([]), peer_service=f"127.0.0.1:{port}")
    relay = Relay(config, store=store)
    relay.start()
    try:
        wait_for(lambda: [(n.name, n.state) for n in relay.nodes()] == [
            ("node-1", relay_pb2.NODE_CONNECTED),
            ("node-2", relay_pb2.NODE_CONNECTED),
        ])  # fmt: skip
    finally:
        relay.stop()
        service.stop(0)
