"""`flowscope list nodes` and `flowscope list namespaces`: the relay's nodes, and the
namespaces with flows in the last hour, in Hubble's `hubble list` formats.

    NAME     STATUS      AGE     FLOWS/S   CURRENT/MAX-FLOWS
    node-1   Connected   1m27s   3.94      373/4095 (  9.11%)

`-o wide` adds VERSION, ADDRESS and TLS; `-o json` prints the server's answer as JSON.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Final, TextIO

from flowscope.cli import config
from flowscope.cli.client import add_server_flags
from flowscope.cli.printers.tabwriter import TabWriter
from flowscope.cli.status import add_output_flag, go_duration, server
from flowscope.common.jsonlines import dumps
from flowscope.proto.observer import observer_pb2, observer_pb2_grpc
from flowscope.proto.relay import relay_pb2

STATES: Final = {
    relay_pb2.NODE_CONNECTED: "Connected",
    relay_pb2.NODE_UNAVAILABLE: "Unavailable",
    relay_pb2.NODE_GONE: "Gone",
    relay_pb2.NODE_ERROR: "Error",
}


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser("list", help="list the relay's nodes or the namespaces seen")
    commands = parser.add_subparsers(dest="list_command", metavar="COMMAND", required=True)
    nodes = commands.add_parser("nodes", help="list the nodes the relay follows")
    add_output_flag(nodes, ("table", "wide", "json"), "table")
    nodes.set_defaults(func=run_nodes)
    namespaces = commands.add_parser("namespaces", help="list the namespaces of the last hour")
    add_output_flag(namespaces, ("table", "json"), "table")
    namespaces.set_defaults(func=run_namespaces)
    for command in (nodes, namespaces):
        config.add_config_flag(command, in_subcommand=True)
        add_server_flags(command)


def run_nodes(args: argparse.Namespace) -> int:
    with server(args) as connected:
        answer, _ = connected.call(
            observer_pb2_grpc.ObserverStub(connected.channel).GetNodes,
            observer_pb2.GetNodesRequest(),
        )
    write_nodes(sys.stdout, args.output, answer)
    return 0


def run_namespaces(args: argparse.Namespace) -> int:
    with server(args) as connected:
        answer, _ = connected.call(
            observer_pb2_grpc.ObserverStub(connected.channel).GetNamespaces,
            observer_pb2.GetNamespacesRequest(),
        )
    write_namespaces(sys.stdout, args.output, answer)
    return 0


def write_nodes(out: TextIO, output: str, answer: observer_pb2.GetNodesResponse) -> None:
    if output == "json":
        out.write(dumps(answer) + "\n")
        return
    wide = output == "wide"
    table = TabWriter(out, minwidth=2, padding=3)
    header = ["NAME", "STATUS", "AGE", "FLOWS/S", "CURRENT/MAX-FLOWS"]
    table.write("\t".join(header + (["VERSION", "ADDRESS", "TLS"] if wide else [])) + "\n")
    for node in sorted(answer.nodes, key=lambda node: node.name):
        age = rate = flows = "N/A"
        if node.state == relay_pb2.NODE_CONNECTED and node.uptime_ns:
            age = go_duration(node.uptime_ns)
            rate = f"{node.seen_flows / (node.uptime_ns / 1e9):.2f}"
            ratio = node.num_flows / node.max_flows * 100 if node.max_flows else 0.0
            flows = f"{node.num_flows}/{node.max_flows} ({ratio:6.2f}%)"
        cells = [node.name, STATES.get(node.state, "Unknown"), age, rate, flows]
        if wide:
            tls = "Enabled" if node.tls.enabled else "Disabled"
            cells += [node.version or "N/A", node.address, tls]
        table.write("\t".join(cells) + "\n")
    table.flush()


def write_namespaces(out: TextIO, output: str, answer: observer_pb2.GetNamespacesResponse) -> None:
    if output == "json":
        out.write(dumps(answer) + "\n")
        return
    clusters = any(namespace.cluster for namespace in answer.namespaces)
    table = TabWriter(out, minwidth=2, padding=3)
    table.write("CLUSTER\tNAMESPACE\n" if clusters else "NAMESPACE\n")
    for namespace in answer.namespaces:
        cluster = f"{namespace.cluster}\t" if clusters else ""
        table.write(f"{cluster}{namespace.namespace}\n")
    table.flush()
