"""The relay's bounds per client, on a real relay: streams at once (per token, per address, in
total), request size, and a query's time range and number of flows; each refusal is a clear
gRPC error and a count in flowscope_limit_refusals_total on the relay's /metrics."""

from __future__ import annotations

import dataclasses
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from relay_cluster import Node, relay_config, wait_for

from flowscope.cli import relay_cmd
from flowscope.cli.main import build_parser
from flowscope.cli.relay_cmd import limit_argv
from flowscope.common.auth import ClientAuth, TokenFile, authorized_channel
from flowscope.common.errors import InputError
from flowscope.common.limits import client_address, parse_range
from flowscope.common.metrics import MetricsServer
from flowscope.proto.aggregate import aggregate_pb2, aggregate_pb2_grpc
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2, observer_pb2_grpc
from flowscope.relay.relay import Relay
from flowscope.relay.server import ServerConfig
from flowscope.relay.storage import StoreBackend
from flowscope.relay.store import StoreConfig

pytestmark = pytest.mark.store

HOUR_NS = 3_600_000_000_000
DAY_NS = 24 * HOUR_NS
LIMITS = ServerConfig(
    listen_address="127.0.0.1:0",
    grace=0.2,
    max_streams=3,
    max_streams_per_client=2,
    max_request_bytes=64 * 1024,
    max_query_range_ns=DAY_NS,
    max_flows_per_query=100,
)
FLOWS = 6


@dataclass
class Served:
    relay: Relay
    metrics_port: int
    tokens: dict[str, str]  # name -> token
    token_ids: dict[str, str]  # name -> the token's id

    def channel(self, token: str | None = "a") -> grpc.Channel:
        address = f"127.0.0.1:{self.relay.port}"
        auth = ClientAuth.bearer(self.tokens[token]) if token else None
        return authorized_channel(grpc.insecure_channel(address), auth, server=address, tls=False)

    def refusals(self) -> dict[str, float]:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as answer:
            text = answer.read().decode()
        return {
            sample.labels["limit"]: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "flowscope_limit_refusals_total"
        }


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    started = Node("node-1")
    started.start()
    started.emit(FLOWS, time_ns=time.time_ns() - 60_000_000_000)
    yield started
    started.stop()


@contextmanager
def _serving(
    engine: Path, node: Node, server: ServerConfig, tokens: Path | None
) -> Iterator[tuple[Relay, int]]:
    """A relay with `server`'s limits on a store of its own, and its metrics' port."""
    store = StoreBackend.open(
        StoreConfig(
            dsn=f"chdb://{engine}",
            database=f"limits_{uuid.uuid4().hex[:12]}",
            spool_dir=engine / f"spool-{uuid.uuid4().hex[:8]}",
            batch_max_wait=0.1,
        )
    )
    config = dataclasses.replace(
        relay_config([node]), server=dataclasses.replace(server, token_file=tokens)
    )
    relay = Relay(config, store=store)
    metrics = MetricsServer("127.0.0.1:0", relay.metrics.registry)
    relay.start()
    try:
        port = metrics.start()
        wait_for(lambda: relay.seen_flows() == FLOWS)
        store.flush()
        yield relay, port
    finally:
        metrics.stop()
        relay.stop()
        store.close()


@pytest.fixture
def served(engine: Path, node: Node, tmp_path: Path) -> Iterator[Served]:
    """A relay that checks tokens, with LIMITS."""
    token_file = TokenFile(tmp_path / "tokens.json")
    created = {name: token_file.create(name, None, None) for name in ("a", "b")}
    with _serving(engine, node, LIMITS, token_file.path) as (relay, port):
        yield Served(
            relay,
            port,
            {name: token for name, (token, _) in created.items()},
            {name: record.id for name, (_, record) in created.items()},
        )


