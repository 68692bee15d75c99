"""Time-ordered merge of the nodes' live flows, bounded in size and in waiting time.

Each node's flows arrive in sequence order; the merge keeps one queue per node and
releases the oldest head across queues. A head is released once every node the merge
waits for has something queued (so nothing older can still come), or when the merge
holds more than `max_buffered` entries, or when the head has waited `drain_timeout`
seconds since it arrived. Nodes are released in sequence order: a node's next
unreleased sequence number is where a live stream taken now begins for that node.

    merge = TimeMerge(max_buffered=100, drain_timeout=1.0)
    merge.wait_for("node-1")
    merge.push("node-1", [MergeItem(seq, time_ns, response), ...])
    for item in merge.release(): ...
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from flowscope.proto.observer import observer_pb2


@dataclass(slots=True)
class MergeItem:
    """One flow of a node: its sequence number, time, and the response carrying it."""

    seq: int
    time_ns: int
    response: observer_pb2.GetFlowsResponse
    arrived: float = field(default=0.0, compare=False)


class TimeMerge:
    """Per-node queues released oldest first; not thread-safe (its owner locks)."""

    def __init__(
        self,
        max_buffered: int,
        drain_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_buffered < 1:
            raise ValueError(f"merge buffer must hold at least 1 flow, got {max_buffered}")
        self._max = max_buffered
        self._drain = drain_timeout
        self._clock = clock
        self._queues: dict[str, deque[MergeItem]] = {}
        self._waited: set[str] = set()
        self._buffered = 0

    def __len__(self) -> int:
        return self._buffered

    def wait_for(self, node: str) -> None:
        """Hold other nodes' flows until this node has some queued (or they age out)."""
        self._waited.add(node)
        self._queues.setdefault(node, deque())

    def stop_waiting(self, node: str) -> None:
        """The node went away: its queued flows are still released, without waiting for it."""
        self._waited.discard(node)

    def push(self, node: str, items: Iterable[MergeItem]) -> None:
        """Queue a node's flows, given in sequence order."""
        now = self._clock()
        queue = self._queues.setdefault(node, deque())
        before = len(queue)
        for item in items:
            item.arrived = now
            queue.append(item)
        self._buffered += len(queue) - before

    def next_sequence(self, node: str) -> int | None:
        """The sequence number of the node's oldest unreleased flow, if any is queued."""
        queue = self._queues.get(node)
        return queue[0].seq if queue else None

    def release(self, *, everything: bool = False) -> list[tuple[str, MergeItem]]:
        """The (node, item) pairs due now, oldest first; all of them with `everything`."""
        released: list[tuple[str, MergeItem]] = []
        expired = self._clock() - self._drain
        while self._buffered:
            node, queue = min(
                ((node, queue) for node, queue in self._queues.items() if queue),
                key=lambda pair: (pair[1][0].time_ns, pair[0], pair[1][0].seq),
            )
            due = (
                everything
                or self._buffered > self._max
                or queue[0].arrived <= expired
                or all(self._queues[waited] for waited in self._waited)
            )
            if not due:
                break
            released.append((node, queue.popleft()))
            self._buffered -= 1
        return released
