"""The table format: aligned columns, written when the stream ends.

    TIMESTAMP   [NODE]   SOURCE   DESTINATION   TYPE   VERDICT   SUMMARY

Columns are laid out as Hubble's table lays them out (Go's tabwriter with
minwidth 2, tabwidth 0, padding 3, padded with spaces), which needs every
row before the first can be written, so nothing appears before close().
The table is never coloured and never swaps source and destination.
"""

from __future__ import annotations

from typing import Final, TextIO

from flowscope.cli.printers.compact import write_node_status
from flowscope.cli.printers.escape import escape
from flowscope.cli.printers.eventtext import (
    agent_event_details,
    agent_event_of,
    agent_event_type,
    debug_cpu,
    debug_event_of,
    debug_event_type,
    debug_mark,
    debug_message,
    debug_source,
    lost_events_source,
    lost_events_summary,
    response_time,
)
from flowscope.cli.printers.flowtext import FlowText, flow_time, flow_type
from flowscope.cli.printers.options import PrinterOptions
from flowscope.cli.printers.tabwriter import TabWriter
from flowscope.cli.printers.timefmt import TimeFormatter
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2

MIN_WIDTH: Final = 2
PADDING: Final = 3

_FLOW_COLUMNS: Final = ("SOURCE", "DESTINATION", "TYPE", "VERDICT", "SUMMARY")
_AGENT_COLUMNS: Final = ("TYPE", "DETAILS")
# The empty column keeps FROM as wide as Hubble's table has it.
_DEBUG_COLUMNS: Final = ("FROM", "", "TYPE", "CPU/MARK", "MESSAGE")


class TablePrinter:
    """Collects rows and writes them aligned on close()."""

    def __init__(self, options: PrinterOptions, out: TextIO, err: TextIO) -> None:
        self._table = TabWriter(out, minwidth=MIN_WIDTH, padding=PADDING)
        self._err = err
        self._times = TimeFormatter(options.time_format)
        self._text = FlowText.for_options(options, color=False)
        self._node_name = options.node_name
        self._debug = options.debug
        self._rows = 0

    def _row(self, header: tuple[str, ...], when: str, node: str, cells: tuple[str, ...]) -> None:
        """One row; the first row of the table comes with `header` above it."""
        lead = (when, escape(node)) if self._node_name else (when,)
        if not self._rows:
            head = ("TIMESTAMP", "NODE") if self._node_name else ("TIMESTAMP",)
            self._table.write("\t".join(head + header) + "\n")
        self._table.write("\t".join(lead + cells) + "\n")
        self._rows += 1

    def write_flows_response(self, response: observer_pb2.GetFlowsResponse) -> None:
        kind = response.WhichOneof("response_types")
        if kind == "flow":
            flow = response.flow
            text = self._text
            source, destination = text.hosts(flow)
            when = flow_time(flow, self._times)
            self._row(_FLOW_COLUMNS, when, flow.node_name, (
                source, destination, flow_type(flow), text.verdict(flow), text.summary(flow)))
        elif kind == "node_status":
            write_node_status(response, self._times, self._debug, self._err)
        elif kind == "lost_events":
            lost: flow_pb2.LostEvent = response.lost_events
            self._row(_FLOW_COLUMNS, "", "", (
                lost_events_source(lost), "", "EVENTS LOST", "", lost_events_summary(lost)))

    def write_agent_events_response(self, response: observer_pb2.GetAgentEventsResponse) -> None:
        event = agent_event_of(response)
        self._row(_AGENT_COLUMNS, response_time(response, self._times), response.node_name, (
            agent_event_type(event), agent_event_details(event, self._times)))

    def write_debug_events_response(self, response: observer_pb2.GetDebugEventsResponse) -> None:
        event = debug_event_of(response)
        self._row(_DEBUG_COLUMNS, response_time(response, self._times), response.node_name, (
            debug_source(event), "", debug_event_type(event),
            f"{debug_cpu(event)} {debug_mark(event)}", debug_message(event)))

    def close(self) -> None:
        """Write the table."""
        self._table.flush()
