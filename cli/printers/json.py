"""The json format (also named jsonpb): one JSON object per response.

Each line is the whole response as protobuf's JSON mapping with proto field
names, `{"flow":{...},"node_name":"...","time":"..."}`, the lines
`--input-file` reads back. Node status responses go to the error stream,
everything else to the output stream. Control characters are escaped, so
no string in a line can drive the terminal.
"""

from __future__ import annotations

from typing import TextIO

from google.protobuf.message import Message

from flowscope.cli.printers.escape import escape_json
from flowscope.cli.printers.eventtext import agent_event_of, debug_event_of, node_status_shown
from flowscope.cli.printers.options import PrinterOptions
from flowscope.common.jsonlines import dumps
from flowscope.proto.observer import observer_pb2


def _line(response: Message) -> str:
    return escape_json(dumps(response)) + "\n"


class JsonPrinter:
    """Prints each response as one JSON line as soon as it arrives."""

    def __init__(self, options: PrinterOptions, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._err = err
        self._debug = options.debug

    def write_flows_response(self, response: observer_pb2.GetFlowsResponse) -> None:
        kind = response.WhichOneof("response_types")
        if kind == "node_status":
            if node_status_shown(response.node_status, self._debug):
                self._err.write(_line(response))
        elif kind is not None:
            self._out.write(_line(response))

    def write_agent_events_response(self, response: observer_pb2.GetAgentEventsResponse) -> None:
        agent_event_of(response)
        self._out.write(_line(response))

    def write_debug_events_response(self, response: observer_pb2.GetDebugEventsResponse) -> None:
        debug_event_of(response)
        self._out.write(_line(response))

    def close(self) -> None:
        """Nothing is buffered; the output stream is the caller's to close."""
