"""The relay: follows every node once, stores what it receives, and serves it.

    relay = Relay(Config(peers=parse_peers("node-1=10.0.0.1:4244")))  # inert
    relay.start()     # opens the store, binds the port, follows the peers
    ...
    relay.stop()

For each peer (static, announced, or from a peer service) one Follower streams the node's
batches from the cursor the store holds; each batch is written to the store and pushed to
the live hub, which merges the nodes by time for the clients that follow. The server answers
history from the store and hands over to the hub at the cut where history ends. Node state
changes go to the clients in their streams.

`relay.metrics` holds flowscope's own metrics of the relay, read when scraped: peers
connected, flows received, the store writer's flows by outcome, flows lost at each stage
(unsent from a node's ring, refused by the store, the store's queue and spool, the live
clients' queues), rows and seconds per store insert, store inserts that failed, the spool's
size, the live clients' queue depths, and calls refused by the server's limits;
`flowscope relay` serves them on --metrics-address (localhost:9966).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from google.protobuf.message import DecodeError

import flowscope
from flowscope.common.errors import StorageError
from flowscope.common.metrics import Metrics, Samples
from flowscope.proto.flow import flow_pb2
from flowscope.proto.relay import relay_pb2
from flowscope.relay.fanout import HubConfig, LiveHub
from flowscope.relay.follow import CONNECTED, FollowConfig, Follower, NodeBatch, NodeState
from flowscope.relay.peers import NotifyFollower, Peer, PeerSet
from flowscope.relay.server import NodeInfo, RelayServer, ServerConfig
from flowscope.relay.storage import FlowStore, StoreBackend
from flowscope.relay.store import Store, StoreConfig
from flowscope.relay.store.received import Batch
from flowscope.relay.store.writer import WriterCounters

log = logging.getLogger(__name__)

RATE_WINDOW: Final = 60


@dataclass(frozen=True)
class Config:
    """node_name: the relay's name in the node status events it sends; peers: the static
    peers; peer_service: a peer.Peer/Notify address to learn peers from ("" for none);
    store: where and how flows are stored."""

    node_name: str = field(default_factory=socket.gethostname)
    peers: tuple[Peer, ...] = ()
    peer_service: str = ""
    store: StoreConfig = field(default_factory=StoreConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    follow: FollowConfig = field(default_factory=FollowConfig)
    hub: HubConfig = field(default_factory=HubConfig)
    version: str = flowscope.__version__


class _FlowCounter:
    """Flows received, in total and per second over the last minute."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.total = 0
        self._seconds: deque[list[int]] = deque()

    def add(self, count: int) -> None:
        second = int(self._clock())
        with self._lock:
            self.total += count
            if self._seconds and self._seconds[-1][0] == second:
                self._seconds[-1][1] += count
            else:
                self._seconds.append([second, count])
            self._expire(second)

    def rate(self, uptime: float) -> float:
        """Flows per second over the last minute (or the uptime, when shorter)."""
        second = int(self._clock())
        with self._lock:
            self._expire(second)
            recent = sum(count for _, count in self._seconds)
        window = min(float(RATE_WINDOW), uptime)
        return recent / window if window > 0 else 0.0

    def _expire(self, second: int) -> None:
        while self._seconds and self._seconds[0][0] <= second - RATE_WINDOW:
            self._seconds.popleft()


