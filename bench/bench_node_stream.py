"""How fast one node ships flows to one client on loopback: the batched stream, and GetFlows.

A server process fills a ring with realistic flows (bench/flowgen.py) and serves it with the
node's NodeServer; this process follows it as a relay would (FlowStream.Follow from cursor 0)
and drains the whole ring, or reads it through GetFlows (one flow per message) for
comparison. Prints flows per second and the CPU seconds of server and client.

    python bench/bench_node_stream.py --flows 300000 --batch 1000
    python bench/bench_node_stream.py --mode getflows --flows 50000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import flowgen
import grpc

from flowscope.collector.ring import FlowRing
from flowscope.collector.server import Config, NodeServer, NodeStatus
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2, observer_pb2_grpc
from flowscope.proto.stream import stream_pb2, stream_pb2_grpc

DISTINCT_FLOWS = 20_000


def serve(count: int) -> None:
    """The server process: fill a ring, serve it, print the port, run until stdin closes."""
    ring = FlowRing(count)
    distinct = [response.flow for response in flowgen.flows(min(count, DISTINCT_FLOWS), seed=1)]
    for i in range(count):
        flow = flow_pb2.Flow()
        flow.CopyFrom(distinct[i % len(distinct)])
        ring.append(flow)
    status = NodeStatus(node_name="bench-node", started_ns=time.time_ns(), seen_flows=lambda: count)
    server = NodeServer(Config(listen_address="127.0.0.1:0"), ring, status)
    server.start()
    print(server.port, flush=True)
    sys.stdin.read()
    server.stop()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain_batched(channel: grpc.Channel, count: int, batch: int) -> int:
    stub = stream_pb2_grpc.FlowStreamStub(channel)
    call = stub.Follow(stream_pb2.FollowRequest(max_batch_flows=batch))
    received = 0
    for message in call:
        received += len(message.flows)
        if received >= count:
            break
    call.cancel()
    return received


def drain_getflows(channel: grpc.Channel, count: int) -> int:
    stub = observer_pb2_grpc.ObserverStub(channel)
    received = 0
    for _ in stub.GetFlows(observer_pb2.GetFlowsRequest(first=True, number=count)):
        received += 1
    return received


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=1000, help="max flows per batch")
    parser.add_argument("--mode", choices=("batched", "getflows"), default="batched")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.flows)
        return 0
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--flows", str(args.flows)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdin is not None
    try:
        port = int(server.stdout.readline())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=10)
        server_cpu, client_cpu, wall = cpu_seconds(server.pid), time.process_time(), time.time()
        if args.mode == "batched":
            received = drain_batched(channel, args.flows, args.batch)
        else:
            received = drain_getflows(channel, args.flows)
        wall = time.time() - wall
        server_cpu = cpu_seconds(server.pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
        channel.close()
    finally:
        server.stdin.close()
        server.wait(10)
    what = f"batches of {args.batch}" if args.mode == "batched" else "GetFlows"
    print(
        f"{args.mode}: {received} flows ({what}) in {wall:.2f} s: {received / wall:,.0f} flows/s; "
        f"CPU server {server_cpu:.2f} s, client {client_cpu:.2f} s "
        f"({server_cpu / received * 1e6:.1f} + {client_cpu / received * 1e6:.1f} µs per flow)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
