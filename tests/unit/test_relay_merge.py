"""The relay's time-ordered merge and the live clients' bounded queues."""

from __future__ import annotations

import pytest

from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2
from flowscope.proto.stream import stream_pb2
from flowscope.relay.fanout import HubConfig, LiveHub, Subscription
from flowscope.relay.merge import MergeItem, TimeMerge


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def items(*pairs: tuple[int, int]) -> list[MergeItem]:
    return [MergeItem(seq, time_ns, observer_pb2.GetFlowsResponse()) for seq, time_ns in pairs]


def released(merge: TimeMerge, **kwargs: bool) -> list[tuple[str, int]]:
    return [(node, item.seq) for node, item in merge.release(**kwargs)]


def test_waits_for_every_node_then_releases_oldest_first() -> None:
    merge = TimeMerge(max_buffered=100, drain_timeout=1.0, clock=Clock())
    merge.wait_for("a")
    merge.wait_for("b")
    merge.push("a", items((1, 10), (2, 30)))
    assert released(merge) == []
    merge.push("b", items((7, 20), (8, 25)))
    assert released(merge) == [("a", 1), ("b", 7), ("b", 8)]
    assert merge.next_sequence("a") == 2
    assert merge.next_sequence("b") is None


def test_a_node_releases_in_sequence_order_whatever_its_times() -> None:
    merge = TimeMerge(max_buffered=100, drain_timeout=1.0, clock=Clock())
    merge.push("a", items((1, 50), (2, 10)))
    assert released(merge) == [("a", 1), ("a", 2)]


@pytest.mark.parametrize(
    ("max_buffered", "advance", "expected"),
    [
        (100, 0.5, []),  # young, and node b may still send older flows
        (100, 1.0, [("a", 1), ("a", 2), ("a", 3)]),  # waited the drain timeout
        (2, 0.0, [("a", 1)]),  # over the buffer bound: the oldest goes
    ],
)
def test_bounds_release_without_the_silent_node(
    max_buffered: int, advance: float, expected: list[tuple[str, int]]
) -> None:
    clock = Clock()
    merge = TimeMerge(max_buffered=max_buffered, drain_timeout=1.0, clock=clock)
    merge.wait_for("a")
    merge.wait_for("b")
    merge.push("a", items((1, 10), (2, 20), (3, 30)))
    clock.now += advance
    assert released(merge) == expected


def test_a_node_that_left_is_not_waited_for() -> None:
    merge = TimeMerge(max_buffered=100, drain_timeout=1.0, clock=Clock())
    merge.wait_for("a")
    merge.wait_for("b")
    merge.push("a", items((1, 10)))
    merge.stop_waiting("b")
    assert released(merge) == [("a", 1)]


def test_a_slow_client_gets_a_lost_event_for_what_overflowed() -> None:
    subscription = Subscription(capacity=2)
    for node in ("n1", "n2", "n3", "n4"):
        subscription.offer(observer_pb2.GetFlowsResponse(node_name=node))
    *kept, lost = subscription.take(timeout=0)
    assert [response.node_name for response in kept] == ["n1", "n2"]
    assert lost.lost_events.source == flow_pb2.OBSERVER_EVENTS_QUEUE
    assert lost.lost_events.num_events_lost == 2
    assert subscription.take(timeout=0) == []


def _batch(
    node: str, first: int, times: list[int], lost: int = 0
) -> stream_pb2.EncodedFlowBatch:
    batch = stream_pb2.EncodedFlowBatch(
        node_name=node, first_sequence=first, next_sequence=first + len(times) + lost, lost=lost
    )
    for offset, time_ns in enumerate(times):
        flow = flow_pb2.Flow(node_name=node, node_sequence=first + lost + offset)
        flow.time.FromNanoseconds(time_ns)
        batch.flows.append(flow.SerializeToString())
    return batch


def test_the_cut_is_where_a_new_subscription_starts_for_each_node() -> None:
    hub = LiveHub(HubConfig(sort_buffer=100, drain_timeout=60.0), "relay")
    hub.follow("a", 10)
    hub.follow("b", 50)
    _, first_cut = hub.subscribe()
    assert first_cut == {"a": 10, "b": 50}
    hub.push(_batch("a", 10, [100, 300]))  # held: b has sent nothing yet
    subscription, cut = hub.subscribe()
    assert cut == {"a": 10, "b": 50}
    hub.push(_batch("b", 50, [200], lost=3))
    taken = subscription.take(timeout=0)
    assert taken[0].lost_events.num_events_lost == 3
    assert [(r.node_name, r.flow.node_sequence) for r in taken[1:]] == [("a", 10), ("b", 53)]
    _, cut = hub.subscribe()
    assert cut == {"a": 11, "b": 54}


def test_without_subscriptions_the_hub_holds_nothing() -> None:
    hub = LiveHub(HubConfig(sort_buffer=100, drain_timeout=60.0), "relay")
    hub.follow("a", 10)
    hub.follow("b", 50)
    gone, _ = hub.subscribe()
    hub.push(_batch("a", 10, [100, 300]))  # held: b has sent nothing yet
    hub.unsubscribe(gone)
    hub.push(_batch("a", 12, [400]))  # nobody follows: neither read nor held
    subscription, cut = hub.subscribe()
    assert cut == {"a": 13, "b": 50}
    hub.push(_batch("b", 50, [200]))
    hub.push(_batch("a", 13, [500]))
    taken = subscription.take(timeout=0)
    assert [(r.node_name, r.flow.node_sequence) for r in taken] == [("b", 50)]


def test_flows_that_do_not_read_are_counted_not_sent() -> None:
    hub = LiveHub(HubConfig(sort_buffer=1, drain_timeout=60.0), "relay")
    hub.follow("a", 10)
    subscription, _ = hub.subscribe()
    batch = _batch("a", 10, [100, 200])
    batch.flows.insert(1, b"\x0a\x05ab")  # field 1 announcing 5 bytes where 2 follow
    hub.push(batch)
    taken = subscription.take(timeout=0)
    assert [r.flow.node_sequence for r in taken] == [10, 11]
    assert hub.malformed == 1
