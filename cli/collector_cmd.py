"""`flowscope collector`: run the node collector (root) until interrupted.

It loads the eBPF datapath, attaches it to the endpoints of the configured sources (the labs on
this machine, a static endpoints file) and records flows in the node's ring. It enforces the
network policies given through its control socket (`flowscope policy ...`) and those of a
watched policy directory (--policy-dir). It serves the node's flows through the Observer API
and the batched stream on --listen-address (localhost:4244). With --relay it announces itself
to a relay and takes its endpoints' identities from it, cluster-wide (a new label set gets the
reserved identity `init` until the relay answers; collector/relay_identities.py). With
--print it also writes every ring entry to standard output as Hubble's JSON lines
(GetFlowsResponse objects). The node API serves TLS with --tls-server-* (plain text only on
localhost); --relay-tls-* and --relay-token reach a relay that asks for them. Hubble's flow
metrics are served on --metrics-address (localhost:9965).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from contextlib import ExitStack
from pathlib import Path

from google.protobuf.message import Message

from flowscope.cli import stack
from flowscope.collector.collector import DEFAULT_IDENTITY_STATE, Config
from flowscope.collector.control import DEFAULT_SOCKET
from flowscope.collector.labconfig import LAB_STATE_DIR
from flowscope.collector.loader import DatapathConfig
from flowscope.collector.policy import CompilerConfig
from flowscope.collector.ring import Event, FlowRing
from flowscope.common.auth import ClientAuth
from flowscope.common.errors import FlowscopeError
from flowscope.common.jsonlines import dumps
from flowscope.common.metrics import COLLECTOR_METRICS_ADDRESS
from flowscope.common.tls import (
    add_client_tls_flags,
    add_server_tls_flags,
    client_tls_from_args,
    server_tls_from_args,
)
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2
from flowscope.relay.peers import check_address

NODE_LISTEN_ADDRESS = "localhost:4244"

EXAMPLES = """examples:
  flowscope collector                                  # serve the node's flows on :4244
  flowscope collector --relay localhost:4245           # and have the relay follow it
  flowscope collector --print                          # watch the lab's flows as JSON lines
  flowscope collector --events perf --sweep-interval 2
  flowscope collector --no-lab --endpoints-file endpoints.yaml
  flowscope collector --policy-dir /etc/flowscope/policies
  flowscope collector --listen-address 0.0.0.0:4244 --tls-server-cert-file node.crt \
      --tls-server-key-file node.key --tls-client-ca-files ca.crt    # only relays with certs
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `collector` command to the CLI."""
    parser = subparsers.add_parser(
        "collector",
        help="run the node collector (eBPF datapath; needs root)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_collector_flags(parser)
    parser.add_argument(
        "--listen-address",
        default=NODE_LISTEN_ADDRESS,
        help=f"serve the node's Observer API here (default {NODE_LISTEN_ADDRESS})",
    )
    parser.add_argument(
        "--relay",
        metavar="HOST:PORT",
        help="announce this collector to the relay at HOST:PORT, which then follows it and "
        "allocates its identities cluster-wide",
    )
    parser.add_argument(
        "--print", action="store_true", help="write ring entries to standard output as JSON lines"
    )
    add_metrics_address_flag(parser, "--metrics-address", COLLECTOR_METRICS_ADDRESS, "Hubble's")
    add_server_tls_flags(parser)
    relay = parser.add_argument_group("TLS and token to the relay (--relay)")
    add_client_tls_flags(relay, prefix="relay-")
    relay.add_argument("--relay-token", metavar="TOKEN", help="bearer token for the relay")
    parser.set_defaults(func=run)


def add_metrics_address_flag(
    parser: argparse.ArgumentParser, flag: str, default: str, what: str
) -> None:
    parser.add_argument(
        flag,
        default=default,
        metavar="HOST:PORT",
        help=f"serve {what} Prometheus metrics here, '' for none (default {default})",
    )


def add_collector_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that configure a collector (`config_from` reads them back)."""
    defaults = Config()
    datapath = DatapathConfig()
    parser.add_argument(
        "--node-name",
        default=defaults.node_name,
        help="this node's name in flows (default: the host name)",
    )
    parser.add_argument(
        "--lab-state-dir",
        type=Path,
        default=LAB_STATE_DIR,
        help=f"read lab pods as endpoints from here (default {LAB_STATE_DIR})",
    )
    parser.add_argument("--no-lab", action="store_true", help="do not use labs as endpoints")
    parser.add_argument("--endpoints-file", type=Path, help="static endpoints file (YAML)")
    parser.add_argument(
        "--identity-state",
        type=Path,
        default=DEFAULT_IDENTITY_STATE,
        help=f"where identities are kept (default {DEFAULT_IDENTITY_STATE})",
    )
    parser.add_argument(
        "--ring-size",
        type=_positive,
        default=defaults.ring_capacity,
        help=f"flows kept in the node's ring (default {defaults.ring_capacity})",
    )
    parser.add_argument(
        "--sweep-interval",
        type=_seconds,
        default=defaults.sweep_interval,
        help="seconds between connection counter records (default 5)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=defaults.idle_timeout,
        help="seconds after which an idle connection is forgotten (default 60)",
    )
    parser.add_argument(
        "--tcp-idle-timeout",
        type=_seconds,
        default=defaults.tcp_idle_timeout,
        help="the same for TCP connections that saw no FIN or RST (default 21600)",
    )
    parser.add_argument(
        "--events",
        choices=("ring", "perf"),
        default=datapath.transport,
        help="kernel to user space transport (default ring)",
    )
    parser.add_argument(
        "--buffer-pages",
        type=_positive,
        default=datapath.buffer_pages,
        help=f"event buffer pages, a power of two (perf: per CPU; default {datapath.buffer_pages})",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=datapath.rate_limit,
        help="events per second per source address, 0 for none (default 0)",
    )
    parser.add_argument(
        "--rate-burst",
        type=_positive,
        default=datapath.rate_burst,
        help=f"burst of the rate limit (default {datapath.rate_burst})",
    )
    parser.add_argument(
        "--policy-dir",
        type=Path,
        help="keep the policies of this directory in force (polled for changes every second)",
    )
    parser.add_argument(
        "--policy-audit-mode",
        action="store_true",
        help="audit every policy: what policy would deny passes, reported as AUDIT",
    )
    parser.add_argument(
        "--control-socket",
        type=Path,
        default=DEFAULT_SOCKET,
        help=f"serve `flowscope policy` on this unix socket, root only (default {DEFAULT_SOCKET})",
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def config_from(args: argparse.Namespace) -> Config:
    try:
        datapath = DatapathConfig(
            transport=args.events,
            buffer_pages=args.buffer_pages,
            rate_limit=args.rate_limit,
            rate_burst=args.rate_burst,
        )
    except ValueError as exc:
        raise FlowscopeError(f"collector: {exc}") from exc
    return Config(
        node_name=args.node_name,
        ring_capacity=args.ring_size,
        sweep_interval=args.sweep_interval,
        idle_timeout=args.idle_timeout,
        tcp_idle_timeout=args.tcp_idle_timeout,
        lab_state_dir=None if args.no_lab else args.lab_state_dir,
        endpoints_file=args.endpoints_file,
        identity_state=args.identity_state,
        datapath=datapath,
        policy=CompilerConfig(audit=args.policy_audit_mode),
        policy_dir=args.policy_dir,
        control_socket=args.control_socket,
    )


def command_config(args: argparse.Namespace) -> Config:
    """The collector command's config: config_from, and the relay that allocates identities
    with how to reach it."""
    config = config_from(args)
    if not args.relay:
        return config
    return dataclasses.replace(
        config,
        relay=check_address(args.relay, "--relay address"),
        relay_tls=client_tls_from_args(args, prefix="relay-"),
        relay_auth=ClientAuth.bearer(args.relay_token) if args.relay_token else None,
    )


def run(args: argparse.Namespace) -> int:
    config = command_config(args)
    tls = server_tls_from_args(args)
    stop = stack.stop_on_signals()
    with ExitStack() as running:
        collector = running.enter_context(stack.running_collector(config))
        running.enter_context(stack.metrics_served(args.metrics_address, collector.metrics))
        server = running.enter_context(stack.node_server(collector, args.listen_address, tls))
        if args.relay:
            announced = stack.announced(
                config.relay,
                args.node_name,
                f"localhost:{server.port}",
                config.relay_tls,
                config.relay_auth,
            )
            running.enter_context(announced)
        seq = collector.ring.first_seq()
        while not stop.is_set():
            if args.print:
                seq = _print_new(collector.ring, seq, args.node_name)
            collector.ring.wait(seq, timeout=0.5)
    stats = collector.stats()
    print(
        f"collector stopped: {stats.flows} flows, {stats.lost_transport_full} events lost "
        f"(buffer full), {stats.lost_rate_limited} rate-limited",
        file=sys.stderr,
    )
    return 0


def _print_new(ring: FlowRing, seq: int, node_name: str) -> int:
    entries, lost = ring.read(seq, limit=4096)
    if lost:
        _write(
            observer_pb2.GetFlowsResponse(
                lost_events=flow_pb2.LostEvent(
                    source=flow_pb2.HUBBLE_RING_BUFFER, num_events_lost=lost
                ),
                node_name=node_name,
            )
        )
    for _, event in entries:
        _write(_response(event, node_name))
    sys.stdout.flush()
    return entries[-1][0] + 1 if entries else seq + lost


def _response(event: Event, node_name: str) -> Message:
    """Flows and lost events as GetFlows sends them, agent events as GetAgentEvents does."""
    if isinstance(event, flow_pb2.AgentEvent):
        return observer_pb2.GetAgentEventsResponse(agent_event=event, node_name=node_name)
    response = observer_pb2.GetFlowsResponse(node_name=node_name)
    if isinstance(event, flow_pb2.Flow):
        response.flow.CopyFrom(event)
        response.time.CopyFrom(event.time)
    else:
        response.lost_events.CopyFrom(event)
    return response


def _write(response: Message) -> None:
    sys.stdout.write(dumps(response) + "\n")
