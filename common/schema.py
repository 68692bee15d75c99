"""The store's flow table: one Column per stored Flow field, in one declarative list.

Each Column names its ClickHouse column, type, codec and skip index, how its
value is read from a Flow, how it is written back into one, and which
FlowFilter fields the filter dimensions compile against it (common/filters).
DDL, inserts, reads and filter SQL are all derived from COLUMNS: a new field
means one more entry here.

Rows are compact: the `flow` column holds the serialized Flow *minus* the
top-level fields that the other columns rebuild exactly (the remainder), a
`present` bitmask keeps which of those fields' messages were set, and `uuid` is
stored only when it differs from the one derived from (node_name,
node_sequence) (derived_uuid). rows_to_flows() puts a Flow back together from
READ_SQL's columns, field for field.

Inserts are columnar: flows_to_arrow() gives a pyarrow Table for
clickhouse-connect's insert_arrow(), flows_to_columns() one list per column.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter
from typing import Any, Final

from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message

from flowscope.common import accessors
from flowscope.proto.flow import flow_pb2

Flow = flow_pb2.Flow
FLOW_COLUMN: Final = "flow"
PRESENT_COLUMN: Final = "present"

Reader = Callable[[Flow], object]
Writer = Callable[[Flow, Any], None]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the flow table.

    value reads the column's value from a Flow; filters lists the FlowFilter
    fields whose SQL reads this column; codec, when set, is the ClickHouse
    compression codec ("ZSTD(3)", "Delta, ZSTD"); index, when set, a skip
    index type ("bloom_filter(0.01)"). restore writes a value read back with
    the SQL expression `read` (default: the column) into a Flow; the
    column's top-level Flow field is then left out of the `flow` remainder.
    alias makes the column an ALIAS computed from the others (never inserted).
    path names the Flow field a column holds as it is, so that the converter
    reads all such fields in one call; root, the top-level field a computed
    value depends on alone (a path's first part otherwise).
    """

    name: str
    type: str
    value: Reader
    filters: tuple[str, ...] = ()
    codec: str = ""
    index: str = ""
    restore: Writer | None = None
    read: str = ""
    alias: str = ""
    path: str = ""
    root: str = ""

    def ddl(self) -> str:
        if self.alias:
            return f"{self.name} {self.type} ALIAS {self.alias}"
        codec = f" CODEC({self.codec})" if self.codec else ""
        return f"{self.name} {self.type}{codec}"

    @property
    def read_sql(self) -> str:
        return self.read or self.name


def _enum(enum: EnumDescriptor) -> str:
    """A ClickHouse Enum8/Enum16 type with the proto enum's names and numbers."""
    values = enum.values
    width = 8 if all(-128 <= value.number <= 127 for value in values) else 16
    members = ", ".join(f"'{value.name}' = {value.number}" for value in values)
    return f"Enum{width}({members})"


# Writers. Each sets a field only to a value other than its default: setting
# even a default marks the enclosing messages present, which `present` decides.
def _parent_and_name(path: str) -> tuple[Callable[[Flow], Any], str]:
    parent, _, name = path.rpartition(".")
    return (attrgetter(parent) if parent else (lambda flow: flow)), name


def _set(path: str) -> Writer:
    parent, name = _parent_and_name(path)

    def write(flow: Flow, value: Any) -> None:
        if value:
            setattr(parent(flow), name, value)

    return write


def _extend(path: str) -> Writer:
    read = attrgetter(path)

    def write(flow: Flow, values: Any) -> None:
        if values:
            read(flow).extend(values)

    return write


def _plain(
    name: str,
    type_: str,
    path: str,
    filters: tuple[str, ...] = (),
    codec: str = "",
    read: str = "",
) -> Column:
    """A column holding the scalar at path as it is, and writing it back."""
    return Column(
        name, type_, attrgetter(path), filters, codec, restore=_set(path), read=read, path=path
    )


def _enum_column(
    name: str, enum: EnumDescriptor, path: str, filters: tuple[str, ...] = ()
) -> Column:
    # Read back as the number: clickhouse-connect gives enums as their names.
    return _plain(name, _enum(enum), path, filters, read=f"CAST({name}, 'Int16')")


