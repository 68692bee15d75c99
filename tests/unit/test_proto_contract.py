"""The wire contract: Hubble's field numbers and enum values, and fresh generated code."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf.descriptor import Descriptor, EnumDescriptor

from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2
from flowscope.proto.peer import peer_pb2
from flowscope.proto.relay import relay_pb2

ROOT = Path(__file__).resolve().parents[2]

# Hubble's field numbers (shared/reference/hubble-api.md, section 1).
FIELDS: dict[Descriptor, dict[str, int]] = {
    flow_pb2.Flow.DESCRIPTOR: {
        "time": 1, "uuid": 34, "emitter": 41, "verdict": 2, "drop_reason": 3, "auth_type": 35,
        "ethernet": 4, "IP": 5, "l4": 6, "tunnel": 39, "source": 8, "destination": 9,
        "Type": 10, "node_name": 11, "node_labels": 37, "source_names": 13,
        "destination_names": 14, "l7": 15, "reply": 16, "event_type": 19,
        "source_service": 20, "destination_service": 21, "traffic_direction": 22,
        "policy_match_type": 23, "trace_observation_point": 24, "trace_reason": 36,
        "file": 38, "ip_trace_id": 40, "drop_reason_desc": 25, "is_reply": 26,
        "debug_capture_point": 27, "interface": 28, "proxy_port": 29, "trace_context": 30,
        "sock_xlate_point": 31, "socket_cookie": 32, "cgroup_id": 33, "Summary": 100000,
        "extensions": 150000, "egress_allowed_by": 21001, "ingress_allowed_by": 21002,
        "egress_denied_by": 21004, "ingress_denied_by": 21005, "policy_log": 21006,
        "aggregate": 21007,
    },
    flow_pb2.Endpoint.DESCRIPTOR: {
        "ID": 1, "identity": 2, "cluster_name": 7, "namespace": 3, "labels": 4,
        "pod_name": 5, "workloads": 6,
    },
    flow_pb2.Workload.DESCRIPTOR: {"name": 1, "kind": 2},
    flow_pb2.Layer4.DESCRIPTOR: {
        "TCP": 1, "UDP": 2, "ICMPv4": 3, "ICMPv6": 4, "SCTP": 5, "VRRP": 6, "IGMP": 7,
    },
    flow_pb2.TCP.DESCRIPTOR: {"source_port": 1, "destination_port": 2, "flags": 3},
    flow_pb2.TCPFlags.DESCRIPTOR: {
        "FIN": 1, "SYN": 2, "RST": 3, "PSH": 4, "ACK": 5, "URG": 6, "ECE": 7, "CWR": 8, "NS": 9,
    },
    flow_pb2.UDP.DESCRIPTOR: {"source_port": 1, "destination_port": 2},
    flow_pb2.SCTP.DESCRIPTOR: {"source_port": 1, "destination_port": 2},
    flow_pb2.ICMPv4.DESCRIPTOR: {"type": 1, "code": 2},
    flow_pb2.ICMPv6.DESCRIPTOR: {"type": 1, "code": 2},
    flow_pb2.VRRP.DESCRIPTOR: {"type": 1, "vrid": 2, "priority": 3},
    flow_pb2.IGMP.DESCRIPTOR: {"type": 1, "group_address": 2},
    flow_pb2.IP.DESCRIPTOR: {
        "source": 1, "source_xlated": 5, "destination": 2, "ipVersion": 3, "encrypted": 4,
    },
    flow_pb2.Ethernet.DESCRIPTOR: {"source": 1, "destination": 2},
    flow_pb2.Tunnel.DESCRIPTOR: {"protocol": 1, "IP": 2, "l4": 3, "vni": 4},
    flow_pb2.Layer7.DESCRIPTOR: {"type": 1, "latency_ns": 2, "dns": 100, "http": 101, "kafka": 102},
    flow_pb2.DNS.DESCRIPTOR: {
        "query": 1, "ips": 2, "ttl": 3, "cnames": 4, "observation_source": 5, "rcode": 6,
        "qtypes": 7, "rrtypes": 8,
    },
    flow_pb2.HTTP.DESCRIPTOR: {"code": 1, "method": 2, "url": 3, "protocol": 4, "headers": 5},
    flow_pb2.HTTPHeader.DESCRIPTOR: {"key": 1, "value": 2},
    flow_pb2.Kafka.DESCRIPTOR: {
        "error_code": 1, "api_version": 2, "api_key": 3, "correlation_id": 4, "topic": 5,
    },
    flow_pb2.Service.DESCRIPTOR: {"name": 1, "namespace": 2},
    flow_pb2.Policy.DESCRIPTOR: {"name": 1, "namespace": 2, "labels": 3, "revision": 4, "kind": 5},
    flow_pb2.Aggregate.DESCRIPTOR: {
        "ingress_flow_count": 1, "egress_flow_count": 2, "unknown_direction_flow_count": 3,
    },
    flow_pb2.LostEvent.DESCRIPTOR: {
        "source": 1, "num_events_lost": 2, "cpu": 3, "first": 4, "last": 5,
    },
    flow_pb2.CiliumEventType.DESCRIPTOR: {"type": 1, "sub_type": 2},
    flow_pb2.EventTypeFilter.DESCRIPTOR: {"type": 1, "match_sub_type": 2, "sub_type": 3},
    flow_pb2.NetworkInterface.DESCRIPTOR: {"index": 1, "name": 2},
    flow_pb2.IPTraceID.DESCRIPTOR: {"trace_id": 1, "ip_option_type": 2},
    flow_pb2.TraceContext.DESCRIPTOR: {"parent": 1},
    flow_pb2.TraceParent.DESCRIPTOR: {"trace_id": 1},
    flow_pb2.FileInfo.DESCRIPTOR: {"name": 1, "line": 2},
    flow_pb2.Emitter.DESCRIPTOR: {"name": 1, "version": 2},
    flow_pb2.AgentEvent.DESCRIPTOR: {
        "type": 1, "unknown": 100, "agent_start": 101, "policy_update": 102,
        "endpoint_regenerate": 103, "endpoint_update": 104, "ipcache_update": 105,
        "service_upsert": 106, "service_delete": 107,
    },
    flow_pb2.PolicyUpdateNotification.DESCRIPTOR: {"labels": 1, "revision": 2, "rule_count": 3},
    flow_pb2.EndpointRegenNotification.DESCRIPTOR: {"id": 1, "labels": 2, "error": 3},
    flow_pb2.EndpointUpdateNotification.DESCRIPTOR: {
        "id": 1, "labels": 2, "error": 3, "pod_name": 4, "namespace": 5,
    },
    flow_pb2.IPCacheNotification.DESCRIPTOR: {
        "cidr": 1, "identity": 2, "old_identity": 3, "host_ip": 4, "old_host_ip": 5,
        "encrypt_key": 6, "namespace": 7, "pod_name": 8,
    },
    flow_pb2.DebugEvent.DESCRIPTOR: {
        "type": 1, "source": 2, "hash": 3, "arg1": 4, "arg2": 5, "arg3": 6, "message": 7,
        "cpu": 8,
    },
    flow_pb2.FlowFilter.DESCRIPTOR: {
        "uuid": 29, "source_ip": 1, "source_ip_xlated": 34, "source_pod": 2, "source_fqdn": 7,
        "source_label": 10, "source_service": 16, "source_workload": 26,
        "source_cluster_name": 37, "destination_ip": 3, "destination_pod": 4,
        "destination_fqdn": 8, "destination_label": 11, "destination_service": 17,
        "destination_workload": 27, "destination_cluster_name": 38, "traffic_direction": 30,
        "verdict": 5, "drop_reason_desc": 33, "interface": 35, "event_type": 6,
        "http_status_code": 9, "protocol": 12, "source_port": 13, "destination_port": 14,
        "reply": 15, "dns_query": 18, "source_identity": 19, "destination_identity": 20,
        "http_method": 21, "http_path": 22, "http_url": 31, "http_header": 32,
        "tcp_flags": 23, "node_name": 24, "node_labels": 36, "ip_version": 25,
        "trace_id": 28, "ip_trace_id": 39, "encrypted": 40, "experimental": 999,
    },
    observer_pb2.GetFlowsRequest.DESCRIPTOR: {
        "number": 1, "first": 9, "follow": 3, "blacklist": 5, "whitelist": 6, "since": 7,
        "until": 8, "field_mask": 10, "experimental": 999, "extensions": 150000,
    },
    observer_pb2.GetFlowsResponse.DESCRIPTOR: {
        "flow": 1, "node_status": 2, "lost_events": 3, "node_name": 1000, "time": 1001,
    },
    observer_pb2.ExportEvent.DESCRIPTOR: {
        "flow": 1, "node_status": 2, "lost_events": 3, "agent_event": 4, "debug_event": 5,
        "node_name": 1000, "time": 1001,
    },
    observer_pb2.ServerStatusResponse.DESCRIPTOR: {
        "num_flows": 1, "max_flows": 2, "seen_flows": 3, "uptime_ns": 4,
        "num_connected_nodes": 5, "num_unavailable_nodes": 6, "unavailable_nodes": 7,
        "version": 8, "flows_rate": 9,
    },
    observer_pb2.GetAgentEventsRequest.DESCRIPTOR: {
        "number": 1, "first": 9, "follow": 2, "since": 7, "until": 8,
    },
    observer_pb2.GetAgentEventsResponse.DESCRIPTOR: {
        "agent_event": 1, "node_name": 1000, "time": 1001,
    },
    observer_pb2.GetDebugEventsResponse.DESCRIPTOR: {
        "debug_event": 1, "node_name": 1000, "time": 1001,
    },
    observer_pb2.Node.DESCRIPTOR: {
        "name": 1, "version": 2, "address": 3, "state": 4, "tls": 5, "uptime_ns": 6,
        "num_flows": 7, "max_flows": 8, "seen_flows": 9,
    },
    observer_pb2.Namespace.DESCRIPTOR: {"cluster": 1, "namespace": 2},
    relay_pb2.NodeStatusEvent.DESCRIPTOR: {"state_change": 1, "node_names": 2, "message": 3},
    peer_pb2.ChangeNotification.DESCRIPTOR: {"name": 1, "address": 2, "type": 3, "tls": 4},
}

ENUMS: dict[EnumDescriptor, dict[str, int]] = {
    flow_pb2.Verdict.DESCRIPTOR: {
        "VERDICT_UNKNOWN": 0, "FORWARDED": 1, "DROPPED": 2, "ERROR": 3, "AUDIT": 4,
        "REDIRECTED": 5, "TRACED": 6, "TRANSLATED": 7,
    },
    flow_pb2.FlowType.DESCRIPTOR: {"UNKNOWN_TYPE": 0, "L3_L4": 1, "L7": 2, "SOCK": 3},
    flow_pb2.TrafficDirection.DESCRIPTOR: {
        "TRAFFIC_DIRECTION_UNKNOWN": 0, "INGRESS": 1, "EGRESS": 2,
    },
    flow_pb2.TraceObservationPoint.DESCRIPTOR: {
        "UNKNOWN_POINT": 0, "TO_PROXY": 1, "TO_HOST": 2, "TO_STACK": 3, "TO_OVERLAY": 4,
        "TO_ENDPOINT": 101, "FROM_ENDPOINT": 5, "FROM_PROXY": 6, "FROM_HOST": 7,
        "FROM_STACK": 8, "FROM_OVERLAY": 9, "FROM_NETWORK": 10, "TO_NETWORK": 11,
        "FROM_CRYPTO": 12, "TO_CRYPTO": 13,
    },
    flow_pb2.TraceReason.DESCRIPTOR: {
        "TRACE_REASON_UNKNOWN": 0, "NEW": 1, "ESTABLISHED": 2, "REPLY": 3, "RELATED": 4,
        "REOPENED": 5, "SRV6_ENCAP": 6, "SRV6_DECAP": 7, "ENCRYPT_OVERLAY": 8,
    },
    flow_pb2.L7FlowType.DESCRIPTOR: {
        "UNKNOWN_L7_TYPE": 0, "REQUEST": 1, "RESPONSE": 2, "SAMPLE": 3,
    },
    flow_pb2.IPVersion.DESCRIPTOR: {"IP_NOT_USED": 0, "IPv4": 1, "IPv6": 2},
    flow_pb2.AuthType.DESCRIPTOR: {"DISABLED": 0, "SPIRE": 1, "TEST_ALWAYS_FAIL": 2},
    flow_pb2.LostEventSource.DESCRIPTOR: {
        "UNKNOWN_LOST_EVENT_SOURCE": 0, "PERF_EVENT_RING_BUFFER": 1,
        "OBSERVER_EVENTS_QUEUE": 2, "HUBBLE_RING_BUFFER": 3,
    },
    flow_pb2.AgentEventType.DESCRIPTOR: {
        "AGENT_EVENT_UNKNOWN": 0, "AGENT_STARTED": 2, "POLICY_UPDATED": 3,
        "POLICY_DELETED": 4, "ENDPOINT_REGENERATE_SUCCESS": 5,
        "ENDPOINT_REGENERATE_FAILURE": 6, "ENDPOINT_CREATED": 7, "ENDPOINT_DELETED": 8,
        "IPCACHE_UPSERTED": 9, "IPCACHE_DELETED": 10, "SERVICE_UPSERTED": 11,
        "SERVICE_DELETED": 12,
    },
    flow_pb2.SocketTranslationPoint.DESCRIPTOR: {
        "SOCK_XLATE_POINT_UNKNOWN": 0, "SOCK_XLATE_POINT_PRE_DIRECTION_FWD": 1,
        "SOCK_XLATE_POINT_POST_DIRECTION_FWD": 2, "SOCK_XLATE_POINT_PRE_DIRECTION_REV": 3,
        "SOCK_XLATE_POINT_POST_DIRECTION_REV": 4,
    },
    flow_pb2.DebugCapturePoint.DESCRIPTOR: {
        "DBG_CAPTURE_POINT_UNKNOWN": 0, "DBG_CAPTURE_DELIVERY": 4, "DBG_CAPTURE_FROM_LB": 5,
        "DBG_CAPTURE_AFTER_V46": 6, "DBG_CAPTURE_AFTER_V64": 7, "DBG_CAPTURE_PROXY_PRE": 8,
        "DBG_CAPTURE_PROXY_POST": 9, "DBG_CAPTURE_SNAT_PRE": 10, "DBG_CAPTURE_SNAT_POST": 11,
    },
    flow_pb2.EventType.DESCRIPTOR: {"UNKNOWN": 0, "EventSample": 9, "RecordLost": 2},
    relay_pb2.NodeState.DESCRIPTOR: {
        "UNKNOWN_NODE_STATE": 0, "NODE_CONNECTED": 1, "NODE_UNAVAILABLE": 2, "NODE_GONE": 3,
        "NODE_ERROR": 4,
    },
    peer_pb2.ChangeNotificationType.DESCRIPTOR: {
        "UNKNOWN": 0, "PEER_ADDED": 1, "PEER_DELETED": 2, "PEER_UPDATED": 3,
    },
}

# DropReason: every value from 130 to 205 except the gap at 159.
DROP_REASON_NUMBERS = [n for n in range(130, 206) if n != 159]

# flowscope's extensions, in the range Hubble leaves unused.
EXTENSIONS: dict[Descriptor, dict[str, int]] = {
    flow_pb2.Flow.DESCRIPTOR: {
        "node_sequence": 30000, "counters": 30001, "retransmits": 30002,
        "kernel_drop_reason": 30003,
    },
    flow_pb2.Endpoint.DESCRIPTOR: {"process": 30000},
    observer_pb2.GetFlowsRequest.DESCRIPTOR: {"resume_after": 30000},
}


@pytest.mark.parametrize("descriptor", list(FIELDS), ids=lambda d: d.full_name)
def test_field_numbers_match_hubble(descriptor: Descriptor) -> None:
    actual = {f.name: f.number for f in descriptor.fields}
    expected = FIELDS[descriptor] | EXTENSIONS.get(descriptor, {})
    assert actual == expected


@pytest.mark.parametrize("enum", list(ENUMS), ids=lambda e: e.full_name)
def test_enum_values_match_hubble(enum: EnumDescriptor) -> None:
    assert {v.name: v.number for v in enum.values} == ENUMS[enum]


def test_drop_reasons_cover_hubble_numbering() -> None:
    numbers = sorted(v.number for v in flow_pb2.DropReason.DESCRIPTOR.values)
    assert numbers == [0, *DROP_REASON_NUMBERS]
    assert flow_pb2.POLICY_DENIED == 133
    assert flow_pb2.POLICY_DENY == 181


def test_reserved_numbers_are_kept() -> None:
    reserved = flow_pb2.Flow.DESCRIPTOR
    used = {f.number for f in reserved.fields}
    assert not used & {7, 12, 17, 18}
    assert 2 not in {f.number for f in observer_pb2.GetFlowsRequest.DESCRIPTOR.fields}


def test_service_and_package_names() -> None:
    observer = observer_pb2.DESCRIPTOR.services_by_name["Observer"]
    assert observer.full_name == "observer.Observer"
    assert [m.name for m in observer.methods] == [
        "GetFlows", "GetAgentEvents", "GetDebugEvents", "GetNodes", "GetNamespaces",
        "ServerStatus",
    ]
    assert peer_pb2.DESCRIPTOR.services_by_name["Peer"].full_name == "peer.Peer"
    assert flow_pb2.Flow.DESCRIPTOR.full_name == "flow.Flow"
    assert relay_pb2.NodeStatusEvent.DESCRIPTOR.full_name == "relay.NodeStatusEvent"


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    """scripts/gen-proto's output equals what is committed."""
    bin_dir = Path(sys.executable).parent
    protos = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "flowscope/proto").glob("*/*.proto"))
    subprocess.run(
        [
            sys.executable, "-m", "grpc_tools.protoc", "-I", ".",
            f"--python_out={tmp_path}", f"--mypy_out={tmp_path}",
            f"--grpc_python_out={tmp_path}", f"--mypy_grpc_out={tmp_path}",
            f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
            *protos,
        ],
        cwd=ROOT, check=True, capture_output=True,
    )
    generated = tmp_path / "flowscope" / "proto"
    committed = ROOT / "proto"
    for package in sorted(p.name for p in generated.iterdir()):
        for name in os.listdir(generated / package):
            ours = committed / package / name
            if name.endswith(("_grpc.py", "_grpc.pyi")) and not ours.exists():
                continue  # no service in this file: scripts/gen-proto drops the empty module
            assert ours.exists(), f"{ours} is missing: run scripts/gen-proto"
            assert filecmp.cmp(generated / package / name, ours, shallow=False), (
                f"{ours} is stale: run scripts/gen-proto"
            )
