"""The node's Observer over gRPC on loopback, against a ring of known entries.

Ring layout (sequence numbers from 1000): AGENT_STARTED, flows f0..f4, a datapath LostEvent
of 7, flows f5..f9, ENDPOINT_CREATED. Flow fi is i seconds after T0; even flows come from
namespace shop, odd ones from payments; f0, f3, f6, f9 are DROPPED, the others FORWARDED.
The ring takes each flow half a second after its time, AGENT_STARTED at T0 - 1 s (it says
it started at T0 - 2 s) and ENDPOINT_CREATED at T0 + 10 s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nodetools import NODE, VERSION, StartServer, status, wait_until

from flowscope.cli.main import main
from flowscope.collector.ring import Event, FlowRing
from flowscope.common.errors import FilterError
from flowscope.common.filters import compile_predicate
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2, observer_pb2_grpc

SECOND = 1_000_000_000
T0 = (time.time_ns() // SECOND - 600) * SECOND
ALL = [f"f{i}" for i in range(5)] + ["lost:7"] + [f"f{i}" for i in range(5, 10)]


def stamp(ns: int) -> Timestamp:
    result = Timestamp()
    result.FromNanoseconds(ns)
    return result


def make_flow(i: int, when: int | None = None, namespace: str | None = None) -> flow_pb2.Flow:
    namespace = namespace or ("shop" if i % 2 == 0 else "payments")
    return flow_pb2.Flow(
        uuid=f"f{i}",
        time=stamp(T0 + i * SECOND if when is None else when),
        verdict=flow_pb2.DROPPED if i % 3 == 0 else flow_pb2.FORWARDED,
        IP=flow_pb2.IP(source=f"10.0.0.{i}", destination="10.0.9.9", ipVersion=flow_pb2.IPv4),
        l4=flow_pb2.Layer4(TCP=flow_pb2.TCP(source_port=40000 + i, destination_port=80)),
        source=flow_pb2.Endpoint(
            cluster_name="c1", namespace=namespace, pod_name=f"pod-{i}", identity=300 + i
        ),
        destination=flow_pb2.Endpoint(cluster_name="c1", namespace="db", pod_name="pg-0"),
        node_name=NODE,
    )


class WatchedRing(FlowRing):
    """A ring that tells when a reader waits for new entries, and can hold readers back.

    It takes entries at the time `now` says.
    """

    def __init__(self, capacity: int = 64) -> None:
        self.now = T0
        super().__init__(capacity, first_seq=1000, clock=lambda: self.now)
        self.waiting = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def read(self, seq: int, limit: int) -> tuple[list[tuple[int, Event]], int]:
        self.gate.wait()
        return super().read(seq, limit)

    def wait(self, seq: int, timeout: float) -> bool:
        self.waiting.set()
        return super().wait(seq, timeout)


def known_ring(capacity: int = 64) -> WatchedRing:
    ring = WatchedRing(capacity)
    ring.now = T0 - SECOND
    ring.append(
        flow_pb2.AgentEvent(
            type=flow_pb2.AGENT_STARTED,
            agent_start=flow_pb2.TimeNotification(time=stamp(T0 - 2 * SECOND)),
        )
    )
    for i in range(5):
        ring.now = T0 + i * SECOND + SECOND // 2
        ring.append(make_flow(i))
    lost = flow_pb2.LostEvent(source=flow_pb2.PERF_EVENT_RING_BUFFER, num_events_lost=7)
    lost.last.FromNanoseconds(T0 + 4 * SECOND)
    ring.append(lost)
    for i in range(5, 10):
        ring.now = T0 + i * SECOND + SECOND // 2
        ring.append(make_flow(i))
    ring.now = T0 + 10 * SECOND
    ring.append(
        flow_pb2.AgentEvent(
            type=flow_pb2.ENDPOINT_CREATED,
            endpoint_update=flow_pb2.EndpointUpdateNotification(id=12, pod_name="pod-12"),
        )
    )
    return ring


def label(response: observer_pb2.GetFlowsResponse) -> str:
    if response.HasField("flow"):
        return response.flow.uuid
    return f"lost:{response.lost_events.num_events_lost}"


@pytest.fixture
def observer(start_server: StartServer) -> observer_pb2_grpc.ObserverStub:
    _, channel = start_server(known_ring())
    return observer_pb2_grpc.ObserverStub(channel)


DROPPED = flow_pb2.FlowFilter(verdict=[flow_pb2.DROPPED])
SHOP = flow_pb2.FlowFilter(source_pod=["shop/"])


@pytest.mark.parametrize(
    ("request_fields", "expected"),
    [
        ({"number": 3}, ["f7", "f8", "f9"]),
        ({"number": 6}, ["f4", "lost:7", "f5", "f6", "f7", "f8", "f9"]),
        ({"number": 100}, ALL),
        ({"number": 0}, []),
        ({"number": 2, "whitelist": [DROPPED]}, ["f6", "f9"]),
        ({"number": 3, "whitelist": [DROPPED]}, ["f3", "lost:7", "f6", "f9"]),
        ({"number": 3, "whitelist": [DROPPED, SHOP]}, ["f6", "f8", "f9"]),
        ({"number": 3, "blacklist": [SHOP]}, ["f5", "f7", "f9"]),
        ({"number": 3, "whitelist": [DROPPED], "blacklist": [SHOP]}, ["f3", "lost:7", "f9"]),
        ({"number": 2, "first": True}, ["f0", "f1"]),
        ({"number": 7, "first": True}, ["f0", "f1", "f2", "f3", "f4", "lost:7", "f5", "f6"]),
        ({"first": True}, ALL),
        ({"number": 3, "first": True, "whitelist": [DROPPED]}, ["f0", "f3", "lost:7", "f6"]),
        ({"since": stamp(T0 + 6 * SECOND)}, ["f6", "f7", "f8", "f9"]),
        ({"since": stamp(T0 + 6 * SECOND), "number": 2}, ["f8", "f9"]),
        (
            {"since": stamp(T0 + 2 * SECOND)},
            ["f2", "f3", "f4", "lost:7", "f5", "f6", "f7", "f8", "f9"],
        ),
        ({"until": stamp(T0 + 3 * SECOND), "number": 2}, ["f2", "f3"]),
        ({"since": stamp(T0 + 2 * SECOND), "until": stamp(T0 + 4 * SECOND)}, ["f2", "f3", "f4"]),
        ({"first": True, "until": stamp(T0 + SECOND)}, ["f0", "f1"]),
        ({"first": True, "since": stamp(T0 + 8 * SECOND)}, ["f8", "f9"]),
    ],
)
def test_get_flows_selects_like_a_hubble_node(
    observer: observer_pb2_grpc.ObserverStub,
    request_fields: dict[str, object],
    expected: list[str],
) -> None:
    request = observer_pb2.GetFlowsRequest(**request_fields)  # type: ignore[arg-type]
    assert [label(r) for r in observer.GetFlows(request, timeout=5)] == expected


def test_responses_carry_node_name_time_and_the_whole_flow(
    observer: observer_pb2_grpc.ObserverStub,
) -> None:
    responses = list(observer.GetFlows(observer_pb2.GetFlowsRequest(number=6), timeout=5))
    flows = [r for r in responses if r.HasField("flow")]
    assert [r.node_name for r in responses] == [NODE] * 7
    assert [r.time for r in flows] == [stamp(T0 + i * SECOND) for i in range(4, 10)]
    expected = make_flow(9)
    expected.node_sequence = 1011
    assert flows[-1].flow == expected
    lost = responses[1].lost_events
    assert (lost.source, lost.num_events_lost) == (flow_pb2.PERF_EVENT_RING_BUFFER, 7)
    assert responses[1].time == stamp(T0 + 4 * SECOND)


def test_field_mask_keeps_only_its_paths(observer: observer_pb2_grpc.ObserverStub) -> None:
    request = observer_pb2.GetFlowsRequest(
        number=2, field_mask=FieldMask(paths=["uuid", "source.pod_name"])
    )
    flows = [r.flow for r in observer.GetFlows(request, timeout=5)]
    assert flows == [
        flow_pb2.Flow(uuid=f"f{i}", source=flow_pb2.Endpoint(pod_name=f"pod-{i}")) for i in (8, 9)
    ]


def _bad_port_message() -> str:
    with pytest.raises(FilterError) as caught:
        compile_predicate([flow_pb2.FlowFilter(source_port=["99999"])], [])
    return str(caught.value)


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"first": True, "follow": True}, "first cannot be specified with follow"),
        (
            {"field_mask": FieldMask(paths=["source.pod"])},
            "invalid field_mask path 'source.pod': Endpoint has no field 'pod'",
        ),
        (
            {"blacklist": [flow_pb2.FlowFilter(source_port=["99999"])]},
            _bad_port_message(),
        ),
    ],
)
def test_bad_requests_are_invalid_arguments(
    observer: observer_pb2_grpc.ObserverStub, request_fields: dict[str, object], message: str
) -> None:
    request = observer_pb2.GetFlowsRequest(number=1, **request_fields)  # type: ignore[arg-type]
    with pytest.raises(grpc.RpcError) as caught:
        list(observer.GetFlows(request, timeout=5))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert caught.value.details() == message  # type: ignore[attr-defined]


class Follower:
    """A GetFlows call read by a thread, so the test can look at what arrived so far."""

    def __init__(self, call: Iterator[observer_pb2.GetFlowsResponse]) -> None:
        self.call = call
        self.labels: list[str] = []
        self.error: grpc.RpcError | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for response in self.call:
                self.labels.append(label(response))
        except grpc.RpcError as err:
            self.error = err

    def join(self) -> None:
        self._thread.join(5)
        assert not self._thread.is_alive()


def test_follow_sends_the_backlog_then_new_flows_until_cancelled(
    start_server: StartServer,
) -> None:
    ring = known_ring()
    server, channel = start_server(ring)
    stub = observer_pb2_grpc.ObserverStub(channel)
    follower = Follower(stub.GetFlows(observer_pb2.GetFlowsRequest(number=2, follow=True)))
    assert wait_until(lambda: follower.labels == ["f8", "f9"])
    ring.append(make_flow(10))
    ring.append(flow_pb2.AgentEvent(type=flow_pb2.ENDPOINT_DELETED))
    ring.append(make_flow(11))
    assert wait_until(lambda: follower.labels == ["f8", "f9", "f10", "f11"], timeout=0.5)
    assert server.active_streams() == 1
    follower.call.cancel()  # type: ignore[attr-defined]
    follower.join()
    assert follower.error is not None and follower.error.code() is grpc.StatusCode.CANCELLED  # type: ignore[attr-defined]
    # the server's side ends too: no stream left behind holding a thread
    assert wait_until(lambda: server.active_streams() == 0, timeout=1.0)


def test_follow_without_number_sends_only_new_flows(start_server: StartServer) -> None:
    ring = known_ring()
    _server, channel = start_server(ring)
    stub = observer_pb2_grpc.ObserverStub(channel)
    follower = Follower(stub.GetFlows(observer_pb2.GetFlowsRequest(follow=True)))
    assert ring.waiting.wait(2)
    ring.append(make_flow(10))
    assert wait_until(lambda: follower.labels == ["f10"])
    follower.call.cancel()  # type: ignore[attr-defined]
    follower.join()


def test_follow_ends_at_until(start_server: StartServer) -> None:
    ring = known_ring()
    _, channel = start_server(ring)
    stub = observer_pb2_grpc.ObserverStub(channel)
    request = observer_pb2.GetFlowsRequest(follow=True, until=stamp(T0 + 11 * SECOND))
    follower = Follower(stub.GetFlows(request, timeout=5))
    assert ring.waiting.wait(2)
    for i in (10, 11, 12, 13):
        ring.append(make_flow(i))
    follower.join()
    assert (follower.labels, follower.error) == (["f10", "f11"], None)


def test_a_reader_overtaken_by_the_writer_gets_one_ring_buffer_lost_event(
    start_server: StartServer,
) -> None:
    ring = WatchedRing(8)
    _server, channel = start_server(ring)
    stub = observer_pb2_grpc.ObserverStub(channel)
    follower = Follower(stub.GetFlows(observer_pb2.GetFlowsRequest(follow=True)))
    assert ring.waiting.wait(2)
    ring.append(make_flow(0))
    assert wait_until(lambda: follower.labels == ["f0"])
    ring.gate.clear()
    for i in range(1, 21):  # 20 entries into 8 slots: 12 overwritten before they were read
        ring.append(make_flow(i))
    ring.gate.set()
    expected = ["f0", "lost:12"] + [f"f{i}" for i in range(13, 21)]
    assert wait_until(lambda: follower.labels == expected)
    follower.call.cancel()  # type: ignore[attr-defined]
    follower.join()


def test_server_status(start_server: StartServer) -> None:
    ring = known_ring()
    now = time.time_ns()
    for i in range(20, 30):  # ten flows in the last minute
        ring.append(make_flow(i, when=now - (50 - i) * SECOND))
    _, channel = start_server(ring, status(seen_flows=123))
    stub = observer_pb2_grpc.ObserverStub(channel)
    response, call = stub.ServerStatus.with_call(observer_pb2.ServerStatusRequest(), timeout=5)
    assert (VERSION_HEADER_NAME, VERSION) in call.initial_metadata()
    uptime = response.uptime_ns
    response.ClearField("uptime_ns")
    assert response == observer_pb2.ServerStatusResponse(
        num_flows=23, max_flows=64, seen_flows=123, version=VERSION, flows_rate=10 / 60
    )
    assert 120 * SECOND <= uptime < 130 * SECOND


VERSION_HEADER_NAME = "hubble-server-version"


def test_streams_carry_the_version_header(observer: observer_pb2_grpc.ObserverStub) -> None:
    call = observer.GetFlows(observer_pb2.GetFlowsRequest(number=1), timeout=5)
    assert (VERSION_HEADER_NAME, VERSION) in call.initial_metadata()  # type: ignore[attr-defined]
    assert [label(r) for r in call] == ["f9"]


def test_get_namespaces_of_the_last_hour(start_server: StartServer) -> None:
    ring = FlowRing(16)
    now = time.time_ns()
    ring.append(make_flow(0, when=now - 2 * 3600 * SECOND, namespace="old"))
    ring.append(make_flow(1, when=now - 50 * 60 * SECOND, namespace="shop"))
    world = make_flow(2, when=now - SECOND, namespace="payments")
    world.destination.Clear()
    ring.append(world)
    _, channel = start_server(ring)
    response = observer_pb2_grpc.ObserverStub(channel).GetNamespaces(
        observer_pb2.GetNamespacesRequest(), timeout=5
    )
    assert [(n.cluster, n.namespace) for n in response.namespaces] == [
        ("c1", "db"),
        ("c1", "payments"),
        ("c1", "shop"),
    ]


def agent_labels(responses: Iterator[observer_pb2.GetAgentEventsResponse]) -> list[str]:
    return [flow_pb2.AgentEventType.Name(r.agent_event.type) for r in responses]


@pytest.mark.parametrize(
    ("request_fields", "expected"),
    [
        ({"number": 1}, ["ENDPOINT_CREATED"]),
        ({"number": 5}, ["AGENT_STARTED", "ENDPOINT_CREATED"]),
        ({"number": 1, "first": True}, ["AGENT_STARTED"]),
        ({"number": 0}, []),
        # Bounded by the time the ring took them, both bounds inclusive as for flows.
        ({"since": stamp(T0 - SECOND)}, ["AGENT_STARTED", "ENDPOINT_CREATED"]),
        ({"since": stamp(T0 - SECOND + 1)}, ["ENDPOINT_CREATED"]),
        ({"since": stamp(T0 + 10 * SECOND)}, ["ENDPOINT_CREATED"]),
        ({"since": stamp(T0 + 10 * SECOND + 1)}, []),
        ({"until": stamp(T0 + 10 * SECOND), "number": 5}, ["AGENT_STARTED", "ENDPOINT_CREATED"]),
        ({"until": stamp(T0 + 10 * SECOND - 1), "number": 5}, ["AGENT_STARTED"]),
        ({"until": stamp(T0 - 2 * SECOND), "number": 5}, []),
        ({"since": stamp(T0), "until": stamp(T0 + 9 * SECOND)}, []),
        ({"since": stamp(T0 - 5 * SECOND), "number": 1}, ["ENDPOINT_CREATED"]),
        ({"since": stamp(T0), "first": True}, ["ENDPOINT_CREATED"]),
        ({"until": stamp(T0), "first": True}, ["AGENT_STARTED"]),
    ],
)
def test_get_agent_events(
    observer: observer_pb2_grpc.ObserverStub, request_fields: dict[str, object], expected: list[str]
) -> None:
    request = observer_pb2.GetAgentEventsRequest(**request_fields)  # type: ignore[arg-type]
    assert agent_labels(observer.GetAgentEvents(request, timeout=5)) == expected


def test_agent_events_carry_the_time_the_ring_took_them(
    observer: observer_pb2_grpc.ObserverStub,
) -> None:
    responses = list(observer.GetAgentEvents(observer_pb2.GetAgentEventsRequest(number=5)))
    assert [(r.node_name, r.time) for r in responses] == [
        (NODE, stamp(T0 - SECOND)),
        (NODE, stamp(T0 + 10 * SECOND)),
    ]


def test_agent_events_follow_until(start_server: StartServer) -> None:
    ring = known_ring()
    _, channel = start_server(ring)
    stub = observer_pb2_grpc.ObserverStub(channel)
    request = observer_pb2.GetAgentEventsRequest(follow=True, until=stamp(T0 + 12 * SECOND))
    call = stub.GetAgentEvents(request, timeout=5)
    assert ring.waiting.wait(2)
    timeline: list[tuple[int, Event]] = [
        (11, make_flow(11)),
        (11, flow_pb2.AgentEvent(type=flow_pb2.ENDPOINT_DELETED)),
        (12, flow_pb2.AgentEvent(type=flow_pb2.POLICY_UPDATED)),
        (13, flow_pb2.AgentEvent(type=flow_pb2.POLICY_DELETED)),
        (14, flow_pb2.AgentEvent(type=flow_pb2.ENDPOINT_CREATED)),
    ]
    for offset, event in timeline:
        ring.now = T0 + offset * SECOND
        ring.append(event)
    assert [(r.time, flow_pb2.AgentEventType.Name(r.agent_event.type)) for r in call] == [
        (stamp(T0 + 11 * SECOND), "ENDPOINT_DELETED"),
        (stamp(T0 + 12 * SECOND), "POLICY_UPDATED"),
    ]


def test_observe_agent_events_prints_their_times(
    start_server: StartServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server, _ = start_server(known_ring())
    argv = ["observe", "agent-events", "--server", f"127.0.0.1:{server.port}"]
    since = rfc3339(T0 - SECOND)
    assert main([*argv, "--since", since, "--time-format", "RFC3339"]) == 0
    assert capsys.readouterr() == (
        f"{since}: AGENT_STARTED (start time: {rfc3339(T0 - 2 * SECOND)})\n"
        f"{rfc3339(T0 + 10 * SECOND)}: ENDPOINT_CREATED (id: 12, pod name: pod-12)\n",
        "",
    )


def rfc3339(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // SECOND))


@pytest.mark.parametrize(
    ("method", "request_message", "message"),
    [
        (
            "GetNodes",
            observer_pb2.GetNodesRequest(),
            "GetNodes is answered by the relay, not by a node",
        ),
        (
            "GetDebugEvents",
            observer_pb2.GetDebugEventsRequest(),
            "GetDebugEvents: flowscope collectors record no debug events",
        ),
    ],
)
def test_methods_a_node_does_not_serve(
    observer: observer_pb2_grpc.ObserverStub, method: str, request_message: object, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        result = getattr(observer, method)(request_message, timeout=5)
        list(result) if method == "GetDebugEvents" else None
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]
    assert caught.value.details() == message  # type: ignore[attr-defined]


def test_health_reports_the_observer_serving(start_server: StartServer) -> None:
    _, channel = start_server(known_ring())
    health = health_pb2_grpc.HealthStub(channel)
    response = health.Check(
        health_pb2.HealthCheckRequest(service="hubble.server.Observer"), timeout=5
    )
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_streams_beyond_the_limit_are_refused(start_server: StartServer) -> None:
    server, channel = start_server(known_ring(), max_streams=1)
    stub = observer_pb2_grpc.ObserverStub(channel)
    follower = Follower(stub.GetFlows(observer_pb2.GetFlowsRequest(follow=True)))
    assert wait_until(lambda: server.active_streams() == 1)
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.GetFlows(observer_pb2.GetFlowsRequest(number=1), timeout=5))
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert caught.value.details() == (  # type: ignore[attr-defined]
        "this node already serves 1 streams, its limit (max streams); try again later"
    )
    # unary calls still go through
    stub.ServerStatus(observer_pb2.ServerStatusRequest(), timeout=5)
    follower.call.cancel()  # type: ignore[attr-defined]
    follower.join()
    assert wait_until(lambda: server.active_streams() == 0)
    assert [label(r) for r in stub.GetFlows(observer_pb2.GetFlowsRequest(number=1))] == ["f9"]


def test_stop_ends_followers_with_unavailable(start_server: StartServer) -> None:
    server, channel = start_server(known_ring())
    stub = observer_pb2_grpc.ObserverStub(channel)
    follower = Follower(stub.GetFlows(observer_pb2.GetFlowsRequest(follow=True)))
    assert wait_until(lambda: server.active_streams() == 1)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 0.5
    follower.join()
    assert follower.error is not None
    assert follower.error.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