def _repeated(name: str, type_: str, path: str, filters: tuple[str, ...] = ()) -> Column:
    """A column holding the repeated scalar field at path as a list."""
    read = attrgetter(path)
    return Column(
        name, type_, lambda flow: read(flow)[:], filters, restore=_extend(path), path=path
    )


def _oneof_column(
    name: str,
    path: str,
    message: type[Message],
    oneof: str,
    filters: tuple[str, ...],
    restore: Writer | None = None,
) -> Column:
    """A column naming which case of a oneof is set: an Enum8 of the case names by
    field number, '' (0) when none is."""
    fields = message.DESCRIPTOR.oneofs_by_name[oneof].fields
    members = ", ".join(f"'{field.name}' = {field.number}" for field in fields)
    numbers = {field.name: field.number for field in fields}
    return Column(
        name,
        f"Enum8('' = 0, {members})",
        lambda flow: numbers.get(attrgetter(path)(flow).WhichOneof(oneof), 0),
        filters,
        restore=restore,
        read=f"CAST({name}, 'Int8')",
    )


def _nanoseconds(flow: Flow) -> int:
    time = flow.time
    return time.seconds * 1_000_000_000 + time.nanos


def _set_nanoseconds(flow: Flow, value: int) -> None:
    if value:
        flow.time.seconds, flow.time.nanos = divmod(value, 1_000_000_000)


_IPV4_MAPPED_PREFIX: Final = bytes(10) + b"\xff\xff"


@lru_cache(maxsize=65536)
def _packed_address(text: str) -> tuple[bytes | None, bool]:
    """An IP text as the 16 bytes of an IPv6 address (IPv4 mapped; None when it is
    no address), and whether the text is the address's canonical spelling, so
    that the column gives it back exactly."""
    address = accessors.ip_address(text)
    if address is None:
        return None, text == ""
    packed = _IPV4_MAPPED_PREFIX + address.packed if address.version == 4 else address.packed
    return packed, text == str(address)


def _address(path: str) -> Reader:
    """An IP field as a packed IPv6 address, None when the flow has none."""
    read = attrgetter(path)
    return lambda flow: _packed_address(read(flow))[0]


def _set_address(path: str) -> Writer:
    parent, name = _parent_and_name(path)

    def write(flow: Flow, value: Any) -> None:
        # clickhouse-connect gives IPv6 columns as ipaddress.IPv6Address.
        if value is not None:
            setattr(parent(flow), name, str(value.ipv4_mapped or value))

    return write


def _canonical_ip(flow: Flow) -> bool:
    """Whether the columns give the flow's IP message back exactly."""
    ip = flow.IP
    return all(_packed_address(text)[1] for text in (ip.source, ip.destination, ip.source_xlated))


_PORTED: Final = frozenset({"TCP", "UDP", "SCTP"})


def _ported_l4(flow: Flow) -> bool:
    """Whether the columns give the flow's l4 message back exactly: no case, or a
    case whose fields are all ports and TCP flags."""
    case = flow.l4.WhichOneof("protocol")
    return case is None or case in _PORTED


def _set_l4_case(flow: Flow, number: int) -> None:
    if number:
        getattr(flow.l4, flow_pb2.Layer4.DESCRIPTOR.fields_by_number[number].name).SetInParent()


def _set_port(index: int) -> Writer:
    attribute = ("source_port", "destination_port")[index]

    def write(flow: Flow, value: int) -> None:
        if value:
            setattr(getattr(flow.l4, flow.l4.WhichOneof("protocol") or "TCP"), attribute, value)

    return write


def _tcp_flags(flow: Flow) -> int:
    l4 = flow.l4
    return accessors.tcp_flag_mask(l4.TCP.flags) if l4.HasField("TCP") else 0


def _set_tcp_flags(flow: Flow, mask: int) -> None:
    for name, bit in accessors.TCP_FLAG_BITS:
        if mask & bit:
            setattr(flow.l4.TCP.flags, name, True)


