"""Security identities for label sets: the canonical key of a label set and the allocation
rule that the collector's local allocator and the relay's cluster-wide one share.

A label set's key is its labels sorted, de-duplicated and comma-joined. A new label set gets
a number from 256 to 65535 (reserved identities lie below 256, common.vocab) derived from a
hash of its key, so two allocators that see the same label sets in the same order choose the
same numbers; a number already taken moves the newcomer to the next free one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Final

from flowscope.common.errors import InputError
from flowscope.common.vocab import FIRST_CLUSTER_IDENTITY

LAST_CLUSTER_IDENTITY: Final = 0xFFFF
_SPAN: Final = LAST_CLUSTER_IDENTITY - FIRST_CLUSTER_IDENTITY + 1


def label_key(labels: Iterable[str]) -> str:
    """The canonical text of a label set: sorted, de-duplicated, comma-joined.

    InputError for an empty label or one holding a comma: either would make two different
    label sets share a key (label keys and values never hold commas)."""
    unique = set(labels)
    for label in unique:
        if not label or "," in label:
            raise InputError(f"label {label!r}: expected non-empty text without commas")
    return ",".join(sorted(unique))


def is_cluster_identity(number: int) -> bool:
    """Whether number lies in the range allocated for label sets."""
    return FIRST_CLUSTER_IDENTITY <= number <= LAST_CLUSTER_IDENTITY


class IdentityNumbers:
    """A one-to-one map of label set keys to numbers, and the allocation of new numbers.

    Not thread-safe: its owner serialises access and persists what `allocate` adds.
    """

    def __init__(self, known: Mapping[str, int], where: str) -> None:
        """`known`: numbers allocated before; InputError naming `where` when two label sets
        share a number or a number lies outside 256-65535."""
        for key, number in known.items():
            if not is_cluster_identity(number):
                raise InputError(f"{where}: identity {number} of {key!r} is outside 256-65535")
        self._by_key = dict(known)
        self._by_number = {number: key for key, number in known.items()}
        if len(self._by_number) != len(self._by_key):
            raise InputError(f"{where}: two label sets share one identity")

    def get(self, key: str) -> int | None:
        return self._by_key.get(key)

    def key_of(self, number: int) -> str | None:
        return self._by_number.get(number)

    def allocate(self, key: str) -> int:
        """The number of key, allocated now if it has none; InputError when none is left."""
        known = self._by_key.get(key)
        if known is not None:
            return known
        start = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % _SPAN
        for step in range(_SPAN):
            number = FIRST_CLUSTER_IDENTITY + (start + step) % _SPAN
            if number not in self._by_number:
                self._by_key[key] = number
                self._by_number[number] = key
                return number
        raise InputError(f"no identity left for labels {key!r}")

    def forget(self, key: str) -> None:
        """Drops key's number (an allocation that could not be persisted)."""
        number = self._by_key.pop(key, None)
        if number is not None:
            del self._by_number[number]

    def as_dict(self) -> dict[str, int]:
        return dict(self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)
