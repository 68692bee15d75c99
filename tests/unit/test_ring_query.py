"""Ring queries without a server: agent event times, loss reports, their rate limit, the
flow rate."""

from __future__ import annotations

import pytest

from flowscope.collector import ringquery
from flowscope.collector.ring import Event, FlowRing
from flowscope.proto.flow import flow_pb2

SECOND = 1_000_000_000
NOW = 1_764_374_400 * SECOND


def flow(uuid: str, when: int = NOW) -> flow_pb2.Flow:
    result = flow_pb2.Flow(uuid=uuid)
    result.time.FromNanoseconds(when)
    return result


def describe(event: Event) -> str:
    if isinstance(event, flow_pb2.LostEvent):
        return f"{flow_pb2.LostEventSource.Name(event.source)}:{event.num_events_lost}"
    assert isinstance(event, flow_pb2.Flow)
    return event.uuid


def test_ring_losses_are_reported_at_most_once_per_interval() -> None:
    now = [100.0]
    losses = ringquery.RingLosses(1.0, clock=lambda: now[0])
    assert losses.report() is None
    losses.add(5)
    first = losses.report()
    assert first is not None
    assert (first.source, first.num_events_lost) == (flow_pb2.HUBBLE_RING_BUFFER, 5)
    now[0] = 100.5
    losses.add(3)
    assert losses.report() is None
    losses.add(2)
    now[0] = 101.0
    second = losses.report()
    assert second is not None and second.num_events_lost == 5
    losses.add(1)
    final = losses.report(final=True)
    assert final is not None and final.num_events_lost == 1
    assert losses.report(final=True) is None


def test_a_follower_overtaken_twice_within_the_interval_gets_the_sum_at_the_end() -> None:
    ring = FlowRing(4, first_seq=0)
    running = [True]
    keep_all = ringquery.flow_interest(lambda flow: True)
    query = ringquery.Query(number=1, follow=True)
    events = ringquery.select(ring, query, keep_all, lambda: running[0], lost_interval=60.0)
    ring.append(flow("a"))
    assert describe(next(events)[1]) == "a"
    for i in range(10):  # 6 overwritten
        ring.append(flow(f"b{i}"))
    assert [describe(next(events)[1]) for _ in range(5)] == [
        "HUBBLE_RING_BUFFER:6",
        "b6",
        "b7",
        "b8",
        "b9",
    ]
    for i in range(7):  # 3 overwritten, reported at the end: one report per minute
        ring.append(flow(f"c{i}"))
    assert [describe(next(events)[1]) for _ in range(4)] == ["c3", "c4", "c5", "c6"]
    running[0] = False
    assert [describe(event) for _, event in events] == ["HUBBLE_RING_BUFFER:3"]


def test_flows_rate_over_the_window_or_the_span_the_ring_holds() -> None:
    ring = FlowRing(4, first_seq=0)
    ring.append(flow_pb2.AgentEvent(type=flow_pb2.AGENT_STARTED))
    ring.append(flow("old", NOW - 90 * SECOND))
    ring.append(flow("x", NOW - 30 * SECOND))
    ring.append(flow("y", NOW - 10 * SECOND))
    # the ring reaches past the window: 2 flows in 60 s
    assert ringquery.flows_rate(ring, NOW, 60 * SECOND) == 2 / 60
    ring.append(flow("z", NOW - 5 * SECOND))
    ring.append(flow("w", NOW - 4 * SECOND))
    # full, and all it holds is within the window: 4 flows over the 30 s it spans
    assert ringquery.flows_rate(ring, NOW, 60 * SECOND) == 4 / 30
    assert ringquery.flows_rate(FlowRing(4), NOW, 60 * SECOND) == 0.0


def test_namespaces_stop_at_the_first_flow_older_than_the_window() -> None:
    ring = FlowRing(8, first_seq=0)
    old = flow("old", NOW - 2 * 3600 * SECOND)
    old.source.namespace = "gone"
    ring.append(old)
    recent = flow("recent", NOW - SECOND)
    recent.source.namespace = "b"
    recent.destination.namespace = "a"
    recent.destination.cluster_name = "c2"
    ring.append(recent)
    assert ringquery.namespaces(ring, NOW - 3600 * SECOND) == [("", "b"), ("c2", "a")]


