"""Flow.Summary text as Hubble's L3/L4 parser writes it: "TCP Flags: SYN, ACK", "UDP",
"ICMPv4 EchoRequest", "ICMPv6 DestinationUnreachable(PortUnreachable)".

ICMP type and code names come from common/accessors.py, which the metrics use too.
"""

from __future__ import annotations

from flowscope.common.accessors import icmp_type_code
from flowscope.common.vocab import TCP_FLAG_ORDER
from flowscope.proto.flow import flow_pb2


def tcp_flag_names(flags: flow_pb2.TCPFlags) -> list[str]:
    return [name for name in TCP_FLAG_ORDER if getattr(flags, name)]


def summary(flow: flow_pb2.Flow) -> str:
    """The summary of the flow's last decoded layer."""
    l4 = flow.l4
    case = l4.WhichOneof("protocol")
    if case == "TCP":
        return "TCP Flags: " + ", ".join(tcp_flag_names(l4.TCP.flags))
    if case == "UDP":
        return "UDP"
    if case == "ICMPv4":
        return "ICMPv4 " + icmp_type_code(4, l4.ICMPv4.type, l4.ICMPv4.code)
    if case == "ICMPv6":
        return "ICMPv6 " + icmp_type_code(6, l4.ICMPv6.type, l4.ICMPv6.code)
    if flow.IP.ipVersion == flow_pb2.IPv6:
        return "IPv6"
    return "IPv4" if flow.IP.source else "Ethernet"
