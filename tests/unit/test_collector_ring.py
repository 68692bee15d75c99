"""The node's ring: sequence numbers, overwriting, losses seen by slow readers, waiting."""

from __future__ import annotations

import threading
import time

import pytest

from flowscope.collector.ring import FlowRing, flow_clock
from flowscope.common.schema import derived_uuid
from flowscope.proto.flow import flow_pb2

MILLISECOND = 1_000_000


def test_flows_get_their_sequence_as_node_sequence() -> None:
    ring = FlowRing(4, first_seq=100)
    flow = flow_pb2.Flow()
    assert ring.append(flow) == 100
    assert flow.node_sequence == 100
    assert ring.append(flow_pb2.LostEvent(num_events_lost=3)) == 101
    assert (ring.first_seq(), ring.next_seq(), len(ring)) == (100, 102, 2)


def test_overwritten_entries_are_reported_as_lost() -> None:
    ring = FlowRing(3, first_seq=0)
    for i in range(5):
        ring.append(flow_pb2.Flow(Summary=str(i)))
    entries, lost = ring.read(0, limit=10)
    assert lost == 2
    assert [(s, e.Summary) for s, e in entries] == [(2, "2"), (3, "3"), (4, "4")]
    entries, lost = ring.read(3, limit=1)
    assert (lost, [s for s, _ in entries]) == (0, [3])
    assert ring.read(5, limit=10) == ([], 0)


def test_sequence_starts_above_earlier_runs() -> None:
    assert FlowRing(1).next_seq() > 1_700_000_000_000_000  # microseconds since the epoch


def test_wait_wakes_up_on_append() -> None:
    ring = FlowRing(8, first_seq=0)
    assert not ring.wait(0, timeout=0.01)
    timer = threading.Timer(0.05, ring.append, args=(flow_pb2.Flow(),))
    timer.start()
    assert ring.wait(0, timeout=5)
    timer.join()


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FlowRing(0)


def test_flows_get_uuids_derived_from_node_and_sequence() -> None:
    ring = FlowRing(4, first_seq=7, node_name="node-1")
    flow = flow_pb2.Flow()
    seq = ring.append(flow)
    assert (seq, flow.node_sequence) == (7, 7)
    assert flow.uuid == derived_uuid("node-1", 7)
    assert derived_uuid("node-1", 8) != flow.uuid != derived_uuid("node-2", 7)
    kept = flow_pb2.Flow(uuid="given")
    ring.append(kept)
    assert kept.uuid == "given"


def test_entries_keep_the_time_the_ring_took_them() -> None:
    times = iter([500, 700, 900, 1100])
    ring = FlowRing(3, first_seq=10, clock=lambda: next(times))
    ring.append(flow_pb2.AgentEvent(type=flow_pb2.AGENT_STARTED))
    ring.append(flow_pb2.Flow(uuid="a"))
    ring.append(flow_pb2.LostEvent(num_events_lost=1))
    ring.append(flow_pb2.Flow(uuid="b"))  # overwrites seq 10
    entries, lost = ring.read_timed(10, limit=10)
    assert lost == 1
    assert [(seq, appended) for seq, appended, _ in entries] == [(11, 700), (12, 900), (13, 1100)]
    assert [event for _, _, event in entries] == [event for _, event in ring.read(11, 10)[0]]
    assert ring.read_timed(12, limit=1) == ([(12, 900, flow_pb2.LostEvent(num_events_lost=1))], 0)


def test_the_default_clock_counts_nanoseconds_since_the_epoch() -> None:
    ring = FlowRing(2)
    before = time.time_ns()
    ring.append(flow_pb2.Flow())
    ring.append(flow_pb2.Flow())
    after = time.time_ns()
    (_, first, _), (_, second, _) = ring.read_timed(ring.first_seq(), 2)[0]
    # the wall clock and the shifted monotonic clock may differ by the time between readings
    assert before - MILLISECOND <= first <= second <= after + MILLISECOND


def test_the_flow_clock_ignores_later_steps_of_the_wall_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = flow_clock()
    now = time.time_ns()
    monkeypatch.setattr(time, "time_ns", lambda: now - 3600 * 1_000_000_000)
    assert abs(clock() - now) < MILLISECOND
