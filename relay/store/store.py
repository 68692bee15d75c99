"""The Store component: one ClickHouse store per process (chDB allows one path
open at a time), inert until start(). start() connects, migrates, applies the
configured TTLs, reloads the per-node cursors and starts the writer; stop()
writes what is pending and closes. Retention beyond TTLs: a disk watermark
that drops the raw table's oldest partitions first.

Inserts into embedded chDB send batches of flows as the nodes serialized them,
in ClickHouse's Protobuf format, to the landing table whose view decodes them
(received.py): the engine does the column work, in C++, on one thread per
insert, with `insert_threads` inserts (each on its own connection) at once.
A ClickHouse server reads format schemas only from its own directory, which
the relay cannot fill: inserts into a server go through Arrow columns that
common/schema computes."""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowscope.common import schema
from flowscope.common.errors import StorageError
from flowscope.proto.flow import flow_pb2
from flowscope.relay.store import ddl, migrations
from flowscope.relay.store.config import StoreConfig
from flowscope.relay.store.query import Queries
from flowscope.relay.store.received import Batch, batches, flows_of, format_schema, wire
from flowscope.relay.store.spool import Spool
from flowscope.relay.store.writer import InsertObserver, Writer, WriterCounters

# Called with the table name before every insert; raising makes the insert fail.
FaultHook = Callable[[str], None]
# Every insert's settings: the views' rows are grouped already, summing them on
# insert again only costs time.
_INSERT_SETTINGS = {"optimize_on_insert": 0}


@dataclass(frozen=True, slots=True)
class StoreCounters:
    """A snapshot of the store's counters, for metrics and ServerStatus."""

    writer: WriterCounters
    spool_files: int
    spool_bytes: int
    partitions_dropped: int


@contextlib.contextmanager
def _memory_file(parts: Sequence[bytes]) -> Iterator[str]:
    """A file in memory holding parts one after the other; its path while open."""
    descriptor = os.memfd_create("flowscope-insert", os.MFD_CLOEXEC)
    try:
        for part in parts:
            view = memoryview(part)
            while view:
                view = view[os.write(descriptor, view) :]
        yield f"/proc/self/fd/{descriptor}"
    finally:
        os.close(descriptor)


