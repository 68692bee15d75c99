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
Or ClickHouse decodes the flows itself: each Column's `ingest` SQL computes
its value from a row of Flow fields that ClickHouse's Protobuf format read
(`received(path)` names one) beside the same flow read as a Remainder (`kept`:
the fields the remainder keeps, messages left serialized), from which SQL
writes the remainder (relay/store/ddl.py builds the landing table and its view
from these, relay/store/received.py the format schema).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from operator import attrgetter
from typing import Any, Final, cast

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from flowscope.common import accessors
from flowscope.proto.flow import flow_pb2

Flow = flow_pb2.Flow
FLOW_COLUMN: Final = "flow"
PRESENT_COLUMN: Final = "present"
# The ingest row: the Flow's fields under RECEIVED_PREFIX ("received_source"),
# beside KEPT_FIELD, the flow read as a Remainder (remainder_message()).
RECEIVED_PREFIX: Final = "received"
KEPT_FIELD: Final = "kept"
# The ingest row's kept fields serialized (kept_sql()): computed once per row, in
# the view's inner query, then read by the flow column's ingest SQL.
WRITTEN_FIELD: Final = "kept_written"

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
    value depends on alone (a path's first part otherwise). ingest is the SQL
    computing the value from an ingest row (received(path) for a path's).
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
    ingest: str = ""

    def ddl(self) -> str:
        if self.alias:
            return f"{self.name} {self.type} ALIAS {self.alias}"
        codec = f" CODEC({self.codec})" if self.codec else ""
        return f"{self.name} {self.type}{codec}"

    @property
    def read_sql(self) -> str:
        return self.read or self.name


def received(path: str) -> str:
    """The SQL reading the Flow field at path from an ingest row, where each
    message is a Nullable(Tuple) (NULL when absent; read as its defaults)."""
    top, *names = path.split(".")
    sql = f"{RECEIVED_PREFIX}_{top}"
    for name in names:
        sql = f"tupleElement(assumeNotNull({sql}), '{name}')"
    return sql


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
        name,
        type_,
        attrgetter(path),
        filters,
        codec,
        restore=_set(path),
        read=read,
        path=path,
        ingest=received(path),
    )


def _enum_column(
    name: str, enum: EnumDescriptor, path: str, filters: tuple[str, ...] = ()
) -> Column:
    # Read back as the number: clickhouse-connect gives enums as their names.
    column = _plain(name, _enum(enum), path, filters, read=f"CAST({name}, 'Int16')")
    return replace(column, ingest=_known_sql(received(path), enum))


def _known_sql(sql: str, enum: EnumDescriptor) -> str:
    """SQL of an enum's number when the enum has it, else 0: an Enum column refuses
    other numbers (the remainder keeps them, see _unknown_enums_sql)."""
    return f"if({sql} IN ({_numbers(enum)}), {sql}, 0)"


def _numbers(enum: EnumDescriptor) -> str:
    return ", ".join(str(value.number) for value in enum.values)


def _varint_sql(sql: str) -> str:
    """SQL of an integer's protobuf varint (negative numbers as 64-bit two's complement)."""
    value = f"toUInt64({sql})"
    more = f"if(i < 9 AND bitShiftRight({value}, 7 * (i + 1)) != 0, 128, 0)"
    byte = f"char(bitOr(bitAnd(bitShiftRight({value}, 7 * i), 127), {more}))"
    used = f"arrayFilter(i -> i = 0 OR bitShiftRight({value}, 7 * i) != 0, range(10))"
    return f"arrayStringConcat(arrayMap(i -> {byte}, {used}))"


def _repeated(name: str, type_: str, path: str, filters: tuple[str, ...] = ()) -> Column:
    """A column holding the repeated scalar field at path as a list."""
    read = attrgetter(path)
    return Column(
        name,
        type_,
        lambda flow: read(flow)[:],
        filters,
        restore=_extend(path),
        path=path,
        ingest=received(path),
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
        ingest=_case_sql({f"{path}.{field.name}": str(field.number) for field in fields}, "0"),
    )


def _case_sql(cases: dict[str, str], otherwise: str) -> str:
    """SQL: the value of the first oneof case (a path) that is set, else otherwise."""
    branches = ", ".join(f"{received(path)} IS NOT NULL, {value}" for path, value in cases.items())
    return f"multiIf({branches}, {otherwise})"


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
    if address.version == 4:
        return _IPV4_MAPPED_PREFIX + address.packed, text == str(address)
    # A zone is not kept; ClickHouse spells ::/96 with an IPv4 tail (_exact_ip_sql).
    spelled = not address.scope_id and not (int(address) >> 32 == 0 and int(address) >> 16)
    return address.packed, spelled and text == str(address)


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


@lru_cache(maxsize=65536)
def _exact_ip(data: bytes) -> bool:
    """Whether the columns give a serialized IP message back exactly."""
    ip = flow_pb2.IP.FromString(data)
    texts = (ip.source, ip.destination, ip.source_xlated)
    return ip.ipVersion in _IP_VERSIONS and all(_packed_address(text)[1] for text in texts)


_IP_VERSIONS: Final = frozenset(value.number for value in flow_pb2.IPVersion.DESCRIPTOR.values)


# The tags of the l4 cases whose fields are all ports and TCP flags (field
# number << 3 | length-delimited).
_PORTED_CASES: Final = ("TCP", "UDP", "SCTP")
_PORTED_TAGS: Final = frozenset(
    flow_pb2.Layer4.DESCRIPTOR.fields_by_name[name].number << 3 | 2 for name in _PORTED_CASES
)


def _ported_l4(data: bytes) -> bool:
    """Whether the columns give a serialized l4 message back exactly: no case, or
    one case (of fewer than 128 bytes) whose fields are all ports and TCP flags."""
    return not data or (data[0] in _PORTED_TAGS and len(data) == 2 + data[1])


def _exact_ip_sql() -> str:
    """SQL: whether the columns give an ingest row's IP back exactly (_exact_ip):
    each address empty or spelled as the column gives it back, never with an
    IPv4 tail after IPv6 groups."""
    checks = [f"{received('IP.ipVersion')} IN ({_numbers(flow_pb2.IPVersion.DESCRIPTOR)})"]
    for name in ("source", "destination", "source_xlated"):
        text = received(f"IP.{name}")
        spelled = (
            f"replaceRegexpOne(IPv6NumToString(toIPv6OrNull({text})),"
            " '^::ffff:([0-9.]+)$', '\\\\1')"
        )
        checks.append(
            f"({text} = '' OR (ifNull({text} = {spelled}, false)"
            f" AND (position({text}, '.') = 0 OR isIPv4String({text}))))"
        )
    return " AND ".join(checks)


def _ported_l4_sql(data: str) -> str:
    """SQL: _ported_l4 of serialized l4 bytes."""
    tags = ", ".join(str(tag) for tag in sorted(_PORTED_TAGS))
    return (
        f"(length({data}) = 0 OR (reinterpretAsUInt8(substring({data}, 1, 1)) IN ({tags})"
        f" AND length({data}) = 2 + reinterpretAsUInt8(substring({data}, 2, 1))))"
    )


def sql_string(text: str) -> str:
    """text as a ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def http_path_sql(url: str) -> str:
    """SQL of accessors.http_path(url), from the same patterns."""
    groups = f"extractGroups({url}, {sql_string(accessors.URL_PARTS)})"
    scheme, authority, path = (f"{groups}[{index}]" for index in (1, 2, 3))
    decoded = f"decodeURLComponent({path})"
    control = f"match({url}, {sql_string(accessors.URL_CONTROL)})"
    brackets = f"match({authority}, {sql_string(accessors.URL_BRACKETS)})"
    bracketed = f"match({authority}, {sql_string(accessors.URL_BRACKETED_HOST)})"
    bad_escape = f"match({path}, {sql_string(accessors.URL_BAD_ESCAPE)})"
    return (
        f"multiIf({control} OR ({scheme} = '' AND NOT startsWith({url}, '/')), NULL,"
        f" {brackets} AND NOT {bracketed}, NULL,"
        f" {bad_escape} OR NOT isValidUTF8({decoded}), NULL, {decoded})"
    )


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


def _port_sql(name: str) -> str:
    return _case_sql({f"l4.{case}": received(f"l4.{case}.{name}") for case in _PORTED_CASES}, "0")


def _set_tcp_flags(flow: Flow, mask: int) -> None:
    for name, bit in accessors.TCP_FLAG_BITS:
        if mask & bit:
            setattr(flow.l4.TCP.flags, name, True)


def _workload_attribute(side: str, attribute: str) -> Reader:
    read = attrgetter(f"{side}.workloads")
    each = attrgetter(attribute)
    return lambda flow: list(map(each, read(flow)))


def _workload_sql(side: str, attribute: str) -> str:
    return f"arrayMap(w -> tupleElement(w, '{attribute}'), {received(side + '.workloads')})"


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
# sequence. _derived_uuid_sql() computes the same text in ClickHouse.
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


def _derived_uuid_sql(node_name: str, node_sequence: str) -> str:
    """SQL computing derived_uuid() from the SQL of a node name and sequence."""
    digest = f"lower(hex(MD5({node_name})))"
    tail = f"lower(hex(bitOr(bitAnd({node_sequence}, 0x3FFFFFFFFFFFFFFF), 0x8000000000000000)))"
    return (
        f"concat(substring({digest}, 1, 8), '-', substring({digest}, 9, 4), '-8',"
        f" substring({digest}, 14, 3), '-', substring({tail}, 1, 4), '-',"
        f" substring({tail}, 5, 12))"
    )


def _stored_uuid_sql() -> str:
    """SQL of the stored_uuid of an ingest row: '' when the uuid is the derived one."""
    uuid, sequence = received("uuid"), received("node_sequence")
    derived = _derived_uuid_sql(received("node_name"), sequence)
    return f"if({sequence} != 0 AND {uuid} = {derived}, '', {uuid})"


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
            ingest=_workload_sql(side, "name"),
        ),
        Column(
            f"{side}_workload_kinds",
            "Array(LowCardinality(String))",
            _workload_attribute(side, "kind"),
            (f"{side}_workload",),
            restore=_set_workloads(side, "kind"),
            root=side,
            ingest=_workload_sql(side, "kind"),
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


def _unknown_enums_sql() -> str:
    """SQL appending to a remainder the top-level enum fields whose number their
    enum lacks (their columns hold 0): a flow from a newer node keeps them."""
    appended = []
    for field in Flow.DESCRIPTOR.fields:
        if field.enum_type is None or field.name not in _REBUILT:
            continue
        sql = received(field.name)
        tag = "".join(f"\\x{byte:02x}" for byte in varint(field.number << 3))
        numbers = _numbers(field.enum_type)
        appended.append(f"if({sql} IN ({numbers}), '', concat('{tag}', {_varint_sql(sql)}))")
    return ", ".join(appended)


def varint(value: int) -> bytes:
    """A non-negative integer as a protobuf varint."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _l7(name: str, type_: str, path: str, filters: tuple[str, ...] = ()) -> Column:
    """A column holding an l7 field as it is: the l7 message itself stays in the
    remainder, so the column is never written back."""
    return Column(name, type_, attrgetter(path), filters, path=path, ingest=received(path))


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


def _presence_sql() -> str:
    """SQL of the `present` bitmask of an ingest row."""
    bits = (
        f"if({received(path)} IS NULL, 0, {1 << bit})" for bit, path in enumerate(_PRESENCE_PATHS)
    )
    return f"toUInt16({' + '.join(bits)})"


_REPEATED: Final = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
_OPTIONAL: Final = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL


def _remainder_view() -> type[Message]:
    """The Remainder message: a Flow's fields but the rebuilt ones, in number
    order, messages as bytes (not parsed), enums as numbers; proto2, so that a
    message set empty stays set. Python reads serialized flows with it
    (remainder()), ClickHouse an ingest row's `kept` (relay/store/received.py)."""
    file = descriptor_pb2.FileDescriptorProto(
        name="flowscope/store/remainder.proto", package="flowscope.store", syntax="proto2"
    )
    view = file.message_type.add(name="Remainder")
    types = {FieldDescriptor.TYPE_MESSAGE: FieldDescriptor.TYPE_BYTES}
    types[FieldDescriptor.TYPE_ENUM] = FieldDescriptor.TYPE_INT32
    for field in sorted(Flow.DESCRIPTOR.fields, key=attrgetter("number")):
        if field.name in _REBUILT:
            continue
        view.field.add(
            name=field.name,
            number=field.number,
            type=types.get(field.type, field.type),
            label=_REPEATED if field.is_repeated else _OPTIONAL,
        )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("flowscope.store.Remainder"))


