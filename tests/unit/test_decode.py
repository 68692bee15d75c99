"""Decoding recorded datapath events into Flows (no root needed: the bytes were recorded)."""

from __future__ import annotations

import ctypes
import json
import os
from pathlib import Path
from typing import Any, Final

import pytest

from flowscope.collector import rawevent as raw
from flowscope.collector.decode import Decoder
from flowscope.collector.dropreasons import parse_format
from flowscope.collector.endpoints import Endpoint, EndpointRegistry, lab_endpoints
from flowscope.collector.identity import IdentityAllocator
from flowscope.collector.labconfig import default_lab, write_state
from flowscope.collector.processes import ProcessTable
from flowscope.common.jsonlines import to_dict
from flowscope.proto.flow import flow_pb2

# Events recorded from the datapath on a 6.18 kernel (lab: default), as hex.
RECORDED: Final[dict[str, str]] = {
    "listen": (
        "721d4297d000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000943100000000000000000000901f0000000004060600000000000000"
        "707974686f6e00000000000000000000"
    ),
    "tcp_syn_from": (
        "3d004699d00000000ac701010000000000000000000000000ac70103000000000000000000000000cec2d51741da520b"
        "fec3d63ed7e0000074a200000e0000003c00000000000000000000000000000038ad901f020001040605000000000000"
        "00000000000000000000000000000000"
    ),
    "tcp_synack_to": (
        "cfa34799d00000000ac701030000000000000000000000000ac70101000000000000000000000000520bfec3d63ecec2"
        "d51741da74a20000d7e000000e0000003c000000000000000000000000000000901f38ad120001040600010000000000"
        "00000000000000000000000000000000"
    ),
    "connect": (
        "86e04799d00000000ac701010000000000000000000000000ac701030000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000095310000000000000000000038ad901f000003040600000000000000"
        "707974686f6e00000000000000000000"
    ),
    "udp6_from": (
        "153c239cd0000000fd000199000000000000000000010001fd000199000000000000000000010003cec2d51741da520b"
        "fec3d63ed7e0000074a200000e0000003a000000000000000000000000000000fb85e914000001061105000000000000"
        "00000000000000000000000000000000"
    ),
    "udp6_drop": (
        "a555269cd0000000fd000199000000000000000000010001fd0001990000000000000000000100030000000000000000"
        "00000000d7e0000074a20000000000003a000000000000000300000000000000fb85e914000002061100020000000000"
        "00000000000000000000000000000000"
    ),
    "icmp6_unreach_from": (
        "1897269cd0000000fd000199000000000000000000010003fd000199000000000000000000010001520bfec3d63ecec2"
        "d51741da74a20000d7e00000100000006a00000000000000000000000000000000000000000001063a05000104000000"
        "00000000000000000000000000000000"
    ),
    "icmp4_echo_from": (
        "d579889ed00000000ac701010000000000000000000000000ac70103000000000000000000000000cec2d51741da520b"
        "fec3d63ed7e0000074a200000e0000002500000000000000000000000000000000000000000001040105000800000000"
        "00000000000000000000000000000000"
    ),
    "icmp6_reply_from": (
        "8838bfa0d0000000fd000199000000000000000000010003fd000199000000000000000000010001520bfec3d63ecec2"
        "d51741da74a20000d7e00000100000003900000000000000000000000000000000000000000001063a05018100000000"
        "00000000000000000000000000000000"
    ),
    "tcp_drop_closed": (
        "aac2e9a2d00000000ac701010000000000000000000000000ac701040000000000000000000000000000000000000000"
        "00000000d7e000007dcb0000000000003c000000000000000300000000000000dc860900020002040600020000000000"
        "00000000000000000000000000000000"
    ),
    "tcp_rst_reply_from": (
        "96c9e9a2d00000000ac701040000000000000000000000000ac7010100000000000000000000000026bbc7cdec73cec2"
        "d51741da7dcb0000d7e0000011000000280000000000000000000000000000000900dc86140001040605010000000000"
        "00000000000000000000000000000000"
    ),
}

# The drop reasons of the kernel the events were recorded on (an excerpt of its format).
KFREE_SKB_FORMAT = (
    'print fmt: "reason: %s", __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, '
    '{ 3, "NO_SOCKET" }, { 62, "TC_EGRESS" }, { 73, "TC_INGRESS" })'
)

