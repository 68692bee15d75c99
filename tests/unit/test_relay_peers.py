"""The relay's peers: the --peers list, and the set that starts and stops followers."""

from __future__ import annotations

import pytest

from flowscope.common.errors import InputError
from flowscope.proto.peer import peer_pb2
from flowscope.relay.peers import Peer, PeerSet, parse_peers


def test_parse_peers_with_and_without_names() -> None:
    assert parse_peers("node-1=10.0.0.1:4244, [fd00::2]:4244,,") == [
        Peer("10.0.0.1:4244", "node-1"),
        Peer("[fd00::2]:4244", ""),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.1", "invalid --peers entry '10.0.0.1': expected HOST:PORT"),
        ("n=10.0.0.1:http", "invalid --peers entry '10.0.0.1:http': expected HOST:PORT"),
        (":4244", "invalid --peers entry ':4244': expected HOST:PORT"),
        ("a:70000", "invalid --peers entry 'a:70000': expected HOST:PORT"),
    ],
)
def test_bad_peers_are_named(text: str, message: str) -> None:
    with pytest.raises(InputError) as error:
        parse_peers(text)
    assert str(error.value) == message


def test_peer_set_calls_back_on_changes_only() -> None:
    events: list[tuple[str, Peer]] = []
    peers = PeerSet(lambda p: events.append(("added", p)), lambda p: events.append(("gone", p)))
    peers.add(Peer("h:1"))
    peers.add(Peer("h:1"))  # known
    peers.apply(peer_pb2.ChangeNotification(name="n1", address="h:1", type=peer_pb2.PEER_ADDED))
    peers.add(Peer("h:1"))  # a nameless entry does not replace a named one
    peers.apply(peer_pb2.ChangeNotification(name="n1", address="h:1", type=peer_pb2.PEER_DELETED))
    peers.remove("h:1")  # already gone
    assert events == [
        ("added", Peer("h:1")),
        ("gone", Peer("h:1")),
        ("added", Peer("h:1", "n1")),
        ("gone", Peer("h:1", "n1")),
    ]