_RemainderView: Final = _remainder_view()
def remainder_message() -> Descriptor:
    """The Remainder message's descriptor (see _remainder_view)."""
    return cast(Descriptor, _RemainderView.DESCRIPTOR)


def kept_sql() -> str:
    """SQL serializing the fields of an ingest row's `kept` tuple that its remainder
    holds (IP and l4 only when the columns do not give them back), with ClickHouse's
    Protobuf format, as the top-level fields of the landing row's message
    (relay/store/received.py; the insert names it in format_schema). The format
    puts the message's length first, which the flow column's SQL skips."""
    fields = []
    for field in remainder_message().fields:
        value = f"tupleElement({KEPT_FIELD}, '{field.name}')"
        if field.name == "IP":
            value = f"if({_exact_ip_sql()}, NULL, {value})"
        elif field.name == "l4":
            value = f"if({_ported_l4_sql(f'ifNull({value}, {_EMPTY})')}, NULL, {value})"
        fields.append(f"{value} AS {field.name}")
    return f"formatRow('Protobuf', {', '.join(fields)})"


def _remainder_sql() -> str:
    """SQL of the remainder: kept_sql()'s message without its length (a varint: one
    byte, and one more for each before it with the high bit set)."""
    continued = [
        f"reinterpretAsUInt8(substring({WRITTEN_FIELD}, {index}, 1)) >= 128"
        for index in range(1, 5)
    ]
    skipped = " + ".join(f"({' AND '.join(continued[:count])})" for count in range(1, 5))
    return f"substring({WRITTEN_FIELD}, 2 + {skipped})"


