"""The live stream: every node's flows, merged by time, fanned out to the clients that follow.

The followers push what they receive (each node once); the hub merges it (merge.py) and
offers every released response to each subscription's bounded queue. A client that reads
too slowly loses entries, never blocks the hub: what overflowed reaches it as one LostEvent
with source OBSERVER_EVENTS_QUEUE after the entries it kept, and in the hub's `lost` count
(a metric). Node status events and the nodes' lost events go to every subscription as they
come, unsorted.

The hand-off from history: `subscribe()` returns, with the subscription, the cut: each
node's first sequence number the subscription will receive. Everything below the cut was
pushed (and so handed to the store) before, everything from it on comes live.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Final

from google.protobuf.message import DecodeError

from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2
from flowscope.proto.relay import relay_pb2
from flowscope.proto.stream import stream_pb2
from flowscope.relay.merge import MergeItem, TimeMerge

Response = observer_pb2.GetFlowsResponse
# How often aged flows are released when no new ones arrive, relative to the drain timeout.
_TICKS_PER_DRAIN: Final = 4


@dataclass(frozen=True)
class HubConfig:
    """sort_buffer: most flows the merge holds; drain_timeout: longest a flow waits in it;
    client_queue: most responses waiting for one client."""

    sort_buffer: int = 100
    drain_timeout: float = 1.0
    client_queue: int = 4096


def _time_ns(response: Response) -> int:
    return response.time.seconds * 1_000_000_000 + response.time.nanos


def is_overflow(response: Response) -> bool:
    """Whether this is the LostEvent a subscription adds for what overflowed its queue (the
    nodes' own lost events name their node)."""
    return (
        response.HasField("lost_events")
        and response.lost_events.source == flow_pb2.OBSERVER_EVENTS_QUEUE
        and not response.node_name
    )


class Subscription:
    """One live client's bounded queue of responses."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: deque[Response] = deque()
        self._ready = threading.Condition()
        self._lost = 0
        self._lost_first_ns = 0

    def offer(self, response: Response) -> bool:
        """Queue a response, or count it lost (False) when the queue is full; never blocks."""
        with self._ready:
            if len(self._entries) >= self._capacity:
                if not self._lost:
                    self._lost_first_ns = time.time_ns()
                self._lost += 1
                return False
            self._entries.append(response)
            self._ready.notify()
            return True

    def depth(self) -> int:
        """Responses waiting now."""
        return len(self._entries)

    def take(self, timeout: float) -> list[Response]:
        """What is queued, then a LostEvent for what overflowed after it; waits up to `timeout`."""
        with self._ready:
            if not self._entries and not self._lost:
                self._ready.wait(timeout)
            taken = list(self._entries)
            self._entries.clear()
            if self._lost:
                lost = flow_pb2.LostEvent(
                    source=flow_pb2.OBSERVER_EVENTS_QUEUE, num_events_lost=self._lost
                )
                lost.first.FromNanoseconds(self._lost_first_ns)
                lost.last.GetCurrentTime()
                taken.append(Response(lost_events=lost, time=lost.last))
                self._lost = 0
            return taken


class LiveHub:
    """Merges the followed nodes' flows and fans them out to subscriptions."""

    def __init__(self, config: HubConfig, relay_name: str) -> None:
        self._config = config
        self._relay_name = relay_name
        self._lock = threading.Lock()
        self._merge = TimeMerge(config.sort_buffer, config.drain_timeout)
        self._next: dict[str, int] = {}
        self._subscriptions: list[Subscription] = []
        self._stopping = threading.Event()
        self._ticker: threading.Thread | None = None
        # Responses the subscriptions' full queues lost, over all clients so far.
        self.lost = 0
        # Flows of the nodes' batches that did not read as flows.
        self.malformed = 0

    def start(self) -> None:
        self._ticker = threading.Thread(target=self._tick, name="relay-merge", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None

    def follow(self, node: str, cursor: int) -> None:
        """A node is followed from `cursor` on: wait for its flows in the merge."""
        with self._lock:
            self._next.setdefault(node, cursor)
            self._merge.wait_for(node)

    def unfollow(self, node: str) -> None:
        """A node stopped sending: release the others' flows without waiting for it."""
        with self._lock:
            self._merge.stop_waiting(node)
            self._deliver(self._merge.release())

    def push(self, batch: stream_pb2.EncodedFlowBatch) -> None:
        """A node's batch, as received; its flows join the merge. With no subscription
        nothing is held, nor even read; a flow that does not read is counted in
        `malformed`."""
        node = batch.node_name
        with self._lock:
            for lost in self._losses(batch):
                self._offer(lost)
            self._next[node] = batch.next_sequence
            if not self._subscriptions:
                self._merge.release(everything=True)  # so that a new cut is _next
                return
            items = []
            for data in batch.flows:
                try:
                    flow = flow_pb2.Flow.FromString(data)
                except DecodeError:
                    self.malformed += 1
                    continue
                response = Response(flow=flow, node_name=node, time=flow.time)
                items.append(MergeItem(flow.node_sequence, _time_ns(response), response))
            self._merge.push(node, items)
            self._deliver(self._merge.release())

    def publish(self, status: relay_pb2.NodeStatusEvent) -> None:
        """A node status event, to every subscription now."""
        response = Response(node_status=status, node_name=self._relay_name)
        response.time.GetCurrentTime()
        with self._lock:
            self._offer(response)

    def subscribe(self, capacity: int | None = None) -> tuple[Subscription, dict[str, int]]:
        """A new subscription, and each node's first sequence number it will receive."""
        subscription = Subscription(capacity or self._config.client_queue)
        with self._lock:
            cut = {
                node: queued if (queued := self._merge.next_sequence(node)) is not None else seq
                for node, seq in self._next.items()
            }
            self._subscriptions.append(subscription)
        return subscription, cut

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.remove(subscription)

    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscriptions)

    def queue_depths(self) -> tuple[int, int]:
        """Responses waiting for the live clients: in all their queues, and in the fullest."""
        with self._lock:
            depths = [subscription.depth() for subscription in self._subscriptions]
        return sum(depths), max(depths, default=0)

    def _losses(self, batch: stream_pb2.EncodedFlowBatch) -> list[Response]:
        """The node's lost events, and one for the entries its ring overwrote unsent."""
        node = batch.node_name
        responses = [
            Response(lost_events=lost, node_name=node, time=lost.last) for lost in batch.lost_events
        ]
        if batch.lost:
            lost = flow_pb2.LostEvent(
                source=flow_pb2.HUBBLE_RING_BUFFER, num_events_lost=batch.lost
            )
            lost.last.GetCurrentTime()
            lost.first.CopyFrom(lost.last)
            responses.append(Response(lost_events=lost, node_name=node, time=lost.last))
        return responses

    def _deliver(self, released: list[tuple[str, MergeItem]]) -> None:
        for _, item in released:
            self._offer(item.response)

    def _offer(self, response: Response) -> None:
        for subscription in self._subscriptions:
            if not subscription.offer(response):
                self.lost += 1

    def _tick(self) -> None:
        interval = self._config.drain_timeout / _TICKS_PER_DRAIN
        while not self._stopping.wait(interval):
            with self._lock:
                self._deliver(self._merge.release())
