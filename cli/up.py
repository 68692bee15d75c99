"""`flowscope up`: all of flowscope on this node, in one command (root).

The collector (eBPF datapath, root) with its node server on localhost:4244; the relay with its
embedded ClickHouse store (chDB) on localhost:4245, following the collector; and the web UI on
127.0.0.1:12000. The relay and the UI run unprivileged as the system user `flowscope`.
Ctrl-C (or SIGTERM) stops everything; the store stays for the next run. `flowscope demo` runs
the same stack beside its lab and traffic.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from flowscope.cli import stack
from flowscope.cli.collector_cmd import (
    NODE_LISTEN_ADDRESS,
    add_collector_flags,
    add_metrics_address_flag,
    config_from,
)
from flowscope.cli.relay_cmd import add_limit_flags, limit_argv
from flowscope.collector.collector import Collector
from flowscope.collector.collector import Config as CollectorConfig
from flowscope.common.metrics import COLLECTOR_METRICS_ADDRESS, RELAY_METRICS_ADDRESS

RELAY_LISTEN_ADDRESS: Final = "localhost:4245"
UI_LISTEN_ADDRESS: Final = "127.0.0.1:12000"
DEFAULT_STORE: Final = Path("/var/lib/flowscope/store")
DEFAULT_LOG_DIR: Final = Path("/var/log/flowscope")

EXAMPLES = """examples:
  flowscope up                                   # collector, relay, store and UI
  flowscope up --store /srv/flowscope/store      # keep the history elsewhere
  flowscope observe -t policy-verdict -f         # then, in another terminal
"""


@dataclass(frozen=True)
class Node:
    """The running stack: the collector and where its parts answer."""

    collector: Collector
    node_address: str
    relay_address: str
    ui_url: str | None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "up",
        help="run all of flowscope on this node: collector, relay, store and UI (root)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_collector_flags(parser)
    add_stack_flags(parser)
    parser.set_defaults(func=run)


def add_stack_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--node-listen-address",
        default=NODE_LISTEN_ADDRESS,
        help=f"the node's Observer API (default {NODE_LISTEN_ADDRESS})",
    )
    parser.add_argument(
        "--relay-listen-address",
        default=RELAY_LISTEN_ADDRESS,
        help=f"the relay's Observer API (default {RELAY_LISTEN_ADDRESS})",
    )
    parser.add_argument(
        "--ui-listen-address",
        default=UI_LISTEN_ADDRESS,
        help=f"the web UI (default {UI_LISTEN_ADDRESS})",
    )
    parser.add_argument("--no-ui", action="store_true", help="do not start the web UI")
    add_metrics_address_flag(
        parser, "--metrics-address", COLLECTOR_METRICS_ADDRESS, "the collector's Hubble"
    )
    add_metrics_address_flag(
        parser, "--relay-metrics-address", RELAY_METRICS_ADDRESS, "the relay's"
    )
    parser.add_argument(
        "--store",
        type=Path,
        default=DEFAULT_STORE,
        help=f"the embedded store's directory (default {DEFAULT_STORE})",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=DEFAULT_LOG_DIR,
        help=f"where the relay writes its log (default {DEFAULT_LOG_DIR})",
    )
    add_limit_flags(parser)


@contextmanager
def node_stack(config: CollectorConfig, args: argparse.Namespace) -> Iterator[Node]:
    """Collector, node server and relay with its store, torn down in reverse at the end."""
    node_address = args.node_listen_address
    with ExitStack() as running:
        # The relay first: a child forked before this process runs gRPC threads inherits
        # none of them. It follows the node as soon as the node server answers.
        running.enter_context(
            stack.relay_child(
                args.relay_listen_address,
                args.store,
                f"{config.node_name}={node_address}",
                f"{config.node_name}-relay",
                args.log_dir / "relay.log",
                args.relay_metrics_address,
                limit_argv(args),
            )
        )
        ui_url = None
        if not args.no_ui:
            ui_url = running.enter_context(
                stack.ui_child(
                    args.ui_listen_address, args.relay_listen_address, args.log_dir / "ui.log"
                )
            )
        collector = running.enter_context(stack.running_collector(config))
        running.enter_context(stack.metrics_served(args.metrics_address, collector.metrics))
        running.enter_context(stack.node_server(collector, node_address))
        yield Node(collector, node_address, args.relay_listen_address, ui_url)


def run(args: argparse.Namespace) -> int:
    stop = stack.stop_on_signals()
    with node_stack(config_from(args), args) as node:
        ui = f"  web UI     {node.ui_url}\n" if node.ui_url else ""
        sys.stderr.write(
            f"flowscope is up: node {node.collector.config.node_name}\n"
            f"  node API   {node.node_address}\n"
            f"  relay API  {node.relay_address} (history in {args.store})\n"
            f"{ui}"
            "next:\n"
            "  flowscope observe -f                        # live flows through the relay\n"
            "  flowscope observe --since 1h -t policy-verdict\n"
            "  flowscope status; flowscope list nodes; flowscope top\n"
            "Ctrl-C stops it.\n"
        )
        stop.wait()
    sys.stderr.write("flowscope stopped: collector, relay and UI down, store kept\n")
    return 0
