"""The label-set key and the allocation rule that the collector and the relay share."""

from __future__ import annotations

import hashlib

import pytest

from flowscope.common.errors import InputError
from flowscope.common.identity import IdentityNumbers, is_cluster_identity, label_key

APP_A = "k8s:app=a"
NS_SHOP = "k8s:io.kubernetes.pod.namespace=shop"


@pytest.mark.parametrize(("labels", "key"), [
    ((APP_A, NS_SHOP), f"{APP_A},{NS_SHOP}"),
    ((NS_SHOP, APP_A), f"{APP_A},{NS_SHOP}"),
    ((NS_SHOP, APP_A, NS_SHOP), f"{APP_A},{NS_SHOP}"),
    ((APP_A,), APP_A),
    ((), ""),
    (("reserved:host", "k8s:app=b"), "k8s:app=b,reserved:host"),
])
def test_label_key_is_sorted_deduplicated_and_comma_joined(
    labels: tuple[str, ...], key: str
) -> None:
    assert label_key(labels) == key
    assert label_key(iter(labels)) == key


@pytest.mark.parametrize("bad", ["", "k8s:app=a,b"])
def test_labels_that_would_make_keys_ambiguous_are_refused(bad: str) -> None:
    with pytest.raises(InputError, match=rf"label {bad!r}: expected non-empty text without"):
        label_key((APP_A, bad))


@pytest.mark.parametrize(("number", "inside"), [
    (0, False), (5, False), (255, False), (256, True), (65535, True), (65536, False),
])
def test_cluster_identity_range(number: int, inside: bool) -> None:
    assert is_cluster_identity(number) is inside


def _hashed(key: str) -> int:
    return 256 + int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % 65280


def test_a_new_label_set_gets_its_hashed_number_or_the_next_free_one() -> None:
    key = f"{APP_A},{NS_SHOP}"
    numbers = IdentityNumbers({}, "test")
    assert numbers.allocate(key) == _hashed(key)
    assert numbers.allocate(key) == _hashed(key)
    taken = IdentityNumbers({"k8s:app=other": _hashed(key)}, "test")
    assert taken.allocate(key) == _hashed(key) + 1
    assert taken.key_of(_hashed(key) + 1) == key
    assert taken.as_dict() == {"k8s:app=other": _hashed(key), key: _hashed(key) + 1}


def test_forget_frees_the_number() -> None:
    numbers = IdentityNumbers({}, "test")
    number = numbers.allocate(APP_A)
    numbers.forget(APP_A)
    assert (numbers.get(APP_A), numbers.key_of(number), len(numbers)) == (None, None, 0)


def test_numbers_run_out_with_a_clear_error() -> None:
    full = IdentityNumbers({f"k8s:app=x{n}": n for n in range(256, 65536)}, "test")
    with pytest.raises(InputError, match="no identity left for labels 'k8s:app=new'"):
        full.allocate("k8s:app=new")


@pytest.mark.parametrize(("known", "message"), [
    ({APP_A: 300, NS_SHOP: 300}, "where: two label sets share one identity"),
    ({APP_A: 255}, "where: identity 255 of 'k8s:app=a' is outside 256-65535"),
])
def test_inconsistent_known_numbers_are_refused(known: dict[str, int], message: str) -> None:
    with pytest.raises(InputError, match=message):
        IdentityNumbers(known, "where")
