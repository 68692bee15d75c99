"""The compact format, one line per event: `flowscope observe`'s default.

    TIME[ [NODE]]: SRC SRC_ID ARROW DST DST_ID TYPE VERDICT (SUMMARY)

The arrow is "->" for a flow in the request direction, "<>" when the
direction is unknown, and "<-" for a reply, which also swaps the two ends
so that the client stays on the left.
"""

from __future__ import annotations

from typing import TextIO

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
    lost_events_line,
    node_status_line,
    node_status_shown,
    response_time,
)
from flowscope.cli.printers.flowtext import FlowText, flow_time, flow_type
from flowscope.cli.printers.options import PrinterOptions
from flowscope.cli.printers.timefmt import TimeFormatter
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2


def write_node_status(
    response: observer_pb2.GetFlowsResponse, times: TimeFormatter, debug: bool, err: TextIO
) -> None:
    """A node status event as the compact line on `err` (compact and table)."""
    if node_status_shown(response.node_status, debug):
        err.write(node_status_line(response, times) + "\n")


class CompactPrinter:
    """Prints each response as one line as soon as it arrives."""

    def __init__(self, options: PrinterOptions, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._err = err
        self._times = TimeFormatter(options.time_format)
        self._text = FlowText.for_options(options)
        self._node_name = options.node_name
        self._debug = options.debug

    def write_flows_response(self, response: observer_pb2.GetFlowsResponse) -> None:
        kind = response.WhichOneof("response_types")
        if kind == "flow":
            self._write_flow(response.flow)
        elif kind == "node_status":
            write_node_status(response, self._times, self._debug, self._err)
        elif kind == "lost_events":
            self._out.write(lost_events_line(response, self._times) + "\n")

    def _write_flow(self, flow: flow_pb2.Flow) -> None:
        text = self._text
        source, destination = text.hosts(flow)
        source_id = text.identity(flow.source.identity)
        destination_id = text.identity(flow.destination.identity)
        if not flow.HasField("is_reply"):
            arrow = "<>"
        elif flow.is_reply.value:
            source, destination = destination, source
            source_id, destination_id = destination_id, source_id
            arrow = "<-"
        else:
            arrow = "->"
        self._out.write(
            f"{flow_time(flow, self._times)}{self._node(flow.node_name)}: "
            f"{source} {source_id} {arrow} {destination} {destination_id} {flow_type(flow)}"
            f" {text.verdict(flow)} ({text.summary(flow)})\n"
        )

    def _node(self, node_name: str) -> str:
        return f" [{escape(node_name)}]" if self._node_name else ""

    def write_agent_events_response(self, response: observer_pb2.GetAgentEventsResponse) -> None:
        event = agent_event_of(response)
        self._out.write(
            f"{response_time(response, self._times)}{self._node(response.node_name)}: "
            f"{agent_event_type(event)} ({agent_event_details(event, self._times)})\n"
        )

    def write_debug_events_response(self, response: observer_pb2.GetDebugEventsResponse) -> None:
        event = debug_event_of(response)
        self._out.write(
            f"{response_time(response, self._times)}{self._node(response.node_name)}: "
            f"{debug_source(event)} {debug_event_type(event)} MARK: {debug_mark(event)} "
            f"CPU: {debug_cpu(event)} ({debug_message(event)})\n"
        )

    def close(self) -> None:
        """Nothing is buffered; the output stream is the caller's to close."""
