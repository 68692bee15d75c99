"""What the page shows, derived once on the server: a flow's table row (the flows
table, its CSV export), an edge's verdict class, and the map's nodes.

Every value here is plain text; the page puts it in the DOM as text, never as HTML.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Final

from flowscope.common import accessors, vocab
from flowscope.proto.aggregate import aggregate_pb2
from flowscope.proto.flow import flow_pb2
from flowscope.ui.scope import IDENTITY_PREFIX, endpoint_label

# The flows table's columns, in order: (key, heading), as Hubble UI has them.
COLUMNS: Final = (
    ("time", "Timestamp"),
    ("source_pod", "Source Pod"),
    ("source_ip", "Source IP"),
    ("source_identity", "Source Identity"),
    ("destination_pod", "Destination Pod"),
    ("destination_ip", "Destination IP"),
    ("destination_identity", "Destination Identity"),
    ("destination_port", "Destination Port"),
    ("l7", "L7 info"),
    ("direction", "Traffic Direction"),
    ("verdict", "Verdict"),
    ("tcp_flags", "TCP Flags"),
    ("auth", "Authentication"),
)
_PASSING: Final = ("FORWARDED", "REDIRECTED", "TRACED", "TRANSLATED")


def _pod(endpoint: flow_pb2.Endpoint) -> str:
    if endpoint.pod_name:
        return f"{endpoint.namespace}/{endpoint.pod_name}"
    return vocab.RESERVED_IDENTITIES.get(endpoint.identity, "")


def _identity(endpoint: flow_pb2.Endpoint) -> str:
    return str(endpoint.identity) if endpoint.identity or endpoint.labels else ""


def _time(flow: flow_pb2.Flow) -> str:
    stamp = datetime.fromtimestamp(flow.time.seconds, UTC)
    return f"{stamp:%Y-%m-%dT%H:%M:%S}.{flow.time.nanos:09d}Z"


def _l7(flow: flow_pb2.Flow) -> str:
    record = flow.l7.WhichOneof("record")
    if record == "http":
        http = flow.l7.http
        latency = f" {flow.l7.latency_ns // 1_000_000}ms" if flow.l7.latency_ns else ""
        code = f" {http.code}" if http.code else ""
        return f"{http.method} {http.url}{code}{latency}"
    if record == "dns":
        return f"DNS {flow.l7.dns.query}"
    return record or ""


def _name(enum_name: str) -> str:
    """An enum value as the table shows it: "egress", "dropped", "unknown"."""
    return "unknown" if enum_name.endswith("_UNKNOWN") else enum_name.lower()


def flow_row(flow: flow_pb2.Flow) -> dict[str, str]:
    """The flows table's cells of one flow, by COLUMNS key."""
    _, destination_port = accessors.ports(flow)
    protocol = accessors.l4_protocol(flow)
    flags = flow.l4.TCP.flags if protocol == "TCP" else None
    return {
        "time": _time(flow),
        "source_pod": _pod(flow.source),
        "source_ip": flow.IP.source,
        "source_identity": _identity(flow.source),
        "destination_pod": _pod(flow.destination),
        "destination_ip": flow.IP.destination,
        "destination_identity": _identity(flow.destination),
        "destination_port": f"{destination_port}/{protocol}" if destination_port else protocol,
        "l7": _l7(flow),
        "direction": _name(flow_pb2.TrafficDirection.Name(flow.traffic_direction)),
        "verdict": _name(flow_pb2.Verdict.Name(flow.verdict)),
        "tcp_flags": ", ".join(
            name for name in vocab.TCP_FLAG_ORDER if flags is not None and getattr(flags, name)
        ),
        "auth": flow_pb2.AuthType.Name(flow.auth_type).lower() if flow.auth_type else "",
    }


def csv_header() -> str:
    return _csv_line([heading for _, heading in COLUMNS])


def csv_line(flow: flow_pb2.Flow) -> str:
    row = flow_row(flow)
    return _csv_line([row[key] for key, _ in COLUMNS])


def _csv_line(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue()


def edge_verdict(verdicts: dict[str, int]) -> str:
    """forwarded, dropped, audit or mixed (drops beside flows that passed or were audited)."""
    dropped = verdicts.get("DROPPED", 0) + verdicts.get("ERROR", 0)
    passed = sum(verdicts.get(name, 0) for name in _PASSING)
    audited = verdicts.get("AUDIT", 0)
    if dropped:
        return "mixed" if passed or audited else "dropped"
    return "audit" if audited else "forwarded"


def _node(name: str, level: str) -> dict[str, str]:
    if name.startswith(IDENTITY_PREFIX):
        label = endpoint_label(name)
        kind = label if label in ("world", "host") else "identity"
        return {"id": name, "label": label, "namespace": "", "kind": kind}
    namespace = name.partition("/")[0]
    return {"id": name, "label": endpoint_label(name), "namespace": namespace, "kind": level}


def service_map(answer: aggregate_pb2.ServiceMapResponse, level: str) -> dict[str, object]:
    """The map's nodes and edges: nodes grouped by namespace; world, host and other
    reserved identities without one."""
    nodes: dict[str, dict[str, str]] = {}
    edges = []
    for edge in answer.edges:
        for name in (edge.source, edge.destination):
            if name not in nodes:
                nodes[name] = _node(name, level)
        verdicts = dict(edge.verdicts)
        edges.append(
            {
                "id": f"{edge.source}>{edge.destination}:{edge.destination_port}/{edge.protocol}",
                "source": edge.source,
                "destination": edge.destination,
                "port": edge.destination_port,
                "protocol": edge.protocol,
                "flows": edge.flows,
                "bytes": edge.bytes,
                "verdicts": verdicts,
                "verdict": edge_verdict(verdicts),
            }
        )
    namespaces = sorted({node["namespace"] for node in nodes.values() if node["namespace"]})
    return {
        "namespaces": namespaces,
        "nodes": sorted(nodes.values(), key=lambda node: node["id"]),
        "edges": edges,
        "table": answer.table,
    }
