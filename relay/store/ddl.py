"""The store's DDL, generated from common/schema's columns: the raw `flows` table,
the landing table `flows_received` (Null) whose view decodes received flows into
it, the per-minute and per-hour service-map rollups, the web UI's per-minute map
rollup, their materialized views, the per-node cursor table, and TTL statements.
One text serves chDB and a server; with a cluster name the same code emits ON
CLUSTER DDL, replicated `*_local` tables and Distributed tables under the plain
names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from flowscope.common import schema
from flowscope.proto.flow import flow_pb2

RAW: Final = "flows"
RECEIVED: Final = "flows_received"
CURSORS: Final = "node_cursors"
VERSIONS: Final = "schema_version"
# A partition is this fraction of its table's TTL, so expiry drops whole ones.
PARTITIONS_PER_TTL: Final = 24
TIME_BUCKET: Final = "toStartOfFiveMinutes(time)"
# The raw table's sort key: a coarse time bucket, then low-cardinality dimensions.
SORT_KEY: Final = (
    TIME_BUCKET,
    "node_name",
    "source_namespace",
    "destination_namespace",
    "verdict",
    "flow_type",
    "time",
)
SKIP_INDEX_GRANULARITY: Final = 4

# Rollup dimensions: raw columns kept under the same name and type, so that the
# filters common/filters compiles run unchanged on a rollup. Pods and source
# ports stay out: with them a rollup row would be about one flow.
ROLLUP_DIMENSIONS: Final = (
    "node_name",
    "source_namespace",
    "source_workload_names",
    "source_workload_kinds",
    "source_identity",
    "destination_namespace",
    "destination_workload_names",
    "destination_workload_kinds",
    "destination_identity",
    "destination_port",
    "l4_protocol",
    "l7_protocol",
    "verdict",
    "traffic_direction",
)
# The web UI's map rollup: only what its edges name at workload and namespace
# level, plus the reply flag the map leaves out. Without node, L7 protocol and
# direction it holds about half the rows of the per-minute rollup.
MAP_DIMENSIONS: Final = (
    "source_namespace",
    "source_workload_names",
    "source_workload_kinds",
    "source_identity",
    "destination_namespace",
    "destination_workload_names",
    "destination_workload_kinds",
    "destination_identity",
    "destination_port",
    "l4_protocol",
    "verdict",
    "is_reply",
)
# What one raw flow adds to each rollup measure.
FLOW_VALUES: Final = (
    ("flows", "1"),
    ("bytes", "bytes_forward + bytes_reply"),
    ("packets", "packets_forward + packets_reply"),
)
ROLLUP_MEASURES: Final = (
    ("flows", "count()"),
    *((name, f"sum({value})") for name, value in FLOW_VALUES[1:]),
)


@dataclass(frozen=True, slots=True)
class Rollup:
    """A service-map rollup table: flows summed by `dimensions` per bucket of `interval`."""

    name: str
    interval: timedelta
    dimensions: tuple[str, ...] = ROLLUP_DIMENSIONS


MINUTE: Final = Rollup("edges_1m", timedelta(minutes=1))
HOUR: Final = Rollup("edges_1h", timedelta(hours=1))
MAP_MINUTE: Final = Rollup("map_edges_1m", timedelta(minutes=1), MAP_DIMENSIONS)
ROLLUPS: Final = (MINUTE, HOUR, MAP_MINUTE)


@dataclass(frozen=True, slots=True)
class Layout:
    """What the DDL depends on: the database, the cluster ("" for none) and the TTLs."""

    database: str
    cluster: str = ""
    raw_ttl: timedelta = timedelta(days=7)
    minute_ttl: timedelta = timedelta(days=30)
    hour_ttl: timedelta = timedelta(days=365)

    def ttl(self, table: str) -> timedelta:
        return {
            RAW: self.raw_ttl,
            MINUTE.name: self.minute_ttl,
            HOUR.name: self.hour_ttl,
            MAP_MINUTE.name: self.minute_ttl,
        }[table]

    def name(self, table: str) -> str:
        """The qualified name readers and the writer use (Distributed on a cluster)."""
        return f"{self.database}.{table}"

    def storage(self, table: str) -> str:
        """The qualified name of the table that holds the data (`*_local` on a cluster)."""
        return f"{self.database}.{table}_local" if self.cluster else self.name(table)

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER {self.cluster}" if self.cluster else ""

    def engine(self, table: str, engine: str = "MergeTree", arguments: str = "") -> str:
        if not self.cluster:
            return f"{engine}({arguments})" if arguments else engine
        path = f"'/clickhouse/tables/{{shard}}/{self.database}/{table}_local', '{{replica}}'"
        return f"Replicated{engine}({path}{', ' + arguments if arguments else ''})"


def _seconds(interval: timedelta) -> int:
    return int(interval.total_seconds())


def _create(layout: Layout, table: str, body: str) -> list[str]:
    """CREATE TABLE for table; on a cluster its local table and a Distributed one."""
    statements = [f"CREATE TABLE IF NOT EXISTS {layout.storage(table)}{layout.on_cluster}\n{body}"]
    if layout.cluster:
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {layout.name(table)}{layout.on_cluster}"
            f" AS {layout.storage(table)}\n"
            f"ENGINE = Distributed({layout.cluster}, {layout.database}, {table}_local, rand())"
        )
    return statements


def _time_layout(layout: Layout, table: str, time: str, settings: str = "") -> str:
    ttl = _seconds(layout.ttl(table))
    return (
        f"PARTITION BY toStartOfInterval({time}, toIntervalSecond({ttl // PARTITIONS_PER_TTL}))\n"
        f"TTL {ttl_expression(layout, table)}\n"
        "SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000" + settings
    )


def ttl_expression(layout: Layout, table: str) -> str:
    return f"toDateTime(time) + toIntervalSecond({_seconds(layout.ttl(table))})"


def create_database(layout: Layout) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {layout.database}{layout.on_cluster}"


def raw_table(layout: Layout) -> list[str]:
    columns = [f"    {column.ddl()}" for column in schema.COLUMNS]
    indexes = [
        f"    INDEX {column.name}_index {column.name} TYPE {column.index}"
        f" GRANULARITY {SKIP_INDEX_GRANULARITY}"
        for column in schema.COLUMNS
        if column.index
    ]
    body = (
        "(\n" + ",\n".join(columns + indexes) + "\n)\n"
        f"ENGINE = {layout.engine(RAW)}\n"
        f"ORDER BY ({', '.join(SORT_KEY)})\n" + _time_layout(layout, RAW, "time")
    )
    return _create(layout, RAW, body)


_SCALAR_TYPES: Final = {
    FieldDescriptor.TYPE_STRING: "String",
    FieldDescriptor.TYPE_BYTES: "String",
    FieldDescriptor.TYPE_BOOL: "Bool",
    FieldDescriptor.TYPE_INT32: "Int32",
    FieldDescriptor.TYPE_SINT32: "Int32",
    FieldDescriptor.TYPE_SFIXED32: "Int32",
    FieldDescriptor.TYPE_ENUM: "Int32",
    FieldDescriptor.TYPE_UINT32: "UInt32",
    FieldDescriptor.TYPE_FIXED32: "UInt32",
    FieldDescriptor.TYPE_INT64: "Int64",
    FieldDescriptor.TYPE_SINT64: "Int64",
    FieldDescriptor.TYPE_SFIXED64: "Int64",
    FieldDescriptor.TYPE_UINT64: "UInt64",
    FieldDescriptor.TYPE_FIXED64: "UInt64",
    FieldDescriptor.TYPE_DOUBLE: "Float64",
    FieldDescriptor.TYPE_FLOAT: "Float32",
}


def _message_type(message: Descriptor) -> str:
    return "Tuple(" + ", ".join(f"{f.name} {_field_type(f)}" for f in message.fields) + ")"


def _field_type(field: FieldDescriptor) -> str:
    """The landing type of a Flow field as ClickHouse's Protobuf format reads it:
    a message a Nullable(Tuple) (NULL when absent), repeated fields Arrays."""
    if field.message_type is None:
        base = _SCALAR_TYPES[field.type]
        return f"Array({base})" if field.is_repeated else base
    if field.is_repeated:
        return f"Array({_message_type(field.message_type)})"
    return f"Nullable({_message_type(field.message_type)})"


def _kept_type(field: FieldDescriptor) -> str:
    """The landing type of a Remainder field: NULL when absent (messages as bytes)."""
    base = _SCALAR_TYPES[field.type]
    return f"Array({base})" if field.is_repeated else f"Nullable({base})"


def _received_fields() -> list[FieldDescriptor]:
    """The top-level Flow fields the columns' ingest SQL reads (received_<field>)."""
    prefix = f"{schema.RECEIVED_PREFIX}_"
    read = {
        name for column in schema.STORED for name in re.findall(rf"\b{prefix}(\w+)", column.ingest)
    }
    return [field for field in flow_pb2.Flow.DESCRIPTOR.fields if field.name in read]


