"""The batched flow stream (flowscope.stream.FlowStream/Follow): how a relay follows this node.

A relay asks for the ring from a cursor (the next sequence number it wants) and receives
FlowBatch messages, many flows each, then new flows as they come. Batches are contiguous,
so the relay resumes after a reconnect at the last batch's next_sequence with no gap and no
duplicate; what the ring overwrote before it was sent is counted in the batch's `lost`.

The servicer yields EncodedFlowBatch messages, whose flows are serialized one by one: that
costs about half of copying each Flow into a FlowBatch, and the wire is FlowBatch's, which
clients parse in one call (`stream_pb2_grpc.FlowStreamStub`). `add_to_server` registers it
with that serializer.

A batch closes when it holds `max_batch_flows` flows or `max_batch_bytes` of them, or when
its first entry has waited `max_batch_latency`; a node with nothing new sends nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc

from flowscope.collector.ring import FlowRing
from flowscope.collector.ringquery import CANCEL_POLL
from flowscope.proto.flow import flow_pb2
from flowscope.proto.stream import stream_pb2

SERVICE = "flowscope.stream.FlowStream"


@dataclass(frozen=True)
class BatchConfig:
    """Batch bounds: the defaults, and the largest a client may ask for."""

    max_batch_flows: int = 1000
    max_batch_latency: float = 0.1
    limit_batch_flows: int = 4000
    # Under gRPC's default 4 MiB message limit, whatever the size of the flows.
    max_batch_bytes: int = 3 << 20


class FlowStreamServicer:
    """Serves Follow over a FlowRing."""

    def __init__(
        self, ring: FlowRing, node_name: str, config: BatchConfig, stopping: threading.Event
    ) -> None:
        self._ring = ring
        self._node_name = node_name
        self._config = config
        self._stopping = stopping

    def Follow(
        self, request: stream_pb2.FollowRequest, context: grpc.ServicerContext
    ) -> Iterator[stream_pb2.EncodedFlowBatch]:
        config = self._config
        max_flows = request.max_batch_flows or config.max_batch_flows
        if max_flows > config.limit_batch_flows:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"invalid max_batch_flows {max_flows}: at most {config.limit_batch_flows}",
            )
        latency = (
            request.max_batch_latency_ms / 1000
            if request.max_batch_latency_ms
            else config.max_batch_latency
        )
        cursor = request.cursor or self._ring.first_seq()
        next_seq = self._ring.next_seq()
        if cursor > next_seq:
            context.abort(
                grpc.StatusCode.OUT_OF_RANGE,
                f"cursor {cursor} is beyond this node's next sequence number {next_seq}: "
                "it belongs to another run of the node; follow from cursor 0",
            )

        def active() -> bool:
            return context.is_active() and not self._stopping.is_set()

        while active():
            batch = self._batch(cursor, max_flows, latency, active)
            if batch is not None:
                cursor = batch.next_sequence
                yield batch
        if self._stopping.is_set():
            context.abort(grpc.StatusCode.UNAVAILABLE, "the node's server is shutting down")

    def _batch(
        self, cursor: int, max_flows: int, latency: float, active: Callable[[], bool]
    ) -> stream_pb2.EncodedFlowBatch | None:
        """The next batch from `cursor`; None when nothing came in time to fill one."""
        ring = self._ring
        flows: list[bytes] = []
        lost_events: list[flow_pb2.LostEvent] = []
        lost = size = 0
        seq = cursor
        deadline: float | None = None
        while len(flows) < max_flows and size < self._config.max_batch_bytes:
            entries, skipped = ring.read(seq, max_flows - len(flows))
            lost += skipped
            seq += skipped
            for entry_seq, event in entries:
                if isinstance(event, flow_pb2.Flow):
                    data = event.SerializeToString()
                    flows.append(data)
                    size += len(data)
                elif isinstance(event, flow_pb2.LostEvent):
                    lost_events.append(event)
                seq = entry_seq + 1
            if seq == cursor:
                if not active():
                    return None
                ring.wait(seq, CANCEL_POLL)
                continue
            if deadline is None:
                deadline = time.monotonic() + latency
            if not entries:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not active():
                    break
                ring.wait(seq, min(remaining, CANCEL_POLL))
        return stream_pb2.EncodedFlowBatch(
            node_name=self._node_name,
            first_sequence=cursor,
            next_sequence=seq,
            lost=lost,
            flows=flows,
            lost_events=lost_events,
        )


def add_to_server(servicer: FlowStreamServicer, server: grpc.Server) -> None:
    """Registers Follow, sending the servicer's EncodedFlowBatch as FlowBatch's wire."""
    handler = grpc.unary_stream_rpc_method_handler(
        servicer.Follow,
        request_deserializer=stream_pb2.FollowRequest.FromString,
        response_serializer=stream_pb2.EncodedFlowBatch.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Follow": handler}),)
    )
