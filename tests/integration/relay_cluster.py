"""A cluster on loopback for the relay tests: node servers over FlowRings filled with
synthetic flows, and relays in front of them on a chDB store."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc

from flowscope.collector.ring import FlowRing
from flowscope.collector.server import Config as NodeConfig
from flowscope.collector.server import NodeServer, NodeStatus
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2, observer_pb2_grpc
from flowscope.proto.relay import relay_pb2
from flowscope.relay.fanout import HubConfig
from flowscope.relay.follow import FollowConfig
from flowscope.relay.peers import Peer
from flowscope.relay.relay import Config, Relay
from flowscope.relay.server import ServerConfig
from flowscope.relay.storage import FlowStore

NAMESPACES = ("shop", "payments", "kube-system")
PORTS = (80, 443, 5432)
VERDICTS = (flow_pb2.FORWARDED, flow_pb2.FORWARDED, flow_pb2.DROPPED, flow_pb2.AUDIT)


def make_flow(node: str, index: int, time_ns: int) -> flow_pb2.Flow:
    """A TCP flow between two pods whose namespace, port and verdict vary with `index`."""
    flow = flow_pb2.Flow(
        uuid=str(uuid.uuid4()),
        node_name=node,
        verdict=VERDICTS[index % len(VERDICTS)],
        Type=flow_pb2.L3_L4,
        traffic_direction=flow_pb2.EGRESS,
    )
    flow.time.FromNanoseconds(time_ns)
    flow.event_type.type = 4
    flow.IP.source = f"10.0.{index % 7}.{index % 200 + 1}"
    flow.IP.destination = f"10.1.0.{index % 5 + 1}"
    flow.IP.ipVersion = flow_pb2.IPv4
    flow.l4.TCP.source_port = 30000 + index
    flow.l4.TCP.destination_port = PORTS[index % len(PORTS)]
    flow.l4.TCP.flags.SYN = True
    flow.source.namespace = NAMESPACES[index % len(NAMESPACES)]
    flow.source.pod_name = f"client-{index % 4}"
    flow.source.labels.append(f"k8s:app=client-{index % 4}")
    flow.destination.namespace = NAMESPACES[(index + 1) % len(NAMESPACES)]
    flow.destination.pod_name = f"server-{index % 3}"
    flow.is_reply.value = False
    return flow


@dataclass
class Node:
    """A node's ring behind a NodeServer on 127.0.0.1; stop() and start() keep the port."""

    name: str
    ring: FlowRing = field(default_factory=lambda: FlowRing(20_000))
    port: int = 0
    emitted: int = 0
    _server: NodeServer | None = None

    def start(self) -> None:
        status = NodeStatus(self.name, time.time_ns(), lambda: self.emitted)
        config = NodeConfig(listen_address=f"127.0.0.1:{self.port}", grace=0.2)
        self._server = NodeServer(config, self.ring, status)
        self._server.start()
        self.port = self._server.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def emit(
        self, count: int, time_ns: int | None = None, step_ns: int = 1000
    ) -> list[flow_pb2.Flow]:
        """Appends `count` flows, `step_ns` apart from `time_ns` (now by default)."""
        start = time.time_ns() if time_ns is None else time_ns
        flows = []
        for offset in range(count):
            flow = make_flow(self.name, self.emitted, start + offset * step_ns)
            self.ring.append(flow)
            self.emitted += 1
            flows.append(flow)
        return flows


def relay_config(nodes: list[Node]) -> Config:
    return Config(
        node_name="relay-test",
        peers=tuple(Peer(node.address, node.name) for node in nodes),
        server=ServerConfig(listen_address="127.0.0.1:0", grace=0.2),
        follow=FollowConfig(
            max_batch_latency=0.02, connect_timeout=0.5, backoff_min=0.05, backoff_max=0.2
        ),
        hub=HubConfig(sort_buffer=1000, drain_timeout=0.5),
    )


def start_relay(nodes: list[Node], store: FlowStore) -> Relay:
    relay = Relay(relay_config(nodes), store=store)
    relay.start()
    wait_for(lambda: [n.state for n in relay.nodes()] == [relay_pb2.NODE_CONNECTED] * len(nodes))
    return relay


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.02)


def observer(relay: Relay) -> tuple[grpc.Channel, Any]:
    channel = grpc.insecure_channel(f"127.0.0.1:{relay.port}")
    return channel, observer_pb2_grpc.ObserverStub(channel)


def flows_of(responses: Iterable[observer_pb2.GetFlowsResponse]) -> list[flow_pb2.Flow]:
    return [response.flow for response in responses if response.HasField("flow")]
