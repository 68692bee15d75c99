"""The service map and the policy view: aggregates the relay computes over its store."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends

from flowscope.proto.flow import flow_pb2
from flowscope.ui import scope, views
from flowscope.ui.deps import relay
from flowscope.ui.params import View, view
from flowscope.ui.relay_client import RelayClient

router = APIRouter(prefix="/api", tags=["aggregates"])
Relay = Annotated[RelayClient, Depends(relay)]
Selection = Annotated[View, Depends(view)]
DENIED: Final = [flow_pb2.FlowFilter(verdict=[flow_pb2.DROPPED, flow_pb2.AUDIT])]


@router.get("/map", summary="Service-map nodes and edges over a time range")
async def service_map(selection: Selection, client: Relay) -> dict[str, Any]:
    """One edge per (source, destination, destination port, protocol) with flow and
    byte counts and a verdict class (forwarded, dropped, mixed, audit); nodes named at
    the chosen level and grouped by namespace. The range is widened to whole minutes."""
    request = selection.aggregate()
    answer = await client.service_map(request)
    return views.service_map(answer, selection.level) | {
        "since_ns": request.since_ns,
        "until_ns": request.until_ns,
    }


@router.get("/policy", summary="Denied and audited flows by policy and by endpoints")
async def policy(selection: Selection, client: Relay) -> dict[str, Any]:
    """Dropped and audited flows of the view: counted by verdict and the policy that
    decided them, and by (source, destination, port, protocol)."""
    denied = scope.join(selection.whitelist, DENIED)
    request = selection.aggregate(denied)
    summary = await client.verdict_summary(request)
    endpoints = await client.service_map(request)
    return {
        "policies": [
            {"verdict": row.verdict, "policy": row.policy, "flows": row.flows}
            for row in summary.counts
        ],
        "endpoints": views.service_map(endpoints, selection.level)["edges"],
        "since_ns": request.since_ns,
        "until_ns": request.until_ns,
    }
