"""The cost of TLS on the relay's GetFlows stream: flows/s with TLS over flows/s without.

For each mode (plain text, TLS, mutual TLS) a server process fills an embedded chDB store
with realistic flows (bench/flowgen.py) and serves it with a Relay on loopback; this
process reads the whole history through GetFlows (one flow per message, as Hubble's
clients read it) and times the stream. Prints flows per second per mode, the CPU seconds
of server and client, and the ratio to plain text.

    python bench/bench_tls.py --flows 50000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

import flowgen
import grpc

from flowscope.cli import certs
from flowscope.common.tls import ClientTLS, ServerTLS, secure_channel
from flowscope.proto.observer import observer_pb2, observer_pb2_grpc
from flowscope.relay.relay import Config, Relay
from flowscope.relay.server import ServerConfig
from flowscope.relay.storage import StoreBackend
from flowscope.relay.store import StoreConfig

MODES: Final = ("plain", "tls", "mtls")
WRITE_CHUNK: Final = 10_000


def serve(directory: Path, mode: str, count: int) -> None:
    """The server process: fill a store, serve it, print the port, run until stdin closes."""
    store = StoreBackend.open(
        StoreConfig(dsn=f"chdb://{directory / 'db'}", spool_dir=directory / "spool")
    )
    start = time.time_ns() - 600_000_000_000
    flows = []
    for index, response in enumerate(flowgen.flows(count, seed=1)):
        flow = response.flow
        flow.time.FromNanoseconds(start + flow.time.ToNanoseconds())
        flow.node_name = "bench-node"
        flow.node_sequence = index + 1
        flows.append(flow)
    for first in range(0, count, WRITE_CHUNK):
        store.write(flows[first : first + WRITE_CHUNK])
    store.flush()
    tls = None
    if mode != "plain":
        client_cas = (directory / "ca.crt",) if mode == "mtls" else ()
        tls = ServerTLS(directory / "relay.crt", directory / "relay.key", client_cas)
    relay = Relay(
        Config(node_name="bench-relay", server=ServerConfig("localhost:0", tls=tls)), store=store
    )
    relay.start()
    print(relay.port, flush=True)
    sys.stdin.read()
    relay.stop()
    store.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def channel_for(directory: Path, mode: str, port: int) -> grpc.Channel:
    address = f"localhost:{port}"
    if mode == "plain":
        return grpc.insecure_channel(address)
    tls = ClientTLS(ca_files=(directory / "ca.crt",))
    if mode == "mtls":
        tls = ClientTLS((directory / "ca.crt",), directory / "client.crt", directory / "client.key")
    return secure_channel(address, tls)


def measure(directory: Path, mode: str, count: int) -> tuple[int, float, float, float]:
    """(flows received, wall seconds, server CPU seconds, client CPU seconds) of one mode."""
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", mode, "--dir", str(directory),
         "--flows", str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert server.stdout is not None and server.stdin is not None
    try:
        port = int(server.stdout.readline())
        with channel_for(directory, mode, port) as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
            stub = observer_pb2_grpc.ObserverStub(channel)
            request = observer_pb2.GetFlowsRequest(first=True, number=count)
            server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
            wall = time.perf_counter()
            received = sum(r.HasField("flow") for r in stub.GetFlows(request))
            wall = time.perf_counter() - wall
            server_cpu = cpu_seconds(server.pid) - server_cpu
            client_cpu = time.process_time() - client_cpu
    finally:
        server.stdin.close()
        server.wait(30)
    return received, wall, server_cpu, client_cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=50_000)
    parser.add_argument("--serve", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.dir, args.serve, args.flows)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as temporary:
        pki = Path(temporary) / "pki"
        certs.create(pki, ["relay"], days=1)
        rates: dict[str, float] = {}
        for mode in MODES:
            directory = Path(temporary) / mode
            directory.mkdir()
            for name in ("ca.crt", "relay.crt", "relay.key", "client.crt", "client.key"):
                (directory / name).write_bytes((pki / name).read_bytes())
            received, wall, server_cpu, client_cpu = measure(directory, mode, args.flows)
            rates[mode] = received / wall
            print(
                f"{mode:>5}: {received} flows in {wall:.2f} s: {rates[mode]:,.0f} flows/s; "
                f"CPU server {server_cpu:.2f} s, client {client_cpu:.2f} s "
                f"({rates[mode] / rates['plain']:.2f} of plain text)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
