"""Stores for the store tests: embedded chDB always, and a ClickHouse server too
when FLOWSCOPE_TEST_CLICKHOUSE_URL names one (a clickhouse-connect DSN).

chDB holds one engine path per process: a module opens one store at a time
and closes it before the next module opens its own.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flowscope.common import schema
from flowscope.proto.flow import flow_pb2
from flowscope.relay.store import Store, StoreConfig
from flowscope.relay.store.store import FaultHook

SERVER_URL = os.environ.get("FLOWSCOPE_TEST_CLICKHOUSE_URL", "")
BACKENDS = ["chdb", "server"] if SERVER_URL else ["chdb"]
# Test flows are dated 2025: retention long enough to keep them.
LONG: timedelta = timedelta(days=3650)


def config(backend: str, directory: Path, **settings: Any) -> StoreConfig:
    """A store config under directory, on backend ("chdb" or "server")."""
    pytest.importorskip("chdb")
    if backend == "chdb":
        dsn, database = f"chdb://{directory / 'db'}", "flowscope"
    else:
        dsn, database = SERVER_URL, f"flowscope_test_{uuid.uuid4().hex[:10]}"
    defaults: dict[str, Any] = {
        "dsn": dsn,
        "database": database,
        "spool_dir": directory / "spool",
        "raw_ttl": LONG,
        "minute_ttl": LONG,
        "hour_ttl": LONG,
        "batch_max_wait": 0.2,
        "retry_interval": 0.1,
    }
    return StoreConfig(**(defaults | settings))


@contextmanager
def running(settings: StoreConfig, before_insert: FaultHook | None = None) -> Iterator[Store]:
    store = Store(settings, before_insert)
    store.start()
    try:
        yield store
    finally:
        store.stop()


def drop(settings: StoreConfig) -> None:
    """Remove a server test database (chDB's go with their directory)."""
    if settings.dsn.startswith("chdb:"):
        return
    import clickhouse_connect

    client = clickhouse_connect.get_client(dsn=settings.dsn)
    client.command(f"DROP DATABASE IF EXISTS {settings.database}")
    client.close()


def stored_count(store: Store) -> tuple[int, int]:
    """(rows, distinct (node, sequence)) in the raw table."""
    ((rows, distinct),) = store.select(
        f"SELECT count(), uniqExact(node_name, node_sequence) FROM {store.layout.name('flows')}",
        {},
    )
    return int(rows), int(distinct)


def numbered(flows: Sequence[flow_pb2.Flow], start: int = 1, shift: int = 0) -> list[flow_pb2.Flow]:
    """Copies of flows with per-node sequences from start, derived uuids, and times
    moved by shift seconds."""
    out = []
    sequences: dict[str, int] = {}
    for flow in flows:
        copy = flow_pb2.Flow()
        copy.CopyFrom(flow)
        sequence = sequences.get(copy.node_name, start)
        sequences[copy.node_name] = sequence + 1
        copy.node_sequence = sequence
        copy.uuid = schema.derived_uuid(copy.node_name, sequence)
        copy.time.seconds += shift
        out.append(copy)
    return out


def realistic(count: int, hours_ago: int = 2) -> list[flow_pb2.Flow]:
    """bench/flowgen's flows, numbered, starting on the hour hours_ago."""
    import flowgen

    now = int(time.time())
    start = now - now % 3600 - hours_ago * 3600
    return numbered(
        [response.flow for response in flowgen.flows(count, 7)], shift=start - flowgen.START
    )