class Store:
    """The relay's flow store (see the package docstring)."""

    def __init__(
        self,
        config: StoreConfig,
        before_insert: FaultHook | None = None,
        on_insert: InsertObserver | None = None,
    ) -> None:
        """`on_insert` is told the rows and seconds of every insert the writer makes."""
        self.config = config
        self._on_insert = on_insert
        self.layout = ddl.Layout(
            config.database, config.cluster, config.raw_ttl, config.minute_ttl, config.hour_ttl
        )
        self.before_insert = before_insert
        self._client: Any = None
        # The connections inserts take turns on (the writer inserts from several threads).
        self._insert_clients: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._opened: list[Any] = []
        self._lock = threading.Lock()
        self._watermark_lock = threading.Lock()
        self._spool = Spool(config.spool_dir, config.spool_max_bytes)
        self._writer: Writer | None = None
        self._partitions_dropped = 0
        self._next_watermark = 0.0
        self._schema_directory: Path | None = None
        self._insert_settings: dict[str, object] = dict(_INSERT_SETTINGS)
        self.queries = Queries(self.select, self.layout)

    def start(self) -> None:
        import clickhouse_connect  # the store extra

        try:
            self._client = clickhouse_connect.get_client(dsn=self.config.dsn)
            self._opened.append(self._client)
            migrations.migrate(self._client, self.layout)
            settings = {"materialize_ttl_after_modify": 0}
            for statement in ddl.modify_ttls(self.layout):
                self._client.command(statement, settings=settings)
            self._cap_system_logs()
            if self.embedded:
                self._schema_directory = Path(tempfile.mkdtemp(prefix="flowscope-schema-"))
                self._insert_settings["format_schema"] = format_schema(self._schema_directory)
            for _ in range(self.config.insert_threads):
                client = clickhouse_connect.get_client(dsn=self.config.dsn)
                self._opened.append(client)
                self._insert_clients.put(client)
        except Exception as error:
            self._close()
            raise StorageError(f"store {self.config.dsn}: {error}") from error
        self._spool.open()
        cursors = self.queries.cursors()
        for batch in self._spool.batches():
            for flow in map(flow_pb2.Flow.FromString, batch):
                if flow.node_sequence > cursors.get(flow.node_name, 0):
                    cursors[flow.node_name] = flow.node_sequence
        insert = self._insert_received if self.embedded else self._insert_arrow
        self._writer = Writer(self.config, insert, self._spool, cursors, self._on_insert)
        self._writer.start()

    @property
    def embedded(self) -> bool:
        """Whether the store is chDB in this process (rather than a server)."""
        return self.config.dsn.startswith("chdb:")

    def stop(self) -> None:
        if self._writer is not None:
            self._writer.stop()
            self._writer = None
        self._close()

    def _close(self) -> None:
        for client in self._opened:
            client.close()
        self._opened.clear()
        self._insert_clients = queue.SimpleQueue()
        self._client = None
        if self._schema_directory is not None:
            shutil.rmtree(self._schema_directory, ignore_errors=True)
            self._schema_directory = None

    def write(self, flows: Sequence[flow_pb2.Flow]) -> bool:
        """Queue flows for the store; False when the writer's queue stayed full."""
        return self._running().submit(batches(flows))

    def write_batch(self, batch: Batch) -> bool:
        """Queue a batch as a node sent it (a FlowBatch's wire); False when the
        writer's queue stayed full."""
        return self._running().submit([batch])

    def drain(self, timeout: float = 30.0) -> bool:
        """Write everything written so far (or spool it); True when done within timeout."""
        return self._running().drain(timeout)

    def cursors(self) -> dict[str, int]:
        """Per node, the highest node_sequence accepted: resume each node after it."""
        return self._running().cursors()

    def counters(self) -> StoreCounters:
        writer = self._running()
        return StoreCounters(
            WriterCounters(
                **{name: getattr(writer.counters, name) for name in WriterCounters.__slots__}
            ),
            len(self._spool),
            self._spool.bytes,
            self._partitions_dropped,
        )

    def disk_bytes(self) -> int:
        """Bytes on disk of the store's tables (active parts)."""
        ((total,),) = self.select(
            "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = {db:String} AND active",
            {"db": self.config.database},
        )
        return int(total)

    def enforce_watermark(self) -> list[str]:
        """Drop the raw table's oldest partitions, keeping the newest, while the store
        exceeds the disk watermark; the partitions dropped."""
        dropped: list[str] = []
        if not self.config.disk_watermark_bytes:
            return dropped
        while self.disk_bytes() > self.config.disk_watermark_bytes:
            partitions = self.select(
                "SELECT partition_id FROM system.parts WHERE database = {db:String}"
                " AND table = {table:String} AND active GROUP BY partition_id"
                " ORDER BY min(min_time)",
                {"db": self.config.database, "table": self.layout.storage(ddl.RAW).split(".")[1]},
            )
            if len(partitions) < 2:
                break
            partition = str(partitions[0][0])
            with self._lock:
                self._client.command(
                    f"ALTER TABLE {self.layout.storage(ddl.RAW)}{self.layout.on_cluster}"
                    " DROP PARTITION ID {partition:String}",
                    parameters={"partition": partition},
                )
            dropped.append(partition)
            self._partitions_dropped += 1
        return dropped

    def load(self, columns: Any) -> None:
        """Insert a pyarrow Table of the raw table's stored columns directly, past the
        writer, its cursor and its spool: for bulk loads such as benchmarks."""
        with self._lock:
            self._client.insert_arrow(self.layout.name(ddl.RAW), columns)

    def optimize(self) -> None:
        """Merge every table's parts now (OPTIMIZE ... FINAL), as background merges would."""
        for table in (ddl.RAW, *(rollup.name for rollup in ddl.ROLLUPS)):
            with self._lock:
                self._client.command(
                    f"OPTIMIZE TABLE {self.layout.storage(table)}{self.layout.on_cluster} FINAL"
                )

    def _running(self) -> Writer:
        if self._writer is None:
            raise StorageError("the store is not started")
        return self._writer

    def select(
        self, sql: str, parameters: dict[str, object], formats: dict[str, str] | None = None
    ) -> Sequence[Sequence[Any]]:
        """The rows of one SELECT with bound parameters (the queries' runner)."""
        with self._lock:
            result = self._client.query(sql, parameters=parameters, column_formats=formats)
        rows: Sequence[Sequence[Any]] = result.result_rows
        return rows

    def _insert_received(self, batches: Sequence[Batch]) -> None:
        """Insert batches into the landing table, in the Protobuf format (chDB).

        The engine reads the data from a file: an in-memory one, since the engine is
        in this process (clickhouse-connect's raw_insert would write it to disk)."""
        table = self.layout.name(ddl.RECEIVED)
        if self.before_insert is not None:
            self.before_insert(table)
        settings = ", ".join(
            f"{name} = {schema.sql_string(str(value))}"
            for name, value in self._insert_settings.items()
        )
        client = self._insert_clients.get()
        try:
            with _memory_file(wire(batches)) as path:
                client.command(
                    f"INSERT INTO {table} FROM INFILE {schema.sql_string(path)}"
                    f" SETTINGS {settings} FORMAT Protobuf"
                )
        finally:
            self._insert_clients.put(client)
        self._after_insert()

    def _insert_arrow(self, batches: Sequence[Batch]) -> None:
        """Insert batches into the raw table as Arrow columns (a ClickHouse server)."""
        table = self.layout.name(ddl.RAW)
        if self.before_insert is not None:
            self.before_insert(table)
        flows = [flow_pb2.Flow.FromString(flow) for batch in batches for flow in flows_of(batch)]
        data = schema.flows_to_arrow(flows)
        client = self._insert_clients.get()
        try:
            client.insert_arrow(table, data, settings=self._insert_settings)
        finally:
            self._insert_clients.put(client)
        self._after_insert()

    def _after_insert(self) -> None:
        if not self.config.disk_watermark_bytes or time.monotonic() < self._next_watermark:
            return
        if self._watermark_lock.acquire(blocking=False):  # one insert thread checks
            try:
                self._next_watermark = time.monotonic() + self.config.watermark_interval
                self.enforce_watermark()
            finally:
                self._watermark_lock.release()

    def _cap_system_logs(self) -> None:
        """A TTL on ClickHouse's own log tables, where the engine has them."""
        rows = self._client.query(
            "SELECT name FROM system.tables WHERE database = 'system'"
            " AND name LIKE '%\\_log' AND engine LIKE '%MergeTree'"
        ).result_rows
        for statement in ddl.system_log_ttls([row[0] for row in rows], self.config.system_log_ttl):
            self._client.command(statement)
