"""Export records: one relay response as an ExportEvent JSON line, with what the
resume cursor and the sinks need beside it (node, sequence, uuid, time, severity)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from flowscope.common.jsonlines import dumps
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2

# The flow fields a field mask always keeps: the cursor needs node and sequence, a receiver
# that drops repeats needs the uuid.
CURSOR_PATHS: Final = ("node_name", "node_sequence", "uuid")


@dataclass(frozen=True, slots=True)
class Record:
    """line: the ExportEvent as one JSON line (no newline); kind: flow, lost_events or
    node_status; sequence: the flow's node_sequence (0 for the other kinds)."""

    line: str
    kind: str
    node: str
    sequence: int
    uuid: str
    time_ns: int
    dropped: bool


def record_of(response: observer_pb2.GetFlowsResponse) -> Record:
    """The record of a GetFlows response. ExportEvent shares GetFlowsResponse's field
    numbers, so the bytes of one parse as the other."""
    event = observer_pb2.ExportEvent.FromString(response.SerializeToString())
    kind = response.WhichOneof("response_types") or ""
    flow = response.flow
    return Record(
        line=dumps(event),
        kind=kind,
        node=response.node_name,
        sequence=flow.node_sequence,
        uuid=flow.uuid,
        time_ns=response.time.ToNanoseconds(),
        dropped=kind == "flow" and flow.verdict == flow_pb2.DROPPED,
    )