def _workload_attribute(side: str, attribute: str) -> Reader:
    read = attrgetter(f"{side}.workloads")
    each = attrgetter(attribute)
    return lambda flow: list(map(each, read(flow)))


def _set_workloads(side: str, attribute: str) -> Writer:
    read = attrgetter(f"{side}.workloads")

    def write(flow: Flow, values: Sequence[str]) -> None:
        workloads = read(flow)
        while len(workloads) < len(values):
            workloads.add()
        for workload, value in zip(workloads, values, strict=False):
            setattr(workload, attribute, value)

    return write


def _is_reply(flow: Flow, value: bool | None) -> None:
    if value is not None:
        flow.is_reply.value = value


def _http_path(flow: Flow) -> str | None:
    return accessors.http_path(flow.l7.http.url)


def _http_headers(flow: Flow) -> list[tuple[str, str]]:
    return [(header.key, header.value) for header in flow.l7.http.headers]


_POLICY_LISTS: Final = (
    "egress_allowed_by",
    "ingress_allowed_by",
    "egress_denied_by",
    "ingress_denied_by",
)


def _policy_names(flow: Flow) -> list[str]:
    """The "namespace/name" of every policy the flow names, allowing or denying."""
    return [
        f"{policy.namespace}/{policy.name}"
        for field in _POLICY_LISTS
        for policy in getattr(flow, field)
    ]


# uuids derived from (node_name, node_sequence) are not stored: a version-8 UUID
# of 60 bits of MD5(node_name) and the 62-bit sequence, unique per node and
# sequence. DERIVED_UUID_SQL computes the same text in ClickHouse.
_SEQUENCE_VARIANT: Final = 1 << 63
_SEQUENCE_BITS: Final = (1 << 62) - 1


@lru_cache(maxsize=1024)
def _node_uuid_prefix(node_name: str) -> str:
    digest = hashlib.md5(node_name.encode(), usedforsecurity=False).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-8{digest[13:16]}-"


def derived_uuid(node_name: str, node_sequence: int) -> str:
    """The uuid flowscope derives for a flow from its node and sequence number."""
    tail = f"{(node_sequence & _SEQUENCE_BITS) | _SEQUENCE_VARIANT:016x}"
    return f"{_node_uuid_prefix(node_name)}{tail[:4]}-{tail[4:]}"


def _stored_uuid(flow: Flow) -> str:
    uuid = flow.uuid
    if flow.node_sequence and uuid == derived_uuid(flow.node_name, flow.node_sequence):
        return ""
    return uuid


_DERIVED_UUID_SQL: Final = (
    "concat(substring(lower(hex(MD5(node_name))), 1, 8), '-',"
    " substring(lower(hex(MD5(node_name))), 9, 4), '-8',"
    " substring(lower(hex(MD5(node_name))), 14, 3), '-',"
    " substring(lower(hex(bitOr(bitAnd(node_sequence, 0x3FFFFFFFFFFFFFFF),"
    " 0x8000000000000000))), 1, 4), '-',"
    " substring(lower(hex(bitOr(bitAnd(node_sequence, 0x3FFFFFFFFFFFFFFF),"
    " 0x8000000000000000))), 5, 12))"
)


