"""The node's bounded ring of events (flows, lost events, agent events), with sequence numbers.

One writer side (the collector's threads, serialised by a lock) appends; any number of readers
read by sequence number and may block until something new arrives. This is the seam the node's
gRPC server builds on:

    ring = collector.ring
    seq = ring.first_seq()                  # or ring.next_seq() to follow only new entries
    while True:
        entries, lost = ring.read(seq, limit=1000)
        # `lost`: entries overwritten before this reader got them (report them as a
        # LostEvent with source HUBBLE_RING_BUFFER); entries: [(seq, event), ...]
        for seq, event in entries: ...
        seq = entries[-1][0] + 1 if entries else seq + lost
        ring.wait(seq, timeout=1.0)         # True when entry `seq` exists

Each entry keeps the time the ring took it (nanoseconds since the epoch, on the clock the
collector stamps flows with: CLOCK_MONOTONIC shifted to the epoch), as Hubble's ring keeps
each event in an envelope with its time. `read_timed` returns it beside each entry. Agent
events are timed by it (most carry no time of their own); flows keep their own Flow.time.

Sequence numbers are strictly increasing for the life of the node: they start at the
collector's start time in microseconds, so a restarted collector continues above the numbers
it handed out before (unless it appends more than a million entries a second). Each Flow's
node_sequence is its ring sequence number, and with a node name its uuid is derived from the
two (common.schema.derived_uuid), unique per flow and cheap for the store to keep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from flowscope.collector.decode import monotonic_to_wall_offset
from flowscope.common.schema import derived_uuid
from flowscope.proto.flow import flow_pb2

Event = flow_pb2.Flow | flow_pb2.LostEvent | flow_pb2.AgentEvent


def flow_clock() -> Callable[[], int]:
    """Nanoseconds since the epoch as the collector's flows count them: CLOCK_MONOTONIC (the
    datapath's clock) plus the wall clock's offset taken now, so a later step of the wall
    clock moves neither."""
    offset = monotonic_to_wall_offset()
    return lambda: time.monotonic_ns() + offset


class FlowRing:
    def __init__(
        self,
        capacity: int,
        first_seq: int | None = None,
        node_name: str = "",
        clock: Callable[[], int] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"ring capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._node_name = node_name
        self._clock = flow_clock() if clock is None else clock
        self._slots: list[Event | None] = [None] * capacity
        self._appended_ns = [0] * capacity
        self._start = time.time_ns() // 1000 if first_seq is None else first_seq
        self._next = self._start
        self._cond = threading.Condition()

    def append(self, event: Event) -> int:
        """Store an event and return its sequence number (also set as a Flow's node_sequence)."""
        with self._cond:
            seq = self._next
            if isinstance(event, flow_pb2.Flow):
                event.node_sequence = seq
                if self._node_name and not event.uuid:
                    event.uuid = derived_uuid(self._node_name, seq)
            self._slots[seq % self.capacity] = event
            # Taken under the lock, so append times never decrease along the sequence.
            self._appended_ns[seq % self.capacity] = self._clock()
            self._next = seq + 1
            self._cond.notify_all()
            return seq

    def next_seq(self) -> int:
        """The sequence number the next appended event will get."""
        with self._cond:
            return self._next

    def first_seq(self) -> int:
        """The oldest sequence number still held."""
        with self._cond:
            return max(self._start, self._next - self.capacity)

    def __len__(self) -> int:
        with self._cond:
            return self._next - max(self._start, self._next - self.capacity)

    def read(self, seq: int, limit: int) -> tuple[list[tuple[int, Event]], int]:
        """Up to `limit` entries from `seq` on, and how many entries from `seq` were lost."""
        with self._cond:
            start, stop, lost = self._span(seq, limit)
            return [(s, self._event(s)) for s in range(start, stop)], lost

    def read_timed(self, seq: int, limit: int) -> tuple[list[tuple[int, int, Event]], int]:
        """As `read`, with each entry's append time: ([(seq, appended_ns, event), ...], lost)."""
        with self._cond:
            start, stop, lost = self._span(seq, limit)
            times = self._appended_ns
            entries = [(s, times[s % self.capacity], self._event(s)) for s in range(start, stop)]
            return entries, lost

    def _span(self, seq: int, limit: int) -> tuple[int, int, int]:
        """The sequence range [start, stop) to read from `seq`, and how many were lost before."""
        oldest = max(self._start, self._next - self.capacity)
        start = max(seq, oldest)
        return start, min(self._next, start + limit), max(0, oldest - seq)

    def _event(self, seq: int) -> Event:
        event = self._slots[seq % self.capacity]
        assert event is not None  # every sequence in a span has been written
        return event

    def wait(self, seq: int, timeout: float) -> bool:
        """Block until entry `seq` exists or `timeout` seconds pass; True if it exists."""
        with self._cond:
            return self._cond.wait_for(lambda: self._next > seq, timeout)
