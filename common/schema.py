"""The store's flow table: one Column per stored Flow field, in one declarative list.

Each Column names its ClickHouse column, type and optional codec, how its value
is read from a Flow, and which FlowFilter fields the filter dimensions compile
against it (common/filters). The last column, `flow`, holds the whole
serialized Flow, so a row gives back the Flow it was made from, field for
field, whatever the other columns project. DDL, inserts and filter SQL are all
derived from COLUMNS: a new field means one more entry here.

Inserts are columnar: flows_to_arrow() gives a pyarrow Table for
clickhouse-connect's insert_arrow() (the fast path), flows_to_columns() one list
per column for its column-oriented insert(). Read the `flow` column back with
column_formats={"flow": "bytes"} and pass it to rows_to_flows().
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Final

from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message

from flowscope.common import accessors
from flowscope.proto.flow import flow_pb2

Flow = flow_pb2.Flow
FLOW_COLUMN: Final = "flow"


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the flow table.

    value reads the column's value from a Flow; filters lists the FlowFilter
    fields whose SQL reads this column; codec, when set, is the ClickHouse
    compression codec ("ZSTD(3)", "Delta, ZSTD").
    """

    name: str
    type: str
    value: Callable[[Flow], object]
    filters: tuple[str, ...] = ()
    codec: str = ""

    def ddl(self) -> str:
        codec = f" CODEC({self.codec})" if self.codec else ""
        return f"{self.name} {self.type}{codec}"


def _enum(enum: EnumDescriptor) -> str:
    """A ClickHouse Enum8/Enum16 type with the proto enum's names and numbers."""
    values = enum.values
    width = 8 if all(-128 <= value.number <= 127 for value in values) else 16
    members = ", ".join(f"'{value.name}' = {value.number}" for value in values)
    return f"Enum{width}({members})"


def _oneof_column(
    name: str, path: str, message: type[Message], oneof: str, filters: tuple[str, ...]
) -> Column:
    """A column naming which case of a oneof is set: an Enum8 of the case names by
    field number, '' (0) when none is."""
    fields = message.DESCRIPTOR.oneofs_by_name[oneof].fields
    members = ", ".join(f"'{field.name}' = {field.number}" for field in fields)
    numbers = {field.name: field.number for field in fields}
    read = attrgetter(path)
    return Column(
        name,
        f"Enum8('' = 0, {members})",
        lambda flow: numbers.get(read(flow).WhichOneof(oneof), 0),
        filters,
    )


# Value readers. attrgetter runs in C: the converter calls these for every
# column of every flow, so they avoid Python-level calls where they can.
def _field(path: str) -> Callable[[Flow], object]:
    """The value at a dotted path ("source.namespace")."""
    return attrgetter(path)


def _items(path: str) -> Callable[[Flow], object]:
    """A repeated scalar field at path, as a list."""
    read = attrgetter(path)
    return lambda flow: read(flow)[:]


def _each(path: str, attribute: str) -> Callable[[Flow], object]:
    """One attribute of each message of a repeated field, as a list."""
    read = attrgetter(path)
    each = attrgetter(attribute)
    return lambda flow: list(map(each, read(flow)))


def _nanoseconds(flow: Flow) -> int:
    time = flow.time
    return time.seconds * 1_000_000_000 + time.nanos


_IPV4_MAPPED_PREFIX: Final = bytes(10) + b"\xff\xff"


def _address(path: str) -> Callable[[Flow], object]:
    """An IP field as the 16 bytes of an IPv6 address (IPv4 mapped), None when the
    flow has none (see accessors.ip_address)."""
    read = attrgetter(path)

    def packed(flow: Flow) -> bytes | None:
        address = accessors.ip_address(read(flow))
        if address is None:
            return None
        return _IPV4_MAPPED_PREFIX + address.packed if address.version == 4 else address.packed

    return packed


def _endpoint_columns(side: str) -> list[Column]:
    """The columns of one end of a flow ("source" or "destination")."""
    return [
        Column(f"{side}_id", "UInt32", _field(f"{side}.ID")),
        Column(f"{side}_identity", "UInt32", _field(f"{side}.identity"), (f"{side}_identity",)),
        Column(
            f"{side}_cluster_name",
            "LowCardinality(String)",
            _field(f"{side}.cluster_name"),
            (f"{side}_cluster_name",),
        ),
        Column(
            f"{side}_namespace",
            "LowCardinality(String)",
            _field(f"{side}.namespace"),
            (f"{side}_pod",),
        ),
        Column(f"{side}_pod_name", "String", _field(f"{side}.pod_name"), (f"{side}_pod",)),
        Column(
            f"{side}_labels",
            "Array(LowCardinality(String))",
            _items(f"{side}.labels"),
            (f"{side}_label",),
        ),
        Column(
            f"{side}_workload_names",
            "Array(LowCardinality(String))",
            _each(f"{side}.workloads", "name"),
            (f"{side}_workload",),
        ),
        Column(
            f"{side}_workload_kinds",
            "Array(LowCardinality(String))",
            _each(f"{side}.workloads", "kind"),
            (f"{side}_workload",),
        ),
        Column(f"{side}_pid", "UInt32", _field(f"{side}.process.pid")),
        Column(f"{side}_command", "LowCardinality(String)", _field(f"{side}.process.command")),
        Column(f"{side}_names", "Array(String)", _items(f"{side}_names"), (f"{side}_fqdn",)),
        Column(
            f"{side}_service_name",
            "LowCardinality(String)",
            _field(f"{side}_service.name"),
            (f"{side}_service",),
        ),
        Column(
            f"{side}_service_namespace",
            "LowCardinality(String)",
            _field(f"{side}_service.namespace"),
            (f"{side}_service",),
        ),
    ]


