"""Store: a clickhouse-connect client with a fresh flow table, as the
conformance tests use it (the `store` fixture in conftest.py makes them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flowscope.common import schema
from flowscope.proto.flow import flow_pb2


@dataclass(frozen=True)
class Store:
    """A clickhouse-connect client and a fresh flow table in it."""

    client: Any
    table: str

    def insert(self, flows: Sequence[flow_pb2.Flow]) -> None:
        """Insert through Arrow, the fast path the store takes."""
        self.client.insert_arrow(self.table, schema.flows_to_arrow(flows))
