"""The store's `identities` table: every label set's cluster-wide security identity.

One row per label set (its canonical key, common/identity.py) and number, written once when
the relay allocates the number and never changed, so no TTL applies. The relay reads the
whole table when it starts (identities number at most 65,280) and appends what it allocates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from flowscope.common.errors import StorageError
from flowscope.relay.store import ddl

IDENTITIES: Final = "identities"

# Runs one statement with bound parameters and returns its rows (Store.select).
Run = Callable[[str, dict[str, object]], Sequence[Sequence[Any]]]


def identity_table(layout: ddl.Layout) -> list[str]:
    """The migration step's DDL."""
    body = (
        "(\n"
        "    label_key String,\n"
        "    identity UInt32,\n"
        "    allocated_at DateTime64(3, 'UTC') DEFAULT now64(3)\n"
        ")\n"
        f"ENGINE = {layout.engine(IDENTITIES)}\n"
        "ORDER BY identity"
    )
    return ddl._create(layout, IDENTITIES, body)


class IdentityRows:
    """Reads and appends the identities table through the store's statement runner."""

    def __init__(self, run: Run, layout: ddl.Layout) -> None:
        self._run = run
        self._table = layout.name(IDENTITIES)

    def load(self) -> list[tuple[str, int]]:
        """Every (label set key, number) stored, by number; StorageError when the store fails."""
        rows = self._query(
            f"SELECT label_key, identity FROM {self._table} ORDER BY identity, label_key", {}
        )
        return [(str(key), int(number)) for key, number in rows]

    def append(self, numbers: Mapping[str, int]) -> None:
        """Stores new numbers, in one insert; StorageError when the store refuses."""
        keys, values = zip(*sorted(numbers.items(), key=lambda item: item[1]), strict=True)
        self._query(
            f"INSERT INTO {self._table} (label_key, identity) SELECT key, number FROM system.one"
            " ARRAY JOIN {keys:Array(String)} AS key, {numbers:Array(UInt32)} AS number",
            {"keys": list(keys), "numbers": list(values)},
        )

    def _query(self, sql: str, parameters: dict[str, object]) -> Sequence[Sequence[Any]]:
        try:
            return self._run(sql, parameters)
        except StorageError:
            raise
        except Exception as err:  # the client's errors differ between chDB and a server
            raise StorageError(f"{self._table}: {err}") from err
