"""The filter compiler's structure: registry, SQL shape, bound parameters, and
which columns each FlowFilter field reads. What the filters select is tested
against both backends in tests/conformance/test_filter_conformance.py."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest
from google.protobuf import json_format

from flowscope.common import accessors, schema
from flowscope.common.filters import DIMENSIONS, SqlCondition, compile_predicate, compile_sql
from flowscope.proto.flow import flow_pb2

# One valid value for every FlowFilter field (JSON form).
SAMPLES: dict[str, Any] = {
    "uuid": ["u-1"],
    "source_ip": ["10.0.0.1", "fd00::/8"],
    "source_ip_xlated": ["192.168.0.0/16"],
    "source_pod": ["default/web", "kube-system/"],
    "source_fqdn": ["*.example.com"],
    "source_label": ["k8s:app=web,tier>1"],
    "source_service": ["default/web"],
    "source_workload": [{"name": "web", "kind": "Deployment"}],
    "source_cluster_name": ["default"],
    "destination_ip": ["10.0.0.2"],
    "destination_pod": ["/db"],
    "destination_fqdn": ["api.example.com"],
    "destination_label": ["!reserved:world"],
    "destination_service": ["data/db"],
    "destination_workload": [{"kind": "StatefulSet"}],
    "destination_cluster_name": ["prod"],
    "traffic_direction": ["INGRESS"],
    "verdict": ["FORWARDED", "DROPPED"],
    "drop_reason_desc": ["POLICY_DENIED"],
    "interface": [{"index": 3, "name": "eth0"}],
    "event_type": [{"type": 129}, {"type": 4, "match_sub_type": True, "sub_type": 0}],
    "http_status_code": ["404", "5+"],
    "protocol": ["tcp", "dns"],
    "source_port": ["80"],
    "destination_port": ["443"],
    "reply": [False],
    "dns_query": [r"\.com\.$"],
    "source_identity": [11661],
    "destination_identity": [2],
    "http_method": ["GET"],
    "http_path": ["^/api/"],
    "http_url": ["^https://"],
    "http_header": [{"key": "x-id", "value": "1"}],
    "tcp_flags": [{"SYN": True, "ACK": True}],
    "node_name": ["prod/node-*"],
    "node_labels": ["kubernetes.io/os=linux"],
    "ip_version": ["IPv4"],
    "trace_id": ["4bf92f3577b34da6a3ce929d0e0e4736"],
    "ip_trace_id": ["42"],
    "encrypted": [True],
}
FILTER_FIELDS = {field.name for field in flow_pb2.FlowFilter.DESCRIPTOR.fields}


def _filter(document: dict[str, Any]) -> flow_pb2.FlowFilter:
    return json_format.ParseDict(document, flow_pb2.FlowFilter())


def test_every_field_belongs_to_exactly_one_dimension() -> None:
    owned = [field for dimension in DIMENSIONS for field in dimension.fields]
    assert sorted(owned) == sorted(FILTER_FIELDS)


def test_samples_cover_every_field_but_cel() -> None:
    assert set(SAMPLES) == FILTER_FIELDS - {"experimental"}


def test_no_filters_compile_to_true() -> None:
    assert compile_sql([], []) == SqlCondition("1", {})
    matches = compile_predicate([], [])
    assert matches(flow_pb2.Flow()) is True


def test_sql_shape() -> None:
    whitelist = [_filter({"verdict": ["DROPPED"], "source_pod": ["kube-system/"]})]
    blacklist = [_filter({"uuid": ["u-1"]}), _filter({"reply": [True]})]
    assert compile_sql(whitelist, blacklist) == SqlCondition(
        "(((verdict IN {p0:Array(Int16)}) AND (NOT (empty(source_namespace) AND"
        " empty(source_pod_name)) AND ((source_namespace = {p1:String})))))"
        " AND (NOT (((uuid IN {p2:Array(String)})) OR ((has({p3:Array(Bool)}, is_reply)))))",
        {"p0": [2], "p1": "kube-system", "p2": ["u-1"], "p3": [True]},
    )


def test_values_are_only_bound_parameters() -> None:
    condition = compile_sql([_filter(SAMPLES)], [_filter(SAMPLES)])
    assert "'" not in condition.sql and '"' not in condition.sql
    placeholders = set(re.findall(r"\{(p\d+):", condition.sql))
    assert placeholders == set(condition.params)


@pytest.mark.parametrize("field", sorted(SAMPLES))
def test_field_sql_reads_the_columns_that_declare_it(field: str) -> None:
    condition = compile_sql([_filter({field: SAMPLES[field]})], [])
    read = set(re.findall(r"[A-Za-z_]\w*", condition.sql)) & {c.name for c in schema.COLUMNS}
    declared = {column.name for column in schema.COLUMNS if field in column.filters}
    assert read == declared


def test_compiled_filters_never_raise_on_odd_flows() -> None:
    odd = [
        flow_pb2.Flow(),
        flow_pb2.Flow(IP=flow_pb2.IP(source="not-an-ip", destination="10.0.0.999")),
        flow_pb2.Flow(l7=flow_pb2.Layer7(http=flow_pb2.HTTP(url="http://[::1/%zz"))),
        flow_pb2.Flow(node_name="a/b/c", source=flow_pb2.Endpoint(labels=["", ":", "=", "a=b=c"])),
    ]
    matches = compile_predicate([_filter(SAMPLES)], [_filter({"uuid": ["x"]})])
    assert [matches(flow) for flow in odd] == [False] * len(odd)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.1", ipaddress.IPv4Address("10.0.0.1")),
        ("::ffff:10.0.0.1", ipaddress.IPv4Address("10.0.0.1")),
        ("fd00::1", ipaddress.IPv6Address("fd00::1")),
        ("", None),
        ("10.0.0.256", None),
    ],
)
def test_ip_address(text: str, expected: object) -> None:
    assert accessors.ip_address(text) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://web.default.svc/api/v1/items?limit=5#top", "/api/v1/items"),
        ("/a%20b/c?x", "/a b/c"),
        ("https://host", ""),
        ("items/7", None),
        ("", None),
        ("/bad%zzescape", None),
        ("http://[::1/x", None),
    ],
)
def test_http_path(url: str, expected: str | None) -> None:
    assert accessors.http_path(url) == expected


def test_tcp_flag_mask_follows_field_numbers() -> None:
    assert accessors.tcp_flag_mask(flow_pb2.TCPFlags(FIN=True)) == 1
    assert accessors.tcp_flag_mask(flow_pb2.TCPFlags(SYN=True, ACK=True)) == 2 | 16
    assert accessors.tcp_flag_mask(flow_pb2.TCPFlags(NS=True)) == 256