FRONTEND = {
    "ID": 1, "identity": 57559, "namespace": "shop", "pod_name": "frontend",
    "labels": ["k8s:app=frontend", "k8s:io.cilium.k8s.namespace.labels.team=shop",
               "k8s:io.kubernetes.pod.namespace=shop"],
    "workloads": [{"name": "frontend", "kind": "Deployment"}],
}
DB = {
    "ID": 3, "identity": 41588, "namespace": "data", "pod_name": "db-0",
    "labels": ["k8s:app=db", "k8s:io.cilium.k8s.namespace.labels.team=data",
               "k8s:io.kubernetes.pod.namespace=data"],
    "workloads": [{"name": "db", "kind": "StatefulSet"}],
}
CACHE = {
    "ID": 4, "identity": 52093, "namespace": "data", "pod_name": "cache",
    "labels": ["k8s:app=cache", "k8s:io.cilium.k8s.namespace.labels.team=data",
               "k8s:io.kubernetes.pod.namespace=data"],
    "workloads": [{"name": "cache", "kind": "Deployment"}],
}
EMITTER = {"name": "flowscope", "version": "0.1.0"}


def event(name: str) -> raw.RawEvent:
    return raw.RawEvent.from_buffer_copy(bytes.fromhex(RECORDED[name]))


@pytest.fixture
def registry(tmp_path: Path) -> EndpointRegistry:
    write_state(default_lab(), tmp_path)
    registry = EndpointRegistry(IdentityAllocator(None))
    registry.replace(lab_endpoints(tmp_path))
    return registry


@pytest.fixture
def decoder(registry: EndpointRegistry) -> Decoder:
    return Decoder("node-1", registry, parse_format(KFREE_SKB_FORMAT), ProcessTable(),
                   clock_offset_ns=0, ifname=lambda index: f"if{index}")


def decoded(decoder: Decoder, name: str) -> dict[str, Any]:
    flow = decoder.decode(event(name))
    assert flow is not None
    result = to_dict(flow)
    assert "uuid" not in result  # the ring derives it from the node and the sequence
    return result


def test_event_mirror_matches_the_header_size() -> None:
    assert ctypes.sizeof(raw.RawEvent) == 112
    assert all(len(h) == 224 for h in RECORDED.values())


def test_tcp_syn_from_endpoint_with_client_process(decoder: Decoder) -> None:
    assert decoder.decode(event("connect")) is None  # recorded, not a flow
    assert decoded(decoder, "tcp_syn_from") == {
        "time": "1970-01-01T00:14:55.924699197Z",
        "verdict": "FORWARDED",
        "ethernet": {"source": "ce:c2:d5:17:41:da", "destination": "52:0b:fe:c3:d6:3e"},
        "IP": {"source": "10.199.1.1", "destination": "10.199.1.3", "ipVersion": "IPv4"},
        "l4": {"TCP": {"source_port": 44344, "destination_port": 8080,
                       "flags": {"SYN": True}}},
        "source": {**FRONTEND, "process": {"pid": 12693, "command": "python"}},
        "destination": DB,
        "Type": "L3_L4",
        "node_name": "node-1",
        "event_type": {"type": 4, "sub_type": 5},
        "traffic_direction": "EGRESS",
        "trace_observation_point": "FROM_ENDPOINT",
        "is_reply": False,
        "interface": {"index": 14, "name": "if14"},
        "emitter": EMITTER,
        "Summary": "TCP Flags: SYN",
    }


def test_drop_at_closed_port(decoder: Decoder) -> None:
    assert decoded(decoder, "tcp_drop_closed") == {
        "time": "1970-01-01T00:14:56.086426282Z",
        "verdict": "DROPPED",
        "drop_reason": 178,
        "IP": {"source": "10.199.1.1", "destination": "10.199.1.4", "ipVersion": "IPv4"},
        "l4": {"TCP": {"source_port": 34524, "destination_port": 9, "flags": {"SYN": True}}},
        "source": FRONTEND,
        "destination": CACHE,
        "Type": "L3_L4",
        "node_name": "node-1",
        "event_type": {"type": 1, "sub_type": 178},
        "traffic_direction": "INGRESS",
        "drop_reason_desc": "SOCKET_LOOKUP_FAILED",
        "emitter": EMITTER,
        "kernel_drop_reason": "NO_SOCKET",
        "Summary": "TCP Flags: SYN",
    }


