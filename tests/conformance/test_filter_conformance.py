"""One table of filter cases, run through both backends: the in-memory predicate
and the SQL condition on the real ClickHouse engine. Both must select exactly
the expected flows, so the two halves of every dimension cannot drift apart.

Filters are written as Hubble's JSON FlowFilters (what --allowlist takes).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from clickhouse_store import Store
from filter_flows import FLOWS, TRACE_ID, UUIDS
from google.protobuf import json_format

from flowscope.common.filters import compile_predicate, compile_sql
from flowscope.proto.flow import flow_pb2

pytestmark = pytest.mark.store

Filters = list[dict[str, Any]]

DB_FLOWS = {"drop-client-db-deny", "encrypted-overlay", "pv-audit", "kafka-request"}
PROD_FLOWS = {"drop-client-db-deny", "encrypted-overlay", "pv-audit"}
CONTROL_PLANE_FLOWS = {"host-to-web", "vrrp", "igmp"}
DROPPED = {"drop-world-web", "drop-client-db-deny", "tcp-port-zero", "drop-ipv6-invalid-source"}
REPLIES = {
    "trace-reply-synack",
    "http-response-200",
    "http-response-503-post",
    "http-response-404-path",
    "dns-response",
    "rst-reply",
}
HTTP_WITH_PATH = {
    "http-request-get",
    "http-response-200",
    "http-response-503-post",
    "http-response-404-path",
}

# (description, whitelist, blacklist, expected uuids)
CASES: list[tuple[str, Filters, Filters, set[str]]] = [
    ("no filters select every flow", [], [], set(UUIDS)),
    ("an empty whitelist filter selects every flow", [{}], [], set(UUIDS)),
    ("an empty blacklist filter removes every flow", [], [{}], set()),
    ("uuid", [{"uuid": ["sctp", "vrrp", "no-such-flow"]}], [], {"sctp", "vrrp"}),
    # IP addresses and CIDRs
    (
        "source_ip exact",
        [{"source_ip": ["10.0.0.100"]}],
        [],
        {"host-to-web", "vrrp", "igmp"},
    ),
    (
        "source_ip IPv4 CIDRs",
        [{"source_ip": ["10.0.1.0/24", "203.0.113.0/24"]}],
        [],
        {"dns-response", "drop-world-web"},
    ),
    (
        "destination_ip IPv6 CIDR",
        [{"destination_ip": ["2001:db8::/32"]}],
        [],
        {"ipv6-world-https"},
    ),
    (
        "destination_ip ::/0 leaves IPv4 out",
        [{"destination_ip": ["::/0"]}],
        [],
        {"icmpv6-echo", "ipv6-world-https", "drop-ipv6-invalid-source"},
    ),
    (
        "destination_ip exact IPv6 and IPv4-mapped",
        [{"destination_ip": ["fd00::2", "::ffff:224.0.0.18"]}],
        [],
        {"icmpv6-echo", "drop-ipv6-invalid-source", "vrrp"},
    ),
    (
        "destination_ip IPv4-mapped CIDR reads as IPv4",
        [{"destination_ip": ["::ffff:224.0.0.16/126"]}],
        [],
        {"vrrp"},
    ),
    (
        "source_ip_xlated",
        [{"source_ip_xlated": ["192.168.1.0/24"]}],
        [],
        {"world-egress-snat"},
    ),
    (
        "blacklisting every address keeps the flow without IP",
        [],
        [{"source_ip": ["0.0.0.0/0", "::/0"]}],
        {"capture-arp-no-ip"},
    ),
    # pods and services
    ("source_pod namespace", [{"source_pod": ["kube-system/"]}], [], {"dns-response"}),
    ("source_pod bare name is in namespace default", [{"source_pod": ["coredns"]}], [], set()),
    ("source_pod /name is in any namespace", [{"source_pod": ["/coredns"]}], [], {"dns-response"}),
    ("destination_pod prefix", [{"destination_pod": ["data/db-"]}], [], DB_FLOWS),
    (
        "source_pod / is any endpoint with a namespace or name (--all-namespaces)",
        [{"source_pod": ["/"]}],
        [],
        UUIDS
        - {"capture-arp-no-ip", "drop-ipv6-invalid-source", "drop-world-web", "host-to-web",
           "igmp", "vrrp"},
    ),
    (
        "source_pod and destination_pod in one filter",
        [{"source_pod": ["kube-system/"], "destination_pod": ["default/client"]}],
        [],
        {"dns-response"},
    ),
    (
        "either direction as two filters",
        [{"source_pod": ["data/"]}, {"destination_pod": ["data/"]}],
        [],
        DB_FLOWS,
    ),
    ("source_service", [{"source_service": ["kube-system/kube"]}], [], {"dns-response"}),
    (
        "destination_service namespace",
        [{"destination_service": ["default/"]}],
        [],
        {"pv-client-web-syn", "trace-to-endpoint-syn", "http-request-get"},
    ),
    # names
    ("source_fqdn glob", [{"source_fqdn": ["*.example.org"]}], [], {"drop-world-web"}),
    (
        "destination_fqdn is case-insensitive and ignores a trailing dot",
        [{"destination_fqdn": ["API.example.com."]}],
        [],
        {"world-egress-snat"},
    ),
    (
        "destination_fqdn star spans dots",
        [{"destination_fqdn": ["*.example.*"]}],
        [],
        {"world-egress-snat", "ipv6-world-https"},
    ),
    # labels
    ("source_label reserved", [{"source_label": ["reserved:world"]}], [], {"drop-world-web"}),
    ("destination_label integer comparison", [{"destination_label": ["tier>4"]}], [], DB_FLOWS),
    (
        "source_label selectors OR, key exists",
        [{"source_label": ["k8s-app", "reserved:host"]}],
        [],
        {"dns-response", "host-to-web", "vrrp", "igmp"},
    ),
    (
        "source_label requirements AND, != and any source",
        [{"source_label": ["app!=client,io.kubernetes.pod.namespace=default"]}],
        [],
        {
            "trace-reply-synack",
            "http-response-200",
            "http-response-503-post",
            "http-response-404-path",
            "encrypted-overlay",
            "rst-reply",
        },
    ),
    (
        "source_label !key matches ends without labels",
        [{"source_label": ["!app"]}],
        [],
        {
            "drop-world-web",
            "dns-response",
            "host-to-web",
            "vrrp",
            "igmp",
            "capture-arp-no-ip",
            "drop-ipv6-invalid-source",
        },
    ),
    (
        "destination_label in and notin",
        [{"destination_label": ["k8s:app in (db, web), tier notin (3)"]}],
        [],
        DB_FLOWS,
    ),
    (
        "node_labels key with empty value",
        [{"node_labels": ["node-role.kubernetes.io/control-plane="]}],
        [],
        CONTROL_PLANE_FLOWS,
    ),
    ("node_labels integer comparison", [{"node_labels": ["cores>8"]}], [], PROD_FLOWS),
    # identities, workloads, clusters
    (
        "source_identity",
        [{"source_identity": [2, 10]}],
        [],
        {"drop-world-web", "drop-ipv6-invalid-source"},
    ),
    (
        "destination_identity",
        [{"destination_identity": [2]}],
        [],
        {"world-egress-snat", "vrrp", "igmp"},
    ),
    (
        "destination_workload kind",
        [{"destination_workload": [{"kind": "StatefulSet"}]}],
        [],
        DB_FLOWS,
    ),
    (
        "destination_workload name and kind of one workload",
        [{"destination_workload": [{"name": "db", "kind": "Operator"}]}],
        [],
        set(),
    ),
    (
        "source_workload",
        [{"source_workload": [{"name": "coredns", "kind": "Deployment"}]}],
        [],
        {"dns-response"},
    ),
    (
        "source and destination cluster",
        [{"source_cluster_name": ["default"], "destination_cluster_name": ["prod"]}],
        [],
        DB_FLOWS,
    ),
    # verdicts and event types
    ("verdict", [{"verdict": ["DROPPED"]}], [], DROPPED),
    ("verdict values OR", [{"verdict": ["AUDIT", "ERROR"]}], [], {"pv-audit"}),
    (
        "drop_reason_desc",
        [{"drop_reason_desc": ["POLICY_DENIED", "POLICY_DENY"]}],
        [],
        {"drop-world-web", "drop-client-db-deny"},
    ),
    (
        "event_type policy-verdict",
        [{"event_type": [{"type": 5}]}],
        [],
        {"pv-client-web-syn", "pv-audit"},
    ),
    (
        "event_type trace:to-endpoint",
        [{"event_type": [{"type": 4, "match_sub_type": True, "sub_type": 0}]}],
        [],
        {"trace-to-endpoint-syn", "icmpv4-echo", "icmpv6-echo", "sctp", "fin-ack"},
    ),
    (
        "event_type capture or drop:181",
        [{"event_type": [{"type": 3}, {"type": 1, "match_sub_type": True, "sub_type": 181}]}],
        [],
        {"capture-arp-no-ip", "drop-client-db-deny"},
    ),
    (
        "traffic_direction with verdict and protocol",
        [{"traffic_direction": ["EGRESS"], "verdict": ["FORWARDED"], "protocol": ["udp"]}],
        [],
        {"dns-request", "dns-response", "udp-trace-dns"},
    ),
    # interface
    (
        "interface by name",
        [{"interface": [{"name": "lxc1234"}]}],
        [],
        {"trace-to-endpoint-syn", "trace-from-endpoint-ack"},
    ),
    (
        "interface entries OR, sub-fields AND",
        [
            {
                "interface": [
                    {"index": 5},
                    {"index": 3, "name": "cilium_host"},
                    {"index": 8, "name": "x"},
                ]
            }
        ],
        [],
        {"encrypted-overlay", "host-to-web"},
    ),
    # protocols and ports
    (
        "protocol icmp is both versions",
        [{"protocol": ["ICMP"]}],
        [],
        {"icmpv4-echo", "icmpv6-echo", "drop-ipv6-invalid-source"},
    ),
    (
        "protocol icmpv6",
        [{"protocol": ["icmpv6"]}],
        [],
        {"icmpv6-echo", "drop-ipv6-invalid-source"},
    ),
    (
        "protocol icmpv4 sctp vrrp igmp",
        [{"protocol": ["icmpv4", "SCTP", "vrrp", "igmp"]}],
        [],
        {"icmpv4-echo", "sctp", "vrrp", "igmp"},
    ),
    (
        "protocol http",
        [{"protocol": ["http"]}],
        [],
        HTTP_WITH_PATH | {"http-request-bad-url"},
    ),
    (
        "protocol dns and kafka",
        [{"protocol": ["dns", "Kafka"]}],
        [],
        {"dns-request", "dns-response", "kafka-request"},
    ),
    (
        "protocol tcp and verdict",
        [{"protocol": ["tcp"], "verdict": ["DROPPED"]}],
        [],
        {"drop-world-web", "drop-client-db-deny", "tcp-port-zero"},
    ),
    (
        "destination_port",
        [{"destination_port": ["443"]}],
        [],
        {"ipv6-world-https", "world-egress-snat"},
    ),
    (
        "destination_port values OR, UDP and SCTP",
        [{"destination_port": ["5001", "53"]}],
        [],
        {"sctp", "dns-request", "udp-trace-dns"},
    ),
    ("source_port 0 only on flows with ports", [{"source_port": ["0"]}], [], {"tcp-port-zero"}),
    (
        "tcp_flags SYN includes SYN-ACK",
        [{"tcp_flags": [{"SYN": True}]}],
        [],
        {
            "pv-client-web-syn",
            "trace-to-endpoint-syn",
            "trace-reply-synack",
            "drop-world-web",
            "drop-client-db-deny",
            "ipv6-world-https",
            "world-egress-snat",
            "host-to-web",
            "pv-audit",
        },
    ),
    (
        "tcp_flags entries OR, flags of one entry AND",
        [{"tcp_flags": [{"SYN": True, "ACK": True}, {"FIN": True}]}],
        [],
        {"trace-reply-synack", "fin-ack"},
    ),
    ("tcp_flags RST", [{"tcp_flags": [{"RST": True}]}], [], {"rst-reply"}),
    ("tcp_flags PSH", [{"tcp_flags": [{"PSH": True}]}], [], {"encrypted-overlay"}),
    # nodes
    ("node_name bare name", [{"node_name": ["kind-control-plane"]}], [], CONTROL_PLANE_FLOWS),
    ("node_name cluster/", [{"node_name": ["prod/"]}], [], PROD_FLOWS),
    ("node_name glob", [{"node_name": ["*/node-*.example.com"]}], [], PROD_FLOWS),
    (
        "node_name default cluster glob and verdict",
        [{"node_name": ["default/kind-*"], "verdict": ["DROPPED"]}],
        [],
        {"drop-world-web", "tcp-port-zero", "drop-ipv6-invalid-source"},
    ),
    # IP version, reply, encryption, tracing
    (
        "ip_version IPv6",
        [{"ip_version": ["IPv6"]}],
        [],
        {"icmpv6-echo", "ipv6-world-https", "drop-ipv6-invalid-source"},
    ),
    ("ip_version none", [{"ip_version": ["IP_NOT_USED"]}], [], {"capture-arp-no-ip"}),
    ("reply true", [{"reply": [True]}], [], REPLIES),
    ("reply false never matches unknown", [{"verdict": ["DROPPED"], "reply": [False]}], [], set()),
    (
        "blacklisted reply keeps unknown",
        [{"verdict": ["DROPPED"]}],
        [{"reply": [True]}],
        DROPPED,
    ),
    ("encrypted", [{"encrypted": [True]}], [], {"encrypted-overlay"}),
    (
        "unencrypted on a node",
        [{"encrypted": [False], "node_name": ["prod/"]}],
        [],
        {"drop-client-db-deny", "pv-audit"},
    ),
    ("ip_trace_id", [{"ip_trace_id": ["4242"]}], [], {"encrypted-overlay"}),
    ("trace_id", [{"trace_id": [TRACE_ID]}], [], {"http-request-get", "http-response-200"}),
    # HTTP and DNS
    (
        "http_status_code prefix and full code",
        [{"http_status_code": ["5+", "404"]}],
        [],
        {"http-response-503-post", "http-response-404-path"},
    ),
    (
        "http_status_code two-digit prefix with event type l7",
        [{"http_status_code": ["20+"], "event_type": [{"type": 129}]}],
        [],
        {"http-response-200"},
    ),
    (
        "http_method is case-insensitive",
        [{"http_method": ["POST", "delete"]}],
        [],
        {"http-response-503-post", "http-request-bad-url"},
    ),
    (
        "http_path regex",
        [{"http_path": ["^/api/v[12]/"]}],
        [],
        {"http-request-get", "http-response-200", "http-response-503-post"},
    ),
    (
        "http_path is percent-decoded",
        [{"http_path": ["orders new$"]}],
        [],
        {"http-response-503-post"},
    ),
    ("http_path needs a parsable URL", [{"http_path": ["."]}], [], HTTP_WITH_PATH),
    (
        "http_url regex",
        [{"http_url": [r"limit=\d+$", "^items/"]}],
        [],
        {"http-request-get", "http-response-200", "http-request-bad-url"},
    ),
    (
        "http_header exact key and value",
        [
            {
                "http_header": [
                    {"key": "x-request-id", "value": "abc-1"},
                    {"key": "content-type", "value": "text/html"},
                ]
            }
        ],
        [],
        {"http-request-get"},
    ),
    (
        "dns_query regex",
        [{"dns_query": [r"^api\.example\.com\.$"]}],
        [],
        {"dns-request", "dns-response"},
    ),
    (
        "dns_query case-insensitive flag",
        [{"dns_query": ["(?i)EXAMPLE"]}],
        [],
        {"dns-request", "dns-response"},
    ),
    # combinations
    (
        "fields AND within a filter",
        [
            {
                "source_pod": ["default/client"],
                "destination_port": ["80"],
                "protocol": ["tcp"],
                "verdict": ["FORWARDED"],
                "traffic_direction": ["INGRESS"],
            }
        ],
        [],
        {"pv-client-web-syn", "trace-to-endpoint-syn", "http-request-get", "fin-ack"},
    ),
    (
        "whitelist filters OR",
        [{"source_identity": [1]}, {"destination_identity": [10]}],
        [],
        {"host-to-web", "vrrp", "igmp", "ipv6-world-https"},
    ),
    (
        "whitelist minus blacklist filters",
        [{"source_pod": ["default/client"]}],
        [{"protocol": ["tcp"]}, {"ip_version": ["IPv6"]}],
        {"dns-request", "udp-trace-dns", "icmpv4-echo", "sctp"},
    ),
    (
        "blacklist only",
        [],
        [{"node_name": ["kind-worker"]}, {"verdict": ["FORWARDED"]}],
        {"drop-client-db-deny", "pv-audit"},
    ),
]


def _filters(documents: Filters) -> list[flow_pb2.FlowFilter]:
    return [json_format.ParseDict(document, flow_pb2.FlowFilter()) for document in documents]


@pytest.fixture(scope="module")
def filled(store: Store) -> Iterator[Store]:
    store.insert(FLOWS)
    yield store


@pytest.mark.parametrize(
    ("whitelist", "blacklist", "expected"),
    [pytest.param(w, b, e, id=description) for description, w, b, e in CASES],
)
def test_predicate(whitelist: Filters, blacklist: Filters, expected: set[str]) -> None:
    matches = compile_predicate(_filters(whitelist), _filters(blacklist))
    assert {flow.uuid for flow in FLOWS if matches(flow)} == expected


@pytest.mark.parametrize(
    ("whitelist", "blacklist", "expected"),
    [pytest.param(w, b, e, id=description) for description, w, b, e in CASES],
)
def test_sql(filled: Store, whitelist: Filters, blacklist: Filters, expected: set[str]) -> None:
    condition = compile_sql(_filters(whitelist), _filters(blacklist))
    result = filled.client.query(
        f"SELECT uuid FROM {filled.table} WHERE {condition.sql}", parameters=condition.params
    )
    assert {row[0] for row in result.result_rows} == expected


def test_every_field_has_a_case() -> None:
    used = {
        descriptor.name
        for _, whitelist, blacklist, _ in CASES
        for ff in _filters(whitelist + blacklist)
        for descriptor, _ in ff.ListFields()
    }
    # CEL is refused at compile time (tests/unit/test_filters_errors.py).
    fields = {field.name for field in flow_pb2.FlowFilter.DESCRIPTOR.fields} - {"experimental"}
    assert fields - used == set()
