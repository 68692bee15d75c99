"""`flowscope observe`: flows and events from a flowscope server or a JSON-lines file.

The command takes `hubble observe`'s flags and prints its formats:

    observe [flows]       GetFlows: selectors, filters, formatting
    observe agent-events  GetAgentEvents: selectors and formatting
    observe debug-events  GetDebugEvents: selectors and formatting

Modules: selectors (--last, --since, ...); filter_flags, filter_values and
filters (filter flags to FlowFilters); raw_filters (FlowFilters in JSON); flags
(argparse for the rest); observer (the source interface); replay (the file
source); command (what the commands do). The server source is flowscope.cli.client.
"""

from __future__ import annotations

import argparse
from typing import Any

from flowscope.cli import config
from flowscope.cli.client import add_server_flags
from flowscope.cli.observe import command, flags
from flowscope.cli.observe.selectors import add_selector_flags

EXAMPLES = """\
examples:
  flowscope observe                                   the last 20 flows
  flowscope observe -f --namespace shop               follow the flows of a namespace
  flowscope observe --since 5m --verdict DROPPED      drops of the last 5 minutes
  flowscope observe --pod shop/cart --to-port 5432    a pod's flows to a port
  flowscope observe --not --namespace kube-system     everything else
  flowscope observe -o jsonpb --all > flows.json      save flows ...
  flowscope observe --input-file flows.json --last 5  ... and query them later
  flowscope observe --type drop --print-raw-filters   the FlowFilters the flags make

Values of one filter flag: any may match; different flags: all must match.
Either-direction flags (--ip, --pod, --namespace, --label, --fqdn, --service,
--port, --identity, --workload, --cluster) match the source or the destination,
and two of them must match the same side: --ip X --label L wants X labelled L.
"""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    observe = subparsers.add_parser(
        "observe",
        usage="%(prog)s [flows|agent-events|debug-events] [flags]",
        help="print flows and events from a flowscope server or a file",
        description="Print flows from a flowscope server (or a Hubble relay), or from a file\n"
        "of them, through filters.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_flow_flags(observe)
    observe.set_defaults(func=command.run_flows)
    commands = observe.add_subparsers(dest="observe_command", metavar="COMMAND")

    flows = commands.add_parser(
        "flows",
        prog=f"{observe.prog} flows",
        usage="%(prog)s [flags]",
        help="print flows (the default)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_flow_flags(flows)
    flows.set_defaults(func=command.run_flows)
    for name, what, run in (
        ("agent-events", "agent events", command.run_agent_events),
        ("debug-events", "datapath debug events", command.run_debug_events),
    ):
        events = commands.add_parser(
            name, prog=f"{observe.prog} {name}", usage="%(prog)s [flags]", help=f"print {what}"
        )
        config.add_config_flag(events, in_subcommand=True)
        add_selector_flags(events)
        flags.add_formatting_flags(events, flows=False)
        add_server_flags(events)
        flags.add_other_flags(events)
        events.set_defaults(func=run)
        _keep_parent_values(events)
    _keep_parent_values(flows)


def _add_flow_flags(parser: argparse.ArgumentParser) -> None:
    config.add_config_flag(parser, in_subcommand=True)
    add_selector_flags(parser)
    flags.add_filter_flags(parser)
    flags.add_formatting_flags(parser, flows=True)
    add_server_flags(parser)
    flags.add_other_flags(parser)


def _keep_parent_values(parser: argparse.ArgumentParser) -> None:
    """No defaults in a subcommand, so flags given before its name keep their values.

    `observe` sets every default; `observe --last 3 flows` then means --last 3.
    """
    for action in parser._actions:
        action.default = argparse.SUPPRESS
