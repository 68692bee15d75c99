"""The cluster around the map: relay and store status, nodes, namespaces, and the
FlowFilters a view compiles to (what `flowscope observe --print-raw-filters` shows)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from google.protobuf.json_format import MessageToDict

from flowscope.proto.relay import relay_pb2
from flowscope.ui.deps import lost_events, relay
from flowscope.ui.lost import LostEvents
from flowscope.ui.params import View, view
from flowscope.ui.relay_client import RelayClient

router = APIRouter(prefix="/api", tags=["cluster"])
Relay = Annotated[RelayClient, Depends(relay)]


@router.get("/status", summary="The status bar: nodes, flow rate, lost events, store range")
async def status(
    client: Relay, lost: Annotated[LostEvents, Depends(lost_events)]
) -> dict[str, Any]:
    answer = await client.status()
    server = answer.status
    return {
        "relay": client.address,
        "version": server.version,
        "nodes_connected": server.num_connected_nodes.value,
        "nodes_unavailable": server.num_unavailable_nodes.value,
        "unavailable_nodes": list(server.unavailable_nodes),
        "flows_rate": server.flows_rate,
        "seen_flows": server.seen_flows,
        "stored_flows": server.num_flows,
        "store_oldest_ns": answer.store_oldest_ns,
        "store_newest_ns": answer.store_newest_ns,
        "lost_events": lost.total,
        "lost_events_by_source": lost.by_source,
        "lost_events_watching": lost.connected,
    }


@router.get("/nodes", summary="The nodes the relay follows")
async def nodes(client: Relay) -> dict[str, Any]:
    answer = await client.nodes()
    return {
        "nodes": [
            {
                "name": node.name,
                "address": node.address,
                "state": relay_pb2.NodeState.Name(node.state),
                "version": node.version,
                "uptime_ns": node.uptime_ns,
                "num_flows": node.num_flows,
                "seen_flows": node.seen_flows,
            }
            for node in answer.nodes
        ]
    }


@router.get("/namespaces", summary="Namespaces with flows in the last hour")
async def namespaces(client: Relay) -> dict[str, Any]:
    answer = await client.namespaces()
    return {
        "namespaces": [
            {"cluster": item.cluster, "namespace": item.namespace} for item in answer.namespaces
        ]
    }


@router.get("/filters", summary="The FlowFilters a view compiles to")
async def filters(selection: Annotated[View, Depends(view)]) -> dict[str, Any]:
    return {
        "whitelist": [
            MessageToDict(ff, preserving_proto_field_name=True) for ff in selection.whitelist
        ],
        "blacklist": [
            MessageToDict(ff, preserving_proto_field_name=True) for ff in selection.blacklist
        ],
        "since_ns": selection.time.since_ns,
        "until_ns": selection.time.until_ns,
    }
