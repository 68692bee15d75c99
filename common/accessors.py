"""Derived views of a Flow that several parts need (filters, printers, schema).

Each derivation is written once here, so a filter and a printer cannot
disagree about, say, which ports a flow has.
"""

from __future__ import annotations

from flowscope.proto.flow import flow_pb2


def l4_protocol(flow: flow_pb2.Flow) -> str:
    """The L4 oneof's case: "TCP", "UDP", "ICMPv4", ...; "" when unset."""
    return flow.l4.WhichOneof("protocol") or ""


def ports(flow: flow_pb2.Flow) -> tuple[int, int]:
    """(source, destination) port for TCP, UDP and SCTP; (0, 0) otherwise."""
    l4 = flow.l4
    case = l4.WhichOneof("protocol")
    if case == "TCP":
        return l4.TCP.source_port, l4.TCP.destination_port
    if case == "UDP":
        return l4.UDP.source_port, l4.UDP.destination_port
    if case == "SCTP":
        return l4.SCTP.source_port, l4.SCTP.destination_port
    return 0, 0


def is_reply(flow: flow_pb2.Flow) -> bool | None:
    """The flow's reply direction; None when unknown (is_reply absent)."""
    if flow.HasField("is_reply"):
        return flow.is_reply.value
    return None


def node_cluster_and_name(node_name: str) -> tuple[str, str]:
    """Split "cluster/node"; a bare node name belongs to cluster "default"."""
    cluster, sep, name = node_name.partition("/")
    if not sep:
        return "default", node_name
    return cluster, name