def _tcp_flags(flow: Flow) -> int:
    l4 = flow.l4
    return accessors.tcp_flag_mask(l4.TCP.flags) if l4.HasField("TCP") else 0


def _http_path(flow: Flow) -> str | None:
    return accessors.http_path(flow.l7.http.url)


def _http_headers(flow: Flow) -> list[tuple[str, str]]:
    return [(header.key, header.value) for header in flow.l7.http.headers]


COLUMNS: Final[tuple[Column, ...]] = (
    Column("time", "DateTime64(9, 'UTC')", _nanoseconds),
    Column("node_name", "LowCardinality(String)", _field("node_name"), ("node_name",)),
    Column("node_sequence", "UInt64", _field("node_sequence")),
    Column(
        "node_labels",
        "Array(LowCardinality(String))",
        _items("node_labels"),
        ("node_labels",),
    ),
    Column("uuid", "String", _field("uuid"), ("uuid",)),
    Column("verdict", _enum(flow_pb2.Verdict.DESCRIPTOR), _field("verdict"), ("verdict",)),
    Column(
        "drop_reason_desc",
        _enum(flow_pb2.DropReason.DESCRIPTOR),
        _field("drop_reason_desc"),
        ("drop_reason_desc",),
    ),
    Column("kernel_drop_reason", "LowCardinality(String)", _field("kernel_drop_reason")),
    Column("auth_type", _enum(flow_pb2.AuthType.DESCRIPTOR), _field("auth_type")),
    Column("flow_type", _enum(flow_pb2.FlowType.DESCRIPTOR), _field("Type")),
    Column("event_type", "Int32", _field("event_type.type"), ("event_type",)),
    Column("event_sub_type", "Int32", _field("event_type.sub_type"), ("event_type",)),
    Column(
        "trace_observation_point",
        _enum(flow_pb2.TraceObservationPoint.DESCRIPTOR),
        _field("trace_observation_point"),
    ),
    Column("trace_reason", _enum(flow_pb2.TraceReason.DESCRIPTOR), _field("trace_reason")),
    Column("policy_match_type", "UInt32", _field("policy_match_type")),
    Column(
        "traffic_direction",
        _enum(flow_pb2.TrafficDirection.DESCRIPTOR),
        _field("traffic_direction"),
        ("traffic_direction",),
    ),
    Column("is_reply", "Nullable(Bool)", accessors.is_reply, ("reply",)),
    Column(
        "ip_version",
        _enum(flow_pb2.IPVersion.DESCRIPTOR),
        _field("IP.ipVersion"),
        ("ip_version",),
    ),
    # Addresses are IPv6 with IPv4 mapped; NULL when the flow has none.
    Column("source_ip", "Nullable(IPv6)", _address("IP.source"), ("source_ip",)),
    Column(
        "source_ip_xlated",
        "Nullable(IPv6)",
        _address("IP.source_xlated"),
        ("source_ip_xlated",),
    ),
    Column("destination_ip", "Nullable(IPv6)", _address("IP.destination"), ("destination_ip",)),
    Column("encrypted", "Bool", _field("IP.encrypted"), ("encrypted",)),
    _oneof_column(
        "l4_protocol",
        "l4",
        flow_pb2.Layer4,
        "protocol",
        ("protocol", "source_port", "destination_port"),
    ),
    Column("source_port", "UInt32", lambda f: accessors.ports(f)[0], ("source_port",)),
    Column("destination_port", "UInt32", lambda f: accessors.ports(f)[1], ("destination_port",)),
    Column("tcp_flags", "UInt16", _tcp_flags, ("tcp_flags",)),
    Column("interface_index", "UInt32", _field("interface.index"), ("interface",)),
    Column("interface_name", "LowCardinality(String)", _field("interface.name"), ("interface",)),
    Column("ip_trace_id", "UInt64", _field("ip_trace_id.trace_id"), ("ip_trace_id",)),
    Column("trace_id", "String", _field("trace_context.parent.trace_id"), ("trace_id",)),
    *_endpoint_columns("source"),
    *_endpoint_columns("destination"),
    _oneof_column("l7_protocol", "l7", flow_pb2.Layer7, "record", ("protocol", "dns_query")),
    Column("l7_type", _enum(flow_pb2.L7FlowType.DESCRIPTOR), _field("l7.type")),
    Column("l7_latency_ns", "UInt64", _field("l7.latency_ns")),
    Column("dns_query", "String", _field("l7.dns.query"), ("dns_query",)),
    Column("dns_rcode", "UInt32", _field("l7.dns.rcode")),
    Column("dns_qtypes", "Array(LowCardinality(String))", _items("l7.dns.qtypes")),
    Column("http_code", "UInt32", _field("l7.http.code"), ("http_status_code",)),
    Column("http_method", "LowCardinality(String)", _field("l7.http.method"), ("http_method",)),
    Column("http_url", "String", _field("l7.http.url"), ("http_url",)),
    # NULL when the URL has no path to match (see accessors.http_path).
    Column("http_path", "Nullable(String)", _http_path, ("http_path",)),
    Column("http_protocol", "LowCardinality(String)", _field("l7.http.protocol")),
    Column(
        "http_headers",
        "Array(Tuple(key String, value String))",
        _http_headers,
        ("http_header",),
    ),
    Column("packets_forward", "UInt64", _field("counters.packets_forward")),
    Column("bytes_forward", "UInt64", _field("counters.bytes_forward")),
    Column("packets_reply", "UInt64", _field("counters.packets_reply")),
    Column("bytes_reply", "UInt64", _field("counters.bytes_reply")),
    Column("retransmits", "UInt32", _field("retransmits")),
    Column(FLOW_COLUMN, "String", lambda f: f.SerializeToString(), codec="ZSTD(3)"),
)

