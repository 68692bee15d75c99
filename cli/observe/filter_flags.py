"""The filter flags of `flowscope observe`: each flag's name, help, value and what it sets.

The flags and their names are `hubble observe`'s; filters.compile_flags applies them.
"""

from __future__ import annotations

from typing import Final

from flowscope.cli.observe.filter_values import (
    enum_value,
    event_type,
    http_header,
    identity,
    interface,
    ip_trace_id,
    ip_version,
    tcp_flags,
    workload,
)
from flowscope.cli.observe.filters import (
    FilterFlag,
    constant,
    to_both,
    to_namespaces,
    to_sides,
)
from flowscope.common import vocab
from flowscope.proto.flow import flow_pb2

_VERDICTS = [name for name, _ in flow_pb2.Verdict.items() if name != "VERDICT_UNKNOWN"]

FILTER_FLAGS: Final[tuple[FilterFlag, ...]] = (
    FilterFlag(
        "pod",
        "flows from or to pods with this name prefix ([namespace/]pod)",
        to_sides("pod"),
        "POD",
    ),
    FilterFlag(
        "from-pod",
        "flows from pods with this name prefix ([namespace/]pod)",
        to_both("source_pod"),
        "POD",
    ),
    FilterFlag(
        "to-pod",
        "flows to pods with this name prefix ([namespace/]pod)",
        to_both("destination_pod"),
        "POD",
    ),
    FilterFlag(
        "namespace",
        "flows from or to this Kubernetes namespace",
        to_namespaces("namespaces"),
        "NAMESPACE",
        "-n",
    ),
    FilterFlag(
        "from-namespace",
        "flows from this namespace",
        to_namespaces("source_namespaces"),
        "NAMESPACE",
    ),
    FilterFlag(
        "to-namespace",
        "flows to this namespace",
        to_namespaces("destination_namespaces"),
        "NAMESPACE",
    ),
    FilterFlag(
        "all-namespaces",
        "flows from or to any namespace",
        to_namespaces("namespaces", every=True),
        None,
        "-A",
    ),
    FilterFlag(
        "from-all-namespaces",
        "flows from any namespace",
        to_namespaces("source_namespaces", every=True),
        None,
    ),
    FilterFlag(
        "to-all-namespaces",
        "flows to any namespace",
        to_namespaces("destination_namespaces", every=True),
        None,
    ),
    FilterFlag(
        "service",
        "flows from or to services with this name prefix ([namespace/]service)",
        to_sides("service"),
        "SERVICE",
    ),
    FilterFlag(
        "from-service",
        "flows from services with this name prefix",
        to_both("source_service"),
        "SERVICE",
    ),
    FilterFlag(
        "to-service",
        "flows to services with this name prefix",
        to_both("destination_service"),
        "SERVICE",
    ),
    FilterFlag("ip", "flows from or to this IP address or CIDR (1.1.1.0/24)", to_sides("ip"), "IP"),
    FilterFlag("from-ip", "flows from this IP address or CIDR", to_both("source_ip"), "IP"),
    FilterFlag("to-ip", "flows to this IP address or CIDR", to_both("destination_ip"), "IP"),
    FilterFlag(
        "snat-ip",
        "flows source-NATed to this IP address or CIDR",
        to_both("source_ip_xlated"),
        "IP",
    ),
    FilterFlag(
        "fqdn", "flows from or to this DNS name (globs: *.example.com)", to_sides("fqdn"), "FQDN"
    ),
    FilterFlag("from-fqdn", "flows from this DNS name", to_both("source_fqdn"), "FQDN"),
    FilterFlag("to-fqdn", "flows to this DNS name", to_both("destination_fqdn"), "FQDN"),
    FilterFlag(
        "ipv4", "IPv4 flows only", to_both("ip_version", constant(flow_pb2.IPv4)), None, "-4"
    ),
    FilterFlag(
        "ipv6", "IPv6 flows only", to_both("ip_version", constant(flow_pb2.IPv6)), None, "-6"
    ),
    FilterFlag(
        "ip-version",
        "flows of this IP version: none, v4 or v6",
        to_both("ip_version", ip_version),
        "VERSION",
    ),
    FilterFlag(
        "label",
        "flows from or to endpoints with these labels (k8s:app=x, reserved:world)",
        to_sides("label"),
        "SELECTOR",
        "-l",
    ),
    FilterFlag(
        "from-label", "flows from endpoints with these labels", to_both("source_label"), "SELECTOR"
    ),
    FilterFlag(
        "to-label", "flows to endpoints with these labels", to_both("destination_label"), "SELECTOR"
    ),
    FilterFlag(
        "identity",
        "flows from or to this security identity (a number or a reserved name such as world)",
        to_sides("identity", identity),
        "IDENTITY",
    ),
    FilterFlag(
        "from-identity",
        "flows from this security identity",
        to_both("source_identity", identity),
        "IDENTITY",
    ),
    FilterFlag(
        "to-identity",
        "flows to this security identity",
        to_both("destination_identity", identity),
        "IDENTITY",
    ),
    FilterFlag(
        "workload",
        "flows from or to this workload ([kind/]name)",
        to_sides("workload", workload),
        "WORKLOAD",
    ),
    FilterFlag(
        "from-workload",
        "flows from this workload",
        to_both("source_workload", workload),
        "WORKLOAD",
    ),
    FilterFlag(
        "to-workload",
        "flows to this workload",
        to_both("destination_workload", workload),
        "WORKLOAD",
    ),
    FilterFlag(
        "cluster", "flows from or to endpoints of this cluster", to_sides("cluster_name"), "CLUSTER"
    ),
    FilterFlag(
        "from-cluster",
        "flows from endpoints of this cluster",
        to_both("source_cluster_name"),
        "CLUSTER",
    ),
    FilterFlag(
        "to-cluster",
        "flows to endpoints of this cluster",
        to_both("destination_cluster_name"),
        "CLUSTER",
    ),
    FilterFlag(
        "protocol",
        "flows of this L4 or L7 protocol (tcp, udp, icmp, http, dns, ...)",
        to_both("protocol"),
        "PROTOCOL",
    ),
    FilterFlag("port", "flows from or to this port", to_sides("port"), "PORT"),
    FilterFlag("from-port", "flows from this source port", to_both("source_port"), "PORT"),
    FilterFlag("to-port", "flows to this destination port", to_both("destination_port"), "PORT"),
    FilterFlag(
        "tcp-flags",
        "TCP flows with all of these flags set (syn,ack)",
        to_both("tcp_flags", tcp_flags),
        "FLAGS",
    ),
    FilterFlag(
        "verdict",
        f"flows with this verdict: {', '.join(_VERDICTS)}",
        to_both("verdict", enum_value(flow_pb2.Verdict)),
        "VERDICT",
    ),
    FilterFlag(
        "drop-reason-desc",
        "drops for this reason (POLICY_DENIED, ...)",
        to_both("drop_reason_desc", enum_value(flow_pb2.DropReason)),
        "REASON",
    ),
    FilterFlag(
        "type",
        "events of this type TYPE[:SUBTYPE]: "
        + ", ".join(name for name in vocab.EVENT_TYPES if name not in ("agent", "debug"))
        + "; trace subtypes: "
        + ", ".join(vocab.TRACE_SUBTYPES),
        to_both("event_type", event_type),
        "TYPE",
        "-t",
    ),
    FilterFlag(
        "traffic-direction",
        "flows in this direction: ingress or egress",
        to_both(
            "traffic_direction",
            enum_value(flow_pb2.TrafficDirection, choices=("INGRESS", "EGRESS")),
        ),
        "DIRECTION",
    ),
    FilterFlag(
        "http-status",
        "HTTP responses with this status code or prefix (404, 5+)",
        to_both("http_status_code"),
        "CODE",
    ),
    FilterFlag(
        "http-method", "HTTP flows with this method (get, post)", to_both("http_method"), "METHOD"
    ),
    FilterFlag(
        "http-path",
        "HTTP flows whose path matches this regular expression",
        to_both("http_path"),
        "REGEX",
    ),
    FilterFlag(
        "http-url",
        "HTTP flows whose URL matches this regular expression",
        to_both("http_url"),
        "REGEX",
    ),
    FilterFlag(
        "http-header",
        "HTTP flows with this header (name:value)",
        to_both("http_header", http_header),
        "NAME:VALUE",
    ),
    FilterFlag(
        "node-name",
        "flows seen on these nodes ([cluster/]node, globs: worker-*)",
        to_both("node_name"),
        "NAME",
    ),
    FilterFlag(
        "node-label", "flows seen on nodes with these labels", to_both("node_labels"), "SELECTOR"
    ),
    FilterFlag(
        "interface",
        "flows seen at this network interface (eth0)",
        to_both("interface", interface),
        "NAME",
    ),
    FilterFlag("uuid", "the flow with this UUID", to_both("uuid"), "UUID"),
    FilterFlag("trace-id", "flows with this trace ID", to_both("trace_id"), "ID"),
    FilterFlag(
        "ip-trace-id",
        "flows with this IP option trace ID",
        to_both("ip_trace_id", ip_trace_id),
        "ID",
    ),
    FilterFlag("encrypted", "encrypted flows only", to_both("encrypted", constant(True)), None),
    FilterFlag(
        "unencrypted", "unencrypted flows only", to_both("encrypted", constant(False)), None
    ),
    FilterFlag(
        "cel-expression",
        "flows for which this CEL expression is true (evaluated by the server)",
        to_both("experimental.cel_expression"),
        "EXPR",
    ),
)
FLAGS_BY_NAME: Final[dict[str, FilterFlag]] = {spec.name: spec for spec in FILTER_FLAGS}
