"""Queries over the node's ring for its servers: which entries a request selects, in order.

The gRPC layer (server.py) turns requests into a `Query` and the entries `select` yields into
responses; everything here works on a FlowRing alone, so it is tested without a network.

Selection follows Hubble's local observer:

* `first`: read forward from the oldest entry held, up to `number` selected entries
  (0: all), until the end of the ring as it was when the call began.
* otherwise walk back from the newest entry, counting selected entries, until `number` are
  found (0: none, unless `since` is given) or an entry older than `since`; `since` and
  `until` bound the time of what is counted, so `number` with `since` is the last N since.
* `follow`: after that, wait for new entries and send them as they come, until the caller
  goes away or an entry passes `until`; `follow` with no `number` nor `since` sends only new
  entries.

An `Interest` says which entries are selected (counted toward `number`) and which are carried
along uncounted and unfiltered (lost events), where they stand between the selected ones;
none before the first selected entry of a `since` window nor after the last of an `until`
window. Entries a forward reader finds overwritten are reported as one LostEvent with source
HUBBLE_RING_BUFFER per `lost_interval` at most, with the count lost since the previous report.

Times: a flow's own (Flow.time); an agent event's, the time the ring took it (as Hubble times
events by its ring's envelope: most agent events carry no time of their own). `since` and
`until` are both inclusive. `select` yields each entry with the time the ring took it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from google.protobuf.timestamp_pb2 import Timestamp

from flowscope.collector.ring import Event, FlowRing
from flowscope.proto.flow import flow_pb2

READ_CHUNK: Final = 1024
# How often a waiting reader checks that its caller is still there.
CANCEL_POLL: Final = 0.2


@dataclass(frozen=True, slots=True)
class Query:
    number: int = 0
    first: bool = False
    follow: bool = False
    since_ns: int | None = None
    until_ns: int | None = None


# A ring entry as queries yield it: (the time the ring took it in nanoseconds, the event).
Timed = tuple[int, Event]


@dataclass(frozen=True, slots=True)
class Interest:
    """Which ring entries a request selects, and how to tell their time."""

    selects: Callable[[Event], bool]
    carries: Callable[[Event], bool]
    # The time `since` and `until` bound, from the event and the time the ring took it.
    time_ns: Callable[[Event, int], int]
    # Whether entries lost under a forward reader are reported (GetAgentEvents has no way to).
    reports_losses: bool = True


def timestamp_ns(stamp: Timestamp) -> int:
    return stamp.seconds * 1_000_000_000 + stamp.nanos


def flow_time_ns(event: Event, appended_ns: int) -> int:
    """A flow's own time."""
    assert isinstance(event, flow_pb2.Flow)
    return timestamp_ns(event.time)


def appended_time_ns(event: Event, appended_ns: int) -> int:
    """The time the ring took the entry."""
    return appended_ns


def flow_interest(keep: Callable[[flow_pb2.Flow], bool]) -> Interest:
    """Flows that `keep` accepts; lost events from the datapath carried along."""
    return Interest(
        selects=lambda event: isinstance(event, flow_pb2.Flow) and keep(event),
        carries=lambda event: isinstance(event, flow_pb2.LostEvent),
        time_ns=flow_time_ns,
    )


AGENT_EVENTS: Final = Interest(
    selects=lambda event: isinstance(event, flow_pb2.AgentEvent),
    carries=lambda event: False,
    time_ns=appended_time_ns,
    reports_losses=False,
)


