"""Both event transports, and every loss counted: tiny buffers and a low rate limit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from labtools import flows, run_in, start_collector, start_in, wait_for

from flowscope.collector import rawevent as raw
from flowscope.collector.events import EventReader
from flowscope.collector.labconfig import LabConfig, parse_lab
from flowscope.collector.labnet import create_lab, destroy_lab
from flowscope.collector.loader import Datapath, DatapathConfig
from flowscope.proto.flow import flow_pb2

pytestmark = pytest.mark.kernel

CONNECTIONS = 300  # one UDP datagram from each of this many sockets
PORT = 6000


def test_perf_buffer_transport(lab: tuple[LabConfig, Path]) -> None:
    config, state_dir = lab
    client, server = config.find("shop/client"), config.find("data/server")
    collector = start_collector(state_dir, transport="perf")
    try:
        start = collector.ring.next_seq()
        run_in(config, "shop/client", "ping", server.ipv4, "1")
        events = wait_for(collector, start,
                          lambda ev: len(flows(ev, src=server.ipv4, dst=client.ipv4)) >= 2)
    finally:
        collector.stop()
    echo = [f.Summary for f in flows(events, src=client.ipv4, dst=server.ipv4)]
    assert echo == ["ICMPv4 EchoRequest"] * 2


@pytest.mark.parametrize("transport", ["ring", "perf"])
def test_full_buffer_losses_are_counted(lab: tuple[LabConfig, Path], transport: str) -> None:
    config, _ = lab
    server = config.find("data/server")
    datapath = Datapath(DatapathConfig(transport=transport, buffer_pages=1))  # type: ignore[arg-type]
    datapath.load()
    received: list[raw.RawEvent] = []
    sink = start_in(config, "data/server", "udp-sink", str(PORT))
    try:
        for p in config.pods:
            if not p.is_world:
                datapath.attach(config.host_ifname(p))
        reader = EventReader(datapath, received.append)
        reader.open()
        # Nobody reads while the burst goes out: the one-page buffer overflows.
        run_in(config, "shop/client", "udp-spread", server.ipv4, str(PORT), str(CONNECTIONS))
        for _ in range(20):
            reader.poll(50)
        counters = datapath.counters()
    finally:
        sink.kill()
        sink.wait()
        datapath.close()
    lost = sum(cpu[raw.COUNTER_TRANSPORT_FULL] for cpu in counters)
    offered = sum(cpu[raw.COUNTER_EVENTS] for cpu in counters)
    assert lost > 2 * CONNECTIONS // 2
    # Every event the kernel offered was either received or counted as lost...
    assert len(received) + lost == offered
    # ... and each connection offered two (from-endpoint, to-endpoint), beside any background
    # traffic of the lab (neighbour discovery).
    ours = [e for e in received if e.kind == raw.EVENT_TRACE and e.dport == PORT]
    assert len(ours) + lost >= 2 * CONNECTIONS


def test_rate_limited_events_become_lost_events(lab: tuple[LabConfig, Path]) -> None:
    config, state_dir = lab
    client, server = config.find("shop/client"), config.find("data/server")
    collector = start_collector(state_dir, rate_limit=5, rate_burst=20)
    sink = start_in(config, "data/server", "udp-sink", str(PORT + 1))
    try:
        start = collector.ring.next_seq()
        run_in(config, "shop/client", "udp-spread", server.ipv4, str(PORT + 1),
               str(CONNECTIONS))

        def accounted(events: list[object]) -> int:
            lost = sum(e.num_events_lost for e in events if isinstance(e, flow_pb2.LostEvent))
            return lost + len(flows(events, src=client.ipv4, dport=PORT + 1))  # type: ignore[arg-type]

        time.sleep(0.5)
        events = wait_for(collector, start, lambda ev: accounted(ev) >= 2 * CONNECTIONS)
    finally:
        sink.kill()
        sink.wait()
        collector.stop()
    lost_events = [e for e in events if isinstance(e, flow_pb2.LostEvent)]
    assert lost_events
    assert {e.source for e in lost_events} == {flow_pb2.PERF_EVENT_RING_BUFFER}
    delivered = len(flows(events, src=client.ipv4, dport=PORT + 1))
    assert 20 <= delivered < 2 * CONNECTIONS
    assert accounted(events) == 2 * CONNECTIONS  # type: ignore[arg-type]
    assert collector.stats().lost_rate_limited == 2 * CONNECTIONS - delivered


def test_idle_connections_expire(lab: tuple[LabConfig, Path]) -> None:
    config, state_dir = lab
    client, server = config.find("shop/client"), config.find("data/server")
    collector = start_collector(state_dir, idle_timeout=0.3)
    sink = start_in(config, "data/server", "udp-sink", str(PORT + 2))
    try:
        start = collector.ring.next_seq()
        run_in(config, "shop/client", "udp", server.ipv4, str(PORT + 2), "1", "10")
        wait_for(collector, start, lambda ev: len(flows(ev, src=client.ipv4)) >= 2)
        collector.sweep()  # the record of the datagram
        time.sleep(0.5)
        collector.sweep()  # no change for longer than the idle timeout: forgotten
        assert collector.stats().connections_expired >= 1
        run_in(config, "shop/client", "udp", server.ipv4, str(PORT + 2), "1", "10")
        events = wait_for(collector, start, lambda ev: len(flows(
            ev, src=client.ipv4, dport=PORT + 2)) >= 5)
    finally:
        sink.kill()
        sink.wait()
        collector.stop()
    traced = [f for f in flows(events, src=client.ipv4, dport=PORT + 2)
              if not f.HasField("counters")]
    records = [f for f in flows(events, src=client.ipv4, dport=PORT + 2)
               if f.HasField("counters")]
    # Forgotten, the connection is new again: two more events for the second datagram.
    assert len(traced) == 4
    assert [r.counters.packets_forward for r in records] == [1]


def test_endpoints_follow_labs_live(lab: tuple[LabConfig, Path]) -> None:
    _, state_dir = lab
    # Another lab, with namespaces of its own (namespace/pod names are unique on a node).
    second = parse_lab({
        "name": "ktwo",
        "network": {"ipv4": "10.195.0.0/16", "ipv6": "fd00:195::/64",
                    "pod_ipv4": "10.195.1.0/24", "pod_ipv6": "fd00:195::1:0/112"},
        "namespaces": {"shop2": {}, "data2": {}},
        "pods": [{"namespace": "shop2", "name": "client"},
                 {"namespace": "data2", "name": "server"},
                 {"namespace": "data2", "name": "other"}],
    }, "second lab")
    collector = start_collector(state_dir)
    try:
        start = collector.ring.next_seq()
        create_lab(second, state_dir)
        try:
            created = wait_for(collector, start, lambda ev: len(
                _endpoint_events(ev, flow_pb2.ENDPOINT_CREATED)) == 3)
            assert sorted(_endpoint_events(created, flow_pb2.ENDPOINT_CREATED)) == [
                "client", "other", "server"]
            client, server = second.find("shop2/client"), second.find("data2/server")
            run_in(second, "shop2/client", "ping", server.ipv4, "1")
            seen = wait_for(collector, start, lambda ev: len(
                flows(ev, src=client.ipv4, dst=server.ipv4)) >= 2)
            echo = flows(seen, src=client.ipv4, dst=server.ipv4)[0]
            assert (echo.source.pod_name, echo.destination.pod_name) == ("client", "server")
        finally:
            destroy_lab(second.name, state_dir)
        deleted = wait_for(collector, start, lambda ev: len(
            _endpoint_events(ev, flow_pb2.ENDPOINT_DELETED)) == 3)
        assert len(_endpoint_events(deleted, flow_pb2.ENDPOINT_DELETED)) == 3
        assert collector.endpoints.by_ip(server.ipv4) is None
    finally:
        collector.stop()


def _endpoint_events(events: list[object], kind: int) -> list[str]:
    return [e.endpoint_update.pod_name for e in events
            if isinstance(e, flow_pb2.AgentEvent) and e.type == kind]
