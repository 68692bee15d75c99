"""Fuzzing the relay's gRPC API and the web UI's HTTP API with malformed requests.

Hypothesis builds requests with random filters (every string and enum field of
FlowFilter), numbers, timestamps, field masks, huge values. Each answer must be a
success or a clear refusal (INVALID_ARGUMENT with a message; HTTP 400 with
{"error": ...}), never an internal error; the servers keep answering; and no fuzzed
text reaches SQL other than as a bound parameter: the store's client records every
query's text, and no marked string may appear in it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from fastapi.testclient import TestClient
from google.protobuf.descriptor import FieldDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relay_cluster import Node, relay_config, wait_for

from flowscope.proto.aggregate import aggregate_pb2, aggregate_pb2_grpc
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2, observer_pb2_grpc
from flowscope.proto.relay import relay_pb2
from flowscope.relay.relay import Relay
from flowscope.relay.storage import StoreBackend
from flowscope.relay.store import Store, StoreConfig
from flowscope.ui.app import create_app

pytestmark = pytest.mark.store

# Every fuzzed string that could pass validation carries this marker, so a query text
# holding it would show input pasted into SQL.
MARKER = "qzjx"
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
INT64 = st.integers(-(2**63), 2**63 - 1)
UINT64 = st.integers(0, 2**64 - 1)
GRPC_REFUSALS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE}


class RecordingClient:
    """The store's ClickHouse client, keeping the text of every query it runs, and
    counting the queries that bound a marked value as a parameter."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.texts: list[str] = []
        self.marked_parameters = 0

    def query(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        self.texts.append(sql)
        if MARKER in repr(kwargs.get("parameters")):
            self.marked_parameters += 1
        return self._client.query(sql, *args, **kwargs)

    def command(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        self.texts.append(sql)
        return self._client.command(sql, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@dataclass
class Cluster:
    node: Node
    relay: Relay
    recorder: RecordingClient

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.relay.port}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    pytest.importorskip("chdb")
    directory: Path = tmp_path_factory.mktemp("fuzz")
    store = Store(
        StoreConfig(
            dsn=f"chdb://{directory / 'db'}",
            database=f"fuzz_{uuid.uuid4().hex[:12]}",
            spool_dir=directory / "spool",
            batch_max_wait=0.1,
        )
    )
    store.start()
    recorder = RecordingClient(store._client)
    store._client = recorder
    backend = StoreBackend(store)
    node = Node("node-1")
    node.start()
    relay = Relay(relay_config([node]), store=backend)
    relay.start()
    try:
        wait_for(lambda: [n.state for n in relay.nodes()] == [relay_pb2.NODE_CONNECTED])
        node.emit(30, time_ns=time.time_ns() - 60_000_000_000)
        wait_for(lambda: relay.seen_flows() == 30)
        backend.flush()
        yield Cluster(node, relay, recorder)
    finally:
        relay.stop()
        node.stop()
        backend.close()


def marked(shape: str) -> st.SearchStrategy[str]:
    """Strings shaped like valid values of a filter field, carrying the marker."""
    word = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=0, max_size=6)
    return word.map(lambda w: shape.format(m=MARKER + w))


FUZZ_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="'\"\\;`(){}[]*%?_-/:=.,!~ \n\t\x00", max_size=20),
    marked("{m}"),
    marked("ns/{m}"),
    marked("{m}/pod"),
    marked("k8s:app={m}"),
    marked("{m}*"),
    marked("'{m}"),
    marked("{m}\\' OR 1=1 --"),
    st.sampled_from(["", "0", "65536", "-1", "1e9", "10.0.0.0/33", "::1", "/", "a/b/c"]),
)


def _field_values(field: FieldDescriptor) -> st.SearchStrategy[list[Any]] | None:
    if not field.is_repeated:
        return None
    if field.type == FieldDescriptor.TYPE_STRING:
        return st.lists(FUZZ_TEXT, max_size=3)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return st.lists(st.integers(-(2**31), 2**31 - 1), max_size=2)
    if field.type in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_INT32):
        low = 0 if field.type == FieldDescriptor.TYPE_UINT32 else -(2**31)
        return st.lists(st.integers(low, 2**32 - 1 if low == 0 else 2**31 - 1), max_size=2)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.lists(st.booleans(), max_size=2)
    return None


FILTER_FIELDS = {
    field.name: values
    for field in flow_pb2.FlowFilter.DESCRIPTOR.fields
    if (values := _field_values(field)) is not None
}


@st.composite
def flow_filters(draw: st.DrawFn) -> flow_pb2.FlowFilter:
    names = draw(st.lists(st.sampled_from(sorted(FILTER_FIELDS)), max_size=3, unique=True))
    flow_filter = flow_pb2.FlowFilter()
    for name in names:
        getattr(flow_filter, name).extend(draw(FILTER_FIELDS[name]))
    return flow_filter


@st.composite
def get_flows_requests(draw: st.DrawFn) -> observer_pb2.GetFlowsRequest:
    request = observer_pb2.GetFlowsRequest(
        number=draw(st.one_of(st.integers(0, 50), UINT64)),
        first=draw(st.booleans()),
        whitelist=draw(st.lists(flow_filters(), max_size=2)),
        blacklist=draw(st.lists(flow_filters(), max_size=2)),
    )
    for name in ("since", "until"):
        if draw(st.booleans()):
            stamp = getattr(request, name)
            stamp.seconds = draw(st.one_of(st.integers(0, 4_000_000_000), INT64))
            stamp.nanos = draw(st.integers(-(2**31), 2**31 - 1))
    if draw(st.booleans()):
        request.field_mask.paths.extend(draw(st.lists(FUZZ_TEXT, max_size=3)))
    return request


