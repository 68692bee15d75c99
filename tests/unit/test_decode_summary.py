"""Summary texts, drop reason names, BTF offsets and the ctypes mirror check."""

from __future__ import annotations

import ctypes
import struct

import pytest

from flowscope.collector import rawevent as raw
from flowscope.collector.btf import Btf
from flowscope.collector.dropreasons import parse_format
from flowscope.collector.summary import summary
from flowscope.common.accessors import icmp_type_code
from flowscope.common.errors import NotSupportedError
from flowscope.proto.flow import flow_pb2


def tcp_flow(**flags: bool) -> flow_pb2.Flow:
    flow = flow_pb2.Flow()
    for name, value in flags.items():
        setattr(flow.l4.TCP.flags, name, value)
    return flow


@pytest.mark.parametrize(("flow", "text"), [
    (tcp_flow(SYN=True), "TCP Flags: SYN"),
    (tcp_flow(ACK=True, SYN=True), "TCP Flags: SYN, ACK"),
    (tcp_flow(FIN=True, PSH=True, ACK=True, NS=True, CWR=True),
     "TCP Flags: ACK, FIN, PSH, CWR, NS"),
    (flow_pb2.Flow(l4=flow_pb2.Layer4(UDP=flow_pb2.UDP(source_port=1))), "UDP"),
    (flow_pb2.Flow(l4=flow_pb2.Layer4(ICMPv4=flow_pb2.ICMPv4(type=8))), "ICMPv4 EchoRequest"),
    (flow_pb2.Flow(l4=flow_pb2.Layer4(ICMPv6=flow_pb2.ICMPv6(type=129))), "ICMPv6 EchoReply"),
    (flow_pb2.Flow(IP=flow_pb2.IP(source="fe80::1", ipVersion=flow_pb2.IPv6)), "IPv6"),
    (flow_pb2.Flow(IP=flow_pb2.IP(source="10.0.0.1", ipVersion=flow_pb2.IPv4)), "IPv4"),
])
def test_summary(flow: flow_pb2.Flow, text: str) -> None:
    assert summary(flow) == text


@pytest.mark.parametrize(("version", "icmp_type", "code", "text"), [
    (4, 3, 3, "DestinationUnreachable(Port)"),
    (4, 3, 99, "DestinationUnreachable(Code: 99)"),
    (4, 0, 5, "EchoReply(Code: 5)"),
    (4, 11, 0, "TimeExceeded(TTLExceeded)"),
    (4, 42, 1, "42(1)"),
    (6, 1, 4, "DestinationUnreachable(PortUnreachable)"),
    (6, 135, 0, "NeighborSolicitation"),
])
def test_icmp_type_code(version: int, icmp_type: int, code: int, text: str) -> None:
    assert icmp_type_code(version, icmp_type, code) == text


def test_drop_reasons_from_the_tracepoint_format() -> None:
    reasons = parse_format('name: kfree_skb\nprint fmt: "%s", __print_symbolic(REC->reason, '
                           '{ 2, "NOT_SPECIFIED" }, { 3, "NO_SOCKET" }, { 77, "NETFILTER_DROP" })')
    assert reasons.value("NETFILTER_DROP") == 77
    assert reasons.describe(3) == ("NO_SOCKET", flow_pb2.SOCKET_LOOKUP_FAILED)
    assert reasons.describe(77) == ("NETFILTER_DROP", flow_pb2.DROP_REASON_UNKNOWN)
    assert reasons.describe(500) == ("REASON_500", flow_pb2.DROP_REASON_UNKNOWN)
    with pytest.raises(NotSupportedError, match="no TC_INGRESS"):
        reasons.value("TC_INGRESS")
    with pytest.raises(NotSupportedError, match=r"older than 5\.17"):
        parse_format('print fmt: "skbaddr=%p", REC->skbaddr')


def btf_blob() -> bytes:
    """struct inner { u16 nh; }; struct outer { u64 a; union { struct inner; }; } in BTF."""
    strings = b"\0outer\0inner\0a\0nh\0"
    name = {s: strings.index(s.encode() + b"\0") for s in ("outer", "inner", "a", "nh")}
    types = b"".join([
        struct.pack("<III", 0, 1 << 24, 8) + struct.pack("<I", 64),              # 1: int
        struct.pack("<III", name["inner"], 4 << 24 | 1, 2)
        + struct.pack("<III", name["nh"], 1, 0),                                 # 2: inner
        struct.pack("<III", 0, 5 << 24 | 1, 2) + struct.pack("<III", 0, 2, 0),   # 3: union
        struct.pack("<III", name["outer"], 4 << 24 | 2, 16)
        + struct.pack("<III", name["a"], 1, 0) + struct.pack("<III", 0, 3, 64),  # 4: outer
    ])
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return header + types + strings


def test_btf_member_offsets_look_into_anonymous_members() -> None:
    btf = Btf(btf_blob())
    assert btf.member_offset("outer", "a") == 0
    assert btf.member_offset("outer", "nh") == 8
    with pytest.raises(NotSupportedError, match="struct outer has no member len"):
        btf.member_offset("outer", "len")
    with pytest.raises(NotSupportedError, match="no struct sk_buff"):
        btf.member_offset("sk_buff", "head")


def test_layout_check_names_the_field_that_differs() -> None:
    class Shifted(ctypes.Structure):
        _fields_ = (("identity", ctypes.c_uint32), ("__pad_0", ctypes.c_uint32),
                    ("flags", ctypes.c_uint32))

    class Same(ctypes.Structure):
        _fields_ = (("identity", ctypes.c_uint32), ("flags", ctypes.c_uint32))

    raw.check_layout(raw.IpcacheValue, Same)
    with pytest.raises(raw.LayoutError, match="IpcacheValue: size 8 in user space, 12"):
        raw.check_layout(raw.IpcacheValue, Shifted)
