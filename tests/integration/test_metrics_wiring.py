"""The collector's and the relay's /metrics: values equal the flows the tests generated.

The collector's metrics are fed through its recording hook (Collector.record, what every
decoded flow and lost event goes through) without loading the kernel datapath, and are
served by `flowscope collector`'s metrics server. The relay's flowscope_* metrics come
from a real relay following a node, with its own embedded chDB store.
"""

from __future__ import annotations

import dataclasses
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from relay_cluster import Node, make_flow, relay_config, wait_for

from flowscope.cli import stack
from flowscope.collector.collector import Collector
from flowscope.collector.collector import Config as CollectorConfig
from flowscope.common.metrics import Metrics, MetricsServer
from flowscope.proto.flow import flow_pb2
from flowscope.proto.relay import relay_pb2
from flowscope.relay.relay import Relay
from flowscope.relay.store import StoreConfig

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(value for (n, lbls), value in samples.items() if n == name and wanted <= set(lbls))


@pytest.fixture
def collector() -> Collector:
    return Collector(CollectorConfig(node_name="node-1", ring_capacity=100))


def test_collector_metrics_count_the_recorded_flows(collector: Collector) -> None:
    for index in range(8):  # verdicts cycle FORWARDED, FORWARDED, DROPPED, AUDIT
        collector.record(make_flow("node-1", index, time.time_ns()))
    collector.record(flow_pb2.LostEvent(source=flow_pb2.PERF_EVENT_RING_BUFFER, num_events_lost=7))
    collector.record(flow_pb2.AgentEvent(type=flow_pb2.AGENT_STARTED))
    port = _free_port()
    with stack.metrics_served(f"127.0.0.1:{port}", collector.metrics):
        samples = _scrape(port)

    processed = "hubble_flows_processed_total"
    assert _total(samples, processed) == 8
    assert _total(samples, processed, verdict="FORWARDED", protocol="TCP", type="Trace") == 4
    assert _total(samples, processed, verdict="DROPPED") == 2
    assert _total(samples, processed, verdict="AUDIT") == 2
    assert _total(samples, "hubble_drop_total", protocol="TCP") == 2
    assert _total(samples, "hubble_tcp_flags_total", flag="SYN", family="IPv4") == 4
    # The forwarded flows are indexes 0, 1, 4 and 5: ports 80, 443, 443, 5432.
    ports = {
        dict(labels)["port"]: value
        for (name, labels), value in samples.items()
        if name == "hubble_port_distribution_total"
    }
    assert ports == {"80": 1, "443": 2, "5432": 1}
    assert samples[("hubble_lost_events_total", (("source", "perf_event_ring_buffer"),))] == 7
    assert samples[("flowscope_ring_entries", (("ring", "node"),))] == 10
    assert samples[("flowscope_ring_capacity", (("ring", "node"),))] == 100


def test_an_empty_metrics_address_serves_nothing(collector: Collector) -> None:
    with stack.metrics_served("", collector.metrics):
        pass  # nothing bound, nothing to stop


def test_unknown_scrape_time_metric_is_refused_at_once() -> None:
    with pytest.raises(KeyError, match="no flowscope metric 'flows_seen'"):
        Metrics().read_at_scrape(lambda: {"flows_seen": {(): 1}})


@pytest.fixture
def node() -> Iterator[Node]:
    started = Node("node-1")
    started.start()
    yield started
    started.stop()