def _code_and_details(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        next(call)
    error = caught.value
    assert isinstance(error, grpc.Call)
    return error.code(), error.details() or ""


def _follow(channel: grpc.Channel) -> Any:
    """A follow stream (a gRPC call: iterate it, cancel it)."""
    return observer_pb2_grpc.ObserverStub(channel).GetFlows(
        observer_pb2.GetFlowsRequest(follow=True), timeout=30
    )


def test_streams_are_capped_per_token_and_in_total(served: Served) -> None:
    before = served.refusals()
    channels = {name: served.channel(name) for name in ("a", "b")}
    a1, a2 = _follow(channels["a"]), _follow(channels["a"])
    for stream in (a1, a2):
        assert next(stream).HasField("node_status")  # admitted: the node states come first
    assert _code_and_details(_follow(channels["a"])) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"too many concurrent streams for token {served.token_ids['a']}: 2 open, limit 2"
        " (max streams per client); close one or try again later",
    )
    b1 = _follow(channels["b"])
    assert next(b1).HasField("node_status")  # another token, its own cap: the third stream
    assert _code_and_details(_follow(channels["b"])) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "too many concurrent streams: 3 open, limit 3 (max streams); try again later",
    )
    a1.cancel()
    wait_for(lambda: served.relay.live_clients() == 2)
    time.sleep(0.2)  # the stream's slot is given back right after it leaves the hub
    a3 = _follow(channels["a"])
    assert next(a3).HasField("node_status")
    for stream in (a2, a3, b1):
        stream.cancel()
    for channel in channels.values():
        channel.close()
    after = served.refusals()
    assert {limit: after[limit] - before[limit] for limit in after} == {
        "streams": 1,
        "client_streams": 1,
        "query_range": 0,
        "query_flows": 0,
    }


def test_without_tokens_a_client_is_its_address(engine: Path, node: Node) -> None:
    limits = dataclasses.replace(LIMITS, max_streams_per_client=1)
    with _serving(engine, node, limits, None) as (relay, _):
        address = f"127.0.0.1:{relay.port}"
        first, second = grpc.insecure_channel(address), grpc.insecure_channel(address)
        held = _follow(first)
        assert next(held).HasField("node_status")
        # Another connection from the same address is the same client.
        assert _code_and_details(_follow(second)) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "too many concurrent streams for 127.0.0.1: 1 open, limit 1"
            " (max streams per client); close one or try again later",
        )
        held.cancel()
        first.close()
        second.close()


def _aggregate(since_ns: int, until_ns: int) -> aggregate_pb2.AggregateRequest:
    return aggregate_pb2.AggregateRequest(
        since_ns=since_ns, until_ns=until_ns, grouping=aggregate_pb2.NAMESPACE
    )


def _get_flows(since_ago: int, until_ago: int | None = None, number: int = 0) -> object:
    request = observer_pb2.GetFlowsRequest(number=number)
    now = time.time_ns()
    request.since.FromNanoseconds(now - since_ago)
    if until_ago is not None:
        request.until.FromNanoseconds(now - until_ago)
    return request


# (method, the request, made when sent, the refusal's message)
QUERY_REFUSALS: list[tuple[str, Callable[[], Any], str]] = [
    (
        "GetFlows",
        lambda: _get_flows(2 * DAY_NS),
        "the query's time range since..now spans 2d, more than the relay's limit of 1d"
        " (max query range); ask for a shorter range",
    ),
    (
        "GetFlows",
        lambda: _get_flows(3 * DAY_NS, HOUR_NS),
        "the query's time range since..until spans 2d23h, more than the relay's limit of 1d"
        " (max query range); ask for a shorter range",
    ),
    (
        "GetFlows",
        lambda: _get_flows(HOUR_NS, number=101),
        "number 101: more than the relay's limit of 100 flows per query (max flows per query)",
    ),
    (
        "ServiceMap",
        lambda: _aggregate(0, 25 * HOUR_NS),
        "the query's time range since..until spans 1d1h, more than the relay's limit of 1d"
        " (max query range); ask for a shorter range",
    ),
    (
        "TopTalkers",
        lambda: aggregate_pb2.TopTalkersRequest(range=_aggregate(HOUR_NS, 31 * HOUR_NS)),
        "the query's time range since..until spans 1d6h, more than the relay's limit of 1d"
        " (max query range); ask for a shorter range",
    ),
]


def _call(channel: grpc.Channel, method: str, request: Any) -> Any:
    if method == "GetFlows":
        return list(observer_pb2_grpc.ObserverStub(channel).GetFlows(request, timeout=10))
    stub = aggregate_pb2_grpc.AggregatesStub(channel)
    return getattr(stub, method)(request, timeout=10)