class Relay:
    """The relay component; inert until start()."""

    def __init__(self, config: Config, store: FlowStore | None = None) -> None:
        """`store` replaces the one config.store names (the caller keeps closing it)."""
        self.config = config
        self.name = config.node_name
        self.version = config.version
        self.started_ns = 0
        self._given_store = store
        self._store: FlowStore | None = None
        self._hub = LiveHub(config.hub, config.node_name)
        self._peers = PeerSet(self._peer_added, self._peer_removed)
        self._followers: dict[str, Follower] = {}
        self._lock = threading.Lock()
        self._seen = _FlowCounter()
        self.unstored_flows = 0
        self._notify: NotifyFollower | None = None
        self._server: RelayServer | None = None
        self.peer_tls = config.follow.tls
        self._node_unsent = 0
        self.metrics = Metrics()
        self.metrics.gauge("peers_connected").set_function(self._connected_peers)
        self.metrics.gauge("queue_depth").labels(queue="live_clients").set_function(
            lambda: self._hub.queue_depths()[0]
        )
        self.metrics.gauge("live_client_queue_max").set_function(
            lambda: self._hub.queue_depths()[1]
        )
        self._batch_rows = self.metrics.histogram("store_batch_rows").labels(table="flows")
        self._insert_seconds = self.metrics.histogram("store_insert_seconds").labels(table="flows")
        self._store_counters: Store | None = None
        self.metrics.read_at_scrape(self._store_samples)

    @property
    def port(self) -> int:
        """The port the server listens on (useful with port 0)."""
        return self._server.port if self._server is not None else 0

    @property
    def peers(self) -> PeerSet:
        return self._peers

    def start(self) -> None:
        """Opens the store, serves, and follows the peers; FlowscopeError if it cannot."""
        config = self.config
        self.started_ns = time.time_ns()
        store = self._given_store
        if store is None:
            opened = Store(config.store, on_insert=self._inserted)
            opened.start()
            store = StoreBackend(opened)
            self._store_counters = opened
        self._store = store
        self._hub.start()
        self._server = RelayServer(config.server, self, store, self._hub, self._peers, self.metrics)
        self._server.start()
        for peer in config.peers:
            self._peers.add(peer)
        if config.peer_service:
            self._notify = NotifyFollower(config.peer_service, self._peers, tls=config.follow.tls)
            self._notify.start()

    def stop(self) -> None:
        """Stops serving and following; closes the store it opened."""
        if self._notify is not None:
            self._notify.stop()
            self._notify = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        with self._lock:
            followers = list(self._followers.values())
            self._followers.clear()
        for follower in followers:
            follower.stop()
        self._hub.stop()
        if self._store is not None:
            self._store.flush()
            if self._given_store is None:
                self._store.close()
            self._store = None

    # What the server asks (RelayView).
    def nodes(self) -> list[NodeInfo]:
        with self._lock:
            followers = list(self._followers.values())
        return sorted(
            (
                NodeInfo(
                    name=follower.label,
                    address=follower.peer.address,
                    state=follower.state
                    if follower.state != relay_pb2.UNKNOWN_NODE_STATE
                    else relay_pb2.NODE_UNAVAILABLE,
                )
                for follower in followers
            ),
            key=lambda node: (node.name, node.address),
        )

    def _connected_peers(self) -> int:
        with self._lock:
            return sum(f.state == relay_pb2.NODE_CONNECTED for f in self._followers.values())

    def _store_samples(self) -> Samples:
        """The counters of the store the relay opened (zero while it is closed or given)."""
        store = self._store_counters if self._store is not None else None
        counters = store.counters() if store is not None else None
        writer = counters.writer if counters is not None else WriterCounters()
        return {
            "flows_received_total": {(): self._seen.total},
            "store_flows_total": {
                ("stored",): writer.stored,
                ("duplicate",): writer.duplicates,
                ("spooled",): writer.spooled,
                ("replayed",): writer.replayed,
            },
            "lost_events_total": {
                ("node_ring_unsent",): self._node_unsent,
                ("store_refused",): self.unstored_flows,
                ("store_queue",): writer.queue_overflow,
                ("store_spool",): writer.spool_overflow,
                ("live_client_queue",): self._hub.lost,
                ("store_malformed",): writer.malformed,
                ("live_malformed",): self._hub.malformed,
            },
            "store_insert_errors_total": {("flows",): writer.insert_failures},
            "spool_bytes": {(): counters.spool_bytes if counters is not None else 0},
        }

    def _inserted(self, rows: int, seconds: float) -> None:
        self._batch_rows.observe(rows)
        self._insert_seconds.observe(seconds)

    def live_clients(self) -> int:
        """Clients following the live stream now."""
        return self._hub.subscribers()

    def seen_flows(self) -> int:
        return self._seen.total

    def flows_rate(self) -> float:
        return self._seen.rate((time.time_ns() - self.started_ns) / 1e9)

    # The peers' and followers' callbacks.
    def _peer_added(self, peer: Peer) -> None:
        follower = Follower(
            peer,
            self.config.follow,
            cursor_for=self._stored_cursor,
            on_connected=self._connected,
            on_batch=self._received,
            on_state=self._state_changed,
        )
        with self._lock:
            self._followers[peer.address] = follower
        follower.start()

    def _peer_removed(self, peer: Peer) -> None:
        with self._lock:
            follower = self._followers.pop(peer.address, None)
        if follower is None:
            return
        follower.stop()
        self._hub.unfollow(follower.label)
        self._hub.publish(
            relay_pb2.NodeStatusEvent(
                state_change=relay_pb2.NODE_GONE,
                node_names=[follower.label],
                message=f"{peer.address} left the relay's peers",
            )
        )

    def _stored_cursor(self, node: str) -> int:
        """Where to resume a node: after the last flow the store took from it."""
        store = self._store
        assert store is not None
        return store.cursors().get(node, 0)

    def _connected(self, follower: Follower) -> None:
        self._hub.follow(follower.label, follower.cursor or 0)

    def _received(self, received: NodeBatch) -> None:
        store = self._store
        assert store is not None
        batch = received.batch
        flows = batch.flows
        if flows:
            try:
                store.write_batch(_store_batch(received))
            except StorageError as err:
                with self._lock:
                    self.unstored_flows += len(flows)
                log.error("node %s: %s", batch.node_name, err)
        with self._lock:
            self._node_unsent += batch.lost
        self._seen.add(len(flows))
        self._hub.push(batch)

    def _state_changed(self, follower: Follower, state: NodeState, message: str) -> None:
        if state != CONNECTED:
            self._hub.unfollow(follower.label)
        self._hub.publish(
            relay_pb2.NodeStatusEvent(
                state_change=state, node_names=[follower.label], message=message
            )
        )


def _store_batch(received: NodeBatch) -> Batch:
    """A node's batch for the store, as it came: one node's flows in sequence order,
    known by its first and last flow (when these do not read as one node's, the
    writer reads every flow)."""
    flows = received.batch.flows
    try:
        first, last = flow_pb2.Flow.FromString(flows[0]), flow_pb2.Flow.FromString(flows[-1])
    except DecodeError:
        return Batch(received.raw, len(flows))
    if first.node_name != last.node_name:
        return Batch(received.raw, len(flows))
    return Batch(received.raw, len(flows), first.node_name, first.node_sequence, last.node_sequence)
