"""The text of the responses that are not flows: node status, lost events,
agent events and debug events, as Hubble's printer words them.

As in flowtext, every string taken from the event passes through `escape`
here, so the formats write these texts as they are.
"""

from __future__ import annotations

from typing import Final

from flowscope.cli.printers.escape import escape, quote
from flowscope.cli.printers.flowtext import enum_name
from flowscope.cli.printers.timefmt import NOT_AVAILABLE, TimeFormatter
from flowscope.common.errors import InputError
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2
from flowscope.proto.relay import relay_pb2

# Node lists are cut once they grow past this many bytes.
NODE_NAMES_CUT_OFF: Final = 50

_SHOWN_NODE_STATES: Final = frozenset({relay_pb2.NODE_ERROR, relay_pb2.NODE_UNAVAILABLE})


def node_status_shown(status: relay_pb2.NodeStatusEvent, debug: bool) -> bool:
    """Errors and unavailable nodes always print; the rest only with debug."""
    return debug or status.state_change in _SHOWN_NODE_STATES


def join_with_cut_off(names: list[str], separator: str, target: int) -> str:
    """`names` joined, leaving out those past `target` bytes of UTF-8.

    The first name is always kept; the left-out ones are counted as
    " (and N more)".
    """
    length = 0
    end = len(names)
    for index, name in enumerate(names):
        length += len(name.encode()) + len(separator.encode())
        if length > target and index > 0:
            end = index
            break
    joined = separator.join(names[:end])
    if end == len(names):
        return joined
    return f"{joined} (and {len(names) - end} more)"


def node_names(status: relay_pb2.NodeStatusEvent) -> str:
    """The event's node names, cut to NODE_NAMES_CUT_OFF."""
    return escape(join_with_cut_off(list(status.node_names), ", ", NODE_NAMES_CUT_OFF))


def node_status_line(response: observer_pb2.GetFlowsResponse, times: TimeFormatter) -> str:
    """One node status event as a line of text (no newline)."""
    status = response.node_status
    prefix = f"{response_time(response, times)} [{escape(response.node_name)}]"
    count = len(status.node_names)
    state = status.state_change
    if state == relay_pb2.NODE_CONNECTED:
        return f"{prefix}: Receiving flows from {count} nodes: {node_names(status)}"
    if state == relay_pb2.NODE_UNAVAILABLE:
        return f"{prefix}: {count} nodes are unavailable: {node_names(status)}"
    if state == relay_pb2.NODE_GONE:
        return f"{prefix}: {count} nodes removed from cluster: {node_names(status)}"
    if state == relay_pb2.NODE_ERROR:
        return f"{prefix}: Error {quote(status.message)} on {count} nodes: {node_names(status)}"
    state_name = enum_name(relay_pb2.NodeState.DESCRIPTOR, state)
    return (
        f"{prefix}: unknown node status event: state_change: {state_name}, "
        f"node_names: [{escape(', '.join(status.node_names))}], message: {quote(status.message)}"
    )


def node_status_message(status: relay_pb2.NodeStatusEvent) -> str:
    """The MESSAGE field of the dict output: quoted, or N/A when empty."""
    return quote(status.message) if status.message else NOT_AVAILABLE


def response_time(
    response: observer_pb2.GetFlowsResponse
    | observer_pb2.GetAgentEventsResponse
    | observer_pb2.GetDebugEventsResponse,
    times: TimeFormatter,
) -> str:
    """The response's own time, "N/A" when absent."""
    return times.timestamp(response.time if response.HasField("time") else None)


def lost_events_source(lost: flow_pb2.LostEvent) -> str:
    """HUBBLE_RING_BUFFER, PERF_EVENT_RING_BUFFER, ..."""
    return enum_name(flow_pb2.LostEventSource.DESCRIPTOR, lost.source)


def lost_events_line(response: observer_pb2.GetFlowsResponse, times: TimeFormatter) -> str:
    """`<time> EVENTS LOST: SOURCE CPU(n) N[ (first: T, last: T)]` (no newline)."""
    lost = response.lost_events
    line = (
        f"{response_time(response, times)} EVENTS LOST: {lost_events_source(lost)} "
        f"CPU({lost.cpu.value}) {lost.num_events_lost}"
    )
    if lost.HasField("first") or lost.HasField("last"):
        first = times.timestamp(lost.first if lost.HasField("first") else None)
        last = times.timestamp(lost.last if lost.HasField("last") else None)
        line += f" (first: {first}, last: {last})"
    return line


def lost_events_summary(lost: flow_pb2.LostEvent) -> str:
    """The SUMMARY of a lost event in the dict and table outputs."""
    return f"CPU({lost.cpu.value}) - {lost.num_events_lost}"


def _address(address: flow_pb2.ServiceUpsertNotificationAddr) -> str:
    host = f"[{address.ip}]" if ":" in address.ip else address.ip
    return f"{host}:{address.port}"


def agent_event_type(event: flow_pb2.AgentEvent) -> str:
    """AGENT_STARTED, POLICY_UPDATED, ..."""
    return enum_name(flow_pb2.AgentEventType.DESCRIPTOR, event.type)


