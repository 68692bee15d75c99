"""`flowscope status`: the server's health and flow counts, in Hubble's `hubble status` format.

    Healthcheck (via localhost:4245): Ok
    Current/Max Flows: 16,380/16,380 (100.00%)
    Flows/s: 142.37
    Connected Nodes: 4/4
    Unavailable Nodes: 1
      - node-x

The ratio is left out when the server has no maximum (a relay keeps every flow in its
store); a relay also reports the time range its store covers, printed as
`Stored Flows: FROM - TO`. `-o json` prints the ServerStatusResponse as JSON, `-o dict`
and `-o table` its figures one per line or as a table.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, Literal, TextIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flowscope.cli import config
from flowscope.cli.client import ServerError, ServerOptions, add_server_flags, connect
from flowscope.cli.printers.tabwriter import TabWriter
from flowscope.common.grpcserve import OBSERVER_HEALTH_SERVICE
from flowscope.common.jsonlines import dumps
from flowscope.proto.observer import observer_pb2, observer_pb2_grpc

STORE_OLDEST_KEY: Final = "flowscope-store-oldest-ns"
STORE_NEWEST_KEY: Final = "flowscope-store-newest-ns"
OUTPUTS: Final = ("compact", "dict", "json", "table")


@dataclass(frozen=True)
class Server:
    """A connected server and how long its single answers may take."""

    options: ServerOptions
    channel: grpc.Channel

    def call(self, method: Callable[..., Any], request: Any) -> tuple[Any, grpc.Call]:
        """The answer of a unary method and its call; ServerError naming the server."""
        try:
            answer, call = method.with_call(request, timeout=self.options.request_timeout)  # type: ignore[attr-defined]
        except grpc.RpcError as err:
            code = err.code().name if isinstance(err, grpc.Call) else "an error"
            details = err.details() if isinstance(err, grpc.Call) else str(err)
            raise ServerError(
                f"the flowscope server at {self.options.address} answered {code}: {details}"
            ) from None
        return answer, call


@contextmanager
def server(args: argparse.Namespace) -> Iterator[Server]:
    """The server the settings name, connected for the length of the block."""
    options = ServerOptions.from_settings(config.resolve(args), args)
    channel = connect(options)
    try:
        yield Server(options, channel)
    finally:
        channel.close()


def add_output_flag(
    parser: argparse.ArgumentParser, choices: tuple[str, ...], default: str
) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=choices,
        default=default,
        help=f"output format: {', '.join(choices)} (default {default})",
    )


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show the server's health and flow counts",
        description="Check the server's health and print its flow counts and nodes.",
    )
    config.add_config_flag(parser, in_subcommand=True)
    add_output_flag(parser, OUTPUTS, "compact")
    add_server_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with server(args) as connected:
        health, _ = connected.call(
            health_pb2_grpc.HealthStub(connected.channel).Check,
            health_pb2.HealthCheckRequest(service=OBSERVER_HEALTH_SERVICE),
        )
        status, call = connected.call(
            observer_pb2_grpc.ObserverStub(connected.channel).ServerStatus,
            observer_pb2.ServerStatusRequest(),
        )
    stored = _stored_range(call)
    write_status(sys.stdout, args.output, connected.options.address, health, status, stored)
    return 0


def _stored_range(call: grpc.Call) -> tuple[int, int] | None:
    metadata = dict(call.trailing_metadata() or ())
    oldest, newest = metadata.get(STORE_OLDEST_KEY), metadata.get(STORE_NEWEST_KEY)
    if isinstance(oldest, str) and isinstance(newest, str):
        return int(oldest), int(newest)
    return None


def write_status(
    out: TextIO,
    output: str,
    address: str,
    health: health_pb2.HealthCheckResponse,
    status: observer_pb2.ServerStatusResponse,
    stored: tuple[int, int] | None,
) -> None:
    if output == "json":
        out.write(dumps(status) + "\n")
        return
    if output in ("dict", "table"):
        _write_figures(out, output, status)
        return
    serving = health.status == health_pb2.HealthCheckResponse.SERVING
    out.write(
        f"Healthcheck (via {address}): "
        f"{'Ok' if serving else health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)}\n"
    )
    ratio = f" ({status.num_flows / status.max_flows * 100:.2f}%)" if status.max_flows else ""
    out.write(
        f"Current/Max Flows: {grouped(status.num_flows)}/{grouped(status.max_flows)}{ratio}\n"
    )
    out.write(f"Flows/s: {flows_per_second(status):.2f}\n")
    if status.HasField("num_connected_nodes") and status.HasField("num_unavailable_nodes"):
        connected = status.num_connected_nodes.value
        unavailable = status.num_unavailable_nodes.value
        out.write(f"Connected Nodes: {connected}/{connected + unavailable}\n")
        if unavailable:
            out.write(f"Unavailable Nodes: {unavailable}\n")
            for name in status.unavailable_nodes:
                out.write(f"  - {name}\n")
            if unavailable > len(status.unavailable_nodes):
                out.write(f"  - and {unavailable - len(status.unavailable_nodes)} more...\n")
    if stored is not None:
        out.write(f"Stored Flows: {rfc3339(stored[0])} - {rfc3339(stored[1])}\n")


def _write_figures(out: TextIO, output: str, status: observer_pb2.ServerStatusResponse) -> None:
    figures = [
        ("NUM FLOWS", grouped(status.num_flows)),
        ("MAX FLOWS", grouped(status.max_flows)),
        ("SEEN FLOWS", grouped(status.seen_flows)),
        ("FLOWS PER SECOND", f"{flows_per_second(status):.2f}"),
        ("UPTIME", go_duration(status.uptime_ns)),
        ("NUM CONNECTED NODES", _optional(status, "num_connected_nodes")),
        ("NUM UNAVAIL. NODES", _optional(status, "num_unavailable_nodes")),
        ("VERSION", status.version),
    ]
    if output == "dict":
        width = max(len(name) for name, _ in figures)
        for name, value in figures:
            out.write(f"{name.rjust(width)}: {value}\n")
        return
    table = TabWriter(out, minwidth=2, padding=3)
    table.write("\t".join(name for name, _ in figures) + "\n")
    table.write("\t".join(value for _, value in figures) + "\n")
    table.flush()


def _optional(
    status: observer_pb2.ServerStatusResponse,
    field: Literal["num_connected_nodes", "num_unavailable_nodes"],
) -> str:
    return str(getattr(status, field).value) if status.HasField(field) else "N/A"


def flows_per_second(status: observer_pb2.ServerStatusResponse) -> float:
    """The server's rate, or its seen flows over its uptime when it reports none."""
    if status.flows_rate > 0:
        return status.flows_rate
    uptime = status.uptime_ns / 1e9
    return status.seen_flows / uptime if uptime > 0 else 0.0


def grouped(number: int) -> str:
    """Digits in groups of three: 16,380."""
    return f"{number:,}"


def go_duration(nanos: int) -> str:
    """A duration to the second as Go prints one: 2h3m4s, 1m27s, 53s."""
    hours, rest = divmod(nanos // 1_000_000_000, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


def rfc3339(nanos: int) -> str:
    """A UTC time to the second: 2026-11-29T01:02:03Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(nanos // 1_000_000_000))
