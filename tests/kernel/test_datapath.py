"""The datapath on a real kernel: flows of real traffic between lab pods (ring buffer transport).

One collector is shared by the module (compiling the program costs about a second).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from labtools import flows, run_in, start_collector, start_in, wait_for

from flowscope.collector.collector import Collector
from flowscope.collector.command import run
from flowscope.collector.labconfig import LabConfig
from flowscope.proto.flow import flow_pb2

pytestmark = pytest.mark.kernel

COMMAND = Path(sys.executable).name[:15]


@pytest.fixture(scope="module")
def collector(lab: tuple[LabConfig, Path]) -> Iterator[Collector]:
    collector = start_collector(lab[1])
    yield collector
    collector.stop()


@pytest.fixture
def config(lab: tuple[LabConfig, Path]) -> LabConfig:
    return lab[0]


def labels(config: LabConfig, ref: str) -> list[str]:
    p = config.find(ref)
    ns_labels = {"shop": "shop", "data": "data"}[p.namespace]
    return sorted([f"k8s:app={p.labels['app']}",
                   f"k8s:io.cilium.k8s.namespace.labels.team={ns_labels}",
                   f"k8s:io.kubernetes.pod.namespace={p.namespace}"])


def test_endpoints_are_announced(collector: Collector, config: LabConfig) -> None:
    entries, _ = collector.ring.read(collector.ring.first_seq(), limit=1000)
    created = {e.endpoint_update.pod_name for _, e in entries
               if isinstance(e, flow_pb2.AgentEvent) and e.type == flow_pb2.ENDPOINT_CREATED}
    assert created == {"client", "server", "other"}


@pytest.mark.parametrize("family", [4, 6])
def test_tcp_between_pods(collector: Collector, config: LabConfig, family: int) -> None:
    client, server = config.find("shop/client"), config.find("data/server")
    src = client.ipv4 if family == 4 else client.ipv6
    dst = server.ipv4 if family == 4 else server.ipv6
    port = 8080 + family
    start = collector.ring.next_seq()
    sink = start_in(config, "data/server", "sink", str(port))
    try:
        run_in(config, "shop/client", "tcp", dst, str(port), "100000")
        events = wait_for(collector, start, lambda ev: len(
            [f for f in flows(ev, src=dst, sport=port) if f.l4.TCP.flags.FIN]) >= 2)
    finally:
        sink.kill()
        sink.wait()
    request = flows(events, src=src, dst=dst, dport=port)
    reply = flows(events, src=dst, dst=src, sport=port)
    syn = [f for f in request if f.l4.TCP.flags.SYN]
    assert [f.trace_observation_point for f in syn] == [flow_pb2.FROM_ENDPOINT,
                                                        flow_pb2.TO_ENDPOINT]
    assert [f.interface.name for f in syn] == [config.host_ifname(client),
                                              config.host_ifname(server)]
    assert [f.event_type.sub_type for f in syn] == [5, 0]
    first = syn[0]
    assert first.Summary == "TCP Flags: SYN"
    assert first.verdict == flow_pb2.FORWARDED
    assert first.is_reply.value is False
    assert first.traffic_direction == flow_pb2.EGRESS
    assert syn[1].traffic_direction == flow_pb2.INGRESS
    client_ep = collector.endpoints.by_ip(src)
    server_ep = collector.endpoints.by_ip(dst)
    assert client_ep is not None and server_ep is not None
    assert (first.source.pod_name, first.source.namespace) == ("client", "shop")
    assert (first.destination.pod_name, first.destination.namespace) == ("server", "data")
    assert (first.source.identity, first.destination.identity) == (client_ep.identity,
                                                                    server_ep.identity)
    assert sorted(first.source.labels) == labels(config, "shop/client")
    assert sorted(first.destination.labels) == labels(config, "data/server")
    assert [(w.name, w.kind) for w in first.destination.workloads] == [("server",
                                                                         "StatefulSet")]
    assert first.l4.TCP.destination_port == port
    assert first.IP.ipVersion == (flow_pb2.IPv4 if family == 4 else flow_pb2.IPv6)

    synack = [f for f in reply if f.l4.TCP.flags.SYN]
    assert [f.Summary for f in synack] == ["TCP Flags: SYN, ACK"] * 2
    assert all(f.is_reply.value for f in reply)
    assert all(not f.is_reply.value for f in request)
    assert any(f.l4.TCP.flags.FIN for f in request)

    # Process on both ends: the sink (server) from its listening socket, the client from the
    # connection it established (known from the SYN-ACK on).
    server_pid = sink.pid
    fin = next(f for f in request if f.l4.TCP.flags.FIN)
    assert fin.destination.process.pid == server_pid
    assert fin.destination.process.command == COMMAND
    assert fin.source.process.command == COMMAND
    assert fin.source.process.pid not in (0, server_pid)

    # The counter record of the connection carries what was sent.
    collector.sweep()
    records = [f for f in wait_for(collector, start, lambda ev: True)
               if isinstance(f, flow_pb2.Flow) and f.HasField("counters")
               and f.IP.source == src and f.l4.TCP.destination_port == port]
    assert len(records) == 1
    counters = records[0].counters
    payload = 100000
    # Each segment carries 20 (IPv4) or 40 (IPv6) bytes of IP header and a TCP header of 20 to
    # 60 bytes; the counters are L3 bytes of every segment (GSO segments counted one by one).
    ip_header = 20 if family == 4 else 40
    assert (counters.bytes_forward - (ip_header + 60) * counters.packets_forward
            <= payload <= counters.bytes_forward - (ip_header + 20) * counters.packets_forward)
    assert counters.packets_forward >= payload // 65536
    assert counters.packets_reply >= 2
    assert records[0].source.process.pid == fin.source.process.pid


def test_udp_counts_match_what_was_sent(collector: Collector, config: LabConfig) -> None:
    client, server = config.find("shop/client"), config.find("data/server")
    start = collector.ring.next_seq()
    sink = start_in(config, "data/server", "udp-sink", "5000")
    try:
        run_in(config, "shop/client", "udp", server.ipv4, "5000", "7", "100")
        events = wait_for(collector, start,
                          lambda ev: len(flows(ev, src=client.ipv4, dport=5000)) >= 2)
        collector.sweep()
        events = wait_for(collector, start, lambda ev: any(
            f.HasField("counters") for f in flows(ev, src=client.ipv4, dport=5000)))
    finally:
        sink.kill()
        sink.wait()
    traced = [f for f in flows(events, src=client.ipv4, dport=5000)
              if not f.HasField("counters")]
    assert [(f.Summary, f.trace_observation_point) for f in traced] == [
        ("UDP", flow_pb2.FROM_ENDPOINT), ("UDP", flow_pb2.TO_ENDPOINT)]
    record = [f for f in flows(events, src=client.ipv4, dport=5000) if f.HasField("counters")]
    assert len(record) == 1
    assert record[0].counters == flow_pb2.FlowCounters(packets_forward=7,
                                                       bytes_forward=7 * (100 + 8 + 20))
    # A second sweep without traffic adds no record: records carry differences.
    collector.sweep()
    entries, _ = collector.ring.read(start, limit=100_000)
    assert len([e for _, e in entries if isinstance(e, flow_pb2.Flow)
                and e.HasField("counters") and e.IP.source == client.ipv4
                and e.l4.UDP.destination_port == 5000]) == 1


@pytest.mark.parametrize(("family", "request_text", "reply_text"), [
    (4, "ICMPv4 EchoRequest", "ICMPv4 EchoReply"),
    (6, "ICMPv6 EchoRequest", "ICMPv6 EchoReply"),
])
def test_icmp_echo(collector: Collector, config: LabConfig, family: int, request_text: str,
                   reply_text: str) -> None:
    client, other = config.find("shop/client"), config.find("data/other")
    src, dst = (client.ipv4, other.ipv4) if family == 4 else (client.ipv6, other.ipv6)
    start = collector.ring.next_seq()
    run_in(config, "shop/client", "ping", dst, "1")
    events = wait_for(collector, start, lambda ev: len(flows(ev, src=dst, dst=src)) >= 2)
    # Neighbour discovery (ICMPv6 too) may show up beside the echo.
    sent = [f for f in flows(events, src=src, dst=dst)
            if f.verdict == flow_pb2.FORWARDED and "Echo" in f.Summary]
    back = [f for f in flows(events, src=dst, dst=src)
            if f.verdict == flow_pb2.FORWARDED and "Echo" in f.Summary]
    assert [(f.Summary, f.is_reply.value) for f in sent] == [(request_text, False)] * 2
    assert [(f.Summary, f.is_reply.value) for f in back] == [(reply_text, True)] * 2
    assert sent[0].destination.pod_name == "other"


@pytest.mark.parametrize(("family", "echo"), [(4, "ICMPv4 EchoRequest"),
                                              (6, "ICMPv6 EchoRequest")])
def test_icmp_echo_records_have_the_type_that_opened_them(
        collector: Collector, config: LabConfig, family: int, echo: str) -> None:
    client, other = config.find("shop/client"), config.find("data/other")
    src, dst = (client.ipv4, other.ipv4) if family == 4 else (client.ipv6, other.ipv6)
    collector.sweep()  # the records of earlier tests' connections
    start = collector.ring.next_seq()
    run_in(config, "shop/client", "ping", dst, "2")
    collector.sweep()
    records = [(f.Summary, f.counters.packets_forward, f.counters.packets_reply)
               for f in flows(wait_for(collector, start, lambda ev: True), src=src, dst=dst)
               if f.HasField("counters") and "Echo" in f.Summary]
    assert records == [(echo, 2, 2)]


def test_icmp_error_records_have_the_type_that_opened_them(collector: Collector,
                                                           config: LabConfig) -> None:
    # IPv4 only: ICMPv6 errors share their connection (ICMP other than echo is keyed by the
    # addresses) with the neighbour discovery between the same two addresses, whose first
    # message names the connection.
    client, other = config.find("shop/client"), config.find("data/other")
    collector.sweep()  # the records of earlier tests' connections
    start = collector.ring.next_seq()
    # Nobody listens on the port: the kernel of `other` answers with an ICMP error.
    run_in(config, "shop/client", "udp", other.ipv4, "9", "1", "10")
    wait_for(collector, start, lambda ev: bool(flows(ev, src=other.ipv4, dst=client.ipv4)))
    collector.sweep()
    records = [(f.Summary, f.l4.ICMPv4.type, f.l4.ICMPv4.code, f.counters.packets_forward)
               for f in flows(wait_for(collector, start, lambda ev: True), src=other.ipv4,
                              dst=client.ipv4)
               if f.HasField("counters")]
    assert records == [("ICMPv4 DestinationUnreachable(Port)", 3, 3, 1)]


def test_closed_port_gives_rst_and_the_kernels_drop_reason(collector: Collector,
                                                           config: LabConfig) -> None:
    client, other = config.find("shop/client"), config.find("data/other")
    start = collector.ring.next_seq()
    run_in(config, "shop/client", "connect", other.ipv4, "9")
    events = wait_for(collector, start, lambda ev: any(
        f.verdict == flow_pb2.DROPPED for f in flows(ev, src=client.ipv4, dport=9)))
    dropped = [f for f in flows(events, src=client.ipv4, dst=other.ipv4, dport=9)
               if f.verdict == flow_pb2.DROPPED]
    assert len(dropped) == 1
    drop = dropped[0]
    # Addresses and ports read through BTF offsets match the real packet.
    assert drop.l4.TCP.flags.SYN and drop.Summary == "TCP Flags: SYN"
    assert drop.kernel_drop_reason == "NO_SOCKET"
    assert drop.drop_reason_desc == flow_pb2.SOCKET_LOOKUP_FAILED
    assert drop.event_type.type == 1
    assert not drop.HasField("is_reply")
    assert drop.destination.pod_name == "other"
    rst = [f for f in flows(events, src=other.ipv4, dst=client.ipv4, sport=9)]
    assert [(f.Summary, f.is_reply.value) for f in rst] == [("TCP Flags: ACK, RST", True)] * 2


def test_world_and_host_identities(collector: Collector, config: LabConfig) -> None:
    client, world = config.find("shop/client"), config.find("world/internet")
    host_v4 = config.network.host_addresses()[0]
    start = collector.ring.next_seq()
    run_in(config, "shop/client", "ping", world.ipv4, "1")
    run_in(config, "shop/client", "ping", host_v4, "1")
    events = wait_for(collector, start, lambda ev: bool(flows(ev, src=host_v4)))
    to_world = flows(events, src=client.ipv4, dst=world.ipv4)[0]
    assert (to_world.destination.identity, list(to_world.destination.labels)) == (
        2, ["reserved:world"])
    to_host = flows(events, src=client.ipv4, dst=host_v4)[0]
    assert (to_host.destination.identity, list(to_host.destination.labels)) == (
        1, ["reserved:host"])


def test_retransmits_are_counted_per_connection(collector: Collector,
                                                config: LabConfig) -> None:
    client, server = config.find("shop/client"), config.find("data/server")
    server_if = config.host_ifname(server)
    start = collector.ring.next_seq()
    sink = start_in(config, "data/server", "sink", "7070")
    sender = start_in(config, "shop/client", "tcp-on-cue", server.ipv4, "7070", "1000",
                      ready="connected")
    try:
        # The server's link goes down while the client sends: the data is retransmitted
        # until the link comes back.
        run(["ip", "link", "set", server_if, "down"])
        assert sender.stdin is not None
        sender.stdin.write("go\n")
        sender.stdin.flush()
        time.sleep(1.0)
        run(["ip", "link", "set", server_if, "up"])
        assert sender.wait(timeout=10) == 0
    finally:
        run(["ip", "link", "set", server_if, "up"])
        sender.kill()
        sink.kill()
        sink.wait()
    collector.sweep()
    records = [f for f in flows(wait_for(collector, start, lambda ev: True),
                                src=client.ipv4, dport=7070) if f.HasField("counters")]
    assert len(records) == 1
    assert records[0].retransmits >= 1

