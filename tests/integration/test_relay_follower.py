"""The relay's follower against a node that streams batches on loopback: each batch
reaches the relay with its wire as it came, and a malformed batch is a NODE_ERROR
that names it, never a batch handed on."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from flowscope.proto.relay import relay_pb2
from flowscope.proto.stream import stream_pb2
from flowscope.relay.follow import FollowConfig, Follower, NodeBatch, NodeState
from flowscope.relay.peers import Peer

GOOD = stream_pb2.FlowBatch(node_name="n1", first_sequence=1, next_sequence=3)
GOOD.flows.add(node_name="n1", node_sequence=1)
GOOD.flows.add(node_name="n1", node_sequence=2)
# Field 5 (flows) announcing 100 bytes where 3 follow.
MALFORMED = GOOD.SerializeToString() + b"\x2a\x64abc"


@pytest.fixture()
def node() -> Iterator[str]:
    def follow(request: stream_pb2.FollowRequest, context: grpc.ServicerContext) -> Iterator[bytes]:
        yield GOOD.SerializeToString()
        yield MALFORMED
        while context.is_active():
            time.sleep(0.05)

    handler = grpc.method_handlers_generic_handler(
        stream_pb2.DESCRIPTOR.services_by_name["FlowStream"].full_name,
        {
            "Follow": grpc.unary_stream_rpc_method_handler(
                follow, request_deserializer=stream_pb2.FollowRequest.FromString
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


def test_batches_keep_their_wire_and_a_malformed_one_is_a_node_error(node: str) -> None:
    batches: list[NodeBatch] = []
    states: list[tuple[NodeState, str]] = []
    errored = threading.Event()

    def on_state(_: Follower, state: NodeState, message: str) -> None:
        states.append((state, message))
        if state == relay_pb2.NODE_ERROR:
            errored.set()

    follower = Follower(
        Peer(node, "n1"),
        FollowConfig(backoff_min=30.0),
        cursor_for=lambda _: 0,
        on_connected=lambda _: None,
        on_batch=batches.append,
        on_state=on_state,
    )
    follower.start()
    try:
        assert errored.wait(10)
    finally:
        follower.stop()
    wire = GOOD.SerializeToString()
    assert [(b.raw, b.batch) for b in batches] == [
        (wire, stream_pb2.EncodedFlowBatch.FromString(wire))
    ]
    assert states[0][0] == relay_pb2.NODE_CONNECTED
    assert states[-1][0] == relay_pb2.NODE_ERROR
    assert states[-1][1].startswith(f"{node} sent a malformed batch: ")
