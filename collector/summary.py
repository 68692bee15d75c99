"""Flow.Summary text as Hubble's L3/L4 parser writes it: "TCP Flags: SYN, ACK", "UDP",
"ICMPv4 EchoRequest", "ICMPv6 DestinationUnreachable(PortUnreachable)".

ICMP type and code names follow the gopacket TypeCode names that Hubble prints.
"""

from __future__ import annotations

from typing import Final

from flowscope.common.vocab import TCP_FLAG_ORDER
from flowscope.proto.flow import flow_pb2

# name -> (type, {code: name} or None when the type uses no codes)
_ICMPV4: Final[dict[int, tuple[str, dict[int, str] | None]]] = {
    0: ("EchoReply", None),
    3: ("DestinationUnreachable", {
        0: "Net", 1: "Host", 2: "Protocol", 3: "Port", 4: "FragmentationNeeded",
        5: "SourceRoutingFailed", 6: "NetUnknown", 7: "HostUnknown", 8: "SourceIsolated",
        9: "NetAdminProhibited", 10: "HostAdminProhibited", 11: "NetTOS", 12: "HostTOS",
        13: "CommAdminProhibited", 14: "HostPrecedence", 15: "PrecedenceCutoff"}),
    4: ("SourceQuench", None),
    5: ("Redirect", {0: "Net", 1: "Host", 2: "TOS+Net", 3: "TOS+Host"}),
    8: ("EchoRequest", None),
    9: ("RouterAdvertisement", None),
    10: ("RouterSolicitation", None),
    11: ("TimeExceeded", {0: "TTLExceeded", 1: "FragmentReassemblyTimeExceeded"}),
    12: ("ParameterProblem", {0: "PointerIndicatesError", 1: "MissingOption", 2: "BadLength"}),
    13: ("TimestampRequest", None),
    14: ("TimestampReply", None),
    15: ("InfoRequest", None),
    16: ("InfoReply", None),
    17: ("AddressMaskRequest", None),
    18: ("AddressMaskReply", None),
}
_ICMPV6: Final[dict[int, tuple[str, dict[int, str] | None]]] = {
    1: ("DestinationUnreachable", {
        0: "NoRouteToDst", 1: "AdminProhibited", 2: "BeyondScopeOfSrc",
        3: "AddressUnreachable", 4: "PortUnreachable", 5: "SrcAddressFailedPolicy",
        6: "RejectRouteToDst"}),
    2: ("PacketTooBig", None),
    3: ("TimeExceeded", {0: "HopLimitExceeded", 1: "FragmentReassemblyTimeExceeded"}),
    4: ("ParameterProblem", {
        0: "ErroneousHeaderField", 1: "UnrecognizedNextHeader", 2: "UnrecognizedIPv6Option"}),
    128: ("EchoRequest", None),
    129: ("EchoReply", None),
    133: ("RouterSolicitation", None),
    134: ("RouterAdvertisement", None),
    135: ("NeighborSolicitation", None),
    136: ("NeighborAdvertisement", None),
    137: ("Redirect", None),
}


def icmp_type_code(version: int, icmp_type: int, code: int) -> str:
    """gopacket's TypeCode text: "EchoRequest", "DestinationUnreachable(Port)", "3(7)"."""
    info = (_ICMPV4 if version == 4 else _ICMPV6).get(icmp_type)
    if info is None:
        return f"{icmp_type}({code})"
    name, codes = info
    if codes is None:
        return name if code == 0 else f"{name}(Code: {code})"
    code_name = codes.get(code)
    return f"{name}({code_name})" if code_name else f"{name}(Code: {code})"


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