@pytest.mark.store
def test_relay_metrics_count_the_flows_it_received_and_stored(node: Node, tmp_path: Path) -> None:
    pytest.importorskip("chdb")
    store = StoreConfig(
        dsn=f"chdb://{tmp_path / 'db'}", spool_dir=tmp_path / "spool", batch_max_wait=0.1
    )
    relay = Relay(dataclasses.replace(relay_config([node]), store=store))
    server = MetricsServer("127.0.0.1:0", relay.metrics.registry)
    relay.start()
    port = server.start()
    try:
        wait_for(lambda: [n.state for n in relay.nodes()] == [relay_pb2.NODE_CONNECTED])
        # A live client that reads nothing: its queue holds 10 flows and loses the rest.
        relay._hub.subscribe(capacity=10)
        node.emit(25)
        wait_for(lambda: relay.seen_flows() == 25)
        wait_for(lambda: relay._hub.lost == 15)
        assert relay._store is not None and relay._store_counters is not None
        relay._store.flush()
        inserts = relay._store_counters.counters().writer.inserts
        samples = _scrape(port)
    finally:
        server.stop()
        relay.stop()
    assert samples[("flowscope_peers_connected", ())] == 1
    assert samples[("flowscope_flows_received_total", ())] == 25
    assert samples[("flowscope_store_flows_total", (("outcome", "stored"),))] == 25
    assert samples[("flowscope_store_flows_total", (("outcome", "duplicate"),))] == 0
    assert samples[("flowscope_lost_events_total", (("stage", "store_queue"),))] == 0
    assert samples[("flowscope_store_insert_errors_total", (("table", "flows"),))] == 0
    assert samples[("flowscope_spool_bytes", ())] == 0
    flows_table = (("table", "flows"),)
    assert inserts >= 1
    assert samples[("flowscope_store_batch_rows_sum", flows_table)] == 25
    assert samples[("flowscope_store_batch_rows_count", flows_table)] == inserts
    assert samples[("flowscope_store_insert_seconds_count", flows_table)] == inserts
    assert 0 < samples[("flowscope_store_insert_seconds_sum", flows_table)] < 60
    assert samples[("flowscope_queue_depth", (("queue", "live_clients"),))] == 10
    assert samples[("flowscope_live_client_queue_max", ())] == 10
    assert samples[("flowscope_lost_events_total", (("stage", "live_client_queue"),))] == 15
    assert samples[("flowscope_lost_events_total", (("stage", "store_refused"),))] == 0
    assert samples[("flowscope_lost_events_total", (("stage", "node_ring_unsent"),))] == 0
    assert _total(samples, "flowscope_limit_refusals_total") == 0


def _failing_insert(table: str) -> None:
    raise ConnectionError(f"{table}: the store is down (test)")


@pytest.mark.store
def test_relay_metrics_count_failed_inserts_and_the_spool(node: Node, tmp_path: Path) -> None:
    pytest.importorskip("chdb")
    # No retries of their own within the test: only the flushes replay the spool.
    store = StoreConfig(
        dsn=f"chdb://{tmp_path / 'db'}",
        spool_dir=tmp_path / "spool",
        batch_max_wait=0.1,
        retry_interval=600,
    )
    relay = Relay(dataclasses.replace(relay_config([node]), store=store))
    server = MetricsServer("127.0.0.1:0", relay.metrics.registry)
    relay.start()
    port = server.start()
    try:
        wait_for(lambda: [n.state for n in relay.nodes()] == [relay_pb2.NODE_CONNECTED])
        opened, backend = relay._store_counters, relay._store
        assert opened is not None and backend is not None
        opened.before_insert = _failing_insert
        node.emit(10)
        wait_for(lambda: relay.seen_flows() == 10)
        backend.flush()
        failing = opened.counters()
        down = _scrape(port)
        opened.before_insert = None
        backend.flush()
        up = _scrape(port)
    finally:
        server.stop()
        relay.stop()
    flows_table = (("table", "flows"),)
    assert failing.writer.insert_failures >= 1
    assert failing.spool_bytes > 0
    assert down[("flowscope_store_insert_errors_total", flows_table)] == (
        failing.writer.insert_failures
    )
    assert down[("flowscope_spool_bytes", ())] == failing.spool_bytes
    assert down[("flowscope_store_flows_total", (("outcome", "spooled"),))] == 10
    assert down[("flowscope_store_flows_total", (("outcome", "stored"),))] == 0
    assert down[("flowscope_store_batch_rows_count", flows_table)] == 0
    # The store back: the spool replayed into it, and emptied.
    assert up[("flowscope_spool_bytes", ())] == 0
    assert up[("flowscope_store_flows_total", (("outcome", "replayed"),))] == 10
    assert up[("flowscope_store_flows_total", (("outcome", "stored"),))] == 10
    assert up[("flowscope_store_batch_rows_sum", flows_table)] == 10
    assert up[("flowscope_store_insert_errors_total", flows_table)] == (
        failing.writer.insert_failures
    )
