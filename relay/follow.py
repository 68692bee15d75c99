"""One follower per node: the node's batched Follow stream, from the cursor, for as long as
the relay runs.

A follower connects to its peer, opens flowscope.stream.FlowStream/Follow at the node's
cursor (the store's on the first connection, then the last batch's next_sequence) and hands
every batch to the relay. When the node cannot be reached or its stream fails, the follower
reports the node's new state (NODE_UNAVAILABLE, or NODE_ERROR with the reason) and tries
again after a delay that doubles from `backoff_min` up to `backoff_max`; once it is
connected again it reports NODE_CONNECTED and resumes at its cursor, so the relay sees each
flow once. A peer whose name is not known yet is first followed from its oldest entry: the
first batch names the node, and the follower moves on to that node's stored cursor.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

import grpc
from google.protobuf.message import DecodeError

from flowscope.common.tls import ClientTLS, dial
from flowscope.proto.relay import relay_pb2
from flowscope.proto.stream import stream_pb2
from flowscope.relay.peers import Cancellable, Peer

log = logging.getLogger(__name__)

NodeState: TypeAlias = relay_pb2.NodeState.ValueType
CONNECTED: Final = relay_pb2.NODE_CONNECTED
UNAVAILABLE: Final = relay_pb2.NODE_UNAVAILABLE
ERROR: Final = relay_pb2.NODE_ERROR


@dataclass(frozen=True)
class FollowConfig:
    """Batch bounds asked of the node, how patiently to reconnect (seconds), and the TLS
    to dial nodes with (None: plain text)."""

    max_batch_flows: int = 1000
    max_batch_latency: float = 0.1
    connect_timeout: float = 5.0
    backoff_min: float = 0.5
    backoff_max: float = 30.0
    tls: ClientTLS | None = None


@dataclass(frozen=True, slots=True)
class NodeBatch:
    """A batch as the node sent it: its wire, kept for the store, and that wire read
    with the flows left serialized."""

    raw: bytes
    batch: stream_pb2.EncodedFlowBatch


_FOLLOW: Final = f"/{stream_pb2.DESCRIPTOR.services_by_name['FlowStream'].full_name}/Follow"


class _Failure(Exception):
    def __init__(self, state: NodeState, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.message = message


class Follower:
    """Follows one peer on its own thread until stop().

    cursor_for(node) gives the stored cursor of a node; on_connected(follower) is called
    when the stream is open, with `node` and `cursor` set; on_batch(batch) for each batch,
    in order; on_state(follower, state, message) when the node's state changes.
    """

    def __init__(
        self,
        peer: Peer,
        config: FollowConfig,
        cursor_for: Callable[[str], int],
        on_connected: Callable[[Follower], None],
        on_batch: Callable[[NodeBatch], None],
        on_state: Callable[[Follower, NodeState, str], None],
    ) -> None:
        self.peer = peer
        self.node = peer.name
        self.cursor: int | None = None
        self.state: NodeState = relay_pb2.UNKNOWN_NODE_STATE
        self._config = config
        self._cursor_for = cursor_for
        self._on_connected = on_connected
        self._on_batch = on_batch
        self._on_state = on_state
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._call: Cancellable | None = None
        self._thread: threading.Thread | None = None

    @property
    def label(self) -> str:
        return self.node or self.peer.address

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"relay-follow-{self.label}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            if self._call is not None:
                self._call.cancel()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        backoff = self._config.backoff_min
        while not self._stopping.is_set():
            try:
                if self._session():
                    backoff = self._config.backoff_min
                    continue
            except _Failure as failure:
                if self._stopping.is_set():
                    return
                self._set_state(failure.state, failure.message)
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, self._config.backoff_max)

    def _session(self) -> bool:
        """One connection's stream; True when it ended in a way to retry at once."""
        config = self._config
        with dial(self.peer.address, config.tls) as channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=config.connect_timeout)
            except grpc.FutureTimeoutError:
                raise _Failure(
                    UNAVAILABLE,
                    f"cannot connect to {self.peer.address} within {config.connect_timeout:g}s",
                ) from None
            cursor = self._resume_cursor()
            request = stream_pb2.FollowRequest(
                cursor=cursor,
                max_batch_flows=config.max_batch_flows,
                max_batch_latency_ms=round(config.max_batch_latency * 1000),
            )
            # The batches' wire is kept as it came, for the store (NodeBatch).
            follow = channel.unary_stream(
                _FOLLOW,
                request_serializer=stream_pb2.FollowRequest.SerializeToString,
                response_deserializer=None,
            )
            call = follow(request)
            cancellable: Cancellable = call
            with self._lock:
                self._call = cancellable
                if self._stopping.is_set():
                    cancellable.cancel()
            if self.node:
                self._connected(cursor)
            try:
                for raw in call:
                    batch = self._read(raw)
                    if self.cursor is None:
                        self.node = batch.node_name
                        stored = self._cursor_for(self.node)
                        if stored > batch.first_sequence:
                            self.cursor = stored
                            return True  # reopen at the node's stored cursor
                        self._connected(batch.first_sequence)
                    self._on_batch(NodeBatch(raw, batch))
                    self.cursor = batch.next_sequence
            except grpc.RpcError as err:
                raise self._failure(err) from None
            finally:
                with self._lock:
                    self._call = None
        raise _Failure(UNAVAILABLE, f"{self.peer.address} ended the stream")

    def _read(self, raw: bytes) -> stream_pb2.EncodedFlowBatch:
        try:
            return stream_pb2.EncodedFlowBatch.FromString(raw)
        except DecodeError as error:
            raise _Failure(ERROR, f"{self.peer.address} sent a malformed batch: {error}") from None

    def _resume_cursor(self) -> int:
        if self.cursor is None and self.node:
            self.cursor = self._cursor_for(self.node)
        return self.cursor or 0

    def _connected(self, cursor: int) -> None:
        self.cursor = cursor
        self._on_connected(self)
        self._set_state(CONNECTED, f"following {self.peer.address} from sequence {cursor}")

    def _failure(self, err: grpc.RpcError) -> _Failure:
        code = err.code() if isinstance(err, grpc.Call) else None
        details = (err.details() if isinstance(err, grpc.Call) else None) or str(code)
        if code is grpc.StatusCode.OUT_OF_RANGE:
            # The cursor belongs to an earlier run of the node: follow its new ring.
            self.cursor = 0
            return _Failure(ERROR, f"{self.peer.address}: {details}")
        if code is grpc.StatusCode.UNAVAILABLE:
            return _Failure(UNAVAILABLE, f"{self.peer.address} is unavailable: {details}")
        return _Failure(ERROR, f"{self.peer.address} failed: {details}")

    def _set_state(self, state: NodeState, message: str) -> None:
        if state == self.state:
            return
        self.state = state
        log.info("node %s: %s", self.label, message)
        self._on_state(self, state, message)
