"""Metrics: Hubble's families counted from a known set of flows, flowscope's own, and /metrics."""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import pytest
from google.protobuf.wrappers_pb2 import BoolValue
from prometheus_client.parser import text_string_to_metric_families

from flowscope.common.errors import FlowscopeError
from flowscope.common.metrics import FLOWSCOPE_METRICS, Metrics, MetricsServer
from flowscope.proto.flow import flow_pb2

Sample = tuple[str, tuple[tuple[str, str], ...]]


def _flow(
    event: tuple[int, int],
    verdict: int = flow_pb2.FORWARDED,
    *,
    l4: flow_pb2.Layer4 | None = None,
    ip: int = flow_pb2.IPv4,
    reply: bool | None = None,
    **fields: Any,
) -> flow_pb2.Flow:
    flow = flow_pb2.Flow(
        event_type=flow_pb2.CiliumEventType(type=event[0], sub_type=event[1]),
        verdict=verdict,
        IP=flow_pb2.IP(source="10.0.0.1", destination="10.0.0.2", ipVersion=ip),
        **fields,
    )
    if l4 is not None:
        flow.l4.CopyFrom(l4)
    if reply is not None:
        flow.is_reply.CopyFrom(BoolValue(value=reply))
    return flow


def _tcp(dport: int, **flags: bool) -> flow_pb2.Layer4:
    return flow_pb2.Layer4(
        TCP=flow_pb2.TCP(
            source_port=40000, destination_port=dport, flags=flow_pb2.TCPFlags(**flags)
        )
    )


TRACE_TO_ENDPOINT, TRACE_FROM_ENDPOINT, TRACE_TO_STACK = (4, 0), (4, 5), (4, 3)
DROP, POLICY_VERDICT, L7, TRACE_SOCK = (1, 0), (5, 0), (129, 0), (7, 0)

FLOWS = [
    _flow(TRACE_TO_ENDPOINT, l4=_tcp(80, SYN=True), reply=False),
    _flow(TRACE_FROM_ENDPOINT, l4=_tcp(40000, SYN=True, ACK=True), ip=flow_pb2.IPv6, reply=True),
    _flow(TRACE_TO_STACK, flow_pb2.REDIRECTED, l4=_tcp(80, FIN=True, RST=True, ACK=True)),
    _flow(DROP, flow_pb2.DROPPED, l4=_tcp(22, SYN=True), reply=False,
          drop_reason_desc=flow_pb2.POLICY_DENIED),
    _flow(POLICY_VERDICT, l4=flow_pb2.Layer4(UDP=flow_pb2.UDP(destination_port=53)), reply=False,
          traffic_direction=flow_pb2.INGRESS, policy_match_type=2),
    _flow(POLICY_VERDICT, flow_pb2.DROPPED, l4=flow_pb2.Layer4(UDP=flow_pb2.UDP()),
          traffic_direction=flow_pb2.EGRESS, policy_match_type=0,
          source=flow_pb2.Endpoint(identity=1), drop_reason_desc=flow_pb2.POLICY_DENIED),
    _flow(TRACE_TO_ENDPOINT, l4=flow_pb2.Layer4(ICMPv4=flow_pb2.ICMPv4(type=8)), reply=False),
    _flow(DROP, flow_pb2.DROPPED, l4=flow_pb2.Layer4(ICMPv6=flow_pb2.ICMPv6(type=1, code=4)),
          ip=flow_pb2.IPv6, drop_reason_desc=flow_pb2.CT_NO_MAP_FOUND),
    _flow(L7, l7=flow_pb2.Layer7(dns=flow_pb2.DNS(query="example.com.")),
          traffic_direction=flow_pb2.EGRESS),
    _flow(TRACE_SOCK, flow_pb2.VERDICT_UNKNOWN),
    _flow(TRACE_TO_ENDPOINT, reply=False),
    _flow(TRACE_TO_ENDPOINT, l4=_tcp(80, SYN=True), reply=False),
    _flow(POLICY_VERDICT, flow_pb2.AUDIT, l4=flow_pb2.Layer4(SCTP=flow_pb2.SCTP()),
          traffic_direction=flow_pb2.INGRESS, policy_match_type=9),
]  # fmt: skip

