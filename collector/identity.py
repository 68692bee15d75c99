"""Security identities: one number per label set, in Hubble's ranges, kept across restarts.

Reserved identities (host, world, ...) lie below 256 (common.vocab). A label set gets a number
from 256 to 65535 derived from a hash of its sorted labels, so nodes that see the same label set
choose the same number without talking to each other; a collision moves the newcomer to the next
free number (the relay's cluster-wide allocation will settle collisions across nodes). Numbers
are persisted in a JSON state file so they survive restarts.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from flowscope.common.errors import InputError
from flowscope.common.vocab import FIRST_CLUSTER_IDENTITY

LAST_CLUSTER_IDENTITY: Final = 0xFFFF
_SPAN: Final = LAST_CLUSTER_IDENTITY - FIRST_CLUSTER_IDENTITY + 1


def label_key(labels: Iterable[str]) -> str:
    """The canonical text of a label set: sorted, de-duplicated, comma-joined."""
    return ",".join(sorted(set(labels)))


class IdentityAllocator:
    """Label set -> identity, persisted in `state_path` (None: in memory only)."""

    def __init__(self, state_path: Path | None) -> None:
        self._path = state_path
        self._lock = threading.Lock()
        self._by_labels: dict[str, int] = {}
        if state_path is not None and state_path.exists():
            self._by_labels = _read(state_path)
        self._taken = {num: key for key, num in self._by_labels.items()}
        if len(self._taken) != len(self._by_labels):
            raise InputError(f"{state_path}: two label sets share one identity")

    def identity_for(self, labels: Iterable[str]) -> int:
        key = label_key(labels)
        with self._lock:
            known = self._by_labels.get(key)
            if known is not None:
                return known
            start = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % _SPAN
            for step in range(_SPAN):
                number = FIRST_CLUSTER_IDENTITY + (start + step) % _SPAN
                if number not in self._taken:
                    break
            else:
                raise InputError(f"no identity left for labels {key!r}")
            self._by_labels[key] = number
            self._taken[number] = key
            self._save()
            return number

    def labels_of(self, identity: int) -> str | None:
        with self._lock:
            return self._taken.get(identity)

    def _save(self) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"identities": self._by_labels}, indent=1, sort_keys=True))
        tmp.replace(self._path)


def _read(path: Path) -> dict[str, int]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read identity state {path}: {exc}") from exc
    table = document.get("identities") if isinstance(document, dict) else None
    if not isinstance(table, dict) or not all(
        isinstance(k, str) and isinstance(v, int)
        and FIRST_CLUSTER_IDENTITY <= v <= LAST_CLUSTER_IDENTITY
        for k, v in table.items()
    ):
        raise InputError(f"{path}: expected {{\"identities\": {{labels: number 256-65535}}}}")
    return dict(table)