def _endpoint_columns(side: str) -> list[Column]:
    """The columns of one end of a flow ("source" or "destination")."""
    return [
        _plain(f"{side}_id", "UInt32", f"{side}.ID", codec="ZSTD(1)"),
        _plain(f"{side}_identity", "UInt32", f"{side}.identity", (f"{side}_identity",), "ZSTD(1)"),
        _plain(
            f"{side}_cluster_name",
            "LowCardinality(String)",
            f"{side}.cluster_name",
            (f"{side}_cluster_name",),
        ),
        _plain(
            f"{side}_namespace", "LowCardinality(String)", f"{side}.namespace", (f"{side}_pod",)
        ),
        _plain(f"{side}_pod_name", "LowCardinality(String)", f"{side}.pod_name", (f"{side}_pod",)),
        _repeated(
            f"{side}_labels",
            "Array(LowCardinality(String))",
            f"{side}.labels",
            (f"{side}_label",),
        ),
        Column(
            f"{side}_workload_names",
            "Array(LowCardinality(String))",
            _workload_attribute(side, "name"),
            (f"{side}_workload",),
            restore=_set_workloads(side, "name"),
            root=side,
        ),
        Column(
            f"{side}_workload_kinds",
            "Array(LowCardinality(String))",
            _workload_attribute(side, "kind"),
            (f"{side}_workload",),
            restore=_set_workloads(side, "kind"),
            root=side,
        ),
        _plain(f"{side}_pid", "UInt32", f"{side}.process.pid"),
        _plain(f"{side}_command", "LowCardinality(String)", f"{side}.process.command"),
        _repeated(f"{side}_names", "Array(String)", f"{side}_names", (f"{side}_fqdn",)),
        _plain(
            f"{side}_service_name",
            "LowCardinality(String)",
            f"{side}_service.name",
            (f"{side}_service",),
        ),
        _plain(
            f"{side}_service_namespace",
            "LowCardinality(String)",
            f"{side}_service.namespace",
            (f"{side}_service",),
        ),
    ]


_BLOOM: Final = "bloom_filter(0.01)"
_COUNTER: Final = "T64, ZSTD(1)"

