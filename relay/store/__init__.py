"""The relay's flow store: ClickHouse (embedded chDB or a server), its schema
migrations, the batching writer with its on-disk spool, retention, and the
queries that serve history and aggregates.

    store = Store(StoreConfig(dsn="chdb:///var/lib/flowscope/store"))
    store.start()
    store.write(flows)                    # Flow messages
    store.write_batch(batch)              # or a node's batch as it sent it (received.Batch)
    history = store.queries.history(HistoryRequest(number=20))
    store.stop()
"""

from __future__ import annotations

from flowscope.relay.store.config import StoreConfig, dsn_for
from flowscope.relay.store.query import (
    Edge,
    History,
    HistoryRequest,
    Queries,
    Talker,
    TimeRange,
    VerdictCount,
)
from flowscope.relay.store.store import Store, StoreCounters

__all__ = [
    "Edge",
    "History",
    "HistoryRequest",
    "Queries",
    "Store",
    "StoreConfig",
    "StoreCounters",
    "Talker",
    "TimeRange",
    "VerdictCount",
    "dsn_for",
]
