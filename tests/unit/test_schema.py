"""The flow table's column list: DDL, column values, and its tie to FlowFilter.
The round trip through the real engine is tests/conformance/test_schema_roundtrip.py."""

from __future__ import annotations

import ipaddress

import pytest
from google.protobuf import json_format

from flowscope.common import schema
from flowscope.proto.flow import flow_pb2

FLOW = json_format.ParseDict(
    {
        "time": "2025-03-21T11:18:51.917000001Z",
        "uuid": "u-1",
        "verdict": "DROPPED",
        "drop_reason_desc": "POLICY_DENIED",
        "IP": {"source": "::ffff:10.0.0.1", "destination": "fd00::2", "ipVersion": "IPv6"},
        "l4": {"TCP": {"source_port": 34898, "destination_port": 80, "flags": {"SYN": True}}},
        "source": {
            "identity": 11661,
            "namespace": "default",
            "pod_name": "client",
            "labels": ["k8s:app=client"],
            "workloads": [{"name": "client", "kind": "Deployment"}],
            "process": {"pid": 42, "command": "curl"},
        },
        "destination": {"identity": 2, "labels": ["reserved:world"]},
        "destination_names": ["api.example.com"],
        "node_name": "prod/node-a",
        "node_labels": ["cores=16"],
        "event_type": {"type": 1, "sub_type": 133},
        "l7": {
            "type": "REQUEST",
            "http": {
                "method": "GET",
                "url": "http://h/a%20b?x=1",
                "headers": [{"key": "x-id", "value": "1"}],
            },
        },
        "node_sequence": "9",
        "counters": {"bytes_forward": "1500"},
    },
    flow_pb2.Flow(),
)


def test_flows_to_columns_values() -> None:
    columns = schema.flows_to_columns([FLOW])
    assert list(columns) == [column.name for column in schema.STORED]
    row = {name: values[0] for name, values in columns.items()}
    for name in ("node_labels", "source_labels", "destination_names"):
        row[name] = list(row[name])  # protobuf containers, compared as lists
    assert {
        name: row[name]
        for name in (
            "time",
            "node_name",
            "node_sequence",
            "node_labels",
            "verdict",
            "drop_reason_desc",
            "event_type",
            "event_sub_type",
            "is_reply",
            "ip_version",
            "source_ip",
            "destination_ip",
            "source_ip_xlated",
            "l4_protocol",
            "source_port",
            "destination_port",
            "tcp_flags",
            "source_identity",
            "source_labels",
            "source_workload_names",
            "source_workload_kinds",
            "source_pid",
            "source_command",
            "destination_names",
            "l7_protocol",
            "http_method",
            "http_path",
            "http_headers",
            "bytes_forward",
        )
    } == {
        "time": 1742555931_917000001,
        "node_name": "prod/node-a",
        "node_sequence": 9,
        "node_labels": ["cores=16"],
        "verdict": flow_pb2.DROPPED,
        "drop_reason_desc": flow_pb2.POLICY_DENIED,
        "event_type": 1,
        "event_sub_type": 133,
        "is_reply": None,
        "ip_version": flow_pb2.IPv6,
        "source_ip": ipaddress.IPv6Address("::ffff:10.0.0.1").packed,
        "destination_ip": ipaddress.IPv6Address("fd00::2").packed,
        "source_ip_xlated": None,
        "l4_protocol": 1,
        "source_port": 34898,
        "destination_port": 80,
        "tcp_flags": 2,
        "source_identity": 11661,
        "source_labels": ["k8s:app=client"],
        "source_workload_names": ["client"],
        "source_workload_kinds": ["Deployment"],
        "source_pid": 42,
        "source_command": "curl",
        "destination_names": ["api.example.com"],
        "l7_protocol": 101,
        "http_method": "GET",
        "http_path": "/a b",
        "http_headers": [("x-id", "1")],
        "bytes_forward": 1500,
    }
    # The remainder holds what no column rebuilds: here the source IP, whose
    # IPv4-mapped spelling the IPv6 column would not give back, and l7.
    remainder = flow_pb2.Flow.FromString(row["flow"])
    assert remainder == flow_pb2.Flow(IP=FLOW.IP, l7=FLOW.l7)
    assert row["stored_uuid"] == "u-1"