def received_columns() -> list[tuple[str, str]]:
    """The landing table's columns: its batch's flows as tuples of the Flow fields
    the ingest SQL reads (received_flow), and the same flows as Remainders
    (kept_flow)."""
    received = ", ".join(f"{field.name} {_field_type(field)}" for field in _received_fields())
    kept = ", ".join(
        f"{field.name} {_kept_type(field)}" for field in schema.remainder_message().fields
    )
    return [
        (f"{schema.RECEIVED_PREFIX}_flow", f"Array(Tuple({received}))"),
        (f"{schema.KEPT_FIELD}_flow", f"Array(Tuple({kept}))"),
    ]


def received_tables(layout: Layout) -> list[str]:
    """The landing table (Null: it keeps nothing) and the view that decodes each
    batch inserted into it into flows of the raw table (its Distributed table on a
    cluster): one row per flow, its fields as received_<field>, its Remainder as
    kept and the fields of that the remainder holds serialized (kept_written)."""
    columns = ",\n".join(f"    {name} {type_}" for name, type_ in received_columns())
    fields = "".join(
        f"        tupleElement(flow, '{field.name}') AS {schema.RECEIVED_PREFIX}_{field.name},\n"
        for field in _received_fields()
    )
    expressions = ",\n".join(f"    {column.ingest} AS {column.name}" for column in schema.STORED)
    return [
        f"CREATE TABLE IF NOT EXISTS {layout.name(RECEIVED)}{layout.on_cluster}\n"
        f"(\n{columns}\n)\nENGINE = Null",
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {layout.name(RECEIVED)}_view"
        f"{layout.on_cluster}\nTO {layout.name(RAW)}\n"
        f"AS SELECT\n{expressions}\nFROM (\n    SELECT\n{fields}"
        f"        kept AS {schema.KEPT_FIELD},\n"
        f"        {schema.kept_sql()} AS {schema.WRITTEN_FIELD}\n"
        f"    FROM {layout.name(RECEIVED)}\n"
        f"    ARRAY JOIN {schema.RECEIVED_PREFIX}_flow AS flow,"
        f" {schema.KEPT_FIELD}_flow AS kept\n)",
    ]