@st.composite
def aggregate_requests(draw: st.DrawFn) -> aggregate_pb2.AggregateRequest:
    now = time.time_ns()
    return aggregate_pb2.AggregateRequest(
        since_ns=draw(st.one_of(st.just(now - 3_600_000_000_000), INT64)),
        until_ns=draw(st.one_of(st.just(now + 60_000_000_000), INT64)),
        grouping=draw(st.integers(-(2**31), 2**31 - 1)),
        whitelist=draw(st.lists(flow_filters(), max_size=2)),
        blacklist=draw(st.lists(flow_filters(), max_size=2)),
    )


def _assert_unbound_text_never_reached_sql(cluster: Cluster) -> None:
    leaked = [text for text in cluster.recorder.texts if MARKER in text]
    cluster.recorder.texts.clear()
    assert leaked == []


def _assert_serving(cluster: Cluster) -> None:
    with grpc.insecure_channel(cluster.address) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="hubble.server.Observer"), timeout=5
        )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def _outcome(call: Any) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call)
        code = error.code()
        assert code in GRPC_REFUSALS, f"{code}: {error.details()}"
        assert error.details(), "a refusal names what is wrong"
        return code
    return grpc.StatusCode.OK


@FUZZ
@given(request=get_flows_requests())
def test_get_flows_answers_or_refuses_clearly(
    cluster: Cluster, request: observer_pb2.GetFlowsRequest
) -> None:
    with grpc.insecure_channel(cluster.address) as channel:
        stub = observer_pb2_grpc.ObserverStub(channel)
        _outcome(lambda: list(stub.GetFlows(request, timeout=20)))
    _assert_unbound_text_never_reached_sql(cluster)


@FUZZ
@given(
    request=aggregate_requests(),
    limit=st.one_of(st.integers(0, 2000), st.integers(0, 2**32 - 1)),
    by=FUZZ_TEXT,
)
def test_aggregates_answer_or_refuse_clearly(
    cluster: Cluster, request: aggregate_pb2.AggregateRequest, limit: int, by: str
) -> None:
    with grpc.insecure_channel(cluster.address) as channel:
        stub = aggregate_pb2_grpc.AggregatesStub(channel)
        _outcome(lambda: stub.ServiceMap(request, timeout=20))
        _outcome(lambda: stub.VerdictSummary(request, timeout=20))
        talkers = aggregate_pb2.TopTalkersRequest(range=request, limit=limit, by=by)
        _outcome(lambda: stub.TopTalkers(talkers, timeout=20))
    _assert_unbound_text_never_reached_sql(cluster)


def test_the_relay_still_serves_after_the_fuzzing(cluster: Cluster) -> None:
    # Fuzzed values did reach the store, as bound parameters only.
    assert cluster.recorder.marked_parameters > 0
    _assert_serving(cluster)
    with grpc.insecure_channel(cluster.address) as channel:
        request = observer_pb2.GetFlowsRequest(first=True, number=100)
        flows = [r for r in observer_pb2_grpc.ObserverStub(channel).GetFlows(request, timeout=20)]
    assert sum(r.HasField("flow") for r in flows) == 30


@pytest.fixture(scope="module")
def ui(cluster: Cluster) -> Iterator[TestClient]:
    with TestClient(create_app(cluster.address)) as client:
        yield client


UI_PARAMS = {
    "q": FUZZ_TEXT,
    "ns": FUZZ_TEXT,
    "range": st.one_of(st.sampled_from(["5m", "1h", "1d", "custom"]), FUZZ_TEXT),
    "since": st.one_of(st.sampled_from(["1h", "2026-01-01T00:00:00Z", "-5m"]), FUZZ_TEXT),
    "until": FUZZ_TEXT,
    "group": st.one_of(st.sampled_from(["workload", "pod", "namespace"]), FUZZ_TEXT),
    "node": FUZZ_TEXT,
    "edge": st.one_of(marked("{m}>b:80/TCP"), FUZZ_TEXT),
    "number": st.one_of(st.integers(-5, 20_000), st.integers(-(2**70), 2**70).map(str)),
}


@FUZZ
@given(
    path=st.sampled_from(["/api/map", "/api/policy", "/api/flows", "/api/namespaces"]),
    params=st.dictionaries(st.sampled_from(sorted(UI_PARAMS)), st.just(None), max_size=5).flatmap(
        lambda keys: st.fixed_dictionaries({key: UI_PARAMS[key] for key in keys})
    ),
)
def test_ui_api_answers_or_refuses_clearly(
    cluster: Cluster, ui: TestClient, path: str, params: dict[str, Any]
) -> None:
    answer = ui.get(path, params={key: str(value) for key, value in params.items()})
    assert answer.status_code in (200, 400, 422), answer.text
    if answer.status_code == 400:
        assert answer.json()["error"]
    if answer.status_code == 422:  # FastAPI's own refusal of a parameter's type or range
        assert answer.json()["detail"]
    _assert_unbound_text_never_reached_sql(cluster)


def test_the_ui_still_serves_after_the_fuzzing(ui: TestClient) -> None:
    answer = ui.get("/api/flows", params={"range": "1d"})
    assert answer.status_code == 200
    assert len(answer.json()["flows"]) == 30
