"""Prometheus metrics: Hubble's flow families, flowscope's own, and the /metrics server.

Hubble's families keep their `hubble_` names and labels, so existing dashboards
work. `FlowMetrics.observe_flow` feeds them, once per flow:

    hubble_flows_processed_total{protocol,type,subtype,verdict}   every flow
    hubble_drop_total{reason,protocol}                            verdict DROPPED
    hubble_tcp_flags_total{flag,family}                           FORWARDED/REDIRECTED TCP
    hubble_port_distribution_total{protocol,port}                 FORWARDED/REDIRECTED,
                                                                  is_reply known false
    hubble_icmp_total{family,type}                                ICMPv4/ICMPv6 flows
    hubble_policy_verdicts_total{direction,match,action}          policy verdicts (not from
                                                                  the host) and L7 events
    hubble_lost_events_total{source}                              `observe_lost`

Two deliberate departures from Hubble's code: ICMPv6 flows count with family
"IPv6" in icmp_total (Hubble writes "IPv4"), and once in port_distribution_total
(Hubble counts them twice).

flowscope's own metrics are named in FLOWSCOPE_METRICS, so every component
uses the same name and labels for the same thing; a component takes them from
its `Metrics` (`metrics.gauge("ring_entries").labels(ring="node").set_function(len_fn)`),
or, for counts a component already keeps, reads them when scraped
(`metrics.read_at_scrape(lambda: {"store_insert_errors_total": {("flows",): n}})`).
`MetricsServer` serves a registry over HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final, Literal
from wsgiref.simple_server import WSGIServer

from google.protobuf.descriptor import EnumDescriptor
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from flowscope.common.accessors import icmp_type_code
from flowscope.common.errors import FlowscopeError
from flowscope.common.tls import split_host_port
from flowscope.common.vocab import (
    EVENT_TYPE_CAPTURE,
    EVENT_TYPE_DROP,
    EVENT_TYPE_L7,
    EVENT_TYPE_POLICY_VERDICT,
    EVENT_TYPE_TRACE,
    IDENTITY_HOST,
    POLICY_MATCH_TYPES,
    TRACE_SUBTYPES,
)
from flowscope.proto.flow import flow_pb2

COLLECTOR_METRICS_ADDRESS: Final = "localhost:9965"
RELAY_METRICS_ADDRESS: Final = "localhost:9966"

Labels = tuple[str, ...]


def _enum_names(enum: EnumDescriptor) -> dict[int, str]:
    return {value.number: value.name for value in enum.values}


_VERDICTS: Final = _enum_names(flow_pb2.Verdict.DESCRIPTOR)
_DROP_REASONS: Final = _enum_names(flow_pb2.DropReason.DESCRIPTOR)
_DIRECTIONS: Final = {
    n: name.lower() for n, name in _enum_names(flow_pb2.TrafficDirection.DESCRIPTOR).items()
}
_IP_VERSIONS: Final = _enum_names(flow_pb2.IPVersion.DESCRIPTOR)
_LOST_SOURCES: Final = {
    n: name.lower() for n, name in _enum_names(flow_pb2.LostEventSource.DESCRIPTOR).items()
}
_MATCH_TYPES: Final = {n: name.lower() for n, name in POLICY_MATCH_TYPES.items()}
_TRACE_POINTS: Final = {sub: name for name, sub in TRACE_SUBTYPES.items()}
_EVENT_TYPES: Final = {
    EVENT_TYPE_L7: "L7",
    EVENT_TYPE_DROP: "Drop",
    EVENT_TYPE_CAPTURE: "Capture",
    EVENT_TYPE_TRACE: "Trace",
    EVENT_TYPE_POLICY_VERDICT: "PolicyVerdict",
}
# Types whose protocol label is the L4 protocol.
_L4_TYPES: Final = frozenset(
    {EVENT_TYPE_DROP, EVENT_TYPE_TRACE, EVENT_TYPE_POLICY_VERDICT, EVENT_TYPE_CAPTURE}
)
_L4_NAMES: Final = {
    "TCP": "TCP",
    "UDP": "UDP",
    "ICMPv4": "ICMPv4",
    "ICMPv6": "ICMPv6",
    "SCTP": "SCTP",
}
_L7_NAMES: Final = {"dns": "DNS", "http": "HTTP", "kafka": "Kafka"}
_PASSED: Final = frozenset({flow_pb2.FORWARDED, flow_pb2.REDIRECTED})
_PORTED: Final = frozenset({"TCP", "UDP", "SCTP"})


def _enum_name(names: dict[int, str], value: int) -> str:
    # An enum number this build does not know prints as the number, as in Go.
    return names.get(value) or str(value)


@dataclass(frozen=True)
class _Family:
    name: str
    help: str
    labels: Labels


_HUBBLE_FAMILIES: Final = (
    _Family(
        "hubble_flows_processed",
        "Total number of flows processed",
        ("protocol", "type", "subtype", "verdict"),
    ),
    _Family("hubble_drop", "Number of drops", ("reason", "protocol")),
    _Family("hubble_tcp_flags", "TCP flag occurrences", ("flag", "family")),
    _Family(
        "hubble_port_distribution",
        "Numbers of packets distributed by destination port",
        ("protocol", "port"),
    ),
    _Family("hubble_icmp", "Number of ICMP messages", ("family", "type")),
    _Family(
        "hubble_policy_verdicts",
        "Total number of network policy verdicts",
        ("direction", "match", "action"),
    ),
    _Family("hubble_lost_events", "Number of lost events", ("source",)),
)


class FlowMetrics(Collector):
    """Hubble's flow families, counted in plain dicts and exposed at scrape time.

    A flow costs a few dict increments instead of prometheus_client's
    per-label-child locking; one lock keeps concurrent observers exact.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, dict[Labels, float]] = {f.name: {} for f in _HUBBLE_FAMILIES}
        counts = self._counts
        self._flows = counts["hubble_flows_processed"]
        self._drops = counts["hubble_drop"]
        self._tcp = counts["hubble_tcp_flags"]
        self._ports = counts["hubble_port_distribution"]
        self._icmp = counts["hubble_icmp"]
        self._policy = counts["hubble_policy_verdicts"]
        self._lost = counts["hubble_lost_events"]

    def observe_flow(self, flow: flow_pb2.Flow) -> None:
        # Each protobuf field read costs about 0.1 µs: every field is read once.
        event = flow.event_type
        event_type = event.type
        verdict = flow.verdict
        l4 = flow.l4
        l4_case = l4.WhichOneof("protocol")
        l7_case = flow.l7.WhichOneof("record") if event_type == EVENT_TYPE_L7 else None
        verdict_name = _enum_name(_VERDICTS, verdict)
        if event_type == EVENT_TYPE_L7:
            protocol = _L7_NAMES.get(l7_case or "", "Unknown L7")
        elif event_type in _L4_TYPES:
            protocol = _L4_NAMES.get(l4_case or "", "Unknown L4")
        else:
            protocol = "Unknown flow"
        type_name = _EVENT_TYPES.get(event_type, "Unknown")
        if event_type == EVENT_TYPE_TRACE:
            subtype = _TRACE_POINTS.get(event.sub_type, "")
        elif event_type == EVENT_TYPE_L7:
            subtype = _L7_NAMES.get(l7_case or "", "")
        elif type_name == "Unknown":
            subtype = str(event_type)
        else:
            subtype = ""

        with self._lock:
            key: Labels = (protocol, type_name, subtype, verdict_name)
            self._flows[key] = self._flows.get(key, 0) + 1
            if verdict == flow_pb2.DROPPED:
                key = (_enum_name(_DROP_REASONS, flow.drop_reason_desc), protocol)
                self._drops[key] = self._drops.get(key, 0) + 1
            elif verdict in _PASSED and l4_case is not None:
                self._count_passed(flow, l4, l4_case)
            if l4_case == "ICMPv4" or l4_case == "ICMPv6":
                version = 4 if l4_case == "ICMPv4" else 6
                icmp = l4.ICMPv4 if version == 4 else l4.ICMPv6
                key = (f"IPv{version}", icmp_type_code(version, icmp.type, icmp.code))
                self._icmp[key] = self._icmp.get(key, 0) + 1
            if event_type == EVENT_TYPE_POLICY_VERDICT and flow.source.identity != IDENTITY_HOST:
                match = _MATCH_TYPES.get(flow.policy_match_type, "unknown")
                self._count_policy(flow, match, verdict_name)
            elif event_type == EVENT_TYPE_L7:
                self._count_policy(flow, f"l7/{l7_case or ''}", verdict_name)

    def _count_passed(self, flow: flow_pb2.Flow, l4: flow_pb2.Layer4, l4_case: str) -> None:
        """tcp_flags and port_distribution, which count forwarded traffic only."""
        layer = getattr(l4, l4_case)
        if l4_case == "TCP" and layer.HasField("flags") and flow.HasField("IP"):
            flags = layer.flags
            family = _enum_name(_IP_VERSIONS, flow.IP.ipVersion)
            tcp = self._tcp
            if flags.FIN:
                tcp[("FIN", family)] = tcp.get(("FIN", family), 0) + 1
            if flags.SYN:
                name = "SYN-ACK" if flags.ACK else "SYN"
                tcp[(name, family)] = tcp.get((name, family), 0) + 1
            if flags.RST:
                tcp[("RST", family)] = tcp.get(("RST", family), 0) + 1
        # The destination port is the service's only when the flow is known not to be a reply.
        if flow.HasField("is_reply") and not flow.is_reply.value:
            port = str(layer.destination_port) if l4_case in _PORTED else "0"
            self._ports[(l4_case, port)] = self._ports.get((l4_case, port), 0) + 1

    def _count_policy(self, flow: flow_pb2.Flow, match: str, verdict_name: str) -> None:
        direction = _enum_name(_DIRECTIONS, flow.traffic_direction)
        key = (direction, match, verdict_name.lower())
        self._policy[key] = self._policy.get(key, 0) + 1

    def observe_lost(self, lost: flow_pb2.LostEvent) -> None:
        key = (_enum_name(_LOST_SOURCES, lost.source),)
        with self._lock:
            self._lost[key] = self._lost.get(key, 0) + lost.num_events_lost

    def describe(self) -> Iterator[CounterMetricFamily]:
        for family in _HUBBLE_FAMILIES:
            yield CounterMetricFamily(family.name, family.help, labels=family.labels)

    def collect(self) -> Iterator[CounterMetricFamily]:
        with self._lock:
            snapshot = {name: dict(counts) for name, counts in self._counts.items()}
        for family in _HUBBLE_FAMILIES:
            metric = CounterMetricFamily(family.name, family.help, labels=family.labels)
            for labels, value in sorted(snapshot[family.name].items()):
                metric.add_metric(labels, value)
            yield metric