def batch_landing(layout: Layout) -> list[str]:
    """The landing table and its view, from flow rows to batch rows."""
    drop = [
        f"DROP VIEW IF EXISTS {layout.name(RECEIVED)}_view{layout.on_cluster}",
        f"DROP TABLE IF EXISTS {layout.name(RECEIVED)}{layout.on_cluster}",
    ]
    return drop + received_tables(layout)


def rollup_select(
    layout: Layout,
    rollup: Rollup,
    source: str = "",
    measures_sql: Sequence[tuple[str, str]] = ROLLUP_MEASURES,
) -> str:
    """The SELECT that aggregates raw flows (or, with the measures summed, finer
    rollup rows) into rollup rows: the views', and backfills'."""
    dimensions = ", ".join(rollup.dimensions)
    measures = ", ".join(f"{expression} AS {name}" for name, expression in measures_sql)
    bucket = f"toStartOfInterval(time, toIntervalSecond({_seconds(rollup.interval)}))"
    return (
        f"SELECT {bucket} AS time, {dimensions}, {measures}\n"
        f"FROM {source or layout.storage(RAW)}\n"
        f"GROUP BY time, {dimensions}"
    )


def _rollup_table(layout: Layout, rollup: Rollup) -> list[str]:
    """A rollup table, its view over the raw table, and a backfill of what that holds."""
    columns = (
        ["    time DateTime('UTC') CODEC(DoubleDelta, ZSTD(1))"]
        + [f"    {schema.column(name).ddl()}" for name in rollup.dimensions]
        + [f"    {name} UInt64 CODEC(T64, ZSTD(1))" for name, _ in ROLLUP_MEASURES]
    )
    measures = ", ".join(name for name, _ in ROLLUP_MEASURES)
    # A summing table must sort by every dimension, the reply flag's NULL included.
    nullable = any(schema.column(name).type.startswith("Nullable") for name in rollup.dimensions)
    body = (
        "(\n" + ",\n".join(columns) + "\n)\n"
        f"ENGINE = {layout.engine(rollup.name, 'SummingMergeTree', f'({measures})')}\n"
        f"ORDER BY (time, {', '.join(rollup.dimensions)})\n"
        + _time_layout(layout, rollup.name, "time", ", allow_nullable_key = 1" if nullable else "")
    )
    return [
        *_create(layout, rollup.name, body),
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {layout.storage(rollup.name)}_view"
        f"{layout.on_cluster}\nTO {layout.storage(rollup.name)}\n"
        "AS " + rollup_select(layout, rollup),
        f"INSERT INTO {layout.name(rollup.name)}\n"
        + rollup_select(layout, rollup, layout.name(RAW)),
    ]