_EMPTY: Final = "''"


def remainder(data: bytes) -> bytes:
    """From a serialized flow, its remainder: the flow without the fields the
    columns rebuild, in one parse that leaves nested messages as bytes."""
    view: Any = _RemainderView.FromString(data)
    view.DiscardUnknownFields()  # the rebuilt fields, unknown to the view
    if _exact_ip(view.IP):
        view.ClearField("IP")
    if _ported_l4(view.l4):
        view.ClearField("l4")
    return bytes(view.SerializeToString())


def _remainder(flow: Flow) -> bytes:
    return remainder(flow.SerializeToString())


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
        ingest=(
            f"fromUnixTimestamp64Nano(toInt64({received('time.seconds')}) * 1000000000"
            f" + {received('time.nanos')}, 'UTC')"
        ),
    ),
    _plain("node_name", "LowCardinality(String)", "node_name", ("node_name",)),
    _plain("node_sequence", "UInt64", "node_sequence", codec="Delta, ZSTD(1)"),
    _repeated("node_labels", "Array(LowCardinality(String))", "node_labels", ("node_labels",)),
    Column(
        "stored_uuid",
        "String",
        _stored_uuid,
        codec="ZSTD(1)",
        restore=_set("uuid"),
        read="uuid",
        ingest=_stored_uuid_sql(),
    ),
    Column(
        "uuid",
        "String",
        attrgetter("uuid"),
        ("uuid",),
        alias=(
            "if(stored_uuid = '' AND node_sequence != 0,"
            f" {_derived_uuid_sql('node_name', 'node_sequence')}, stored_uuid)"
        ),
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
    Column(
        "is_reply",
        "Nullable(Bool)",
        accessors.is_reply,
        ("reply",),
        restore=_is_reply,
        ingest=f"if({received('is_reply')} IS NULL, NULL, {received('is_reply.value')})",
    ),
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
        ingest=f"toIPv6OrNull({received('IP.source')})",
    ),
    Column(
        "source_ip_xlated",
        "Nullable(IPv6)",
        _address("IP.source_xlated"),
        ("source_ip_xlated",),
        codec="ZSTD(1)",
        restore=_set_address("IP.source_xlated"),
        root="IP",
        ingest=f"toIPv6OrNull({received('IP.source_xlated')})",
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
        ingest=f"toIPv6OrNull({received('IP.destination')})",
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
        ingest=_port_sql("source_port"),
    ),
    Column(
        "destination_port",
        "UInt32",
        lambda f: accessors.ports(f)[1],
        ("destination_port",),
        codec="T64, ZSTD(1)",
        index=_BLOOM,
        restore=_set_port(1),
        ingest=_port_sql("destination_port"),
    ),
    Column(
        "tcp_flags",
        "UInt16",
        _tcp_flags,
        ("tcp_flags",),
        restore=_set_tcp_flags,
        ingest=" + ".join(
            f"toUInt16({received('l4.TCP.flags.' + name)}) * {bit}"
            for name, bit in accessors.TCP_FLAG_BITS
        ),
    ),
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
    replace(
        _l7("l7_type", _enum(flow_pb2.L7FlowType.DESCRIPTOR), "l7.type"),
        ingest=_known_sql(received("l7.type"), flow_pb2.L7FlowType.DESCRIPTOR),
    ),
    _l7("l7_latency_ns", "UInt64", "l7.latency_ns"),
    _l7("dns_query", "String", "l7.dns.query", ("dns_query",)),
    _l7("dns_rcode", "UInt32", "l7.dns.rcode"),
    Column(
        "dns_qtypes",
        "Array(LowCardinality(String))",
        lambda f: f.l7.dns.qtypes[:],
        ingest=received("l7.dns.qtypes"),
    ),
    _l7("http_code", "UInt32", "l7.http.code", ("http_status_code",)),
    _l7("http_method", "LowCardinality(String)", "l7.http.method", ("http_method",)),
    _l7("http_url", "String", "l7.http.url", ("http_url",)),
    # NULL when the URL has no path to match (see accessors.http_path).
    Column(
        "http_path",
        "Nullable(String)",
        _http_path,
        ("http_path",),
        ingest=http_path_sql(received("l7.http.url")),
    ),
    _l7("http_protocol", "LowCardinality(String)", "l7.http.protocol"),
    Column(
        "http_headers",
        "Array(Tuple(key String, value String))",
        _http_headers,
        ("http_header",),
        ingest=received("l7.http.headers"),
    ),
    # Policies stay in the remainder; their names serve verdict summaries.
    Column(
        "policy_names",
        "Array(LowCardinality(String))",
        _policy_names,
        ingest="arrayConcat("
        + ", ".join(
            "arrayMap(p -> concat(tupleElement(p, 'namespace'), '/', tupleElement(p, 'name')),"
            f" {received(field)})"
            for field in _POLICY_LISTS
        )
        + ")",
    ),
    _plain("packets_forward", "UInt64", "counters.packets_forward", codec=_COUNTER),
    _plain("bytes_forward", "UInt64", "counters.bytes_forward", codec=_COUNTER),
    _plain("packets_reply", "UInt64", "counters.packets_reply", codec=_COUNTER),
    _plain("bytes_reply", "UInt64", "counters.bytes_reply", codec=_COUNTER),
    _plain("retransmits", "UInt32", "retransmits", codec=_COUNTER),
    Column(PRESENT_COLUMN, "UInt16", lambda f: _presence(f), ingest=_presence_sql()),
    Column(
        FLOW_COLUMN,
        "String",
        lambda f: _remainder(f),
        codec="ZSTD(3)",
        ingest=f"concat({_remainder_sql()}, {_unknown_enums_sql()})",
    ),
)

# The columns that rebuild IP and l4 exactly when their guard says so.
_GUARDED: Final[dict[str, frozenset[str]]] = {
    "IP": frozenset({"ip_version", "source_ip", "source_ip_xlated", "destination_ip", "encrypted"}),
    "l4": frozenset({"l4_protocol", "source_port", "destination_port", "tcp_flags"}),
}
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
    skipped = frozenset().union(*(_GUARDED[name] for name in kept))
    present = row[1]
    for root, parent, name, bit in _PRESENCE:
        if present & bit and root not in kept:
            getattr(parent(flow), name).SetInParent()
    for (column, restore), value in zip(_RESTORED, row[2:], strict=True):
        if column.name not in skipped:
            restore(flow, value)
    return flow
