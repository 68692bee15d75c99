"""Helpers for the node server tests: a server on a free loopback port, waiting."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc

from flowscope.collector.ring import FlowRing
from flowscope.collector.server import Config, NodeServer, NodeStatus

NODE = "test-node"
VERSION = "9.8.7"
# How long before a test's status() call the node counts as started.
UPTIME_NS = 120 * 1_000_000_000

StartServer = Callable[..., tuple[NodeServer, grpc.Channel]]


def status(seen_flows: int = 0) -> NodeStatus:
    return NodeStatus(
        node_name=NODE,
        started_ns=time.time_ns() - UPTIME_NS,
        seen_flows=lambda: seen_flows,
        version=VERSION,
    )


def server_starter() -> tuple[StartServer, Callable[[], None]]:
    """A function starting node servers over rings, and one closing them all."""
    started: list[tuple[NodeServer, grpc.Channel]] = []

    def start(
        ring: FlowRing, node_status: NodeStatus | None = None, **config: object
    ) -> tuple[NodeServer, grpc.Channel]:
        server = NodeServer(
            Config(listen_address="127.0.0.1:0", grace=0.5, **config),  # type: ignore[arg-type]
            ring,
            node_status or status(),
        )
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        started.append((server, channel))
        return server, channel

    def close() -> None:
        for server, channel in started:
            channel.close()
            server.stop()

    return start, close


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