def rollup_tables(layout: Layout) -> list[str]:
    """The per-minute and per-hour rollups, their views, and backfills."""
    return _rollup_table(layout, MINUTE) + _rollup_table(layout, HOUR)


def map_rollup(layout: Layout) -> list[str]:
    """The map rollup, its view and backfill; minutes older than the raw table's
    oldest come from the per-minute rollup, their reply flag unknown (NULL)."""
    oldest = f"(SELECT toStartOfMinute(minOrNull(time)) FROM {layout.name(RAW)})"
    older = (
        f"(SELECT *, CAST(NULL, 'Nullable(Bool)') AS is_reply FROM {layout.name(MINUTE.name)}"
        f" WHERE time < ifNull({oldest}, now()))"
    )
    summed = [(name, f"sum({name})") for name, _ in ROLLUP_MEASURES]
    return [
        *_rollup_table(layout, MAP_MINUTE),
        f"INSERT INTO {layout.name(MAP_MINUTE.name)}\n"
        + rollup_select(layout, MAP_MINUTE, older, summed),
    ]


def hourly_from_minutes(layout: Layout) -> list[str]:
    """The per-hour rollup's view fed by the per-minute rollup's rows rather than
    by raw flows: it aggregates a few rows per edge and minute, not every flow."""
    view = f"{layout.storage(HOUR.name)}_view"
    summed = [(name, f"sum({name})") for name, _ in ROLLUP_MEASURES]
    return [
        f"DROP VIEW IF EXISTS {view}{layout.on_cluster}",
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view}{layout.on_cluster}\n"
        f"TO {layout.storage(HOUR.name)}\n"
        "AS " + rollup_select(layout, HOUR, layout.storage(MINUTE.name), summed),
    ]


def cursor_table(layout: Layout) -> list[str]:
    """node_cursors: the highest stored node_sequence per node, kept by a view."""
    body = (
        "(\n    node_name LowCardinality(String),\n"
        "    node_sequence SimpleAggregateFunction(max, UInt64)\n)\n"
        f"ENGINE = {layout.engine(CURSORS, 'AggregatingMergeTree')}\n"
        "ORDER BY node_name"
    )
    view = (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {layout.storage(CURSORS)}_view"
        f"{layout.on_cluster}\nTO {layout.storage(CURSORS)}\n"
        f"AS SELECT node_name, max(node_sequence) AS node_sequence FROM {layout.storage(RAW)}\n"
        "GROUP BY node_name"
    )
    return [*_create(layout, CURSORS, body), view]


def version_table(layout: Layout) -> list[str]:
    body = (
        "(\n    version UInt32,\n    applied DateTime('UTC') DEFAULT now()\n)\n"
        f"ENGINE = {layout.engine(VERSIONS)}\nORDER BY version"
    )
    return [f"CREATE TABLE IF NOT EXISTS {layout.storage(VERSIONS)}{layout.on_cluster}\n{body}"]


def modify_ttls(layout: Layout) -> list[str]:
    """TTL statements applying the configured retention to existing tables."""
    return [
        f"ALTER TABLE {layout.storage(table)}{layout.on_cluster}"
        f" MODIFY TTL {ttl_expression(layout, table)}"
        for table in (RAW, *(rollup.name for rollup in ROLLUPS))
    ]


def system_log_ttls(tables: Sequence[str], ttl: timedelta) -> list[str]:
    """TTLs capping ClickHouse's own log tables (system.query_log, ...): chDB has none."""
    days = max(1, ttl.days)
    return [
        f"ALTER TABLE system.{table} MODIFY TTL event_date + toIntervalDay({days})"
        for table in tables
    ]
