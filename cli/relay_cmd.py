"""`flowscope relay`: run the relay (unprivileged) until interrupted.

It follows every node once (the static --peers, the collectors that announce themselves
with `flowscope collector --relay HOST:PORT`, and the peers of --peer-service), stores
every flow in the store, and serves observer.Observer on --listen-address: plain text on
localhost, or TLS (mutual with --tls-client-ca-files) anywhere; with --token-file every
call needs a bearer token. It dials the nodes with --peer-tls-* and serves its own
metrics on --metrics-address. Each client is bounded: its streams at once (and all
clients' together), its request size, and its queries' time range and number of flows.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any, Final

from flowscope.common.limits import NO_LIMIT, parse_range
from flowscope.common.metrics import RELAY_METRICS_ADDRESS, MetricsServer
from flowscope.common.tls import (
    add_client_tls_flags,
    add_server_tls_flags,
    client_tls_from_args,
    server_tls_from_args,
)
from flowscope.relay.follow import FollowConfig
from flowscope.relay.peers import check_address, parse_peers
from flowscope.relay.relay import Config, Relay
from flowscope.relay.server import ServerConfig
from flowscope.relay.store import StoreConfig
from flowscope.relay.store.config import DEFAULT_DSN

DSN_SCHEMES: Final = ("chdb://", "http://", "https://", "clickhouse://", "clickhouses://")
DEFAULT_STORE_PATH: Final = DEFAULT_DSN.removeprefix("chdb://")

EXAMPLES = """examples:
  flowscope relay --peers node-1=10.0.0.1:4244,10.0.0.2:4244
  flowscope relay --store http://default:@clickhouse:8123/flowscope --listen-address [::]:4245 \
      --tls-server-cert-file relay.crt --tls-server-key-file relay.key \
      --tls-client-ca-files ca.crt --token-file /var/lib/flowscope/tokens.json
  flowscope relay --peer-tls --peer-tls-ca-cert-files ca.crt \
      --peer-tls-client-cert-file relay-client.crt --peer-tls-client-key-file relay-client.key
"""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the `relay` command to the CLI."""
    parser = subparsers.add_parser(
        "relay",
        help="run the relay: every node's flows, stored and served on one port",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = Config()
    parser.add_argument(
        "--listen-address",
        default=ServerConfig().listen_address,
        help=f"serve the Observer API here (default {ServerConfig().listen_address})",
    )
    parser.add_argument(
        "--peers",
        default="",
        metavar="[NAME=]HOST:PORT,...",
        help="nodes to follow, besides the collectors that announce themselves",
    )
    parser.add_argument(
        "--peer-service", default="", metavar="HOST:PORT", help="learn peers from peer.Peer/Notify"
    )
    parser.add_argument(
        "--store",
        default=DEFAULT_STORE_PATH,
        help="the store: a directory for embedded chDB, or a ClickHouse server URL "
        f"(default {DEFAULT_STORE_PATH})",
    )
    parser.add_argument(
        "--spool-dir",
        type=Path,
        default=StoreConfig().spool_dir,
        help="where flows wait while the store fails (default %(default)s)",
    )
    parser.add_argument(
        "--node-name",
        default=defaults.node_name,
        help="the relay's name in the events it sends (default: the host name)",
    )
    parser.add_argument(
        "--metrics-address",
        default=RELAY_METRICS_ADDRESS,
        metavar="HOST:PORT",
        help=f"serve Prometheus metrics here, '' for none (default {RELAY_METRICS_ADDRESS})",
    )
    add_server_tls_flags(parser)
    parser.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="require a bearer token from this file (`flowscope token create`) on every call",
    )
    add_client_tls_flags(parser.add_argument_group("TLS to the nodes"), prefix="peer-")
    add_limit_flags(parser)
    parser.set_defaults(func=run)


def add_limit_flags(parser: argparse.ArgumentParser) -> None:
    """The relay's bounds per client (`relay`, and `up` and `demo`, which pass them on)."""
    group = parser.add_argument_group("limits per client")
    server = ServerConfig()
    group.add_argument(
        "--max-streams",
        type=int,
        default=server.max_streams,
        help="Observer streams served at once, over all clients (default %(default)s)",
    )
    group.add_argument(
        "--max-streams-per-client",
        type=int,
        default=server.max_streams_per_client,
        help="streams one client (its token, or its address without tokens) may hold at once; "
        "0 for no per-client cap (default %(default)s)",
    )
    group.add_argument(
        "--max-request-size",
        type=int,
        default=server.max_request_bytes,
        metavar="BYTES",
        help="the largest request accepted (default %(default)s)",
    )
    group.add_argument(
        "--max-query-range",
        default=NO_LIMIT,
        metavar="DURATION",
        help="the longest time range one query may cover (since..until, or since..now), "
        f"such as 7d or 12h; {NO_LIMIT} for no limit (default %(default)s)",
    )
    group.add_argument(
        "--max-flows-per-query",
        type=int,
        default=0,
        metavar="N",
        help="the largest `number` of flows one query may ask for; 0 for no limit "
        "(default %(default)s)",
    )


LIMIT_FLAGS: Final = (
    "max_streams",
    "max_streams_per_client",
    "max_request_size",
    "max_query_range",
    "max_flows_per_query",
)


def limit_argv(args: argparse.Namespace) -> list[str]:
    """The limit flags as given, to pass on to a relay started as a child process."""
    return [
        item
        for name in LIMIT_FLAGS
        for item in (f"--{name.replace('_', '-')}", str(getattr(args, name)))
    ]


def store_dsn(store: str) -> str:
    """The clickhouse-connect DSN for --store: a URL as it is, a directory as chdb://DIR."""
    if store.startswith(DSN_SCHEMES):
        return store
    return f"chdb://{store}"


def config_from(args: argparse.Namespace) -> Config:
    listen = args.listen_address
    check_address(listen, "--listen-address")
    peer_service = args.peer_service
    if peer_service:
        check_address(peer_service, "--peer-service")
    return Config(
        node_name=args.node_name,
        peers=tuple(parse_peers(args.peers)),
        peer_service=peer_service,
        store=StoreConfig(dsn=store_dsn(args.store), spool_dir=args.spool_dir),
        server=ServerConfig(
            listen_address=listen,
            tls=server_tls_from_args(args),
            token_file=args.token_file,
            max_streams=args.max_streams,
            max_streams_per_client=args.max_streams_per_client,
            max_request_bytes=args.max_request_size,
            max_query_range_ns=parse_range(args.max_query_range, "--max-query-range"),
            max_flows_per_query=args.max_flows_per_query or None,
        ),
        follow=FollowConfig(tls=client_tls_from_args(args, prefix="peer-")),
    )


def run(args: argparse.Namespace) -> int:
    relay = Relay(config_from(args))
    metrics = (
        MetricsServer(args.metrics_address, relay.metrics.registry)
        if args.metrics_address
        else None
    )
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    relay.start()
    try:
        if metrics is not None:
            metrics.start()
        sys.stderr.write(f"relay listening on {args.listen_address}\n")
        while not stop.wait(1.0):
            pass
    finally:
        if metrics is not None:
            metrics.stop()
        relay.stop()
    sys.stderr.write(
        f"relay stopped: {relay.seen_flows()} flows received, "
        f"{relay.unstored_flows} refused by the store\n"
    )
    return 0
