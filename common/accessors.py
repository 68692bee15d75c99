"""Derived views of a Flow that several parts need (filters, printers, schema).

Each derivation is written once here, so a filter and a printer cannot
disagree about, say, which ports a flow has.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import urllib.parse
from typing import Final

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


@functools.lru_cache(maxsize=65536)
def ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address in one of a Flow's IP fields; None when empty or not an address.

    An IPv4-mapped IPv6 address (::ffff:a.b.c.d) reads as the IPv4 address it
    carries: the store keeps every address as IPv6 with IPv4 mapped, and the
    in-memory filters must see the same address the store does. Cached because
    flows repeat the same few addresses.
    """
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


# TCPFlags field number n is bit n-1 of the mask (FIN=1, SYN=2, RST=4, ...).
TCP_FLAG_BITS: Final[tuple[tuple[str, int], ...]] = tuple(
    (field.name, 1 << (field.number - 1)) for field in flow_pb2.TCPFlags.DESCRIPTOR.fields
)


def tcp_flag_mask(flags: flow_pb2.TCPFlags) -> int:
    """The flags set in a TCPFlags message as a bitmask (see TCP_FLAG_BITS)."""
    mask = 0
    for name, bit in TCP_FLAG_BITS:
        if getattr(flags, name):
            mask |= bit
    return mask


# An HTTP URL's parts, after RFC 3986's appendix B: scheme, authority, path. The
# patterns are written for both Python's re and ClickHouse's RE2, so that the
# store's SQL (http_path_sql) and http_path() read the same path from a URL.
URL_PARTS: Final = r"^(?:([A-Za-z][A-Za-z0-9+.-]*):)?(?://([^/?#]*))?([^?#]*)"
URL_CONTROL: Final = r"[\x00-\x1f\x7f]"
URL_BRACKETS: Final = r"[\[\]]"
URL_BRACKETED_HOST: Final = r"^(?:[^@\[\]]*@)?\[[0-9A-Fa-f:.]+\](?::[0-9]*)?$"
URL_BAD_ESCAPE: Final = r"%(?:[^0-9A-Fa-f]|[0-9A-Fa-f](?:[^0-9A-Fa-f]|$)|$)"
_URL_PATTERNS: Final = {
    name: re.compile(pattern)
    for name, pattern in (
        ("parts", URL_PARTS),
        ("control", URL_CONTROL),
        ("brackets", URL_BRACKETS),
        ("bracketed", URL_BRACKETED_HOST),
        ("bad_escape", URL_BAD_ESCAPE),
    )
}


@functools.lru_cache(maxsize=4096)
def http_path(url: str) -> str | None:
    """The percent-decoded path of an HTTP request URL ("/v1/x" of "http://h/v1/x?q").

    None when the URL has no path to match: it is neither absolute (a scheme)
    nor an absolute path, holds a control character, has a bracketed host that
    is not an address, a broken percent escape in the path, or a path that does
    not decode to UTF-8.
    """
    parts = _URL_PATTERNS["parts"].match(url)
    assert parts is not None  # every group is optional
    scheme, authority, path = parts.groups()
    if _URL_PATTERNS["control"].search(url) or not (scheme or url.startswith("/")):
        return None
    brackets = authority and _URL_PATTERNS["brackets"].search(authority)
    if brackets and not _URL_PATTERNS["bracketed"].match(authority):
        return None
    if _URL_PATTERNS["bad_escape"].search(path):
        return None
    try:
        return urllib.parse.unquote_to_bytes(path).decode()
    except UnicodeDecodeError:
        return None


# ICMP type -> (name, {code: name} or None when the type uses no codes), as
# gopacket names them: Hubble prints these names and labels metrics with them.
_ICMP_TYPES: Final[dict[int, dict[int, tuple[str, dict[int, str] | None]]]] = {
    4: {
        0: ("EchoReply", None),
        3: (
            "DestinationUnreachable",
            {
                0: "Net",
                1: "Host",
                2: "Protocol",
                3: "Port",
                4: "FragmentationNeeded",
                5: "SourceRoutingFailed",
                6: "NetUnknown",
                7: "HostUnknown",
                8: "SourceIsolated",
                9: "NetAdminProhibited",
                10: "HostAdminProhibited",
                11: "NetTOS",
                12: "HostTOS",
                13: "CommAdminProhibited",
                14: "HostPrecedence",
                15: "PrecedenceCutoff",
            },
        ),
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
    },
    6: {
        1: (
            "DestinationUnreachable",
            {
                0: "NoRouteToDst",
                1: "AdminProhibited",
                2: "BeyondScopeOfSrc",
                3: "AddressUnreachable",
                4: "PortUnreachable",
                5: "SrcAddressFailedPolicy",
                6: "RejectRouteToDst",
            },
        ),
        2: ("PacketTooBig", None),
        3: ("TimeExceeded", {0: "HopLimitExceeded", 1: "FragmentReassemblyTimeExceeded"}),
        4: (
            "ParameterProblem",
            {0: "ErroneousHeaderField", 1: "UnrecognizedNextHeader", 2: "UnrecognizedIPv6Option"},
        ),
        128: ("EchoRequest", None),
        129: ("EchoReply", None),
        133: ("RouterSolicitation", None),
        134: ("RouterAdvertisement", None),
        135: ("NeighborSolicitation", None),
        136: ("NeighborAdvertisement", None),
        137: ("Redirect", None),
    },
}


def icmp_type_code(version: int, icmp_type: int, code: int) -> str:
    """gopacket's TypeCode text for ICMPv4 (version 4) or ICMPv6 (6).

    "EchoRequest", "DestinationUnreachable(Port)", "EchoRequest(Code: 1)", "3(7)".
    """
    info = _ICMP_TYPES[version].get(icmp_type)
    if info is None:
        return f"{icmp_type}({code})"
    name, codes = info
    if codes is None:
        return name if code == 0 else f"{name}(Code: {code})"
    code_name = codes.get(code)
    return f"{name}({code_name})" if code_name else f"{name}(Code: {code})"
