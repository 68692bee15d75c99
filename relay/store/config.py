"""The store's configuration: where it lives, how it batches, spools and retains."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from flowscope.common.errors import InputError

DEFAULT_DSN = "chdb:///var/lib/flowscope/store"
_SERVER_SCHEMES = ("http://", "https://", "clickhouse://", "clickhouses://")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def dsn_for(store: str) -> str:
    """The DSN for a --store value: a ClickHouse server URL as it is, a directory
    as embedded chDB at that (absolute) path."""
    if store.startswith(("chdb://", *_SERVER_SCHEMES)):
        return store
    if "://" in store:
        raise InputError(f"--store {store!r}: expected a directory or an http(s) URL")
    if not store:
        raise InputError("--store '': expected a directory or an http(s) URL")
    return f"chdb://{Path(store).absolute()}"


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Settings of the store; invalid values raise InputError naming the setting.

    dsn: a clickhouse-connect DSN: "chdb:///path" (embedded) or a server URL
    ("http://user:password@host:8123"). cluster: a ClickHouse cluster name for
    ON CLUSTER DDL with replicated and Distributed tables (server only).
    batch_max_rows / batch_max_wait: an insert happens when either is reached.
    insert_threads: inserts running at once (each decodes on one engine thread).
    queue_max_batches / enqueue_timeout: write() waits that long for room in
    the writer's queue, then counts the flows as dropped.
    *_ttl: retention of the raw table, the per-minute and per-hour rollups and
    ClickHouse's own system log tables. disk_watermark_bytes: when the
    store's tables exceed it, the raw table's oldest partitions are dropped
    (0: no watermark). spool_dir / spool_max_bytes: where batches wait while
    the store fails, and how much may wait. retry_interval: how often the
    spool is retried.
    """

    dsn: str = DEFAULT_DSN
    database: str = "flowscope"
    cluster: str = ""
    batch_max_rows: int = 100_000
    batch_max_wait: float = 1.0
    queue_max_batches: int = 256
    enqueue_timeout: float = 5.0
    raw_ttl: timedelta = timedelta(days=7)
    minute_ttl: timedelta = timedelta(days=30)
    hour_ttl: timedelta = timedelta(days=365)
    system_log_ttl: timedelta = timedelta(days=30)
    disk_watermark_bytes: int = 0
    watermark_interval: float = 10.0
    spool_dir: Path = field(default_factory=lambda: Path("/var/lib/flowscope/spool"))
    spool_max_bytes: int = 1 << 30
    retry_interval: float = 1.0
    insert_threads: int = 2

    def __post_init__(self) -> None:
        for name in ("database", "cluster"):
            value = getattr(self, name)
            if (value or name == "database") and not _IDENTIFIER.fullmatch(value):
                raise InputError(f"store {name} {value!r}: expected a plain identifier")
        if not 1 <= self.batch_max_rows <= 1_000_000:
            raise InputError(f"store batch_max_rows {self.batch_max_rows}: expected 1 to 1000000")
        for name in ("batch_max_wait", "enqueue_timeout", "retry_interval"):
            if getattr(self, name) <= 0:
                raise InputError(f"store {name} {getattr(self, name)}: expected more than 0")
        if not 1 <= self.insert_threads <= 16:
            raise InputError(f"store insert_threads {self.insert_threads}: expected 1 to 16")
        if self.queue_max_batches < 1:
            raise InputError(f"store queue_max_batches {self.queue_max_batches}: expected >= 1")
        for name in ("raw_ttl", "minute_ttl", "hour_ttl", "system_log_ttl"):
            if getattr(self, name) < timedelta(hours=1):
                raise InputError(f"store {name} {getattr(self, name)}: expected at least 1 hour")
        for name in ("disk_watermark_bytes", "spool_max_bytes", "watermark_interval"):
            if getattr(self, name) < 0:
                raise InputError(f"store {name} {getattr(self, name)}: expected >= 0")
        if self.cluster and self.dsn.startswith("chdb:"):
            raise InputError(f"store cluster {self.cluster!r}: needs a ClickHouse server, not chDB")