# name, summary, verdict, observation point, is_reply, direction, (src pod, dst pod)
CASES: Final = [
    ("tcp_synack_to", "TCP Flags: SYN, ACK", "FORWARDED", "TO_ENDPOINT", True, "EGRESS",
     ("db-0", "frontend")),
    ("tcp_rst_reply_from", "TCP Flags: ACK, RST", "FORWARDED", "FROM_ENDPOINT", True,
     "INGRESS", ("cache", "frontend")),
    ("udp6_from", "UDP", "FORWARDED", "FROM_ENDPOINT", False, "EGRESS", ("frontend", "db-0")),
    ("udp6_drop", "UDP", "DROPPED", None, None, "INGRESS", ("frontend", "db-0")),
    ("icmp4_echo_from", "ICMPv4 EchoRequest", "FORWARDED", "FROM_ENDPOINT", False, "EGRESS",
     ("frontend", "db-0")),
    ("icmp6_reply_from", "ICMPv6 EchoReply", "FORWARDED", "FROM_ENDPOINT", True, "INGRESS",
     ("db-0", "frontend")),
    ("icmp6_unreach_from", "ICMPv6 DestinationUnreachable(PortUnreachable)", "FORWARDED",
     "FROM_ENDPOINT", False, "EGRESS", ("db-0", "frontend")),
]


@pytest.mark.parametrize(("name", "summary", "verdict", "point", "reply", "direction", "pods"),
                         CASES, ids=[c[0] for c in CASES])
def test_decoded_fields(decoder: Decoder, name: str, summary: str, verdict: str,
                        point: str | None, reply: bool | None, direction: str,
                        pods: tuple[str, str]) -> None:
    flow = decoded(decoder, name)
    assert flow["Summary"] == summary
    assert flow["verdict"] == verdict
    assert flow.get("trace_observation_point") == point
    assert flow.get("is_reply") == reply
    assert flow["traffic_direction"] == direction
    assert (flow["source"]["pod_name"], flow["destination"]["pod_name"]) == pods


def test_server_process_from_its_listening_socket(tmp_path: Path) -> None:
    # The listening process must be alive to find its network namespace: use this one, and an
    # endpoint that lives in this process's namespace.
    listen = event("listen")
    listen.pid = os.getpid()
    registry = EndpointRegistry(IdentityAllocator(None))
    registry.replace([Endpoint("data", "db-0", ("k8s:app=db",), ("10.199.1.3",), "veth0",
                               netns="/proc/self/ns/net")])
    decoder = Decoder("node-1", registry, parse_format(KFREE_SKB_FORMAT), ProcessTable(),
                      clock_offset_ns=0, ifname=str)
    assert decoder.decode(listen) is None
    flow = decoder.decode(event("tcp_syn_from"))
    assert flow is not None
    assert flow.destination.process == flow_pb2.Process(pid=os.getpid(), command="python")
    assert not flow.source.HasField("process")
    assert flow.source.pod_name == ""  # 10.199.1.1 is no endpoint of this registry


def test_connection_record_is_oriented_from_the_opener(decoder: Decoder) -> None:
    key = raw.ConnKey(family=4, proto=6, port_a=8080, port_b=44344)
    ctypes.memmove(key.addr_a, bytes([10, 199, 1, 3]), 4)
    ctypes.memmove(key.addr_b, bytes([10, 199, 1, 1]), 4)
    conn = raw.Conn(opener=1, retransmits=2)
    conn.seen[2] = 0x12  # b -> a (the opener) saw SYN, ACK
    conn.seen[0] = 0x11  # a -> b saw FIN, ACK
    flow = decoder.connection_record(key, conn, packets=(3, 5), byte_counts=(300, 500),
                                     retransmits=1, now_ns=10**9)
    result = to_dict(flow)
    assert result == {
        "time": "1970-01-01T00:00:01Z",
        "verdict": "FORWARDED",
        "IP": {"source": "10.199.1.1", "destination": "10.199.1.3", "ipVersion": "IPv4"},
        "l4": {"TCP": {"source_port": 44344, "destination_port": 8080,
                       "flags": {"FIN": True, "SYN": True, "ACK": True}}},
        "source": FRONTEND,
        "destination": DB,
        "Type": "L3_L4",
        "node_name": "node-1",
        "event_type": {"type": 4},
        "is_reply": False,
        "emitter": EMITTER,
        "counters": {"packets_forward": "5", "bytes_forward": "500",
                     "packets_reply": "3", "bytes_reply": "300"},
        "retransmits": 1,
        "Summary": "TCP Flags: SYN, ACK, FIN",
    }


def test_unknown_event_kind_is_an_error(decoder: Decoder) -> None:
    bad = event("tcp_syn_from")
    bad.kind = 99
    with pytest.raises(ValueError, match="unknown datapath event kind 99"):
        decoder.decode(bad)


def test_recorded_events_round_trip_as_json(decoder: Decoder) -> None:
    for name in RECORDED:
        flow = decoder.decode(event(name))
        if flow is not None:
            json.dumps(to_dict(flow))