def test_queries_over_the_range_or_number_limits_are_refused(served: Served) -> None:
    before = served.refusals()
    with served.channel() as channel:
        for method, request, message in QUERY_REFUSALS:
            with pytest.raises(grpc.RpcError) as caught:
                _call(channel, method, request())
            error = caught.value
            assert isinstance(error, grpc.Call)
            assert (method, error.code(), error.details()) == (
                method,
                grpc.StatusCode.INVALID_ARGUMENT,
                message,
            )
        # Within the limits, the same queries answer.
        responses = _call(channel, "GetFlows", _get_flows(HOUR_NS, number=100))
        assert isinstance(responses, list)
        assert sum(response.HasField("flow") for response in responses) == FLOWS
        now = time.time_ns()
        answer = _call(channel, "ServiceMap", _aggregate(now - HOUR_NS, now))
        assert isinstance(answer, aggregate_pb2.ServiceMapResponse)
        assert sum(edge.flows for edge in answer.edges) == FLOWS
    after = served.refusals()
    assert {limit: after[limit] - before[limit] for limit in after} == {
        "streams": 0,
        "client_streams": 0,
        "query_range": 4,
        "query_flows": 1,
    }


def test_a_request_over_the_size_limit_is_refused_and_the_relay_serves_on(served: Served) -> None:
    pods = [f"shop/{'x' * 1000}-{index}" for index in range(100)]  # about 100 kB
    request = observer_pb2.GetFlowsRequest(whitelist=[flow_pb2.FlowFilter(source_pod=pods)])
    with served.channel() as channel:
        stub = observer_pb2_grpc.ObserverStub(channel)
        code, details = _code_and_details(iter(stub.GetFlows(request, timeout=10)))
        assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"vs. {64 * 1024})" in details
        status = stub.ServerStatus(observer_pb2.ServerStatusRequest(), timeout=5)
    assert status.num_flows == FLOWS


@pytest.mark.parametrize(
    ("peer", "client"),
    [
        ("ipv4:10.0.0.1:51234", "10.0.0.1"),
        ("ipv6:[::1]:51234", "[::1]"),
        ("unix:/run/flowscope.sock", "unix:/run/flowscope.sock"),
    ],
)
def test_a_client_is_its_host_whatever_its_port(peer: str, client: str) -> None:
    assert client_address(peer) == client


@pytest.mark.parametrize(
    ("text", "nanos"),
    [("7d", 7 * DAY_NS), ("12h", 12 * HOUR_NS), ("1d12h", 36 * HOUR_NS), ("none", None)],
)
def test_query_ranges_read_as_durations(text: str, nanos: int | None) -> None:
    assert parse_range(text, "--max-query-range") == nanos


@pytest.mark.parametrize("text", ["7", "0d", "week", "-1d", ""])
def test_a_bad_query_range_names_the_flag(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_range(text, "--max-query-range")
    assert str(caught.value) == (
        f"invalid --max-query-range {text!r}: expected a duration such as 7d, 12h or 1d12h, or none"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_streams": 0}, "--max-streams 0: expected at least 1"),
        (
            {"max_streams_per_client": 65},
            "--max-streams-per-client 65: expected 0 (no cap) to --max-streams (64)",
        ),
        ({"max_request_bytes": 10}, "--max-request-size 10: expected at least 1024 bytes"),
        ({"max_flows_per_query": 0}, "--max-flows-per-query 0: expected at least 1"),
    ],
)
def test_bad_limits_are_refused_when_configured(change: dict[str, int], message: str) -> None:
    with pytest.raises(InputError) as caught:
        ServerConfig(**change)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_the_limit_flags_reach_the_relay_also_through_up() -> None:
    flags = [
        "--max-streams", "10", "--max-streams-per-client", "3", "--max-request-size", "65536",
        "--max-query-range", "7d", "--max-flows-per-query", "5000",
    ]  # fmt: skip
    parser = build_parser()
    up_args = parser.parse_args(["up", *flags])
    # `up` starts the relay as `flowscope relay ...` with these flags passed on.
    assert limit_argv(up_args) == flags
    server = relay_cmd.config_from(parser.parse_args(["relay", *limit_argv(up_args)])).server
    assert (
        server.max_streams,
        server.max_streams_per_client,
        server.max_request_bytes,
        server.max_query_range_ns,
        server.max_flows_per_query,
    ) == (10, 3, 65536, 7 * DAY_NS, 5000)
    defaults = relay_cmd.config_from(parser.parse_args(["relay"])).server
    assert (defaults.max_query_range_ns, defaults.max_flows_per_query) == (None, None)
