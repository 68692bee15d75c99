"""Ring queries without a server: loss reports, their rate limit, the flow rate."""

from __future__ import annotations

from flowscope.collector import ringquery
from flowscope.collector.ring import FlowRing
from flowscope.proto.flow import flow_pb2

SECOND = 1_000_000_000
NOW = 1_764_374_400 * SECOND


def flow(uuid: str, when: int = NOW) -> flow_pb2.Flow:
    result = flow_pb2.Flow(uuid=uuid)
    result.time.FromNanoseconds(when)
    return result


def describe(event: ringquery.Event) -> str:
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
    assert describe(next(events)) == "a"
    for i in range(10):  # 6 overwritten
        ring.append(flow(f"b{i}"))
    assert [describe(next(events)) for _ in range(5)] == [
        "HUBBLE_RING_BUFFER:6",
        "b6",
        "b7",
        "b8",
        "b9",
    ]
    for i in range(7):  # 3 overwritten, reported at the end: one report per minute
        ring.append(flow(f"c{i}"))
    assert [describe(next(events)) for _ in range(4)] == ["c3", "c4", "c5", "c6"]
    running[0] = False
    assert [describe(e) for e in events] == ["HUBBLE_RING_BUFFER:3"]


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
