"""Every output format against golden files in tests/golden/printers/.

One stream of flow responses (node status, flows of every kind, a lost
event), one of agent events and one of debug events are printed with each
set of options; the output and error streams must match the golden file
byte for byte. After a deliberate change of format, regenerate the files
with FLOWSCOPE_UPDATE_GOLDEN=1 and review the diff line by line.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from flowscope.cli.printers import PrinterOptions, make_printer
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2
from flowscope.proto.relay import relay_pb2

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "printers"
UPDATE = os.environ.get("FLOWSCOPE_UPDATE_GOLDEN") == "1"

# 2026-03-21 11:18:51 UTC
T0 = 1774091931

CLIENT = {"identity": 11661, "namespace": "default", "pod_name": "netshoot-client"}
SERVER = {"identity": 5834, "namespace": "default", "pod_name": "nginx-5d7f8c9b4-x2kqp"}
XWING = {"identity": 27015, "namespace": "empire", "pod_name": "xwing"}
DEATHSTAR = {"identity": 5835, "namespace": "empire", "pod_name": "deathstar-6c94dcc57b-2chb9"}
V4 = {"source": "10.0.0.12", "destination": "10.0.1.7", "ipVersion": flow_pb2.IPv4}


def at(offset_ms: int) -> dict[str, int]:
    """T0 plus `offset_ms` milliseconds, with sub-millisecond digits."""
    return {"seconds": T0 + offset_ms // 1000, "nanos": (offset_ms % 1000) * 1_000_000 + 386_400}


def tcp(source_port: int, destination_port: int, **flags: bool) -> dict[str, object]:
    return {"TCP": {"source_port": source_port, "destination_port": destination_port,
                    "flags": flags}}


def flow_response(node: str, offset_ms: int, **fields: object) -> observer_pb2.GetFlowsResponse:
    flow = flow_pb2.Flow(time=at(offset_ms), node_name=node, **fields)
    return observer_pb2.GetFlowsResponse(flow=flow, node_name=node, time=at(offset_ms))


def node_status(
    state: int, names: list[str], message: str = ""
) -> observer_pb2.GetFlowsResponse:
    return observer_pb2.GetFlowsResponse(
        node_status=relay_pb2.NodeStatusEvent(
            state_change=state, node_names=names, message=message),
        node_name="relay-0",
        time=at(0),
    )


def flows_stream() -> list[observer_pb2.GetFlowsResponse]:
    """Node status events, then flows of every kind, a lost event among them."""
    many = [f"worker-{n:02d}.cluster.local" for n in range(1, 8)]
    return [
        node_status(relay_pb2.NODE_CONNECTED, ["node-a", "cluster-1/node-b"]),
        node_status(relay_pb2.NODE_UNAVAILABLE, ["node-c"]),
        node_status(relay_pb2.NODE_ERROR, many, 'dial tcp: "refused"'),
        # A connection: policy verdict, delivery, the reply.
        flow_response(
            "node-a", 1, verdict=flow_pb2.FORWARDED, IP=V4, l4=tcp(34898, 80, SYN=True),
            source=CLIENT, destination=SERVER, Type=flow_pb2.L3_L4,
            event_type={"type": 5}, policy_match_type=2,
            traffic_direction=flow_pb2.INGRESS, is_reply={"value": False},
            ingress_allowed_by=[{"name": "allow-web", "namespace": "default",
                                 "kind": "CiliumNetworkPolicy"}],
            Summary="TCP Flags: SYN"),
        flow_response(
            "node-a", 2, verdict=flow_pb2.FORWARDED, IP=V4, l4=tcp(34898, 80, SYN=True),
            source=CLIENT, destination=SERVER, Type=flow_pb2.L3_L4,
            event_type={"type": 4, "sub_type": 0}, trace_observation_point=flow_pb2.TO_ENDPOINT,
            is_reply={"value": False}, Summary="TCP Flags: SYN"),
        flow_response(
            "cluster-1/node-b", 3, verdict=flow_pb2.FORWARDED,
            IP={"source": "10.0.1.7", "destination": "10.0.0.12", "ipVersion": flow_pb2.IPv4},
            l4=tcp(80, 34898, SYN=True, ACK=True), source=SERVER, destination=CLIENT,
            Type=flow_pb2.L3_L4, event_type={"type": 4, "sub_type": 3},
            is_reply={"value": True}, Summary="TCP Flags: SYN, ACK"),
        flow_response(
            "node-a", 4, verdict=flow_pb2.FORWARDED, IP=V4, l4=tcp(34898, 80, ACK=True),
            source=CLIENT, destination=SERVER, Type=flow_pb2.L3_L4,
            event_type={"type": 4, "sub_type": 5}, is_reply={"value": False},
            Summary="TCP Flags: ACK"),
        # Denied by two policies, audited, and dropped.
        flow_response(
            "cluster-1/node-b", 5, verdict=flow_pb2.DROPPED,
            IP={"source": "10.0.2.9", "destination": "10.0.3.4", "ipVersion": flow_pb2.IPv4},
            l4=tcp(41636, 80, SYN=True), source=XWING, destination=DEATHSTAR,
            Type=flow_pb2.L3_L4, event_type={"type": 5}, policy_match_type=0,
            traffic_direction=flow_pb2.EGRESS, drop_reason_desc=flow_pb2.POLICY_DENIED,
            egress_denied_by=[
                {"name": "deny-xwing", "namespace": "empire", "kind": "CiliumNetworkPolicy"},
                {"name": "lockdown", "kind": "CiliumClusterwideNetworkPolicy"}],
            Summary="TCP Flags: SYN"),
        flow_response(
            "cluster-1/node-b", 6, verdict=flow_pb2.AUDIT,
            IP={"source": "10.0.2.9", "destination": "10.0.3.4", "ipVersion": flow_pb2.IPv4},
            l4=tcp(41640, 443, SYN=True), source=XWING, destination=DEATHSTAR,
            Type=flow_pb2.L3_L4, event_type={"type": 5}, policy_match_type=1,
            traffic_direction=flow_pb2.INGRESS, is_reply={"value": False},
            Summary="TCP Flags: SYN"),
        flow_response(
            "cluster-1/node-b", 7, verdict=flow_pb2.DROPPED,
            IP={"source": "10.0.2.9", "destination": "10.0.3.4", "ipVersion": flow_pb2.IPv4},
            l4=tcp(42818, 80, SYN=True), source=XWING, destination=DEATHSTAR,
            Type=flow_pb2.L3_L4, event_type={"type": 1, "sub_type": 133},
            drop_reason_desc=flow_pb2.POLICY_DENIED, Summary="TCP Flags: SYN"),
        flow_response(
            "cluster-1/node-b", 8, verdict=flow_pb2.DROPPED,
            IP={"source": "10.0.2.9", "destination": "10.0.3.4", "ipVersion": flow_pb2.IPv4},
            l4=tcp(42820, 22, SYN=True), source=XWING, destination=DEATHSTAR,
            Type=flow_pb2.L3_L4, event_type={"type": 1, "sub_type": 181},
            drop_reason_desc=flow_pb2.POLICY_DENY, Summary="TCP Flags: SYN"),
        # DNS over UDP to a service, the proxy's view of it.
        flow_response(
            "node-a", 10, verdict=flow_pb2.FORWARDED,
            IP={"source": "10.0.0.12", "destination": "10.96.0.10", "ipVersion": flow_pb2.IPv4},
            l4={"UDP": {"source_port": 53211, "destination_port": 53}},
            source=CLIENT, destination={"identity": 1}, Type=flow_pb2.L3_L4,
            destination_service={"name": "kube-dns", "namespace": "kube-system"},
            event_type={"type": 4, "sub_type": 11}, is_reply={"value": False}, Summary="UDP"),
        flow_response(
            "node-a", 11, verdict=flow_pb2.FORWARDED,
            IP={"source": "10.0.0.12", "destination": "10.0.5.3", "ipVersion": flow_pb2.IPv4},
            l4={"UDP": {"source_port": 53211, "destination_port": 53}},
            source=CLIENT,
            destination={"identity": 102, "namespace": "kube-system",
                         "pod_name": "coredns-7db6d8ff4d-abcde"},
            Type=flow_pb2.L7, event_type={"type": 129}, traffic_direction=flow_pb2.EGRESS,
            is_reply={"value": False},
            l7={"type": flow_pb2.REQUEST,
                "dns": {"query": "api.example.com.", "qtypes": ["A"],
                        "observation_source": "proxy"}},
            Summary="DNS Query api.example.com. A"),
        flow_response(
            "node-a", 12, verdict=flow_pb2.FORWARDED,
            IP={"source": "10.0.5.3", "destination": "10.0.0.12", "ipVersion": flow_pb2.IPv4},
            l4={"UDP": {"source_port": 53, "destination_port": 53211}},
            source={"identity": 102, "namespace": "kube-system",
                    "pod_name": "coredns-7db6d8ff4d-abcde"},
            destination=CLIENT, Type=flow_pb2.L7, event_type={"type": 129},
            traffic_direction=flow_pb2.EGRESS, is_reply={"value": True},
            l7={"type": flow_pb2.RESPONSE, "latency_ns": 1_200_000,
                "dns": {"query": "api.example.com.", "ips": ["203.0.113.7"], "ttl": 30,
                        "qtypes": ["A"], "rrtypes": ["A"], "observation_source": "proxy"}},
            Summary='DNS Answer "203.0.113.7" TTL: 30 (Proxy api.example.com. A)'),
        # HTTP through the proxy.
        flow_response(
            "node-a", 20, verdict=flow_pb2.FORWARDED, IP=V4, l4=tcp(34900, 80),
            source=CLIENT, destination=SERVER, Type=flow_pb2.L7, event_type={"type": 129},
            traffic_direction=flow_pb2.INGRESS, is_reply={"value": False},
            l7={"type": flow_pb2.REQUEST,
                "http": {"method": "GET", "url": "http://nginx/index.html",
                         "protocol": "HTTP/1.1"}},
            Summary="HTTP/1.1 GET http://nginx/index.html"),
        flow_response(
            "node-a", 23, verdict=flow_pb2.FORWARDED,
            IP={"source": "10.0.1.7", "destination": "10.0.0.12", "ipVersion": flow_pb2.IPv4},
            l4=tcp(80, 34900), source=SERVER, destination=CLIENT, Type=flow_pb2.L7,
            event_type={"type": 129}, traffic_direction=flow_pb2.INGRESS,
            is_reply={"value": True},
            l7={"type": flow_pb2.RESPONSE, "latency_ns": 3_000_000,
                "http": {"code": 200, "method": "GET", "url": "http://nginx/index.html",
                         "protocol": "HTTP/1.1"}},
            Summary="HTTP/1.1 200 3ms (GET http://nginx/index.html)"),
        # ICMP from the host to the world (DNS names known), and over IPv6.
        flow_response(
            "node-a", 30, verdict=flow_pb2.FORWARDED,
            IP={"source": "192.168.10.2", "destination": "203.0.113.7",
                "ipVersion": flow_pb2.IPv4},
            l4={"ICMPv4": {"type": 8}}, source={"identity": 1},
            destination={"identity": 2, "labels": ["reserved:world"]},
            destination_names=["api.example.com", "www.example.com"], Type=flow_pb2.L3_L4,
            event_type={"type": 4, "sub_type": 11}, is_reply={"value": False},
            Summary="ICMPv4 EchoRequest"),
        flow_response(
            "node-a", 31, verdict=flow_pb2.FORWARDED,
            IP={"source": "fd00:10:244::7", "destination": "fd00:10:244::c",
                "ipVersion": flow_pb2.IPv6},
            l4={"ICMPv6": {"type": 129}}, source=SERVER, destination=CLIENT,
            Type=flow_pb2.L3_L4, event_type={"type": 4, "sub_type": 0},
            is_reply={"value": True}, Summary="ICMPv6 EchoReply"),
        flow_response(
            "cluster-1/node-b", 32, verdict=flow_pb2.FORWARDED,
            IP={"source": "fd00:10:244::c", "destination": "2001:db8::1",
                "ipVersion": flow_pb2.IPv6},
            l4=tcp(51002, 443, SYN=True), source=CLIENT,
            destination={"identity": 10, "labels": ["reserved:world-ipv6"]},
            Type=flow_pb2.L3_L4, event_type={"type": 4, "sub_type": 3},
            is_reply={"value": False}, Summary="TCP Flags: SYN"),
        observer_pb2.GetFlowsResponse(
            lost_events=flow_pb2.LostEvent(
                source=flow_pb2.HUBBLE_RING_BUFFER, num_events_lost=17, cpu={"value": 1},
                first=at(33), last=at(35)),
            node_name="node-a", time=at(36)),
        # IP trace id and mutual auth on a policy verdict.
        flow_response(
            "node-a", 40, verdict=flow_pb2.FORWARDED, IP=V4, l4=tcp(34910, 8443, SYN=True),
            source=CLIENT, destination=SERVER, Type=flow_pb2.L3_L4, event_type={"type": 5},
            policy_match_type=2, traffic_direction=flow_pb2.INGRESS,
            is_reply={"value": False}, auth_type=flow_pb2.SPIRE,
            ip_trace_id={"trace_id": 4242, "ip_option_type": 136}, Summary="TCP Flags: SYN"),
        flow_response(
            "node-a", 41, verdict=flow_pb2.DROPPED, IP=V4, l4=tcp(34912, 8443, SYN=True),
            source=CLIENT, destination=SERVER, Type=flow_pb2.L3_L4, event_type={"type": 5},
            policy_match_type=2, traffic_direction=flow_pb2.INGRESS,
            auth_type=flow_pb2.TEST_ALWAYS_FAIL, Summary="TCP Flags: SYN"),
        # Socket translation, a capture point, and an event without IP.
        flow_response(
            "node-a", 50, verdict=flow_pb2.TRANSLATED, IP=V4, l4=tcp(34920, 80),
            source=CLIENT, destination=SERVER, Type=flow_pb2.SOCK,
            event_type={"type": 7}, sock_xlate_point=flow_pb2.SOCK_XLATE_POINT_POST_DIRECTION_FWD,
            Summary="post-xlate-fwd"),
        flow_response(
            "node-a", 51, verdict=flow_pb2.FORWARDED, IP=V4, l4=tcp(34921, 80),
            source=CLIENT, destination=SERVER, Type=flow_pb2.L3_L4,
            event_type={"type": 3}, debug_capture_point=flow_pb2.DBG_CAPTURE_DELIVERY,
            Summary="TCP Flags: ACK"),
        flow_response(
            "node-a", 52, verdict=flow_pb2.FORWARDED,
            ethernet={"source": "0a:58:0a:f4:00:0c", "destination": "ff:ff:ff:ff:ff:ff"},
            Type=flow_pb2.L3_L4, event_type={"type": 4, "sub_type": 7},
            Summary="ARP Request who-has 10.0.0.1 tell 10.0.0.12"),
        # Names and text that try to drive the terminal.
        flow_response(
            "node-\x1bc", 60, verdict=flow_pb2.DROPPED, IP=V4, l4=tcp(34930, 80, SYN=True),
            source={"identity": 11662, "namespace": "evil\r", "pod_name": "pod\x1b[31mred"},
            destination={"identity": 2},
            destination_names=["fake.example\nJan  1 00:00:00.000: forged line"],
            Type=flow_pb2.L3_L4, event_type={"type": 1, "sub_type": 133},
            Summary="TCP Flags: SYN\x1b]0;title\x07\x9b2J"),
    ]


def agent_stream() -> list[observer_pb2.GetAgentEventsResponse]:
    def event(offset_ms: int, **fields: object) -> observer_pb2.GetAgentEventsResponse:
        return observer_pb2.GetAgentEventsResponse(
            agent_event=flow_pb2.AgentEvent(**fields),
            node_name="node-a", time=at(offset_ms))

    return [
        event(0, type=flow_pb2.AGENT_STARTED, agent_start={"time": at(-60_000)}),
        event(1, type=flow_pb2.POLICY_UPDATED,
              policy_update={"labels": ["k8s:io.cilium.k8s.policy.name=allow-web",
                                        "k8s:io.cilium.k8s.policy.namespace=default"],
                             "revision": 7, "rule_count": 2}),
        event(2, type=flow_pb2.ENDPOINT_CREATED,
              endpoint_update={"id": 1027, "namespace": "default", "pod_name": "nginx\x1b[2J"}),
        event(3, type=flow_pb2.ENDPOINT_REGENERATE_FAILURE,
              endpoint_regenerate={"id": 1027, "labels": ["k8s:app=nginx"],
                                   "error": "bpf: verifier rejected program"}),
        event(4, type=flow_pb2.IPCACHE_UPSERTED,
              ipcache_update={"cidr": "10.0.1.7/32", "identity": 5834,
                              "old_identity": {"value": 5830}, "host_ip": "192.168.10.3",
                              "encrypt_key": 0}),
        event(5, type=flow_pb2.SERVICE_UPSERTED,
              service_upsert={"id": 12, "frontend_address": {"ip": "10.96.0.10", "port": 53},
                              "backend_addresses": [{"ip": "10.0.5.3", "port": 53},
                                                    {"ip": "fd00:10:244::5", "port": 53}],
                              "type": "ClusterIP", "namespace": "kube-system",
                              "name": "kube-dns"}),
        event(6, type=flow_pb2.POLICY_DELETED),
    ]


def debug_stream() -> list[observer_pb2.GetDebugEventsResponse]:
    def event(offset_ms: int, **fields: object) -> observer_pb2.GetDebugEventsResponse:
        return observer_pb2.GetDebugEventsResponse(
            debug_event=flow_pb2.DebugEvent(**fields),
            node_name="node-a", time=at(offset_ms))

    return [
        event(0, type=flow_pb2.DBG_CT_VERDICT,
              source={"ID": 690, "identity": 11661, "namespace": "default",
                      "pod_name": "netshoot-client"},
              hash={"value": 180354257}, cpu={"value": 1}, message="CT verdict: New, revnat=0"),
        event(1, type=flow_pb2.DBG_CT_LOOKUP4_1, source={"ID": 1, "labels": ["reserved:host"]},
              hash={"value": 3}, cpu={"value": 12}, message="Conntrack lookup 1/2"),
        event(2, type=flow_pb2.DBG_GENERIC, message="no source\rand no cpu"),
    ]


CASES: dict[str, PrinterOptions] = {
    "compact": PrinterOptions(),
    "compact-node-policy-debug": PrinterOptions(node_name=True, policy_names=True, debug=True),
    "compact-color": PrinterOptions(color=True, node_name=True, policy_names=True),
    "compact-numeric-rfc3339nano": PrinterOptions(ip_translation=False,
                                                  time_format="RFC3339Nano"),
    "dict": PrinterOptions(output="dict"),
    "dict-node-policy-debug": PrinterOptions(output="dict", node_name=True, policy_names=True,
                                             debug=True),
    "dict-color": PrinterOptions(output="dict", color=True),
    "table": PrinterOptions(output="table"),
    "table-node-policy": PrinterOptions(output="tab", node_name=True, policy_names=True,
                                        time_format="RFC3339Milli"),
    "json": PrinterOptions(output="json"),
    "jsonpb-debug": PrinterOptions(output="jsonpb", debug=True, color=True),
}


def render(options: PrinterOptions) -> str:
    """All three streams printed with `options`, in labelled sections."""
    sections = []
    for name in ("flows", "agent events", "debug events"):
        out, err = io.StringIO(), io.StringIO()
        printer = make_printer(options, out, err)
        if name == "flows":
            for flows_response in flows_stream():
                printer.write_flows_response(flows_response)
        elif name == "agent events":
            for agent_response in agent_stream():
                printer.write_agent_events_response(agent_response)
        else:
            for debug_response in debug_stream():
                printer.write_debug_events_response(debug_response)
        printer.close()
        sections.append(f"=== {name}: stdout ===\n{out.getvalue()}")
        sections.append(f"=== {name}: stderr ===\n{err.getvalue()}")
    return "".join(sections)


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    path = GOLDEN_DIR / f"{case}.txt"
    got = render(CASES[case])
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got, encoding="utf-8", newline="")
    with path.open(encoding="utf-8", newline="") as golden:
        assert got == golden.read()