COLUMNS: Final[tuple[Column, ...]] = (
    Column(
        "time",
        "DateTime64(9, 'UTC')",
        _nanoseconds,
        codec="Delta, ZSTD(1)",
        restore=_set_nanoseconds,
        read="toUnixTimestamp64Nano(time)",
    ),
    _plain("node_name", "LowCardinality(String)", "node_name", ("node_name",)),
    _plain("node_sequence", "UInt64", "node_sequence", codec="Delta, ZSTD(1)"),
    _repeated("node_labels", "Array(LowCardinality(String))", "node_labels", ("node_labels",)),
    Column(
        "stored_uuid", "String", _stored_uuid, codec="ZSTD(1)", restore=_set("uuid"), read="uuid"
    ),
    Column(
        "uuid",
        "String",
        attrgetter("uuid"),
        ("uuid",),
        alias=(f"if(stored_uuid = '' AND node_sequence != 0, {_DERIVED_UUID_SQL}, stored_uuid)"),
    ),
    _enum_column("verdict", flow_pb2.Verdict.DESCRIPTOR, "verdict", ("verdict",)),
    _enum_column(
        "drop_reason_desc",
        flow_pb2.DropReason.DESCRIPTOR,
        "drop_reason_desc",
        ("drop_reason_desc",),
    ),
    _plain("kernel_drop_reason", "LowCardinality(String)", "kernel_drop_reason"),
    _enum_column("auth_type", flow_pb2.AuthType.DESCRIPTOR, "auth_type"),
    _enum_column("flow_type", flow_pb2.FlowType.DESCRIPTOR, "Type"),
    _plain("event_type", "Int32", "event_type.type", ("event_type",)),
    _plain("event_sub_type", "Int32", "event_type.sub_type", ("event_type",), "ZSTD(1)"),
    _enum_column(
        "trace_observation_point",
        flow_pb2.TraceObservationPoint.DESCRIPTOR,
        "trace_observation_point",
    ),
    _enum_column("trace_reason", flow_pb2.TraceReason.DESCRIPTOR, "trace_reason"),
    _plain("policy_match_type", "UInt32", "policy_match_type"),
    _enum_column(
        "traffic_direction",
        flow_pb2.TrafficDirection.DESCRIPTOR,
        "traffic_direction",
        ("traffic_direction",),
    ),
    Column("is_reply", "Nullable(Bool)", accessors.is_reply, ("reply",), restore=_is_reply),
    _enum_column("ip_version", flow_pb2.IPVersion.DESCRIPTOR, "IP.ipVersion", ("ip_version",)),
    # Addresses are IPv6 with IPv4 mapped; NULL when the flow has none.
    Column(
        "source_ip",
        "Nullable(IPv6)",
        _address("IP.source"),
        ("source_ip",),
        codec="ZSTD(1)",
        index=_BLOOM,
        restore=_set_address("IP.source"),
        root="IP",
    ),
    Column(
        "source_ip_xlated",
        "Nullable(IPv6)",
        _address("IP.source_xlated"),
        ("source_ip_xlated",),
        codec="ZSTD(1)",
        restore=_set_address("IP.source_xlated"),
        root="IP",
    ),
    Column(
        "destination_ip",
        "Nullable(IPv6)",
        _address("IP.destination"),
        ("destination_ip",),
        codec="ZSTD(1)",
        index=_BLOOM,
        restore=_set_address("IP.destination"),
        root="IP",
    ),
    _plain("encrypted", "Bool", "IP.encrypted", ("encrypted",)),
    _oneof_column(
        "l4_protocol",
        "l4",
        flow_pb2.Layer4,
        "protocol",
        ("protocol", "source_port", "destination_port"),
        restore=_set_l4_case,
    ),
    Column(
        "source_port",
        "UInt32",
        lambda f: accessors.ports(f)[0],
        ("source_port",),
        codec="T64, ZSTD(1)",
        index=_BLOOM,
        restore=_set_port(0),
    ),
    Column(
        "destination_port",
        "UInt32",
        lambda f: accessors.ports(f)[1],
        ("destination_port",),
        codec="T64, ZSTD(1)",
        index=_BLOOM,
        restore=_set_port(1),
    ),
    Column("tcp_flags", "UInt16", _tcp_flags, ("tcp_flags",), restore=_set_tcp_flags),
    _plain("interface_index", "UInt32", "interface.index", ("interface",), "ZSTD(1)"),
    # Not LowCardinality: interface names are per endpoint, thousands on a node.
    _plain("interface_name", "String", "interface.name", ("interface",), "ZSTD(1)"),
    _plain("ip_trace_id", "UInt64", "ip_trace_id.trace_id", ("ip_trace_id",)),
    _plain("ip_trace_option_type", "UInt32", "ip_trace_id.ip_option_type"),
    _plain("trace_id", "String", "trace_context.parent.trace_id", ("trace_id",)),
    *_endpoint_columns("source"),
    *_endpoint_columns("destination"),
    _oneof_column("l7_protocol", "l7", flow_pb2.Layer7, "record", ("protocol", "dns_query")),
    # The L7 columns serve filters; the l7 message itself stays in the remainder.
    Column("l7_type", _enum(flow_pb2.L7FlowType.DESCRIPTOR), attrgetter("l7.type"), path="l7.type"),
    Column("l7_latency_ns", "UInt64", attrgetter("l7.latency_ns"), path="l7.latency_ns"),
    Column("dns_query", "String", attrgetter("l7.dns.query"), ("dns_query",), path="l7.dns.query"),
    Column("dns_rcode", "UInt32", attrgetter("l7.dns.rcode"), path="l7.dns.rcode"),
    Column("dns_qtypes", "Array(LowCardinality(String))", lambda f: f.l7.dns.qtypes[:]),
    Column(
        "http_code",
        "UInt32",
        attrgetter("l7.http.code"),
        ("http_status_code",),
        path="l7.http.code",
    ),
    Column(
        "http_method",
        "LowCardinality(String)",
        attrgetter("l7.http.method"),
        ("http_method",),
        path="l7.http.method",
    ),
    Column("http_url", "String", attrgetter("l7.http.url"), ("http_url",), path="l7.http.url"),
    # NULL when the URL has no path to match (see accessors.http_path).
    Column("http_path", "Nullable(String)", _http_path, ("http_path",)),
    Column(
        "http_protocol",
        "LowCardinality(String)",
        attrgetter("l7.http.protocol"),
        path="l7.http.protocol",
    ),
    Column(
        "http_headers",
        "Array(Tuple(key String, value String))",
        _http_headers,
        ("http_header",),
    ),
    # Policies stay in the remainder; their names serve verdict summaries.
    Column("policy_names", "Array(LowCardinality(String))", _policy_names),
    _plain("packets_forward", "UInt64", "counters.packets_forward", codec=_COUNTER),
    _plain("bytes_forward", "UInt64", "counters.bytes_forward", codec=_COUNTER),
    _plain("packets_reply", "UInt64", "counters.packets_reply", codec=_COUNTER),
    _plain("bytes_reply", "UInt64", "counters.bytes_reply", codec=_COUNTER),
    _plain("retransmits", "UInt32", "retransmits", codec=_COUNTER),
    Column(PRESENT_COLUMN, "UInt16", lambda f: _presence(f)),
    Column(FLOW_COLUMN, "String", lambda f: _remainder(f), codec="ZSTD(3)"),
)

