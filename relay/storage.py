"""What the relay needs of its flow store, and relay/store's Store behind that seam.

The relay writes every flow it receives once, resumes each node at the cursor the store
holds, and answers history from it:

    store.cursors()          {node: next sequence to ask for}, after what the store took
    store.write(flows)       hand flows over; queries see them after flush()
    store.write_batch(batch) the same for a batch as its node sent it
    store.unwritten()        batches taken but not visible yet (spooled while the store fails)
    store.history(request)   the flows a GetFlows request selects, oldest first
    store.covered()          the time range and count of the stored flows
    store.namespaces(since)  (cluster, namespace) pairs of the flows since then
    store.aggregates()       the queries behind the Aggregates service (aggregate_server.py)
    store.identities()       the table of cluster-wide identities (identities.py)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

from flowscope.common.errors import StorageError
from flowscope.proto.flow import flow_pb2
from flowscope.relay.aggregate_server import AggregateQueries
from flowscope.relay.identities import IdentityTable
from flowscope.relay.store import History, HistoryRequest, Store, StoreConfig, TimeRange, ddl
from flowscope.relay.store.identities import IdentityRows
from flowscope.relay.store.received import Batch

DRAIN_TIMEOUT: Final = 10.0


class FlowStore(Protocol):
    def cursors(self) -> dict[str, int]:
        """Each node's next sequence number: one above the highest the store took
        (stored, spooled or waiting to be written)."""

    def write(self, flows: Sequence[flow_pb2.Flow]) -> None:
        """Stores flows; StorageError when they cannot even be queued (they are counted)."""

    def write_batch(self, batch: Batch) -> None:
        """Stores a node's batch as it came; StorageError as write()."""

    def flush(self) -> None:
        """Returns once everything written before is visible to queries."""

    def unwritten(self) -> int:
        """Batches taken but not queryable after flush(): spooled while the store fails."""

    def history(self, request: HistoryRequest) -> History:
        """The selected flows in time order, and what the store covers."""

    def covered(self) -> TimeRange | None:
        """The stored time range and count; None when the store is empty."""

    def namespaces(self, since_ns: int) -> list[tuple[str, str]]:
        """The (cluster, namespace) pairs of flow endpoints since then, sorted."""

    def aggregates(self) -> AggregateQueries: ...

    def identities(self) -> IdentityTable: ...

    def close(self) -> None: ...


class StoreBackend:
    """FlowStore over relay/store's Store (ClickHouse or chDB, batched writer, spool)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @classmethod
    def open(cls, config: StoreConfig) -> StoreBackend:
        """Starts the store; StorageError when it cannot."""
        store = Store(config)
        store.start()
        return cls(store)

    def cursors(self) -> dict[str, int]:
        return {node: highest + 1 for node, highest in self._store.cursors().items()}

    def write(self, flows: Sequence[flow_pb2.Flow]) -> None:
        if flows and not self._store.write(flows):
            raise StorageError(f"the store's queue stayed full: {len(flows)} flows not stored")

    def write_batch(self, batch: Batch) -> None:
        if not self._store.write_batch(batch):
            raise StorageError(f"the store's queue stayed full: {batch.size} flows not stored")

    def flush(self) -> None:
        if not self._store.drain(DRAIN_TIMEOUT):
            raise StorageError(f"the store did not write its pending flows in {DRAIN_TIMEOUT:g}s")

    def unwritten(self) -> int:
        return self._store.counters().spool_files

    def history(self, request: HistoryRequest) -> History:
        return self._store.queries.history(request)

    def covered(self) -> TimeRange | None:
        return self._store.queries.covered()

    def namespaces(self, since_ns: int) -> list[tuple[str, str]]:
        # relay/store has no namespace query yet; this one reads its raw table.
        table = self._store.layout.name(ddl.RAW)
        sides = " UNION ALL ".join(
            f"SELECT {side}_cluster_name AS cluster, {side}_namespace AS namespace FROM {table}"
            " WHERE time >= fromUnixTimestamp64Nano({since:Int64}, 'UTC')"
            f" AND {side}_namespace != ''"
            for side in ("source", "destination")
        )
        rows = self._store.select(
            f"SELECT DISTINCT cluster, namespace FROM ({sides}) ORDER BY cluster, namespace",
            {"since": since_ns},
        )
        return [(str(cluster), str(namespace)) for cluster, namespace in rows]

    def aggregates(self) -> AggregateQueries:
        return self._store.queries

    def identities(self) -> IdentityRows:
        return IdentityRows(self._store.select, self._store.layout)

    def close(self) -> None:
        self._store.stop()