def agent_event_details(event: flow_pb2.AgentEvent, times: TimeFormatter) -> str:
    """What the agent event says, "UNKNOWN" when it carries no matching notice."""
    return escape(_agent_event_details(event, times))


def _agent_event_details(event: flow_pb2.AgentEvent, times: TimeFormatter) -> str:
    kind = event.type
    notification = event.WhichOneof("notification")
    if kind == flow_pb2.AGENT_EVENT_UNKNOWN and notification == "unknown":
        return f"type: {event.unknown.type}, notification: {event.unknown.notification}"
    if kind == flow_pb2.AGENT_STARTED and notification == "agent_start":
        start = event.agent_start
        return "start time: " + times.timestamp(start.time if start.HasField("time") else None)
    if kind in (flow_pb2.POLICY_UPDATED, flow_pb2.POLICY_DELETED) and (
        notification == "policy_update"
    ):
        policy = event.policy_update
        return (f"labels: [{','.join(policy.labels)}], revision: {policy.revision}, "
                f"count: {policy.rule_count}")
    if kind in (flow_pb2.ENDPOINT_REGENERATE_SUCCESS, flow_pb2.ENDPOINT_REGENERATE_FAILURE) and (
        notification == "endpoint_regenerate"
    ):
        regen = event.endpoint_regenerate
        text = f"id: {regen.id}, labels: [{','.join(regen.labels)}]"
        return text + (f", error: {regen.error}" if regen.error else "")
    if kind in (flow_pb2.ENDPOINT_CREATED, flow_pb2.ENDPOINT_DELETED) and (
        notification == "endpoint_update"
    ):
        update = event.endpoint_update
        text = f"id: {update.id}"
        text += f", namespace: {update.namespace}" if update.namespace else ""
        return text + (f", pod name: {update.pod_name}" if update.pod_name else "")
    if kind in (flow_pb2.IPCACHE_UPSERTED, flow_pb2.IPCACHE_DELETED) and (
        notification == "ipcache_update"
    ):
        cache = event.ipcache_update
        text = f"cidr: {cache.cidr}, identity: {cache.identity}"
        if cache.HasField("old_identity"):
            text += f", old identity: {cache.old_identity.value}"
        text += f", host ip: {cache.host_ip}" if cache.host_ip else ""
        text += f", old host ip: {cache.old_host_ip}" if cache.old_host_ip else ""
        return text + f", encrypt key: {cache.encrypt_key}"
    if kind == flow_pb2.SERVICE_UPSERTED and notification == "service_upsert":
        service = event.service_upsert
        text = f"id: {service.id}"
        if service.HasField("frontend_address"):
            text += f", frontend: {_address(service.frontend_address)}"
        if service.backend_addresses:
            backends = ",".join(_address(backend) for backend in service.backend_addresses)
            text += f", backends: [{backends}]"
        text += f", type: {service.type}" if service.type else ""
        text += f", traffic policy: {service.traffic_policy}" if service.traffic_policy else ""
        text += f", namespace: {service.namespace}" if service.namespace else ""
        return text + (f", name: {service.name}" if service.name else "")
    if kind == flow_pb2.SERVICE_DELETED and notification == "service_delete":
        return f"id: {event.service_delete.id}"
    return "UNKNOWN"


def debug_event_type(event: flow_pb2.DebugEvent) -> str:
    """DBG_CT_VERDICT, ..."""
    return enum_name(flow_pb2.DebugEventType.DESCRIPTOR, event.type)


def debug_source(event: flow_pb2.DebugEvent) -> str:
    """"ns/pod (ID: 690)", "reserved:host (ID: 1)" or "ID: 690"; N/A if absent."""
    if not event.HasField("source"):
        return NOT_AVAILABLE
    return escape(_endpoint_short(event.source))


def _endpoint_short(endpoint: flow_pb2.Endpoint) -> str:
    text = f"ID: {endpoint.ID}"
    if endpoint.namespace and endpoint.pod_name:
        return f"{endpoint.namespace}/{endpoint.pod_name} ({text})"
    labels = endpoint.labels
    if len(labels) == 1 and labels[0].startswith("reserved:"):
        return f"{labels[0]} ({text})"
    return text


def debug_message(event: flow_pb2.DebugEvent) -> str:
    """The debug event's message."""
    return escape(event.message)


def debug_mark(event: flow_pb2.DebugEvent) -> str:
    """The hash as "0xabffcd1", N/A if absent."""
    return f"0x{event.hash.value:x}" if event.HasField("hash") else NOT_AVAILABLE


def debug_cpu(event: flow_pb2.DebugEvent) -> str:
    """The CPU as two digits ("01"), N/A if absent."""
    return f"{event.cpu.value:02d}" if event.HasField("cpu") else NOT_AVAILABLE



def agent_event_of(response: observer_pb2.GetAgentEventsResponse) -> flow_pb2.AgentEvent:
    """The response's agent event; a response without one is an error."""
    if not response.HasField("agent_event"):
        raise InputError("agent events response carries no agent_event")
    return response.agent_event


def debug_event_of(response: observer_pb2.GetDebugEventsResponse) -> flow_pb2.DebugEvent:
    """The response's debug event; a response without one is an error."""
    if not response.HasField("debug_event"):
        raise InputError("debug events response carries no debug_event")
    return response.debug_event
