"""Flows with every field set go into the flow table and come back unchanged."""

from __future__ import annotations

import ipaddress

import pytest
from clickhouse_store import Store
from google.protobuf import any_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from flowscope.common import schema
from flowscope.proto.flow import flow_pb2

pytestmark = pytest.mark.store

_STRING_FIELDS_WITH_SYNTAX = {
    # field full name -> a value the field's own syntax accepts
    "flow.IP.source": "10.0.0.1",
    "flow.IP.destination": "fd00::2",
    "flow.IP.source_xlated": "192.168.1.10",
}


# Messages _fill sets as a whole, as their fields have a syntax of their own.
_WELL_KNOWN = {"google.protobuf.Timestamp", "google.protobuf.Any"}


def _fill(message: Message, variant: int) -> None:
    """Set every field of message (recursively); variant picks the oneof cases."""
    if isinstance(message, Timestamp):
        message.FromNanoseconds((1742555931 + variant) * 1_000_000_000 + 123456789)
        return
    if isinstance(message, any_pb2.Any):
        message.Pack(flow_pb2.Emitter(name=f"packed-{variant}"))
        return
    descriptor = message.DESCRIPTOR
    chosen = {
        oneof.name: oneof.fields[variant % len(oneof.fields)].name for oneof in descriptor.oneofs
    }
    for field in descriptor.fields:
        oneof = field.containing_oneof
        if oneof is not None and chosen[oneof.name] != field.name:
            continue
        _fill_field(message, field, variant)


def _value(field: FieldDescriptor, variant: int, index: int) -> object:
    if field.enum_type is not None:
        numbers = [value.number for value in field.enum_type.values if value.number]
        return numbers[(variant + index) % len(numbers)]
    if field.type == FieldDescriptor.TYPE_BOOL:
        return True
    if field.type == FieldDescriptor.TYPE_STRING:
        return _STRING_FIELDS_WITH_SYNTAX.get(field.full_name, f"{field.name}-{variant}-{index}")
    if field.type == FieldDescriptor.TYPE_BYTES:
        return bytes([variant, index, 0, 255])
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return 1.5 + index
    return 7 + variant + index  # integers


def _fill_field(message: Message, field: FieldDescriptor, variant: int) -> None:
    repeated = field.is_repeated
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if repeated:
            for _ in range(2):
                _fill(getattr(message, field.name).add(), variant)
        else:
            _fill(getattr(message, field.name), variant)
    elif repeated:
        getattr(message, field.name).extend(_value(field, variant, i) for i in range(2))
    else:
        setattr(message, field.name, _value(field, variant, 0))


def _unset(message: Message, path: str = "") -> list[str]:
    """Paths of the fields left unset (outside unchosen oneof cases)."""
    missing = []
    set_fields = {field.name for field, _ in message.ListFields()}
    for field in message.DESCRIPTOR.fields:
        oneof = field.containing_oneof
        if oneof is not None and message.WhichOneof(oneof.name) != field.name:
            continue
        if field.name not in set_fields:
            missing.append(path + field.name)
        elif field.message_type is not None and field.message_type.full_name not in _WELL_KNOWN:
            value = getattr(message, field.name)
            for item in value if field.is_repeated else [value]:
                missing += _unset(item, f"{path}{field.name}.")
    return missing


def _full_flows() -> list[flow_pb2.Flow]:
    # As many variants as the largest oneof has cases, so every case is stored once.
    count = len(flow_pb2.Layer4.DESCRIPTOR.oneofs_by_name["protocol"].fields)
    flows = []
    for variant in range(count):
        flow = flow_pb2.Flow()
        _fill(flow, variant)
        flows.append(flow)
    return flows


def test_filled_flows_set_every_field() -> None:
    assert [_unset(flow) for flow in _full_flows()] == [[]] * len(_full_flows())


@pytest.fixture(scope="module")
def stored(store: Store) -> list[flow_pb2.Flow]:
    flows = _full_flows()
    store.insert(flows)
    return flows


def test_round_trip(store: Store, stored: list[flow_pb2.Flow]) -> None:
    result = store.client.query(
        f"SELECT {', '.join(schema.READ_SQL)} FROM {store.table} ORDER BY node_sequence",
        column_formats=schema.READ_FORMATS,
    )
    assert schema.rows_to_flows(result.result_rows) == stored


def test_columns_read_back(store: Store, stored: list[flow_pb2.Flow]) -> None:
    result = store.client.query(
        "SELECT toUnixTimestamp64Nano(time), verdict, source_ip, destination_ip, l4_protocol,"
        " l7_protocol, http_headers, source_workload_kinds, is_reply"
        f" FROM {store.table} WHERE node_sequence = {{sequence:UInt64}}",
        parameters={"sequence": stored[0].node_sequence},
    )
    first = stored[0]
    assert result.result_rows[0] == (
        first.time.seconds * 1_000_000_000 + first.time.nanos,
        flow_pb2.Verdict.Name(first.verdict),
        ipaddress.IPv6Address("::ffff:10.0.0.1"),
        ipaddress.IPv6Address("fd00::2"),
        first.l4.WhichOneof("protocol"),
        first.l7.WhichOneof("record"),
        [{"key": h.key, "value": h.value} for h in first.l7.http.headers]
        if first.l7.HasField("http")
        else [],
        [workload.kind for workload in first.source.workloads],
        True,
    )


def test_column_insert_stores_the_same_rows(store: Store, stored: list[flow_pb2.Flow]) -> None:
    """flows_to_columns (Python values) and flows_to_arrow give identical rows."""
    table = f"{store.table}_columns"
    store.client.command(schema.create_table_sql(table))
    try:
        columns = schema.flows_to_columns(stored)
        store.client.insert(
            table,
            [list(values) for values in columns.values()],
            column_names=list(columns),
            column_oriented=True,
        )
        rows = [
            store.client.query(
                f"SELECT * FROM {name} ORDER BY node_sequence",
                column_formats={schema.FLOW_COLUMN: "bytes"},
            ).result_rows
            for name in (store.table, table)
        ]
    finally:
        store.client.command(f"DROP TABLE {table}")
    assert rows[0] == rows[1]
    assert len(rows[0]) == len(stored)