class Clock:
    """A clock the test sets: the time the ring takes the next entry."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def agent_event(kind: flow_pb2.AgentEventType.ValueType) -> flow_pb2.AgentEvent:
    return flow_pb2.AgentEvent(type=kind)


def timed_ring() -> tuple[FlowRing, Clock]:
    """Agent events appended one second apart from NOW, flows between them.

    AGENT_STARTED says it started 100 s before the ring took it; the flow "late" was
    appended at NOW + 1 s but happened at NOW - 50 s.
    """
    clock = Clock()
    ring = FlowRing(16, first_seq=0, clock=clock)
    started = agent_event(flow_pb2.AGENT_STARTED)
    started.agent_start.time.FromNanoseconds(NOW - 100 * SECOND)
    timeline: list[tuple[int, Event]] = [
        (0, started),
        (1, flow("late", NOW - 50 * SECOND)),
        (2, agent_event(flow_pb2.POLICY_UPDATED)),
        (3, agent_event(flow_pb2.ENDPOINT_CREATED)),
        (4, agent_event(flow_pb2.ENDPOINT_DELETED)),
        (5, flow("on-time", NOW + 5 * SECOND)),
        (6, agent_event(flow_pb2.IPCACHE_UPSERTED)),
    ]
    for offset, event in timeline:
        clock.now = NOW + offset * SECOND
        ring.append(event)
    return ring, clock


def kinds(entries: list[ringquery.Timed]) -> list[str]:
    names = []
    for _, event in entries:
        assert isinstance(event, flow_pb2.AgentEvent)
        names.append(flow_pb2.AgentEventType.Name(event.type).lower())
    return names


def select_all(
    ring: FlowRing, query: ringquery.Query, interest: ringquery.Interest
) -> list[ringquery.Timed]:
    return list(ringquery.select(ring, query, interest, lambda: True, lost_interval=1.0))


ALL_AGENT = [
    "agent_started",
    "policy_updated",
    "endpoint_created",
    "endpoint_deleted",
    "ipcache_upserted",
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (ringquery.Query(number=2), ALL_AGENT[3:]),
        (ringquery.Query(since_ns=NOW + 2 * SECOND), ALL_AGENT[1:]),  # since is inclusive
        (ringquery.Query(since_ns=NOW + 2 * SECOND + 1), ALL_AGENT[2:]),
        (ringquery.Query(since_ns=NOW - 200 * SECOND), ALL_AGENT),
        (ringquery.Query(since_ns=NOW + 7 * SECOND), []),
        (ringquery.Query(number=10, until_ns=NOW + 3 * SECOND), ALL_AGENT[:3]),  # inclusive
        (ringquery.Query(number=10, until_ns=NOW + 3 * SECOND - 1), ALL_AGENT[:2]),
        # AGENT_STARTED's own time is inside this window; the time the ring took it is not.
        (ringquery.Query(number=10, until_ns=NOW - SECOND), []),
        (ringquery.Query(since_ns=NOW + 2 * SECOND, until_ns=NOW + 4 * SECOND), ALL_AGENT[1:4]),
        (ringquery.Query(number=2, since_ns=NOW + SECOND), ALL_AGENT[3:]),
        (ringquery.Query(number=2, since_ns=NOW + 5 * SECOND), ALL_AGENT[4:]),
        (ringquery.Query(number=2, until_ns=NOW + 3 * SECOND), ALL_AGENT[1:3]),
        (ringquery.Query(first=True, number=2, since_ns=NOW + SECOND), ALL_AGENT[1:3]),
        (ringquery.Query(first=True, since_ns=NOW + 3 * SECOND), ALL_AGENT[2:]),
        (ringquery.Query(first=True, until_ns=NOW + 2 * SECOND), ALL_AGENT[:2]),
        (
            ringquery.Query(first=True, since_ns=NOW + SECOND, until_ns=NOW + 3 * SECOND),
            ALL_AGENT[1:3],
        ),
        (ringquery.Query(first=True, since_ns=NOW + 7 * SECOND), []),
    ],
)
def test_agent_events_are_timed_by_when_the_ring_took_them(
    query: ringquery.Query, expected: list[str]
) -> None:
    ring, _ = timed_ring()
    assert kinds(select_all(ring, query, ringquery.AGENT_EVENTS)) == expected


def test_agent_events_come_with_the_time_the_ring_took_them() -> None:
    ring, _ = timed_ring()
    selected = select_all(ring, ringquery.Query(number=3), ringquery.AGENT_EVENTS)
    assert [when for when, _ in selected] == [NOW + i * SECOND for i in (3, 4, 6)]


def test_a_follower_of_agent_events_ends_at_the_first_one_past_until() -> None:
    ring, clock = timed_ring()
    query = ringquery.Query(follow=True, since_ns=NOW + 6 * SECOND, until_ns=NOW + 8 * SECOND)
    events = ringquery.select(ring, query, ringquery.AGENT_EVENTS, lambda: True, 1.0)
    assert kinds([next(events)]) == ["ipcache_upserted"]
    for offset, kind in [
        (8, flow_pb2.POLICY_DELETED),
        (9, flow_pb2.IPCACHE_DELETED),
        (10, flow_pb2.ENDPOINT_CREATED),
    ]:
        clock.now = NOW + offset * SECOND
        ring.append(agent_event(kind))
    rest = list(events)
    assert ([when for when, _ in rest], kinds(rest)) == ([NOW + 8 * SECOND], ["policy_deleted"])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (ringquery.Query(since_ns=NOW - 60 * SECOND, until_ns=NOW - 40 * SECOND), ["late"]),
        (ringquery.Query(since_ns=NOW), ["on-time"]),
        (ringquery.Query(number=5, until_ns=NOW + 4 * SECOND), ["late"]),
        (ringquery.Query(first=True, since_ns=NOW + SECOND), ["on-time"]),
    ],
)
def test_flows_stay_timed_by_their_own_time(query: ringquery.Query, expected: list[str]) -> None:
    ring, _ = timed_ring()
    keep_all = ringquery.flow_interest(lambda flow: True)
    assert [describe(event) for _, event in select_all(ring, query, keep_all)] == expected