_BY_NAME: Final[dict[str, Column]] = {column.name: column for column in COLUMNS}
_TABLE_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?")


def column(name: str) -> Column:
    """The column called name; KeyError names it when there is none."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"the flow table has no column {name!r}") from None


def create_table_sql(table: str) -> str:
    """CREATE TABLE for the flow table ("table" or "database.table")."""
    if not _TABLE_NAME.fullmatch(table):
        raise ValueError(f"invalid table name {table!r}: expected [database.]name")
    columns = ",\n".join(f"    {column.ddl()}" for column in COLUMNS)
    return f"CREATE TABLE {table} (\n{columns}\n)\nENGINE = MergeTree\nORDER BY time"


def flows_to_columns(flows: Sequence[Flow]) -> dict[str, list[object]]:
    """Each column's values for flows, in COLUMNS order, for a column-oriented insert."""
    return {column.name: [column.value(flow) for flow in flows] for column in COLUMNS}


def flows_to_arrow(flows: Sequence[Flow]) -> Any:
    """flows as a pyarrow Table with the flow table's columns, for insert_arrow().

    The fast insert path (a few microseconds a row, against tens for a row
    given as Python values); needs pyarrow, from flowscope's store extra.
    """
    import pyarrow  # the store extra; the rest of flowscope does without it

    columns = flows_to_columns(flows)
    return pyarrow.table(
        {
            column.name: pyarrow.array(columns[column.name], _arrow_type(pyarrow, column.type))
            for column in COLUMNS
        }
    )


def _arrow_type(pyarrow: Any, clickhouse_type: str) -> Any:
    """The Arrow type ClickHouse reads into clickhouse_type, for the values of COLUMNS."""
    for wrapper in ("Nullable(", "LowCardinality("):
        if clickhouse_type.startswith(wrapper):
            return _arrow_type(pyarrow, clickhouse_type[len(wrapper) : -1])
    if clickhouse_type.startswith("Array("):
        return pyarrow.list_(_arrow_type(pyarrow, clickhouse_type[len("Array(") : -1]))
    if clickhouse_type.startswith("Tuple("):
        members = (member.split(" ", 1) for member in clickhouse_type[6:-1].split(", "))
        return pyarrow.struct([(name, _arrow_type(pyarrow, type_)) for name, type_ in members])
    if clickhouse_type.startswith(("Enum8(", "Enum16(")):
        return pyarrow.int8() if clickhouse_type.startswith("Enum8(") else pyarrow.int16()
    if clickhouse_type.startswith("DateTime64(9"):
        return pyarrow.timestamp("ns", "UTC")
    simple = {
        # Arrow binary, not string: the flow column holds protobuf bytes.
        "String": pyarrow.binary(),
        "Bool": pyarrow.bool_(),
        "IPv6": pyarrow.binary(16),
        "Int32": pyarrow.int32(),
        "UInt16": pyarrow.uint16(),
        "UInt32": pyarrow.uint32(),
        "UInt64": pyarrow.uint64(),
    }
    return simple[clickhouse_type]


def rows_to_flows(serialized: Iterable[bytes]) -> list[Flow]:
    """Flows from the `flow` column's values (read as bytes)."""
    return [Flow.FromString(blob) for blob in serialized]
