"""The nodes a relay follows: a static list, collectors that announce themselves, and
optionally a peer.Peer/Notify service.

    peers = PeerSet(on_added=start_following, on_removed=stop_following)
    for peer in parse_peers("node-1=10.0.0.1:4244,10.0.0.2:4244"): peers.add(peer)
    add_announce_service(server, peers)              # collectors announce themselves
    NotifyFollower("localhost:4244", peers).start()  # peers from a peer.Peer service

A peer is an address, and the node's name when it is known (announcements and Notify
give it; a static entry may: "name=host:port"); a follower learns a nameless peer's name
from its first batch. A collector started with `--relay HOST:PORT` runs an `Announcer`,
which repeats its announcement (a peer.ChangeNotification, PEER_ADDED) so a restarted
relay learns it again, and withdraws it (PEER_DELETED) when it stops. The announcement
is a flowscope method beside the Observer API: `/flowscope.relay.Peers/Announce`; to a
relay that serves TLS or checks tokens, the Announcer dials with ClientTLS and a token.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

import grpc
from google.protobuf import empty_pb2

from flowscope.common.auth import ClientAuth, authorized_channel
from flowscope.common.errors import InputError
from flowscope.common.tls import ClientTLS, dial
from flowscope.proto.peer import peer_pb2, peer_pb2_grpc

log = logging.getLogger(__name__)

ANNOUNCE_SERVICE: Final = "flowscope.relay.Peers"
ANNOUNCE_METHOD: Final = f"/{ANNOUNCE_SERVICE}/Announce"


class Cancellable(Protocol):
    """A running call that another thread can cancel."""

    def cancel(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Peer:
    """A node's gRPC address (host:port), and its name when known ("" otherwise)."""

    address: str
    name: str = ""


def check_address(address: str, where: str) -> str:
    """address when it is HOST:PORT with a port from 1 to 65535; InputError naming `where`."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"invalid {where} {address!r}: expected HOST:PORT")
    return address


def parse_peers(text: str, flag: str = "--peers") -> list[Peer]:
    """Peers from "host:port,name=host:port,..."; InputError naming the flag and entry."""
    peers = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        name, _, address = entry.rpartition("=")
        peers.append(Peer(check_address(address, f"{flag} entry"), name))
    return peers


class PeerSet:
    """The peers a relay follows, by address; calls back when one comes or goes."""

    def __init__(
        self, on_added: Callable[[Peer], None], on_removed: Callable[[Peer], None]
    ) -> None:
        self._on_added = on_added
        self._on_removed = on_removed
        self._peers: dict[str, Peer] = {}
        self._lock = threading.Lock()

    def add(self, peer: Peer) -> None:
        """Adds the peer; one already known at its address is replaced if its name differs."""
        with self._lock:
            known = self._peers.get(peer.address)
            if known == peer or (known is not None and not peer.name):
                return
            self._peers[peer.address] = peer
        if known is not None:
            self._on_removed(known)
        self._on_added(peer)

    def remove(self, address: str) -> None:
        with self._lock:
            known = self._peers.pop(address, None)
        if known is not None:
            self._on_removed(known)

    def apply(self, change: peer_pb2.ChangeNotification) -> None:
        """A peer.ChangeNotification (from Notify, or an announcement) applied to the set."""
        address = check_address(change.address, f"peer address of {change.name!r}")
        if change.type == peer_pb2.PEER_DELETED:
            self.remove(address)
        else:
            self.add(Peer(address, change.name))


def add_announce_service(server: grpc.Server, peers: PeerSet) -> None:
    """Serves Announce: a collector's ChangeNotification about itself, applied to `peers`."""

    def announce(
        change: peer_pb2.ChangeNotification, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        try:
            peers.apply(change)
        except InputError as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        return empty_pb2.Empty()

    handler = grpc.unary_unary_rpc_method_handler(
        announce,
        request_deserializer=peer_pb2.ChangeNotification.FromString,
        response_serializer=empty_pb2.Empty.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(ANNOUNCE_SERVICE, {"Announce": handler}),)
    )


class Announcer:
    """A collector's announcement of itself to a relay, repeated until stop() withdraws it."""

    def __init__(
        self,
        relay_address: str,
        node_name: str,
        address: str,
        interval: float = 10.0,
        tls: ClientTLS | None = None,
        auth: ClientAuth | None = None,
    ) -> None:
        self._relay = check_address(relay_address, "--relay address")
        # One channel for the announcer's life; InputError now for credentials it would
        # send in plain text to another host.
        self._channel = authorized_channel(
            dial(self._relay, tls), auth, server=self._relay, tls=tls is not None
        )
        self._announce = self._channel.unary_unary(
            ANNOUNCE_METHOD,
            request_serializer=peer_pb2.ChangeNotification.SerializeToString,
            response_deserializer=empty_pb2.Empty.FromString,
        )
        self._change = peer_pb2.ChangeNotification(
            name=node_name, address=check_address(address, "announced address")
        )
        self._interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="relay-announce", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._send(peer_pb2.PEER_DELETED)
        self._channel.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._send(peer_pb2.PEER_ADDED)
            self._stopping.wait(self._interval)

    def _send(self, change_type: peer_pb2.ChangeNotificationType.ValueType) -> None:
        change = peer_pb2.ChangeNotification()
        change.CopyFrom(self._change)
        change.type = change_type
        try:
            self._announce(change, timeout=self._interval)
        except grpc.RpcError as err:
            log.warning("cannot announce this node to the relay at %s: %s", self._relay, err)


class NotifyFollower:
    """Follows a peer.Peer/Notify stream into a PeerSet, reconnecting after `retry` seconds.

    The stream's first notifications list every current peer, then come the changes; a
    reconnect lists them again, which changes nothing for the peers already known.
    """

    def __init__(
        self, address: str, peers: PeerSet, retry: float = 30.0, tls: ClientTLS | None = None
    ) -> None:
        self._address = check_address(address, "--peer-service address")
        self._tls = tls
        self._peers = peers
        self._retry = retry
        self._stopping = threading.Event()
        self._call: Cancellable | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="relay-peer-notify", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._call is not None:
            self._call.cancel()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            with dial(self._address, self._tls) as channel:
                call = peer_pb2_grpc.PeerStub(channel).Notify(peer_pb2.NotifyRequest())
                self._call = call
                try:
                    for change in call:
                        try:
                            self._peers.apply(change)
                        except InputError as err:
                            log.warning("peer service %s: %s", self._address, err)
                except grpc.RpcError as err:
                    if not self._stopping.is_set():
                        log.warning("peer service %s failed: %s", self._address, err)
            self._stopping.wait(self._retry)