LABELS = {
    "flows_processed": ("protocol", "type", "subtype", "verdict"),
    "drop": ("reason", "protocol"),
    "tcp_flags": ("flag", "family"),
    "port_distribution": ("protocol", "port"),
    "icmp": ("family", "type"),
    "policy_verdicts": ("direction", "match", "action"),
    "lost_events": ("source",),
}
# (family, label values in LABELS order, value)
EXPECTED_ROWS = [
    ("flows_processed", ("TCP", "Trace", "to-endpoint", "FORWARDED"), 2),
    ("flows_processed", ("TCP", "Trace", "from-endpoint", "FORWARDED"), 1),
    ("flows_processed", ("TCP", "Trace", "to-stack", "REDIRECTED"), 1),
    ("flows_processed", ("TCP", "Drop", "", "DROPPED"), 1),
    ("flows_processed", ("UDP", "PolicyVerdict", "", "FORWARDED"), 1),
    ("flows_processed", ("UDP", "PolicyVerdict", "", "DROPPED"), 1),
    ("flows_processed", ("SCTP", "PolicyVerdict", "", "AUDIT"), 1),
    ("flows_processed", ("ICMPv4", "Trace", "to-endpoint", "FORWARDED"), 1),
    ("flows_processed", ("ICMPv6", "Drop", "", "DROPPED"), 1),
    ("flows_processed", ("DNS", "L7", "DNS", "FORWARDED"), 1),
    ("flows_processed", ("Unknown flow", "Unknown", "7", "VERDICT_UNKNOWN"), 1),
    ("flows_processed", ("Unknown L4", "Trace", "to-endpoint", "FORWARDED"), 1),
    ("drop", ("POLICY_DENIED", "TCP"), 1),
    ("drop", ("POLICY_DENIED", "UDP"), 1),
    ("drop", ("CT_NO_MAP_FOUND", "ICMPv6"), 1),
    ("tcp_flags", ("SYN", "IPv4"), 2),
    ("tcp_flags", ("SYN-ACK", "IPv6"), 1),
    ("tcp_flags", ("FIN", "IPv4"), 1),
    ("tcp_flags", ("RST", "IPv4"), 1),
    ("port_distribution", ("TCP", "80"), 2),
    ("port_distribution", ("UDP", "53"), 1),
    ("port_distribution", ("ICMPv4", "0"), 1),
    ("icmp", ("IPv4", "EchoRequest"), 1),
    ("icmp", ("IPv6", "DestinationUnreachable(PortUnreachable)"), 1),
    ("policy_verdicts", ("ingress", "l3-l4", "forwarded"), 1),
    ("policy_verdicts", ("ingress", "unknown", "audit"), 1),
    ("policy_verdicts", ("egress", "l7/dns", "forwarded"), 1),
    ("lost_events", ("hubble_ring_buffer",), 7),
    ("lost_events", ("perf_event_ring_buffer",), 3),
]
EXPECTED: dict[Sample, float] = {
    (f"hubble_{family}_total", tuple(sorted(zip(LABELS[family], values, strict=True)))): value
    for family, values, value in EXPECTED_ROWS
}


def _samples(text: str, prefix: str) -> dict[Sample, float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith(prefix) and not sample.name.endswith("_created")
    }


def test_hubble_families_match_the_flows() -> None:
    metrics = Metrics()
    for flow in FLOWS:
        metrics.flows.observe_flow(flow)
    for source, lost in [
        (flow_pb2.HUBBLE_RING_BUFFER, 4),
        (flow_pb2.PERF_EVENT_RING_BUFFER, 3),
        (flow_pb2.HUBBLE_RING_BUFFER, 3),
    ]:
        metrics.flows.observe_lost(flow_pb2.LostEvent(source=source, num_events_lost=lost))
    assert _samples(metrics.exposition(), "hubble_") == EXPECTED


def test_exposition_announces_every_family_before_any_flow() -> None:
    text = Metrics().exposition()
    names = [family.name for family in text_string_to_metric_families(text)]
    assert names == [
        "hubble_flows_processed",
        "hubble_drop",
        "hubble_tcp_flags",
        "hubble_port_distribution",
        "hubble_icmp",
        "hubble_policy_verdicts",
        "hubble_lost_events",
    ]


def test_flowscope_metrics() -> None:
    metrics = Metrics()
    depth = [5]
    metrics.gauge("ring_entries").labels(ring="node").set_function(lambda: depth[0])
    metrics.counter("lost_events_total").labels(stage="store_queue").inc(4)
    metrics.histogram("store_batch_rows").labels(table="flows").observe(20_000)
    metrics.gauge("peers_connected").set(3)
    depth[0] = 9
    samples = _samples(metrics.exposition(), "flowscope_")
    assert samples[("flowscope_ring_entries", (("ring", "node"),))] == 9
    assert samples[("flowscope_lost_events_total", (("stage", "store_queue"),))] == 4
    assert samples[("flowscope_store_batch_rows_count", (("table", "flows"),))] == 1
    assert (
        samples[("flowscope_store_batch_rows_bucket", (("le", "50000.0"), ("table", "flows")))] == 1
    )
    assert (
        samples[("flowscope_store_batch_rows_bucket", (("le", "10000.0"), ("table", "flows")))] == 0
    )
    assert samples[("flowscope_peers_connected", ())] == 3
    assert metrics.gauge("peers_connected") is metrics.gauge("peers_connected")


def test_flowscope_metric_misuse() -> None:
    metrics = Metrics()
    with pytest.raises(KeyError, match="no flowscope metric 'ring_depth'; known: ring_entries"):
        metrics.gauge("ring_depth")
    with pytest.raises(TypeError) as caught:
        metrics.counter("spool_bytes")
    assert str(caught.value) == "flowscope metric 'spool_bytes' is a gauge, not a counter"
    assert all(name.islower() for name in FLOWSCOPE_METRICS)


def test_server_serves_metrics() -> None:
    metrics = Metrics()
    metrics.flows.observe_flow(FLOWS[0])
    server = MetricsServer("127.0.0.1:0", metrics.registry)
    port = server.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    finally:
        server.stop()
    assert _samples(text, "hubble_tcp_flags") == {
        ("hubble_tcp_flags_total", (("family", "IPv4"), ("flag", "SYN"))): 1
    }


def test_server_reports_a_taken_port() -> None:
    first = MetricsServer("127.0.0.1:0", Metrics().registry)
    port = first.start()
    try:
        with pytest.raises(FlowscopeError, match=f"^cannot serve metrics on 127.0.0.1:{port}: "):
            MetricsServer(f"127.0.0.1:{port}", Metrics().registry).start()
    finally:
        first.stop()


def test_observe_flow_cost() -> None:
    """Not a benchmark: catches an accidental slow path (budget is about 3 µs a flow)."""
    metrics = Metrics()
    started = time.perf_counter()
    for _ in range(200):
        for flow in FLOWS:
            metrics.flows.observe_flow(flow)
    per_flow = (time.perf_counter() - started) / (200 * len(FLOWS))
    assert per_flow < 50e-6
