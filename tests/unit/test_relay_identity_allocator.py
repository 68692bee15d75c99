"""The relay's allocator over its table: numbers stored before they are given, none given
that the store did not take, and a table that contradicts itself refused."""

from __future__ import annotations

import pytest

from flowscope.common.errors import InputError, StorageError
from flowscope.common.identity import IdentityNumbers, label_key
from flowscope.relay.identities import ClusterIdentities

WEB = ("k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop")
DB = ("k8s:app=db", "k8s:io.kubernetes.pod.namespace=shop")


class Table:
    """The identities table in memory; `failing` makes appends fail as a store would."""

    def __init__(self, rows: list[tuple[str, int]] | None = None) -> None:
        self.rows = list(rows or [])
        self.appends: list[dict[str, int]] = []
        self.failing = False

    def load(self) -> list[tuple[str, int]]:
        return list(self.rows)

    def append(self, numbers: dict[str, int]) -> None:
        if self.failing:
            raise StorageError("identities: disk full")
        self.appends.append(dict(numbers))
        self.rows += numbers.items()


def hashed(labels: tuple[str, ...]) -> int:
    return IdentityNumbers({}, "test").allocate(label_key(labels))


def test_new_numbers_are_stored_in_one_append_and_known_ones_not_again() -> None:
    table = Table([(label_key(DB), 3000)])
    identities = ClusterIdentities(table)
    assert identities.load() == 1
    assert identities.allocate([WEB, DB, reversed(WEB)], "node-1") == [hashed(WEB), 3000,
                                                                       hashed(WEB)]
    assert table.appends == [{label_key(WEB): hashed(WEB)}]
    assert identities.allocate([DB, WEB], "node-2") == [3000, hashed(WEB)]
    assert len(table.appends) == 1


def test_a_number_the_store_did_not_take_is_not_given() -> None:
    table = Table()
    identities = ClusterIdentities(table)
    identities.load()
    table.failing = True
    with pytest.raises(StorageError, match="disk full"):
        identities.allocate([WEB])
    table.failing = False
    assert identities.allocate([WEB]) == [hashed(WEB)]
    assert table.rows == [(label_key(WEB), hashed(WEB))]


@pytest.mark.parametrize(("labels", "message"), [
    ((), "a label set without labels has no identity"),
    (("k8s:app=a,b",), "label 'k8s:app=a,b': expected non-empty text without commas"),
])
def test_malformed_label_sets_are_refused(labels: tuple[str, ...], message: str) -> None:
    identities = ClusterIdentities(Table())
    identities.load()
    with pytest.raises(InputError, match=message):
        identities.allocate([WEB, labels])


@pytest.mark.parametrize(("rows", "message"), [
    ([("k8s:app=a", 300), ("k8s:app=a", 301)], "two numbers for one label set"),
    ([("k8s:app=a", 300), ("k8s:app=b", 300)], "two label sets share one identity"),
])
def test_a_contradictory_table_is_refused(rows: list[tuple[str, int]], message: str) -> None:
    with pytest.raises(StorageError, match=message):
        ClusterIdentities(Table(rows)).load()


def test_allocation_before_load_is_refused() -> None:
    with pytest.raises(StorageError, match="not loaded"):
        ClusterIdentities(Table()).allocate([WEB])
