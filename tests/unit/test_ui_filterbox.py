"""The filter box's syntax compiled to FlowFilters (ui/filterbox.py)."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict

from flowscope.common.errors import FilterError
from flowscope.proto.flow import flow_pb2
from flowscope.ui.filterbox import FilterBoxError, parse


def _dicts(filters: list[flow_pb2.FlowFilter]) -> list[dict[str, Any]]:
    return [MessageToDict(ff, preserving_proto_field_name=True) for ff in filters]


CASES: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]] = [
    ("", [], []),
    ("   ", [], []),
    (
        "k8s:app=web",
        [{"source_label": ["k8s:app=web"]}, {"destination_label": ["k8s:app=web"]}],
        [],
    ),
    (
        "label=app=web",
        [{"source_label": ["app=web"]}, {"destination_label": ["app=web"]}],
        [],
    ),
    ("from:ip=10.0.0.1", [{"source_ip": ["10.0.0.1"]}], []),
    ("to:ip=10.0.0.0/24", [{"destination_ip": ["10.0.0.0/24"]}], []),
    ("to:dns=*.example.com", [{"destination_fqdn": ["*.example.com"]}], []),
    ("from:identity=world", [{"source_identity": [2]}], []),
    ("to:identity=1234", [{"destination_identity": [1234]}], []),
    (
        "from:workload=Deployment/web",
        [{"source_workload": [{"kind": "Deployment", "name": "web"}]}],
        [],
    ),
    ("to:workload=web", [{"destination_workload": [{"name": "web"}]}], []),
    ("from:pod=shop/front", [{"source_pod": ["shop/front"]}], []),
    ("to:port=443", [{"destination_port": ["443"]}], []),
    ("verdict=dropped", [{"verdict": ["DROPPED"]}], []),
    ("tcp-flag=SYN,ack", [{"tcp_flags": [{"SYN": True, "ACK": True}]}], []),
    # Same field twice: either value.
    ("verdict=dropped verdict=audit", [{"verdict": ["DROPPED", "AUDIT"]}], []),
    # Either-side terms describe the same endpoint; flow terms go to both filters.
    (
        "ip=10.0.0.1 label=app=db verdict=forwarded",
        [
            {"source_ip": ["10.0.0.1"], "source_label": ["app=db"], "verdict": ["FORWARDED"]},
            {
                "destination_ip": ["10.0.0.1"],
                "destination_label": ["app=db"],
                "verdict": ["FORWARDED"],
            },
        ],
        [],
    ),
    (
        "from:pod=shop/ to:port=5432",
        [{"source_pod": ["shop/"], "destination_port": ["5432"]}],
        [],
    ),
    # Negated terms: each its own blacklist entries.
    ("!verdict=forwarded", [], [{"verdict": ["FORWARDED"]}]),
    (
        "!identity=host to:port=53",
        [{"destination_port": ["53"]}],
        [{"source_identity": [1]}, {"destination_identity": [1]}],
    ),
    ("!from:ip=10.0.0.9", [], [{"source_ip": ["10.0.0.9"]}]),
]


@pytest.mark.parametrize(("text", "whitelist", "blacklist"), CASES)
def test_terms_compile_to_flow_filters(
    text: str, whitelist: list[dict[str, Any]], blacklist: list[dict[str, Any]]
) -> None:
    compiled = parse(text)
    assert _dicts(compiled.whitelist) == whitelist
    assert _dicts(compiled.blacklist) == blacklist


ERRORS: list[tuple[str, str, int, str]] = [
    ("ip=10.0.0.300", "ip=10.0.0.300", 0, "not an IP address or CIDR"),
    (
        "verdict=dropped to:port=http",
        "to:port=http",
        16,
        "not a port; expected a decimal number 0-65535",
    ),
    (
        "from:identity=nobody",
        "from:identity=nobody",
        0,
        "not a security identity: expected a number or one of unknown, host, world, unmanaged,"
        " health, init, remote-node, kube-apiserver, ingress, world-ipv4, world-ipv6",
    ),
    ("to:verdict=dropped", "to:verdict=dropped", 0, "verdict describes the flow: no from: or to:"),
    (
        "tcp-flag=SYNN",
        "tcp-flag=SYNN",
        0,
        "unknown TCP flag 'SYNN': expected one of SYN, ACK, RST, FIN, PSH, URG, ECE, CWR, NS",
    ),
    (
        "verdict=maybe",
        "verdict=maybe",
        0,
        "expected one of forwarded, dropped, error, audit, redirected, traced, translated",
    ),
    ("  pod=", "pod=", 2, "pod needs a value: pod=VALUE"),
    ("label=,app", "label=,app", 0, "expected a label key"),
    ("workload=Deployment/", "workload=Deployment/", 0, "expected [kind/]name"),
    ("pod=a/b/c", "pod=a/b/c", 0, "more than one '/'; expected [namespace/]name-prefix"),
]


@pytest.mark.parametrize(("text", "term", "offset", "problem"), ERRORS)
def test_bad_terms_name_the_term_and_where_it_is(
    text: str, term: str, offset: int, problem: str
) -> None:
    with pytest.raises(FilterBoxError) as raised:
        parse(text)
    error = raised.value
    assert isinstance(error, FilterError)
    assert (error.term, error.offset) == (term, offset)
    assert error.problem == problem
    assert str(error).startswith(f"invalid filter term at column {offset + 1} {term!r}: ")