@dataclass(frozen=True)
class MetricSpec:
    """One of flowscope's own metrics: its kind, help and labels (name without prefix)."""

    kind: Literal["counter", "gauge", "histogram"]
    help: str
    labels: Labels = ()
    buckets: tuple[float, ...] = ()


FLOWSCOPE_METRICS: Final[dict[str, MetricSpec]] = {
    "ring_entries": MetricSpec("gauge", "Entries held in a ring buffer", ("ring",)),
    "ring_capacity": MetricSpec("gauge", "Capacity of a ring buffer, in entries", ("ring",)),
    "queue_depth": MetricSpec("gauge", "Items waiting in a queue", ("queue",)),
    "lost_events_total": MetricSpec(
        "counter", "Events lost, by the stage that lost them", ("stage",)
    ),
    "store_batch_rows": MetricSpec(
        "histogram",
        "Rows per store insert",
        ("table",),
        (10, 100, 1_000, 10_000, 50_000, 100_000, 250_000, 1_000_000),
    ),
    "store_insert_seconds": MetricSpec(
        "histogram",
        "Time one store insert takes",
        ("table",),
        (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    ),
    "store_insert_errors_total": MetricSpec("counter", "Store inserts that failed", ("table",)),
    "spool_bytes": MetricSpec("gauge", "Bytes waiting in the spool for the store"),
    "flows_received_total": MetricSpec("counter", "Flows the relay received from the nodes"),
    "store_flows_total": MetricSpec(
        "counter",
        "Flows through the store's writer: stored, duplicate (dropped), spooled, replayed",
        ("outcome",),
    ),
    "peers_connected": MetricSpec("gauge", "Collectors the relay is connected to"),
    "live_client_queue_max": MetricSpec(
        "gauge", "Most responses waiting in one live client's queue"
    ),
    "limit_refusals_total": MetricSpec(
        "counter",
        "Calls refused by a per-client limit: streams, client_streams, query_range, query_flows",
        ("limit",),
    ),
}


# {metric name without prefix: {label values: value}}
Samples = dict[str, dict[Labels, float]]


class _ScrapeTimeSamples(Collector):
    """flowscope counters and gauges whose values a function reads when scraped."""

    def __init__(self, read: Callable[[], Samples]) -> None:
        self._read = read

    def describe(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        return iter(())

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        for name, values in sorted(self._read().items()):
            spec = FLOWSCOPE_METRICS[name]
            full = f"flowscope_{name}"
            metric: CounterMetricFamily | GaugeMetricFamily
            if spec.kind == "counter":
                metric = CounterMetricFamily(full, spec.help, labels=spec.labels)
            elif spec.kind == "gauge":
                metric = GaugeMetricFamily(full, spec.help, labels=spec.labels)
            else:
                raise TypeError(f"flowscope metric {name!r} is a histogram: observe it instead")
            for labels, value in sorted(values.items()):
                metric.add_metric(labels, value)
            yield metric


class Metrics:
    """A component's metrics on its own registry: Hubble's flow families and flowscope's own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.flows = FlowMetrics()
        self.registry.register(self.flows)
        self._own: dict[str, Counter | Gauge | Histogram] = {}
        self._lock = threading.Lock()

    def counter(self, name: str) -> Counter:
        metric = self._get(name, "counter")
        assert isinstance(metric, Counter)
        return metric

    def gauge(self, name: str) -> Gauge:
        metric = self._get(name, "gauge")
        assert isinstance(metric, Gauge)
        return metric

    def histogram(self, name: str) -> Histogram:
        metric = self._get(name, "histogram")
        assert isinstance(metric, Histogram)
        return metric

    def _get(self, name: str, kind: str) -> Counter | Gauge | Histogram:
        """The metric `flowscope_<name>`, made on first use."""
        spec = FLOWSCOPE_METRICS.get(name)
        if spec is None:
            raise KeyError(f"no flowscope metric {name!r}; known: {', '.join(FLOWSCOPE_METRICS)}")
        if spec.kind != kind:
            raise TypeError(f"flowscope metric {name!r} is a {spec.kind}, not a {kind}")
        with self._lock:
            metric = self._own.get(name)
            if metric is None:
                full = f"flowscope_{name}"
                labels = spec.labels
                if spec.kind == "counter":
                    metric = Counter(full, spec.help, labels, registry=self.registry)
                elif spec.kind == "gauge":
                    metric = Gauge(full, spec.help, labels, registry=self.registry)
                else:
                    metric = Histogram(
                        full, spec.help, labels, registry=self.registry, buckets=spec.buckets
                    )
                self._own[name] = metric
            return metric

    def read_at_scrape(self, read: Callable[[], Samples]) -> None:
        """Exposes the counters and gauges `read` returns, calling it at every scrape.

        For counts a component keeps anyway (the store's counters): no second
        bookkeeping. Names must not also be made with counter() or gauge().
        """
        unknown = [name for name in read() if name not in FLOWSCOPE_METRICS]
        if unknown:
            raise KeyError(f"no flowscope metric {', '.join(map(repr, unknown))}")
        self.registry.register(_ScrapeTimeSamples(read))

    def exposition(self) -> str:
        """The registry in Prometheus' text format, as /metrics serves it."""
        return generate_latest(self.registry).decode()


class MetricsServer:
    """Serves a registry at http://ADDRESS/metrics from a background thread.

    Inert until start(); ADDRESS is HOST:PORT ("localhost:9965"; an empty host
    listens on every interface). stop() closes the socket.
    """

    def __init__(self, address: str, registry: CollectorRegistry) -> None:
        self.address = address
        self._host, self._port = split_host_port(address)
        self._registry = registry
        self._server: WSGIServer | None = None

    def start(self) -> int:
        """Starts serving; the port it listens on (useful with port 0)."""
        try:
            server, _ = start_http_server(
                self._port, addr=self._host or "0.0.0.0", registry=self._registry
            )
        except OSError as err:
            raise FlowscopeError(
                f"cannot serve metrics on {self.address}: {err.strerror or err}"
            ) from None
        self._server = server
        return server.server_port

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
