"""What `flowscope observe` reads from: a server over gRPC, or a file of JSON lines.

Both implementations take the request the flags made and hand each response to a
writer (the printer), so the command does not care where responses come from:
`flowscope.cli.client.GrpcObserver` and `flowscope.cli.observe.replay.FileObserver`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from flowscope.proto.observer import observer_pb2

Request = (
    observer_pb2.GetFlowsRequest
    | observer_pb2.GetAgentEventsRequest
    | observer_pb2.GetDebugEventsRequest
)
WriteFlows = Callable[[observer_pb2.GetFlowsResponse], None]
WriteAgentEvents = Callable[[observer_pb2.GetAgentEventsResponse], None]
WriteDebugEvents = Callable[[observer_pb2.GetDebugEventsResponse], None]


class Observer(Protocol):
    """A source of flows and events that answers Observer requests."""

    def get_flows(self, request: observer_pb2.GetFlowsRequest, write: WriteFlows) -> None:
        """Writes the flows (and lost events, node status) the request selects."""

    def get_agent_events(
        self, request: observer_pb2.GetAgentEventsRequest, write: WriteAgentEvents
    ) -> None:
        """Writes the agent events the request selects."""

    def get_debug_events(
        self, request: observer_pb2.GetDebugEventsRequest, write: WriteDebugEvents
    ) -> None:
        """Writes the debug events the request selects."""

    def close(self) -> None:
        """Releases the connection or file."""