# The remainder leaves out the top-level fields the columns rebuild: always
# these, and IP and l4 when their guard says the columns give them back exactly.
_REBUILT: Final = (
    "time",
    "uuid",
    "verdict",
    "drop_reason_desc",
    "kernel_drop_reason",
    "auth_type",
    "Type",
    "node_name",
    "node_sequence",
    "node_labels",
    "event_type",
    "trace_observation_point",
    "trace_reason",
    "policy_match_type",
    "traffic_direction",
    "is_reply",
    "interface",
    "ip_trace_id",
    "trace_context",
    "source",
    "destination",
    "source_names",
    "destination_names",
    "source_service",
    "destination_service",
    "counters",
    "retransmits",
)
_GUARDED: Final[dict[str, tuple[Callable[[Flow], bool], frozenset[str]]]] = {
    "IP": (
        _canonical_ip,
        frozenset({"ip_version", "source_ip", "source_ip_xlated", "destination_ip", "encrypted"}),
    ),
    "l4": (
        _ported_l4,
        frozenset({"l4_protocol", "source_port", "destination_port", "tcp_flags"}),
    ),
}
# Messages among the rebuilt fields whose presence the `present` bitmask keeps
# (a message can be set and empty); bit i is path i.
_PRESENCE_PATHS: Final = (
    "time",
    "event_type",
    "interface",
    "ip_trace_id",
    "trace_context",
    "trace_context.parent",
    "source",
    "source.process",
    "destination",
    "destination.process",
    "source_service",
    "destination_service",
    "counters",
    "IP",
    "l4",
    "l4.TCP.flags",
)
_PRESENCE: Final = tuple(
    (path.partition(".")[0], *_parent_and_name(path), 1 << bit)
    for bit, path in enumerate(_PRESENCE_PATHS)
)


def _presence(flow: Flow) -> int:
    mask = 0
    for _, parent, name, bit in _PRESENCE:
        if parent(flow).HasField(name):
            mask |= bit
    return mask


def _remainder(flow: Flow) -> bytes:
    """The serialized flow without the fields the columns rebuild."""
    rest: Message = Flow()
    rest.CopyFrom(flow)
    clear = rest.ClearField
    for name in _REBUILT:
        clear(name)
    for name, (exact, _) in _GUARDED.items():
        if exact(flow):
            clear(name)
    return rest.SerializeToString()


_BY_NAME: Final[dict[str, Column]] = {column.name: column for column in COLUMNS}
_TABLE_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?")
STORED: Final[tuple[Column, ...]] = tuple(column for column in COLUMNS if not column.alias)
_RESTORED: Final = tuple(
    (column, column.restore) for column in COLUMNS if column.restore is not None
)
# What rows_to_flows reads: the remainder, the presence mask, the restored columns.
READ_SQL: Final[tuple[str, ...]] = (
    FLOW_COLUMN,
    PRESENT_COLUMN,
    *(column.read_sql for column, _ in _RESTORED),
)
READ_FORMATS: Final = {FLOW_COLUMN: "bytes"}


def column(name: str) -> Column:
    """The column called name; KeyError names it when there is none."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"the flow table has no column {name!r}") from None


def _check_table_name(table: str) -> str:
    """table ("table" or "database.table") when it is a plain identifier; ValueError otherwise."""
    if not _TABLE_NAME.fullmatch(table):
        raise ValueError(f"invalid table name {table!r}: expected [database.]name")
    return table


def create_table_sql(table: str) -> str:
    """CREATE TABLE for a plain flow table ("table" or "database.table"), ordered by
    time; the store's own tables (relay/store) add keys, indexes and TTLs."""
    _check_table_name(table)
    columns = ",\n".join(f"    {column.ddl()}" for column in COLUMNS)
    return f"CREATE TABLE {table} (\n{columns}\n)\nENGINE = MergeTree\nORDER BY time"


