"""A relay killed with SIGKILL under steady traffic and started again on the same store:
every flow the nodes saw is stored exactly once. The relay runs as its own process (the
command), the nodes in this one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from relay_cluster import Node, flows_of, wait_for

from flowscope.proto.observer import observer_pb2, observer_pb2_grpc

pytestmark = pytest.mark.store

RUN_RELAY = """
import sys
from flowscope.cli import relay_cmd
from flowscope.cli.main import _Parser
parser = _Parser(prog="flowscope")
relay_cmd.register(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(nodes: list[Node], tmp_path: Path, address: str) -> subprocess.Popen[bytes]:
    peers = ",".join(f"{node.name}={node.address}" for node in nodes)
    command = [sys.executable, "-c", RUN_RELAY, "relay", "--listen-address", address]
    command += ["--peers", peers, "--store", str(tmp_path / "store")]
    command += ["--spool-dir", str(tmp_path / "spool"), "--node-name", "relay-kill"]
    return subprocess.Popen(command, stderr=subprocess.DEVNULL)


def _stored(stub: observer_pb2_grpc.ObserverStub) -> list[tuple[str, int]]:
    request = observer_pb2.GetFlowsRequest(first=True)
    answer = stub.GetFlows(request, timeout=30, wait_for_ready=True)
    return [(flow.node_name, flow.node_sequence) for flow in flows_of(answer)]


def test_sigkilled_relay_stores_every_flow_exactly_once(nodes: list[Node], tmp_path: Path) -> None:
    pytest.importorskip("chdb")
    address = f"127.0.0.1:{_free_port()}"
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            for node in nodes:
                node.emit(10)
            time.sleep(0.01)

    emitter = threading.Thread(target=traffic)
    relay = _start(nodes, tmp_path, address)
    emitter.start()
    try:
        time.sleep(4.0)  # the relay starts, follows and stores for a while
        os.kill(relay.pid, signal.SIGKILL)
        relay.wait()
        time.sleep(0.5)
        relay = _start(nodes, tmp_path, address)
        time.sleep(2.0)
    finally:
        stop.set()
        emitter.join()
    expected = sorted(
        (node.name, seq)
        for node in nodes
        for seq in range(node.ring.first_seq(), node.ring.next_seq())
    )
    with grpc.insecure_channel(address) as channel:
        stub = observer_pb2_grpc.ObserverStub(channel)
        try:
            wait_for(lambda: len(_stored(stub)) >= len(expected), timeout=20)
            stored = _stored(stub)
        finally:
            relay.send_signal(signal.SIGTERM)
            relay.wait(timeout=20)
    assert len(stored) == len(set(stored))
    assert sorted(stored) == expected