class RingLosses:
    """Entries overwritten under a reader, reported as rate-limited HUBBLE_RING_BUFFER events."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._count = 0
        self._first_ns = 0
        self._sent_at: float | None = None

    def add(self, count: int) -> None:
        if count and not self._count:
            self._first_ns = time.time_ns()
        self._count += count

    def report(self, *, final: bool = False) -> flow_pb2.LostEvent | None:
        """The LostEvent to send now, if any: at most one per interval, unless `final`."""
        if not self._count:
            return None
        now = self._clock()
        if not final and self._sent_at is not None and now - self._sent_at < self._interval:
            return None
        lost = flow_pb2.LostEvent(source=flow_pb2.HUBBLE_RING_BUFFER, num_events_lost=self._count)
        lost.first.FromNanoseconds(self._first_ns)
        lost.last.FromNanoseconds(time.time_ns())
        self._count = 0
        self._sent_at = now
        return lost


def newest_first(ring: FlowRing, end: int) -> Iterator[Timed]:
    """The entries before sequence `end`, newest first, down to the oldest still held."""
    high = end
    while True:
        low = max(high - READ_CHUNK, 0)
        entries, lost = ring.read_timed(low, high - low)
        for seq, appended_ns, event in reversed(entries):
            if seq < high:
                yield appended_ns, event
        if lost or not entries:
            return
        high = low


def select(
    ring: FlowRing,
    query: Query,
    interest: Interest,
    active: Callable[[], bool],
    lost_interval: float,
) -> Iterator[Timed]:
    """The entries `query` selects (and the entries `interest` carries), oldest first.

    With `follow`, keeps waiting for new entries while `active()` is true. Entries lost under
    the reader come as HUBBLE_RING_BUFFER LostEvents, timed when they are reported.
    """
    end = ring.next_seq()
    if query.first:
        start = ring.first_seq()
        yield from _forward(ring, start, end, query.number, query, interest, active, lost_interval)
        return
    if query.number or query.since_ns is not None:
        yield from _last(ring, end, query, interest)
    if query.follow:
        yield from _forward(ring, end, None, 0, query, interest, active, lost_interval)


def _last(ring: FlowRing, end: int, query: Query, interest: Interest) -> list[Timed]:
    """The backlog for a query without `first`: the last `number` selected, or all since."""
    picked: list[Timed] = []
    counted = 0
    # Carried entries newer than everything selected before `until` are past `until` too.
    inside = query.until_ns is None
    for appended_ns, event in newest_first(ring, end):
        if interest.carries(event):
            if inside:
                picked.append((appended_ns, event))
        elif interest.selects(event):
            when = interest.time_ns(event, appended_ns)
            if query.since_ns is not None and when < query.since_ns:
                break
            if query.until_ns is not None and when > query.until_ns:
                continue
            inside = True
            picked.append((appended_ns, event))
            counted += 1
            if counted == query.number:
                break
    picked.reverse()
    return picked


def _forward(
    ring: FlowRing,
    start: int,
    stop: int | None,
    limit: int,
    query: Query,
    interest: Interest,
    active: Callable[[], bool],
    lost_interval: float,
) -> Iterator[Timed]:
    """Entries from `start` on: up to `stop` and `limit` selected, or while `active()`."""
    losses = RingLosses(lost_interval)
    seq = start
    counted = 0
    done = False
    # Reading from the oldest entry, carried entries older than `since` are skipped too.
    inside = stop is None or query.since_ns is None
    while not done and active():
        entries, lost = ring.read_timed(seq, READ_CHUNK)
        seq += lost
        if interest.reports_losses:
            losses.add(lost)
        if (report := losses.report()) is not None:
            yield _reported(report)
        for entry_seq, appended_ns, event in entries:
            if stop is not None and entry_seq >= stop:
                done = True
                break
            seq = entry_seq + 1
            if interest.carries(event):
                if inside:
                    yield appended_ns, event
            elif interest.selects(event):
                when = interest.time_ns(event, appended_ns)
                if query.until_ns is not None and when > query.until_ns:
                    done = True  # the stream ends at the first entry past `until`
                    break
                if query.since_ns is None or when >= query.since_ns:
                    inside = True
                    yield appended_ns, event
                    counted += 1
                    if counted == limit:
                        done = True
                        break
        if stop is not None and seq >= stop:
            done = True
        elif not entries:
            ring.wait(seq, CANCEL_POLL)
    if (report := losses.report(final=True)) is not None:
        yield _reported(report)


def _reported(report: flow_pb2.LostEvent) -> Timed:
    return timestamp_ns(report.last), report


def flows_rate(ring: FlowRing, now_ns: int, window_ns: int) -> float:
    """Flows per second over the `window_ns` before `now_ns`, by the flows' times.

    When the ring no longer holds the whole window, the rate is over the span it holds.
    """
    start = now_ns - window_ns
    count = 0
    oldest = now_ns
    for _, event in newest_first(ring, ring.next_seq()):
        if not isinstance(event, flow_pb2.Flow):
            continue
        when = timestamp_ns(event.time)
        if when < start:
            return count * 1e9 / window_ns
        count += 1
        oldest = min(oldest, when)
    if len(ring) < ring.capacity:  # the ring holds everything since the node started
        return count * 1e9 / window_ns
    return count * 1e9 / (now_ns - oldest) if now_ns > oldest else 0.0


def namespaces(ring: FlowRing, since_ns: int) -> list[tuple[str, str]]:
    """(cluster, namespace) of the endpoints of the flows since `since_ns`, sorted."""
    found: set[tuple[str, str]] = set()
    for _, event in newest_first(ring, ring.next_seq()):
        if not isinstance(event, flow_pb2.Flow):
            continue
        if timestamp_ns(event.time) < since_ns:
            break
        for endpoint in (event.source, event.destination):
            if endpoint.namespace:
                found.add((endpoint.cluster_name, endpoint.namespace))
    return sorted(found)