def _root(column: Column) -> str:
    return column.root or (column.path.partition(".")[0] if "." in column.path else "")


# Endpoints and address pairs repeat from flow to flow: their columns are
# computed once per distinct serialized message in a batch.
_MEMOIZED: Final = {
    root: tuple(column for column in STORED if _root(column) == root)
    for root in ("source", "destination", "IP")
}
_PATH_COLUMNS: Final = tuple(c for c in STORED if c.path and _root(c) not in _MEMOIZED)
_READ_PATHS: Final = attrgetter(*(column.path for column in _PATH_COLUMNS))
_COMPUTED_COLUMNS: Final = tuple(c for c in STORED if not c.path and _root(c) not in _MEMOIZED)


def flows_to_columns(flows: Sequence[Flow]) -> dict[str, Sequence[object]]:
    """Each stored column's values for flows, in COLUMNS order, for a column-oriented
    insert. Fields held as they are come out of one attribute read per flow;
    repeated ones as protobuf containers (sequences)."""
    by_name: dict[str, Sequence[object]] = {}
    if flows:
        rows = map(_READ_PATHS, flows)
        by_name.update(zip((c.name for c in _PATH_COLUMNS), zip(*rows, strict=True), strict=True))
    else:
        by_name.update((c.name, ()) for c in _PATH_COLUMNS)
    for root, group in _MEMOIZED.items():
        by_name.update(zip((c.name for c in group), _memoized(flows, root, group), strict=True))
    for column in _COMPUTED_COLUMNS:
        by_name[column.name] = list(map(column.value, flows))
    return {column.name: by_name[column.name] for column in STORED}


def _memoized(
    flows: Sequence[Flow], root: str, group: tuple[Column, ...]
) -> list[Sequence[object]]:
    """group's columns for flows, computed once per distinct value of the field root."""
    read = attrgetter(root)
    cache: dict[bytes, tuple[object, ...]] = {}
    rows = []
    for flow in flows:
        key = read(flow).SerializeToString()
        row = cache.get(key)
        if row is None:
            row = cache[key] = tuple(column.value(flow) for column in group)
        rows.append(row)
    return [list(values) for values in zip(*rows, strict=True)] if rows else [[] for _ in group]


def flows_to_arrow(flows: Sequence[Flow]) -> Any:
    """flows as a pyarrow Table with the flow table's stored columns, for insert_arrow().

    Needs pyarrow, from flowscope's store extra.
    """
    import pyarrow  # the store extra; the rest of flowscope does without it

    columns = flows_to_columns(flows)
    return pyarrow.table(
        {column.name: _arrow_array(pyarrow, column, columns[column.name]) for column in STORED}
    )


def _arrow_array(pyarrow: Any, column: Column, values: Sequence[object]) -> Any:
    arrow_type = _arrow_type(pyarrow, column.type)
    if pyarrow.types.is_timestamp(arrow_type):
        # From integers, then viewed: pyarrow converts Python ints to timestamps
        # one by one, tens of times slower.
        return pyarrow.array(values, pyarrow.int64()).view(arrow_type)
    return pyarrow.array(values, arrow_type)


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


def rows_to_flows(rows: Iterable[Sequence[Any]]) -> list[Flow]:
    """Flows from rows of READ_SQL's columns (read with column_formats=READ_FORMATS)."""
    return [_row_to_flow(row) for row in rows]


def _row_to_flow(row: Sequence[Any]) -> Flow:
    flow = Flow.FromString(row[0])
    message: Message = flow
    kept = {name for name in _GUARDED if message.HasField(name)}
    skipped = frozenset().union(*(_GUARDED[name][1] for name in kept))
    present = row[1]
    for root, parent, name, bit in _PRESENCE:
        if present & bit and root not in kept:
            getattr(parent(flow), name).SetInParent()
    for (column, restore), value in zip(_RESTORED, row[2:], strict=True):
        if column.name not in skipped:
            restore(flow, value)
    return flow
