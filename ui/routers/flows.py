"""Flows: history over a time range, the live stream (server-sent events), and
export of the view as JSON lines (as `flowscope observe -o jsonpb` writes them)
or CSV (the table's columns)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Final, Literal

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from google.protobuf.timestamp_pb2 import Timestamp

from flowscope.common import jsonlines
from flowscope.proto.observer import observer_pb2
from flowscope.proto.relay import relay_pb2
from flowscope.ui import views
from flowscope.ui.deps import relay
from flowscope.ui.params import View, view
from flowscope.ui.relay_client import RelayClient

router = APIRouter(prefix="/api/flows", tags=["flows"])
Relay = Annotated[RelayClient, Depends(relay)]
Selection = Annotated[View, Depends(view)]
TABLE_MAX: Final = 10_000
EXPORT_MAX: Final = 1_000_000


def _history_request(selection: View, number: int) -> observer_pb2.GetFlowsRequest:
    since, until = Timestamp(), Timestamp()
    since.FromNanoseconds(selection.time.since_ns)
    until.FromNanoseconds(selection.time.until_ns)
    return observer_pb2.GetFlowsRequest(
        number=number,
        since=since,
        until=until,
        whitelist=selection.whitelist,
        blacklist=selection.blacklist,
    )


def _notice(response: observer_pb2.GetFlowsResponse) -> str | None:
    """A node status worth telling the user (not the connected nodes at the start)."""
    if not response.HasField("node_status"):
        return None
    status = response.node_status
    if status.state_change == relay_pb2.NODE_CONNECTED and not status.message:
        return None
    if status.state_change == relay_pb2.UNKNOWN_NODE_STATE:
        return status.message
    state = relay_pb2.NodeState.Name(status.state_change).removeprefix("NODE_").lower()
    text = f"{', '.join(status.node_names)} {state}"
    return f"{text}: {status.message}" if status.message else text


def _entry(response: observer_pb2.GetFlowsResponse) -> dict[str, Any]:
    return {"row": views.flow_row(response.flow), "flow": jsonlines.to_dict(response.flow)}


@router.get("", summary="The last flows of the view, oldest first")
async def history(
    selection: Selection,
    client: Relay,
    number: Annotated[int, Query(ge=1, le=TABLE_MAX)] = 1000,
) -> dict[str, Any]:
    """The last `number` flows of the view's time range that pass its filters, each as
    its table row and its full Hubble JSON; notices from the relay (such as a range
    reaching before what the store holds); the table's columns."""
    flows = []
    notices = []
    async for response in client.flows(_history_request(selection, number)):
        if response.HasField("flow"):
            flows.append(_entry(response))
        elif (notice := _notice(response)) is not None:
            notices.append(notice)
    return {"flows": flows, "notices": notices, "columns": views.COLUMNS}


def _event(name: str, data: object) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@router.get(
    "/live",
    summary="New flows of the view as they come (server-sent events)",
    response_class=StreamingResponse,
)
async def live(selection: Selection, client: Relay) -> StreamingResponse:
    """Events `flow` (data: row and flow, as in the history), `lost` (a LostEvent)
    and `notice` (a node status message); the time range does not apply."""
    request = observer_pb2.GetFlowsRequest(
        follow=True, whitelist=selection.whitelist, blacklist=selection.blacklist
    )

    async def events() -> AsyncIterator[bytes]:
        yield b": connected\n\n"
        async for response in client.flows(request):
            if response.HasField("flow"):
                yield _event("flow", _entry(response))
            elif response.HasField("lost_events"):
                yield _event("lost", jsonlines.to_dict(response.lost_events))
            elif (notice := _notice(response)) is not None:
                yield _event("notice", notice)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


@router.get(
    "/export",
    summary="The view's flows as a file: JSON lines or CSV",
    response_class=StreamingResponse,
)
async def export(
    selection: Selection,
    client: Relay,
    format: Literal["jsonl", "csv"] = "jsonl",
    number: Annotated[int, Query(ge=1, le=EXPORT_MAX)] = 10_000,
) -> StreamingResponse:
    """The last `number` flows of the view, oldest first: JSON lines as `flowscope
    observe -o jsonpb` writes them (and `--input-file` reads), or CSV with the
    table's columns."""
    request = _history_request(selection, number)

    async def lines() -> AsyncIterator[str]:
        if format == "csv":
            yield views.csv_header()
        async for response in client.flows(request):
            if not response.HasField("flow"):
                continue
            yield (
                views.csv_line(response.flow)
                if format == "csv"
                else (jsonlines.dumps(response) + "\n")
            )

    media = "text/csv" if format == "csv" else "application/x-ndjson"
    return StreamingResponse(
        lines(),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="flows.{format}"'},
    )
