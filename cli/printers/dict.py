"""The dict format: each event as a block of "KEY: value" lines.

    ------------
      TIMESTAMP: Jan  1 00:20:34.567
           NODE: k8s1
         SOURCE: default/xwing:41636
    DESTINATION: default/deathstar:80
           TYPE: to-endpoint
        VERDICT: FORWARDED
        SUMMARY: TCP Flags: SYN

Blocks are separated by a line of twelve dashes. Source and destination
are never swapped for replies. Node status blocks go to the error stream.
"""

from __future__ import annotations

from typing import Final, TextIO

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
    node_names,
    node_status_message,
    node_status_shown,
    response_time,
)
from flowscope.cli.printers.flowtext import FlowText, enum_name, flow_time, flow_type
from flowscope.cli.printers.options import PrinterOptions
from flowscope.cli.printers.timefmt import TimeFormatter
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2
from flowscope.proto.relay import relay_pb2

SEPARATOR: Final = "------------"


class DictPrinter:
    """Prints each response as a block as soon as it arrives."""

    def __init__(self, options: PrinterOptions, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._err = err
        self._times = TimeFormatter(options.time_format)
        self._text = FlowText.for_options(options)
        self._node_name = options.node_name
        self._debug = options.debug
        # Blocks written so far; the first one has no separator above it.
        self._blocks = 0

    def _separator(self) -> str:
        return SEPARATOR + "\n" if self._blocks else ""

    def _node(self, node_name: str) -> str:
        return f"       NODE: {escape(node_name)}\n" if self._node_name else ""

    def write_flows_response(self, response: observer_pb2.GetFlowsResponse) -> None:
        kind = response.WhichOneof("response_types")
        if kind == "flow":
            self._write_flow(response.flow)
        elif kind == "node_status":
            self._write_node_status(response)
        elif kind == "lost_events":
            self._write_lost_events(response.lost_events)

    def _write_flow(self, flow: flow_pb2.Flow) -> None:
        text = self._text
        source, destination = text.hosts(flow)
        when = flow_time(flow, self._times)
        self._out.write(
            f"{self._separator()}"
            f"  TIMESTAMP: {when}\n"
            f"{self._node(flow.node_name)}"
            f"     SOURCE: {source}\n"
            f"DESTINATION: {destination}\n"
            f"       TYPE: {flow_type(flow)}\n"
            f"    VERDICT: {text.verdict(flow)}\n"
            f"    SUMMARY: {text.summary(flow)}\n"
        )
        self._blocks += 1

    def _write_node_status(self, response: observer_pb2.GetFlowsResponse) -> None:
        status = response.node_status
        if not node_status_shown(status, self._debug):
            return
        # Counted as a block only when it is the first, as in Hubble, so
        # that the next flow is set apart from it.
        separator = self._separator()
        if not self._blocks:
            self._blocks += 1
        block = (
            f"{separator}"
            f"  TIMESTAMP: {response_time(response, self._times)}\n"
            f"      STATE: {enum_name(relay_pb2.NodeState.DESCRIPTOR, status.state_change)}\n"
            f"      NODES: {node_names(status)}\n"
            f"    MESSAGE: {node_status_message(status)}\n"
        )
        self._err.write(block)

    def _write_lost_events(self, lost: flow_pb2.LostEvent) -> None:
        block = (
            f"{self._separator()}"
            "  TIMESTAMP: \n"
            f"{self._node('')}"
            f"     SOURCE: {lost_events_source(lost)}\n"
            "       TYPE: EVENTS LOST\n"
            "    VERDICT: \n"
            f"    SUMMARY: {lost_events_summary(lost)}\n"
        )
        self._out.write(block)
        self._blocks += 1

    # Agent and debug event blocks follow their separator without a line
    # break, as Hubble prints them.

    def write_agent_events_response(self, response: observer_pb2.GetAgentEventsResponse) -> None:
        event = agent_event_of(response)
        block = (
            f"{SEPARATOR if self._blocks else ''}"
            f"  TIMESTAMP: {response_time(response, self._times)}\n"
            f"{self._node(response.node_name)}"
            f"       TYPE: {agent_event_type(event)}\n"
            f"    DETAILS: {agent_event_details(event, self._times)}\n"
        )
        self._out.write(block)
        self._blocks += 1

    def write_debug_events_response(self, response: observer_pb2.GetDebugEventsResponse) -> None:
        event = debug_event_of(response)
        block = (
            f"{SEPARATOR if self._blocks else ''}"
            f"  TIMESTAMP: {response_time(response, self._times)}\n"
            f"{self._node(response.node_name)}"
            f"       TYPE: {debug_event_type(event)}\n"
            f"       FROM: {debug_source(event)}\n"
            f"       MARK: {debug_mark(event)}\n"
            f"        CPU: {debug_cpu(event)}\n"
            f"    MESSAGE: {debug_message(event)}\n"
        )
        self._out.write(block)
        self._blocks += 1

    def close(self) -> None:
        """Nothing is buffered; the output stream is the caller's to close."""
