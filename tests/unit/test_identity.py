"""The collector's local identity allocation: stable per label set, distinct across label
sets, persisted in its state file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowscope.collector.identity import RELAY, IdentityAllocator, read_state, write_state
from flowscope.common.errors import InputError
from flowscope.common.identity import label_key

APP_A = ("k8s:app=a", "k8s:io.kubernetes.pod.namespace=shop")
APP_B = ("k8s:app=b", "k8s:io.kubernetes.pod.namespace=shop")


def test_same_label_set_same_number_in_any_order_and_on_any_node() -> None:
    node1, node2 = IdentityAllocator(None), IdentityAllocator(None)
    first = node1.identity_for(APP_A)
    assert first == node1.identity_for(reversed(APP_A))
    assert first == node2.identity_for(APP_A)
    assert 256 <= first <= 0xFFFF


def test_label_sets_never_share_a_number() -> None:
    allocator = IdentityAllocator(None)
    numbers = {allocator.identity_for((f"k8s:app=app{i}",)) for i in range(3000)}
    assert len(numbers) == 3000
    assert min(numbers) >= 256


def test_a_collision_moves_the_newcomer_to_the_next_free_number(tmp_path: Path) -> None:
    state = tmp_path / "ids.json"
    taken = IdentityAllocator(None).identity_for(APP_B)
    state.write_text(json.dumps({"identities": {"k8s:app=other": taken}}))
    allocator = IdentityAllocator(state)
    assert allocator.identity_for(APP_B) == taken + 1
    assert allocator.labels_of(taken) == "k8s:app=other"


def test_numbers_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "sub" / "ids.json"
    number = IdentityAllocator(state).identity_for(APP_A)
    assert json.loads(state.read_text()) == {"identities": {label_key(APP_A): number}}
    assert IdentityAllocator(state).labels_of(number) == label_key(APP_A)


def test_a_state_file_of_relay_numbers_keeps_them(tmp_path: Path) -> None:
    state = tmp_path / "ids.json"
    write_state(state, RELAY, {label_key(APP_A): 4242})
    assert json.loads(state.read_text()) == {
        "allocator": "relay", "identities": {label_key(APP_A): 4242}}
    app_b = IdentityAllocator(None).identity_for(APP_B)
    assert IdentityAllocator(state).identities_for([APP_A, APP_B]) == [4242, app_b]
    # Allocated here from now on: the file is a local allocator's again.
    assert read_state(state) == ("local", {label_key(APP_A): 4242, label_key(APP_B): app_b})


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "cannot read identity state"),
    ('{"identities": {"k8s:app=a": 12}}', "identity 12 of 'k8s:app=a' is outside 256-65535"),
    ('{"identities": {"k8s:app=a": 300, "k8s:app=b": 300}}', "two label sets share"),
    ('{"allocator": "dns", "identities": {}}', 'expected {"allocator": "local" or "relay"'),
    ('{"identities": {"k8s:app=a": "300"}}', 'expected {"allocator"'),
])
def test_bad_state_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    state = tmp_path / "ids.json"
    state.write_text(content)
    with pytest.raises(InputError, match=message):
        IdentityAllocator(state)
