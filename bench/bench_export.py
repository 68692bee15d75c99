"""Export throughput: flows/s from a relay's store to a rotated file and to syslog over TLS.

Two node servers (in this process) hold bench/flowgen's realistic flows in their rings; a
relay (`flowscope relay`, its own process, embedded chDB) follows and stores them. Then
`flowscope export`'s exporter (in this process) reads the relay's history from its start
until it has delivered every flow: once to a file (10 MB rotation, gzip) and once to a TLS
syslog receiver on loopback that reads and counts the bytes. Reports flows/s per sink.

    bench/run export [--flows 100000]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import grpc  # noqa: E402
from bench_store_ingest import cpu_model, realistic_flows  # noqa: E402

from flowscope.cli import certs  # noqa: E402
from flowscope.cli.client import ServerOptions, connect  # noqa: E402
from flowscope.cli.exporters import Sink  # noqa: E402
from flowscope.cli.exporters.rotating import MEGABYTE, FileSink, RotatingFile  # noqa: E402
from flowscope.cli.exporters.state import StateFile  # noqa: E402
from flowscope.cli.exporters.stream import Exporter  # noqa: E402
from flowscope.cli.exporters.syslog import SyslogConfig, SyslogSink  # noqa: E402
from flowscope.collector.ring import FlowRing  # noqa: E402
from flowscope.collector.server import Config as NodeConfig  # noqa: E402
from flowscope.collector.server import NodeServer, NodeStatus  # noqa: E402
from flowscope.proto.flow import flow_pb2  # noqa: E402
from flowscope.proto.observer import observer_pb2, observer_pb2_grpc  # noqa: E402


class CountingReceiver:
    """A TLS syslog receiver that reads everything and counts bytes."""

    def __init__(self, directory: Path) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(directory / "127.0.0.1.crt", directory / "127.0.0.1.key")
        self._context = context
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.bytes = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            with self._context.wrap_socket(raw, server_side=True) as connection:
                while chunk := connection.recv(1 << 20):
                    self.bytes += len(chunk)


def export(address: str, sink: Sink, state_dir: Path, flows: int) -> tuple[float, float]:
    """Seconds to deliver `flows` flows from the start of the relay's history, and the CPU
    seconds this process (the exporter) spent meanwhile."""
    options = ServerOptions(address, timeout=5.0, request_timeout=5.0)
    exporter = Exporter(
        lambda: connect(options), observer_pb2.GetFlowsRequest(), sink, StateFile(state_dir), 1
    )
    worker = threading.Thread(target=exporter.run, daemon=True)
    started, cpu = time.perf_counter(), time.process_time()
    worker.start()
    while exporter.delivered < flows:
        time.sleep(0.01)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    exporter.stop.set()
    worker.join()
    sink.close()
    return elapsed, cpu


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_nodes(flows: list[flow_pb2.Flow]) -> list[tuple[str, NodeServer]]:
    """A node server per node name of the flows, its ring holding that node's flows."""
    by_node: dict[str, list[flow_pb2.Flow]] = {}
    for flow in flows:
        by_node.setdefault(flow.node_name, []).append(flow)
    servers = []
    for name, own in by_node.items():
        ring = FlowRing(len(own), node_name=name)
        for flow in own:
            ring.append(flow)
        status = NodeStatus(name, time.time_ns(), partial(len, own))
        server = NodeServer(NodeConfig(listen_address="127.0.0.1:0"), ring, status)
        server.start()
        servers.append((name, server))
    return servers


def stored_flows(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        status = observer_pb2_grpc.ObserverStub(channel).ServerStatus(
            observer_pb2.ServerStatusRequest(), timeout=5, wait_for_ready=True
        )
    return int(status.num_flows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=100_000)
    args = parser.parse_args()
    flows = realistic_flows(args.flows)
    print(f"cpu: {cpu_model()}, {os.cpu_count()} cores; {len(flows)} flows in the store")
    nodes = start_nodes(flows)
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        address = f"127.0.0.1:{free_port()}"
        peers = ",".join(f"{name}=127.0.0.1:{server.port}" for name, server in nodes)
        relay = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flowscope.cli.main",
                "relay",
                "--listen-address",
                address,
                "--peers",
                peers,
                "--store",
                str(root / "store"),
                "--spool-dir",
                str(root / "spool"),
                "--node-name",
                "bench",
            ],
            stderr=subprocess.DEVNULL,
        )
        try:
            while stored_flows(address) < len(flows):
                time.sleep(0.5)
            path = root / "out" / "flows.log"
            sink = FileSink(RotatingFile(path, 10 * MEGABYTE, 5, compress=True))
            seconds, cpu = export(address, sink, root / "state-file", len(flows))
            written = sum(p.stat().st_size for p in path.parent.iterdir())
            print(
                f"file (10 MB rotation, gzip): {len(flows) / seconds:,.0f} flows/s "
                f"({seconds:.2f} s, exporter CPU {cpu:.2f} s; {written / MEGABYTE:.1f} MB in the "
                "current file and the 5 gzip backups kept)"
            )
            certs.create(root / "certs", ["127.0.0.1"], 1)
            receiver = CountingReceiver(root / "certs")
            syslog = SyslogSink(
                SyslogConfig(
                    f"127.0.0.1:{receiver.port}", tls=True, ca_file=root / "certs" / "ca.crt"
                )
            )
            seconds, cpu = export(address, syslog, root / "state-syslog", len(flows))
            print(
                f"syslog over TLS (RFC 5424, octet counting): {len(flows) / seconds:,.0f} "
                f"flows/s ({seconds:.2f} s, exporter and receiver CPU {cpu:.2f} s; "
                f"{receiver.bytes / MEGABYTE:.1f} MB received)"
            )
        finally:
            relay.send_signal(signal.SIGTERM)
            relay.wait(timeout=30)
            for _, server in nodes:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