def test_derived_uuids_are_not_stored_and_come_back() -> None:
    flow = flow_pb2.Flow(node_name="prod/node-a", node_sequence=7)
    flow.uuid = schema.derived_uuid(flow.node_name, flow.node_sequence)
    assert flow.uuid == "f7d84f1b-cd69-8bb1-8000-000000000007"
    assert schema.flows_to_columns([flow])["stored_uuid"] == [""]
    assert schema.derived_uuid("prod/node-a", 8) != flow.uuid
    assert schema.derived_uuid("prod/node-b", 7) != flow.uuid


def test_flows_to_arrow_types() -> None:
    pyarrow = pytest.importorskip("pyarrow")
    table = schema.flows_to_arrow([FLOW, flow_pb2.Flow()])
    assert table.column_names == [column.name for column in schema.STORED]
    types = {name: str(table.schema.field(name).type) for name in table.column_names}
    assert {
        name: types[name]
        for name in (
            "time",
            "verdict",
            "drop_reason_desc",
            "is_reply",
            "source_ip",
            "source_port",
            "source_labels",
            "http_headers",
            "flow",
        )
    } == {
        "time": "timestamp[ns, tz=UTC]",
        "verdict": "int8",
        "drop_reason_desc": "int16",
        "is_reply": "bool",
        "source_ip": "fixed_size_binary[16]",
        "source_port": "uint32",
        "source_labels": "list<item: binary>",
        "http_headers": "list<item: struct<key: binary, value: binary>>",
        "flow": "binary",
    }
    assert table.column("source_ip").to_pylist() == [
        ipaddress.IPv6Address("::ffff:10.0.0.1").packed,
        None,
    ]
    assert isinstance(table, pyarrow.Table)


def test_rows_to_flows_rebuilds_the_flows() -> None:
    """rows as clickhouse-connect reads READ_SQL: enums as numbers, IPs as objects."""
    flows = [FLOW, flow_pb2.Flow()]
    columns = schema.flows_to_columns(flows)
    names = [schema.FLOW_COLUMN, schema.PRESENT_COLUMN] + [
        column.name for column in schema.COLUMNS if column.restore is not None
    ]
    assert len(names) == len(schema.READ_SQL)

    def read_back(name: str, value: object) -> object:
        if name == "stored_uuid":
            return flows[0].uuid if value else ""
        if isinstance(value, bytes) and name.endswith(("_ip", "_ip_xlated")):
            return ipaddress.IPv6Address(value)
        return value

    rows = [
        [read_back(name, columns[name][index]) for name in names] for index in range(len(flows))
    ]
    assert schema.rows_to_flows(rows) == flows


def test_create_table_sql() -> None:
    ddl = schema.create_table_sql("flowscope.flows")
    lines = ddl.splitlines()
    assert lines[0] == "CREATE TABLE flowscope.flows ("
    assert lines[1:-3] == [f"    {column.ddl()}," for column in schema.COLUMNS[:-1]] + [
        "    flow String CODEC(ZSTD(3))"
    ]
    assert lines[-3:] == [")", "ENGINE = MergeTree", "ORDER BY time"]


@pytest.mark.parametrize("table", ["", "1flows", "flows; DROP TABLE x", "a.b.c", "fl-ows"])
def test_create_table_sql_refuses_bad_names(table: str) -> None:
    with pytest.raises(ValueError, match="invalid table name"):
        schema.create_table_sql(table)


def test_enum_columns_follow_the_proto_enums() -> None:
    assert schema.column("verdict").type == (
        "Enum8('VERDICT_UNKNOWN' = 0, 'FORWARDED' = 1, 'DROPPED' = 2, 'ERROR' = 3,"
        " 'AUDIT' = 4, 'REDIRECTED' = 5, 'TRACED' = 6, 'TRANSLATED' = 7)"
    )
    assert schema.column("drop_reason_desc").type.startswith("Enum16('DROP_REASON_UNKNOWN' = 0,")
    assert schema.column("l4_protocol").type == (
        "Enum8('' = 0, 'TCP' = 1, 'UDP' = 2, 'ICMPv4' = 3, 'ICMPv6' = 4, 'SCTP' = 5,"
        " 'VRRP' = 6, 'IGMP' = 7)"
    )


def test_column_names_are_unique() -> None:
    names = [column.name for column in schema.COLUMNS]
    assert len(names) == len(set(names))


def test_every_filter_field_has_columns() -> None:
    fields = {field.name for field in flow_pb2.FlowFilter.DESCRIPTOR.fields}
    named = {field for column in schema.COLUMNS for field in column.filters}
    assert named == fields - {"experimental"}


def test_unknown_column() -> None:
    with pytest.raises(KeyError, match="no column 'nope'"):
        schema.column("nope")
