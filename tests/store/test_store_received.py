"""Ingest through the landing table: ClickHouse decodes the flows (Protobuf
format) into exactly the rows common/schema's Arrow columns give, empty
messages, odd addresses and the l4 and l7 cases included; split() and the
landing rows; and such flows come back from history unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from filter_flows import FLOWS as CONFORMANCE
from google.protobuf import json_format
from store_support import config, drop, numbered, realistic, running
from test_schema_roundtrip import _full_flows

from flowscope.common import schema
from flowscope.proto.flow import flow_pb2
from flowscope.relay.store import HistoryRequest, Store, ddl
from flowscope.relay.store.received import Batch, batches, flows_of, frame, wire

pytestmark = pytest.mark.store


def _flow(document: dict[str, Any]) -> flow_pb2.Flow:
    return json_format.ParseDict(document, flow_pb2.Flow())


# Shapes the columns rebuild only with care: messages set but empty, spellings of
# addresses the IPv6 columns would not give back, l4 cases without ports, l7.
EDGES = [
    _flow(
        {
            "time": "2025-11-29T10:00:00.000000001Z",
            "uuid": "edge-empty-messages",
            "node_name": "lab/a",
            "IP": {},
            "l4": {"TCP": {"source_port": 1, "flags": {}}},
            "source": {"process": {}},
            "destination": {"namespace": "x", "process": {"pid": 0, "command": "sh"}},
            "trace_context": {"parent": {}},
            "event_type": {},
            "interface": {},
            "counters": {},
            "is_reply": False,
        }
    ),
    _flow(
        {
            "time": "2025-11-29T10:00:01Z",
            "uuid": "edge-mapped-address",
            "node_name": "lab/a",
            "IP": {"source": "::ffff:10.0.0.9", "destination": "FD00::1", "ipVersion": "IPv6"},
            "l4": {"ICMPv4": {}},
            "is_reply": True,
            "l7": {"type": "REQUEST", "http": {"method": "GET", "url": "/a%20b?x=1"}},
            "ingress_denied_by": [{"name": "deny", "namespace": "shop"}],
        }
    ),
    _flow(
        {
            "time": "2025-11-29T10:00:02Z",
            "uuid": "edge-dns",
            "node_name": "lab/b",
            "node_sequence": "12",
            "IP": {"source": "10.0.0.1", "destination": "not an address"},
            "l4": {"UDP": {"source_port": 5353, "destination_port": 53}},
            "l7": {"dns": {"query": "api.example.com.", "qtypes": ["A"], "rcode": 3}},
            "Summary": "DNS",
        }
    ),
    _flow(
        {
            "time": "2025-11-29T10:00:03Z",
            "uuid": "edge-http-without-path",
            "node_name": "lab/b",
            "node_sequence": "13",
            "l4": {"SCTP": {"destination_port": 9}},
            "l7": {"http": {"code": 200, "url": "items/7", "headers": [{"key": "k"}]}},
        }
    ),
]
# A newer node's enum numbers, which the Enum columns lack (Arrow would store them
# unchecked; the landing table keeps them in the remainder instead).
UNKNOWN_ENUMS = _flow(
    {
        "time": "2025-11-29T10:00:04Z",
        "uuid": "edge-unknown-enums",
        "node_name": "lab/b",
        "node_sequence": "14",
        "verdict": 99,
        "drop_reason_desc": 1000,
        "auth_type": 70000,
        "Type": -3,
        "traffic_direction": 7,
        "IP": {"source": "10.0.0.1", "ipVersion": 9},
        "l7": {"type": 42},
    }
)
FLOWS = [*_full_flows(), *EDGES, *CONFORMANCE, *numbered(realistic(300), start=100)]


@pytest.fixture(scope="module")
def store(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    settings = config(backend, Path(tmp_path_factory.mktemp("received")))
    with running(settings) as opened:
        opened.write(FLOWS)
        opened.write([UNKNOWN_ENUMS])
        assert opened.drain()
        yield opened
    drop(settings)


def _rows(store: Store, table: str) -> list[tuple[Any, ...]]:
    names = ", ".join(column.name for column in schema.STORED)
    rows = store.select(f"SELECT {names} FROM {table}", {}, {schema.FLOW_COLUMN: "bytes"})
    return sorted((tuple(row) for row in rows), key=repr)


def test_landing_rows_equal_the_arrow_columns(store: Store) -> None:
    import clickhouse_connect

    table = f"{store.config.database}.arrow_rows"
    client = clickhouse_connect.get_client(dsn=store.config.dsn)  # the same engine
    client.command(schema.create_table_sql(table))
    try:
        client.insert_arrow(table, schema.flows_to_arrow(FLOWS))
        raw = store.layout.name(ddl.RAW)
        stored = _rows(store, f"(SELECT * FROM {raw} WHERE uuid != '{UNKNOWN_ENUMS.uuid}')")
        assert len(stored) == len(FLOWS)
        assert stored == _rows(store, table)
    finally:
        client.command(f"DROP TABLE {table}")
        client.close()


def test_edge_flows_round_trip(store: Store) -> None:
    edges = [*EDGES, UNKNOWN_ENUMS]
    whitelist = [flow_pb2.FlowFilter(uuid=[flow.uuid for flow in edges])]
    history = store.queries.history(HistoryRequest(whitelist=whitelist))
    assert history.flows == edges
    assert store.counters().writer.insert_failures == 0


def test_unknown_enum_numbers_leave_their_columns_at_zero(store: Store) -> None:
    rows = store.select(
        "SELECT CAST(verdict, 'Int16'), CAST(flow_type, 'Int16'), CAST(ip_version, 'Int16'),"
        f" CAST(l7_type, 'Int16') FROM {store.layout.name(ddl.RAW)} WHERE uuid = {{uuid:String}}",
        {"uuid": UNKNOWN_ENUMS.uuid},
    )
    assert [tuple(row) for row in rows] == [(0, 0, 0, 0)]


@pytest.mark.parametrize(
    ("flow", "expected"),
    [
        (
            EDGES[1],
            flow_pb2.Flow(
                IP=EDGES[1].IP,
                l4=EDGES[1].l4,
                l7=EDGES[1].l7,
                ingress_denied_by=EDGES[1].ingress_denied_by,
            ),
        ),
        (EDGES[2], flow_pb2.Flow(IP=EDGES[2].IP, l7=EDGES[2].l7, Summary="DNS")),
        (EDGES[3], flow_pb2.Flow(l7=EDGES[3].l7)),
        (flow_pb2.Flow(), flow_pb2.Flow()),
    ],
)
def test_remainder(flow: flow_pb2.Flow, expected: flow_pb2.Flow) -> None:
    assert flow_pb2.Flow.FromString(schema.remainder(flow.SerializeToString())) == expected


def test_landing_rows_hold_the_batch_twice() -> None:
    flows = [flow_pb2.Flow(node_name=name).SerializeToString() for name in ("a", "bc")]
    data = frame(flows)
    assert data == b"".join(bytes([0x2A, len(flow)]) + flow for flow in flows)
    assert len(data) < 62  # one-byte lengths below
    body = bytes([0x0A, len(data)]) + data + bytes([0x12, len(data)]) + data
    assert b"".join(wire([Batch(data, 2), Batch(data, 2)])) == (bytes([len(body)]) + body) * 2


def test_batches_are_runs_of_one_node_in_sequence() -> None:
    def flow(node: str, sequence: int) -> flow_pb2.Flow:
        return flow_pb2.Flow(node_name=node, node_sequence=sequence)

    flows = [flow("a", 1), flow("a", 2), flow("b", 1), flow("a", 3), flow("a", 3)]
    flows += [flow("c", 0), flow("c", 0)]
    runs = batches(flows)
    assert [(b.node, b.first, b.last, b.size) for b in runs] == [
        ("a", 1, 2, 2),
        ("b", 1, 1, 1),
        ("a", 3, 3, 1),
        ("a", 3, 3, 1),
        ("c", 0, 0, 2),
    ]
    assert flows_of(runs[0]) == [f.SerializeToString() for f in flows[:2]]
