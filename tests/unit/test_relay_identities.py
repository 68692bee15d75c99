"""The collector's side of cluster-wide identities: what it does while the relay answers,
while it is away and when it comes back (a relay stand-in here; the real relay in
tests/integration/test_identities.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest

from flowscope.collector.identity import LOCAL, RELAY, read_state, write_state
from flowscope.collector.relay_identities import (
    IDENTITY_INIT,
    IdentityClient,
    RelayIdentities,
    RelayUnavailable,
)
from flowscope.common.auth import ClientAuth
from flowscope.common.errors import InputError
from flowscope.common.identity import label_key

WEB = ("k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop")
DB = ("k8s:app=db", "k8s:io.kubernetes.pod.namespace=shop")


class StandInRelay:
    """Answers with fixed numbers while `up`; records the label set keys asked for."""

    def __init__(self, numbers: dict[str, int], up: bool = True) -> None:
        self.numbers = numbers
        self.up = up
        self.asked: list[list[str]] = []
        self._lock = threading.Lock()

    def allocate(self, label_sets: Sequence[Iterable[str]], timeout: float) -> list[int]:
        keys = [label_key(labels) for labels in label_sets]
        with self._lock:
            self.asked.append(keys)
        if not self.up:
            raise RelayUnavailable("relay stand-in: UNAVAILABLE")
        return [self.numbers[key] for key in keys]


NUMBERS = {label_key(WEB): 1000, label_key(DB): 2000}


@pytest.fixture
def identities_of() -> Iterator[list[RelayIdentities]]:
    started: list[RelayIdentities] = []
    yield started
    for identities in started:
        identities.stop()


def start(relay: StandInRelay, state: Path | None, started: list[RelayIdentities]
          ) -> RelayIdentities:
    identities = RelayIdentities(relay, state, wait=0.05, backoff=(0.01, 0.05))
    identities.start()
    started.append(identities)
    return identities


def updates_within(identities: RelayIdentities, seconds: float = 5.0) -> dict[str, int]:
    deadline = time.monotonic() + seconds
    while not (updates := identities.take_updates()):
        assert time.monotonic() < deadline, "no identity update"
        time.sleep(0.01)
    return updates


def test_the_relay_numbers_are_used_and_kept(
    tmp_path: Path, identities_of: list[RelayIdentities]
) -> None:
    state = tmp_path / "ids.json"
    relay = StandInRelay(NUMBERS)
    identities = start(relay, state, identities_of)
    assert identities.identities_for([WEB, DB, WEB]) == [1000, 2000, 1000]
    assert relay.asked == [[label_key(WEB), label_key(DB)]]
    assert identities.identities_for([DB]) == [2000]
    assert len(relay.asked) == 1
    assert identities.take_updates() == {}
    assert json.loads(state.read_text()) == {"allocator": "relay", "identities": NUMBERS}


def test_new_label_sets_get_init_until_the_relay_answers(
    tmp_path: Path, identities_of: list[RelayIdentities]
) -> None:
    state = tmp_path / "ids.json"
    relay = StandInRelay(NUMBERS, up=False)
    identities = start(relay, state, identities_of)
    assert identities.identities_for([WEB]) == [IDENTITY_INIT] == [5]
    assert not identities.reachable
    asked = len(relay.asked)
    # While the relay is away, a new label set does not wait for it.
    assert identities.identities_for([DB]) == [IDENTITY_INIT]
    assert all(keys != [label_key(DB)] for keys in relay.asked[asked:])
    relay.up = True
    assert updates_within(identities) == NUMBERS
    assert identities.reachable
    assert identities.identities_for([WEB, DB]) == [1000, 2000]
    assert read_state(state) == (RELAY, NUMBERS)


def test_cached_relay_numbers_serve_while_the_relay_is_away_and_are_confirmed(
    tmp_path: Path, identities_of: list[RelayIdentities]
) -> None:
    state = tmp_path / "ids.json"
    write_state(state, RELAY, {label_key(WEB): 1000, label_key(DB): 2999})
    relay = StandInRelay(NUMBERS, up=False)
    identities = start(relay, state, identities_of)
    assert identities.identities_for([WEB, DB]) == [1000, 2999]
    relay.up = True
    # The relay says otherwise for DB: its number wins.
    assert updates_within(identities) == {label_key(DB): 2000}
    assert sorted(relay.asked[-1]) == sorted(NUMBERS)
    assert read_state(state) == (RELAY, NUMBERS)


def test_a_local_allocators_numbers_are_not_used(
    tmp_path: Path, identities_of: list[RelayIdentities]
) -> None:
    state = tmp_path / "ids.json"
    write_state(state, LOCAL, {label_key(WEB): 1234})
    identities = start(StandInRelay(NUMBERS, up=False), state, identities_of)
    assert identities.identities_for([WEB]) == [IDENTITY_INIT]


def test_a_token_for_another_host_without_tls_is_refused_at_once() -> None:
    with pytest.raises(InputError, match=r"refusing to send credentials to relay\.lab:4245"):
        IdentityClient("relay.lab:4245", "node-1", auth=ClientAuth.bearer("secret"))
    IdentityClient("127.0.0.1:4245", "node-1", auth=ClientAuth.bearer("secret"))
