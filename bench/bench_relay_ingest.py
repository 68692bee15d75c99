"""Relay ingest: flows/s from synthetic collectors through one relay process into embedded chDB.

Each synthetic collector is a process that serves flowscope.stream.FlowStream/Follow for one
node from pre-built batches: bench/flowgen's realistic flows, renamed to the node, numbered,
with uuids derived from node and sequence as collectors make them, and dated as a cluster
sending --rate flows/s in all would date them, ending now; serialized as FlowBatch wire once,
before the clock starts. The relay is `flowscope relay` in its own process, with its embedded
store in a temporary directory, following the collectors as it follows real ones. The figure
runs from the relay's first received flow to its last stored one (the relay's own counters,
read from its metrics endpoint); the relay's CPU is read from /proc over the same time.

    bench/run relay-ingest [--flows 1000000] [--nodes 2] [--batch 1000] [--rate 100000]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import flowgen
import grpc
from bench_node_stream import cpu_seconds
from bench_store_ingest import cpu_model

from flowscope.common import schema
from flowscope.proto.flow import flow_pb2
from flowscope.proto.stream import stream_pb2

HERE = Path(__file__).resolve().parent
DISTINCT_FLOWS = 20_000


def batches(node: str, count: int, batch: int, end_ns: int, spacing_ns: int) -> list[bytes]:
    """count flows of node in FlowBatch wire, batch flows a message."""
    distinct = [response.flow for response in flowgen.flows(DISTINCT_FLOWS, seed=hash(node) % 97)]
    start_ns = end_ns - count * spacing_ns
    out = []
    for first in range(1, count + 1, batch):
        message = stream_pb2.EncodedFlowBatch(node_name=node, first_sequence=first)
        for sequence in range(first, min(first + batch, count + 1)):
            flow = flow_pb2.Flow()
            flow.CopyFrom(distinct[sequence % len(distinct)])
            flow.node_name = node
            flow.node_sequence = sequence
            flow.uuid = schema.derived_uuid(node, sequence)
            flow.time.FromNanoseconds(start_ns + sequence * spacing_ns)
            message.flows.append(flow.SerializeToString())
        message.next_sequence = first + len(message.flows)
        out.append(message.SerializeToString())
    return out


def serve(node: str, count: int, batch: int, end_ns: int, spacing_ns: int) -> None:
    """A synthetic collector: serve node's batches from the cursor asked; print the port."""
    wire = batches(node, count, batch, end_ns, spacing_ns)

    def follow(request: stream_pb2.FollowRequest, context: grpc.ServicerContext) -> Iterator[bytes]:
        yield from wire[max(request.cursor - 1, 0) // batch :]
        while context.is_active():  # a collector's stream stays open
            time.sleep(0.2)

    handler = grpc.method_handlers_generic_handler(
        stream_pb2.DESCRIPTOR.services_by_name["FlowStream"].full_name,
        {
            "Follow": grpc.unary_stream_rpc_method_handler(
                follow, request_deserializer=stream_pb2.FollowRequest.FromString
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(4), options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()
    server.stop(0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def counter(metrics: str, name: str, label: str = "") -> int:
    pattern = rf"^flowscope_{name}(?:{{[^}}]*{label}[^}}]*}})? (\d+(?:\.\d+)?(?:e\+\d+)?)$"
    match = re.search(pattern, metrics, re.MULTILINE)
    return int(float(match.group(1))) if match else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=1_000_000, help="in all, over the nodes")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=100_000, help="flows/s the times imply")
    parser.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        node, count, end_ns, spacing_ns = args.serve
        serve(node, int(count), args.batch, int(end_ns), int(spacing_ns))
        return 0
    per_node = args.flows // args.nodes
    end_ns = time.time_ns()
    spacing_ns = 1_000_000_000 * args.nodes // args.rate
    collectors = [
        subprocess.Popen(
            [sys.executable, __file__, "--batch", str(args.batch), "--serve",
             f"bench/node-{index}", str(per_node), str(end_ns), str(spacing_ns)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        for index in range(args.nodes)
    ]
    ports = [int(collector.stdout.readline()) for collector in collectors]  # type: ignore[union-attr]
    total = per_node * args.nodes
    print(f"cpu: {cpu_model()}, {os.cpu_count()} cores; {args.nodes} nodes, {total:,} flows"
          f" in batches of {args.batch}, dated at {args.rate:,} flows/s")
    metrics_port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        relay = subprocess.Popen(
            [str(HERE.parent / ".venv/bin/flowscope"), "relay",
             "--listen-address", f"127.0.0.1:{free_port()}",
             "--peers", ",".join(f"127.0.0.1:{port}" for port in ports),
             "--store", f"{directory}/store", "--spool-dir", f"{directory}/spool",
             "--metrics-address", f"127.0.0.1:{metrics_port}"],
        )
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        started = cpu = 0.0
        stored = received = 0
        deadline = time.monotonic() + 600
        try:
            while stored < total and time.monotonic() < deadline:
                time.sleep(0.05)
                try:
                    text = urllib.request.urlopen(url, timeout=5).read().decode()
                except OSError:
                    continue
                received = counter(text, "flows_received_total")
                stored = counter(text, "store_flows_total", 'outcome="stored"')
                if received and not started:
                    started, cpu = time.perf_counter(), cpu_seconds(relay.pid)
            wall = time.perf_counter() - started
            cpu = cpu_seconds(relay.pid) - cpu
        finally:
            relay.terminate()
            relay.wait(60)
            for collector in collectors:
                collector.communicate("")
    print(f"relay ingest: {stored:,} of {total:,} flows stored in {wall:.2f} s ="
          f" {stored / wall:,.0f} flows/s; relay CPU {cpu:.2f} s ({cpu / wall:.2f} cores,"
          f" {cpu / max(stored, 1) * 1e6:.1f} µs a flow)")
    return 0 if stored == total else 1


if __name__ == "__main__":
    sys.exit(main())
