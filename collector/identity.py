"""The collector's identities when it allocates them itself (no relay), and the state file
that keeps a collector's identities across restarts in either mode.

Without a relay, a label set gets its number from common.identity's rule: derived from a
hash of its labels, so nodes that see the same label sets mostly agree without talking to
each other; a collector with --relay takes the relay's cluster-wide numbers instead
(relay_identities.py). The state file (JSON) records the numbers and who allocated them:

    {"identities": {"k8s:app=a,k8s:io.kubernetes.pod.namespace=shop": 4242}}
    {"allocator": "relay", "identities": {...}}     # numbers a relay gave
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final, Protocol

from flowscope.common.errors import InputError
from flowscope.common.identity import IdentityNumbers, label_key

LOCAL: Final = "local"
RELAY: Final = "relay"


class Identities(Protocol):
    """What the endpoint registry asks: the numbers of label sets, in their order."""

    def identities_for(self, label_sets: Sequence[Iterable[str]]) -> list[int]: ...


class IdentityAllocator:
    """Label set -> identity, allocated on this node, persisted in `state_path` (None: in
    memory only)."""

    def __init__(self, state_path: Path | None) -> None:
        self._path = state_path
        self._lock = threading.Lock()
        known = read_state(state_path)[1] if state_path is not None else {}
        self._numbers = IdentityNumbers(known, str(state_path))

    def identity_for(self, labels: Iterable[str]) -> int:
        return self.identities_for([labels])[0]

    def identities_for(self, label_sets: Sequence[Iterable[str]]) -> list[int]:
        keys = [label_key(labels) for labels in label_sets]
        with self._lock:
            before = len(self._numbers)
            numbers = [self._numbers.allocate(key) for key in keys]
            if len(self._numbers) != before and self._path is not None:
                write_state(self._path, LOCAL, self._numbers.as_dict())
        return numbers

    def labels_of(self, identity: int) -> str | None:
        with self._lock:
            return self._numbers.key_of(identity)


def read_state(path: Path) -> tuple[str, dict[str, int]]:
    """(allocator, numbers) of a state file; (LOCAL, {}) when it does not exist."""
    if not path.exists():
        return LOCAL, {}
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read identity state {path}: {exc}") from exc
    table = document.get("identities") if isinstance(document, dict) else None
    allocator = document.get("allocator", LOCAL) if isinstance(document, dict) else None
    if allocator not in (LOCAL, RELAY) or not isinstance(table, dict) or not all(
        isinstance(k, str) and isinstance(v, int) for k, v in table.items()
    ):
        raise InputError(
            f'{path}: expected {{"allocator": "local" or "relay", '
            '"identities": {labels: number 256-65535}}'
        )
    return allocator, dict(table)


def write_state(path: Path, allocator: str, numbers: dict[str, int]) -> None:
    """Replaces the state file at once (a crash leaves the old or the new one)."""
    document: dict[str, object] = {"identities": numbers}
    if allocator != LOCAL:
        document["allocator"] = allocator
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=1, sort_keys=True))
    tmp.replace(path)
