"""The output formats of `flowscope observe`: compact, dict, table and json.

Each format prints Hubble's format byte for byte where Hubble defines it,
so scripts and habits built on `hubble observe` keep working:

    printer = make_printer(PrinterOptions(output="compact"), sys.stdout, sys.stderr)
    for response in stream:
        printer.write_flows_response(response)
    printer.close()

Flows, lost events, agent and debug events go to `out`; node status events
(relay news about nodes) go to `err`, and only errors and unavailable nodes
unless `debug` is set. The table format buffers everything until close().
"""

from __future__ import annotations

from typing import Final, Protocol, TextIO

from flowscope.cli.printers.compact import CompactPrinter
from flowscope.cli.printers.dict import DictPrinter
from flowscope.cli.printers.json import JsonPrinter
from flowscope.cli.printers.options import OUTPUT_FORMATS, PrinterOptions
from flowscope.cli.printers.table import TablePrinter
from flowscope.common.errors import InputError
from flowscope.proto.observer import observer_pb2

__all__ = ["DEFAULT_FIELD_MASK", "OUTPUT_FORMATS", "Printer", "PrinterOptions", "make_printer"]

# Every Flow field the compact, dict and table printers read: what a client
# needs to ask a server for (--use-default-field-masks). A test prints flows
# masked with it and unmasked, and they must print alike.
DEFAULT_FIELD_MASK: Final[tuple[str, ...]] = (
    "time", "verdict", "ethernet", "IP", "l4", "l7", "Type", "node_name", "event_type",
    "source.identity", "source.namespace", "source.pod_name",
    "destination.identity", "destination.namespace", "destination.pod_name",
    "source_service", "destination_service", "source_names", "destination_names",
    "is_reply", "Summary", "ip_trace_id", "auth_type", "traffic_direction",
    "policy_match_type", "debug_capture_point", "sock_xlate_point",
    "egress_allowed_by", "ingress_allowed_by", "egress_denied_by", "ingress_denied_by",
)


class Printer(Protocol):
    """Writes the responses of one observe stream in one format."""

    def write_flows_response(self, response: observer_pb2.GetFlowsResponse) -> None: ...

    def write_agent_events_response(
        self, response: observer_pb2.GetAgentEventsResponse
    ) -> None: ...

    def write_debug_events_response(
        self, response: observer_pb2.GetDebugEventsResponse
    ) -> None: ...

    def close(self) -> None: ...


def make_printer(options: PrinterOptions, out: TextIO, err: TextIO) -> Printer:
    """The printer for `options.output`; an unknown format is an InputError."""
    output = options.output
    if output == "compact":
        return CompactPrinter(options, out, err)
    if output == "dict":
        return DictPrinter(options, out, err)
    if output in ("json", "jsonpb"):
        return JsonPrinter(options, out, err)
    if output in ("table", "tab"):
        return TablePrinter(options, out, err)
    raise InputError(f"invalid --output {output!r}: want one of {', '.join(OUTPUT_FORMATS)}")
