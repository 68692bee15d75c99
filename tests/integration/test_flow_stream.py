"""The batched stream a relay follows: batches, resuming at a cursor, losses, bad requests."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest
from nodetools import NODE, StartServer, wait_until

from flowscope.collector.ring import FlowRing
from flowscope.proto.flow import flow_pb2
from flowscope.proto.stream import stream_pb2, stream_pb2_grpc


def flow(i: int) -> flow_pb2.Flow:
    return flow_pb2.Flow(uuid=f"f{i}", Summary="TCP Flags: SYN", node_name=NODE)


def filled_ring(count: int, capacity: int = 64) -> FlowRing:
    ring = FlowRing(capacity, first_seq=1000)
    for i in range(count):
        ring.append(flow(i))
    return ring


def follow(channel: grpc.Channel, **request: int) -> Iterator[stream_pb2.FlowBatch]:
    stub = stream_pb2_grpc.FlowStreamStub(channel)
    return stub.Follow(stream_pb2.FollowRequest(**request), timeout=10)  # type: ignore[arg-type]


def shape(batch: stream_pb2.FlowBatch) -> tuple[int, int, int, list[int]]:
    return (
        batch.first_sequence,
        batch.next_sequence,
        batch.lost,
        [f.node_sequence for f in batch.flows],
    )


def test_batches_cover_the_ring_then_follow_new_flows(start_server: StartServer) -> None:
    ring = filled_ring(25)
    _, channel = start_server(ring)
    call = follow(channel, max_batch_flows=10)
    assert [shape(next(call)) for _ in range(3)] == [
        (1000, 1010, 0, list(range(1000, 1010))),
        (1010, 1020, 0, list(range(1020 - 10, 1020))),
        (1020, 1025, 0, list(range(1020, 1025))),
    ]
    ring.append(flow(25))
    ring.append(flow_pb2.AgentEvent(type=flow_pb2.ENDPOINT_CREATED))
    lost = flow_pb2.LostEvent(source=flow_pb2.PERF_EVENT_RING_BUFFER, num_events_lost=3)
    ring.append(lost)
    ring.append(flow(26))
    batch = next(call)
    assert shape(batch) == (1025, 1029, 0, [1025, 1028])
    assert list(batch.lost_events) == [lost]
    assert batch.node_name == NODE
    assert [f.uuid for f in batch.flows] == ["f25", "f26"]
    call.cancel()  # type: ignore[attr-defined]


def test_resuming_at_the_cursor_leaves_no_gap_and_no_duplicate(start_server: StartServer) -> None:
    ring = filled_ring(30, capacity=256)
    server, channel = start_server(ring)
    received: list[int] = []
    writer_done = threading.Event()

    def write() -> None:
        for i in range(30, 200):
            ring.append(flow(i))
        writer_done.set()

    cursor = 0
    threading.Thread(target=write, daemon=True).start()
    while len(received) < 200:
        call = follow(channel, cursor=cursor, max_batch_flows=7, max_batch_latency_ms=5)
        for _, batch in zip(range(3), call, strict=False):  # three batches, then reconnect
            assert batch.lost == 0
            assert cursor in (0, batch.first_sequence)
            received += [f.node_sequence for f in batch.flows]
            cursor = batch.next_sequence
            if len(received) >= 200:
                break
        call.cancel()  # type: ignore[attr-defined]
    assert writer_done.is_set()
    assert received == list(range(1000, 1200))
    assert wait_until(lambda: server.active_streams() == 0)


def test_a_cursor_older_than_the_ring_is_counted_as_lost(start_server: StartServer) -> None:
    ring = filled_ring(20, capacity=8)
    _, channel = start_server(ring)
    call = follow(channel, cursor=1005)
    assert shape(next(call)) == (1005, 1020, 7, list(range(1012, 1020)))
    call.cancel()  # type: ignore[attr-defined]


def test_cursor_zero_starts_at_the_oldest_entry_held(start_server: StartServer) -> None:
    ring = filled_ring(20, capacity=8)
    _, channel = start_server(ring)
    call = follow(channel)
    assert shape(next(call)) == (1012, 1020, 0, list(range(1012, 1020)))
    call.cancel()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("request_fields", "code", "message"),
    [
        (
            {"cursor": 1021},
            grpc.StatusCode.OUT_OF_RANGE,
            "cursor 1021 is beyond this node's next sequence number 1020: it belongs to another "
            "run of the node; follow from cursor 0",
        ),
        (
            {"max_batch_flows": 5000},
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid max_batch_flows 5000: at most 4000",
        ),
    ],
)
def test_bad_requests(
    start_server: StartServer,
    request_fields: dict[str, int],
    code: grpc.StatusCode,
    message: str,
) -> None:
    _, channel = start_server(filled_ring(20))
    with pytest.raises(grpc.RpcError) as caught:
        next(follow(channel, **request_fields))
    assert caught.value.code() is code  # type: ignore[attr-defined]
    assert caught.value.details() == message  # type: ignore[attr-defined]


def test_the_encoded_batch_is_a_flow_batch_on_the_wire() -> None:
    flows = [flow(1), flow(2)]
    lost = flow_pb2.LostEvent(num_events_lost=4)
    encoded = stream_pb2.EncodedFlowBatch(
        node_name=NODE,
        first_sequence=5,
        next_sequence=9,
        lost=1,
        flows=[f.SerializeToString() for f in flows],
        lost_events=[lost],
    )
    assert stream_pb2.FlowBatch.FromString(encoded.SerializeToString()) == stream_pb2.FlowBatch(
        node_name=NODE, first_sequence=5, next_sequence=9, lost=1, flows=flows, lost_events=[lost]
    )
    # the two messages keep the same fields, by name and number
    assert [(f.name, f.number) for f in stream_pb2.EncodedFlowBatch.DESCRIPTOR.fields] == [
        (f.name, f.number) for f in stream_pb2.FlowBatch.DESCRIPTOR.fields
    ]
