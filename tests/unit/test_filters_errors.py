"""Every kind of bad filter value fails at compile time with a FilterError that
names the FlowFilter field and the value, in both backends."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format

from flowscope.common.errors import FilterError
from flowscope.common.filters import compile_predicate, compile_sql
from flowscope.proto.flow import flow_pb2

# (description, FlowFilter JSON, field, value, words of the problem)
CASES: list[tuple[str, dict[str, Any], str, object, str]] = [
    ("bad IPv4", {"source_ip": ["10.0.0.300"]}, "source_ip", "10.0.0.300", "not an IP"),
    ("bad CIDR", {"destination_ip": ["10.0.0.0/33"]}, "destination_ip", "10.0.0.0/33", "CIDR"),
    ("empty address", {"source_ip_xlated": [""]}, "source_ip_xlated", "", "not an IP"),
    ("port too large", {"source_port": ["70000"]}, "source_port", "70000", "0-65535"),
    ("port not decimal", {"destination_port": ["80a"]}, "destination_port", "80a", "decimal"),
    ("negative port", {"source_port": ["-1"]}, "source_port", "-1", "decimal"),
    ("port range", {"destination_port": ["80-90"]}, "destination_port", "80-90", "decimal"),
    ("unknown protocol", {"protocol": ["icmp4"]}, "protocol", "icmp4", "unknown protocol"),
    ("status code 600", {"http_status_code": ["600"]}, "http_status_code", "600", "404"),
    ("status code one digit", {"http_status_code": ["5"]}, "http_status_code", "5", "5+"),
    ("status code letters", {"http_status_code": ["2xx"]}, "http_status_code", "2xx", "5+"),
    ("status code full+", {"http_status_code": ["404+"]}, "http_status_code", "404+", "5+"),
    (
        "http filter with a trace event type",
        {"http_method": ["GET"], "event_type": [{"type": 4}]},
        "http_method",
        "GET",
        "event_type to include l7",
    ),
    (
        "http header with a drop event type",
        {"http_header": [{"key": "a", "value": "b"}], "event_type": [{"type": 1}]},
        "http_header",
        "a:b",
        "got 1",
    ),
    ("invalid regex", {"http_path": ["("]}, "http_path", "(", "invalid regular expression"),
    ("lookahead", {"http_url": ["(?=x)"]}, "http_url", "(?=x)", "lookarounds"),
    ("{,n}", {"dns_query": ["a{,3}"]}, "dns_query", "a{,3}", "lower bound"),
    ("POSIX class", {"dns_query": ["[[:digit:]]"]}, "dns_query", "[[:digit:]]", "POSIX"),
    ("backreference", {"http_path": [r"(a)\1"]}, "http_path", r"(a)\1", r"\1"),
    ("possessive", {"http_url": ["a*+"]}, "http_url", "a*+", "possessive"),
    ("huge repeat", {"http_url": ["a{2000}"]}, "http_url", "a{2000}", "exceeds 1000"),
    ("set operation", {"http_url": ["[a&&b]"]}, "http_url", "[a&&b]", "'&&'"),
    ("empty selector", {"source_label": [""]}, "source_label", "", "empty selector"),
    ("empty set", {"destination_label": ["app in ()"]}, "destination_label", "app in ()", "value"),
    ("two keys", {"source_label": ["a b"]}, "source_label", "a b", "unexpected 'b'"),
    ("node label", {"node_labels": ["=x"]}, "node_labels", "=x", "label key"),
    ("non-integer bound", {"source_label": ["tier>x"]}, "source_label", "tier>x", "integer"),
    (
        "empty cluster",
        {"source_cluster_name": ["prod", ""]},
        "source_cluster_name",
        "",
        "not be empty",
    ),
    ("two slashes", {"source_pod": ["a/b/c"]}, "source_pod", "a/b/c", "more than one '/'"),
    ("empty service", {"source_service": [""]}, "source_service", "", "empty"),
    ("fqdn space", {"source_fqdn": ["exa mple.com"]}, "source_fqdn", "exa mple.com", "' '"),
    ("fqdn dots", {"destination_fqdn": ["*.."]}, "destination_fqdn", "*..", "trailing dot"),
    ("fqdn empty", {"source_fqdn": [" "]}, "source_fqdn", " ", "empty pattern"),
    ("node slashes", {"node_name": ["a/b/c"]}, "node_name", "a/b/c", "more than one '/'"),
    ("node character", {"node_name": ["node!"]}, "node_name", "node!", "'!'"),
    ("node empty", {"node_name": [""]}, "node_name", "", "empty pattern"),
    ("event type 0", {"event_type": [{"type": 0}]}, "event_type", "0", "names no event"),
    ("no tcp flag", {"tcp_flags": [{"SYN": True}, {}]}, "tcp_flags", "", "at least one flag"),
    ("empty interface", {"interface": [{}]}, "interface", "", "index, a name"),
    ("ip trace id 0", {"ip_trace_id": ["0"]}, "ip_trace_id", 0, "no trace id"),
    (
        "CEL",
        {"experimental": {"cel_expression": ["_flow.verdict == 1"]}},
        "experimental.cel_expression",
        "_flow.verdict == 1",
        "CEL expressions are not supported",
    ),
]


@pytest.mark.parametrize(
    ("document", "field", "value", "problem"),
    [pytest.param(d, f, v, p, id=description) for description, d, f, v, p in CASES],
)
@pytest.mark.parametrize("backend", [compile_predicate, compile_sql])
def test_bad_value(
    backend: Any, document: dict[str, Any], field: str, value: object, problem: str
) -> None:
    ff = json_format.ParseDict(document, flow_pb2.FlowFilter())
    with pytest.raises(FilterError) as raised:
        backend([], [ff])
    assert (raised.value.field, raised.value.value) == (field, value)
    assert problem in raised.value.problem
    assert str(raised.value).startswith(f"invalid {field} {value!r}: ")


@pytest.mark.parametrize(
    ("document", "field", "value"),
    [
        ({"verdict": ["DROPPED", 99]}, "verdict", 99),
        ({"drop_reason_desc": [12]}, "drop_reason_desc", 12),
        ({"traffic_direction": [3]}, "traffic_direction", 3),
        ({"ip_version": [7]}, "ip_version", 7),
    ],
)
def test_enum_value_outside_the_enum(document: dict[str, Any], field: str, value: int) -> None:
    ff = json_format.ParseDict(document, flow_pb2.FlowFilter())
    with pytest.raises(FilterError) as raised:
        compile_predicate([ff], [])
    assert (raised.value.field, raised.value.value) == (field, value)


def test_http_filters_accept_an_event_type_list_with_l7() -> None:
    ff = flow_pb2.FlowFilter(
        http_status_code=["200"],
        event_type=[flow_pb2.EventTypeFilter(type=4), flow_pb2.EventTypeFilter(type=129)],
    )
    matches = compile_predicate([ff], [])
    response = flow_pb2.Flow(
        event_type=flow_pb2.CiliumEventType(type=129),
        l7=flow_pb2.Layer7(http=flow_pb2.HTTP(code=200)),
    )
    assert matches(response) is True
