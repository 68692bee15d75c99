"""Names and numbers that the datapath, filters, printers and CLI share.

These are the monitor-level constants that Hubble carries as plain integers
(event types, trace subtypes, policy match types, reserved identities), kept
in one place so that every part reads and prints them alike.
"""

from __future__ import annotations

from typing import Final

from flowscope.proto.flow import flow_pb2

# Monitor message types (Flow.event_type.type), by their CLI names.
EVENT_TYPES: Final[dict[str, int]] = {
    "drop": 1,
    "debug": 2,
    "capture": 3,
    "trace": 4,
    "policy-verdict": 5,
    "trace-sock": 7,
    "l7": 129,
    "agent": 130,
}
EVENT_TYPE_DROP: Final = 1
EVENT_TYPE_CAPTURE: Final = 3
EVENT_TYPE_TRACE: Final = 4
EVENT_TYPE_POLICY_VERDICT: Final = 5
EVENT_TYPE_TRACE_SOCK: Final = 7
EVENT_TYPE_L7: Final = 129
EVENT_TYPE_AGENT: Final = 130

# Trace subtypes in the monitor's numbering (Flow.event_type.sub_type of
# trace events), which differs from the TraceObservationPoint enum.
TRACE_SUBTYPES: Final[dict[str, int]] = {
    "to-endpoint": 0,
    "to-proxy": 1,
    "to-host": 2,
    "to-stack": 3,
    "to-overlay": 4,
    "from-endpoint": 5,
    "from-proxy": 6,
    "from-host": 7,
    "from-stack": 8,
    "from-overlay": 9,
    "from-network": 10,
    "to-network": 11,
    "from-crypto": 12,
    "to-crypto": 13,
}

# Monitor trace subtype -> TraceObservationPoint enum value.
TRACE_SUBTYPE_TO_POINT: Final[dict[int, int]] = {
    sub: (
        flow_pb2.TO_ENDPOINT
        if name == "to-endpoint"
        else flow_pb2.TraceObservationPoint.Value(name.upper().replace("-", "_"))
    )
    for name, sub in TRACE_SUBTYPES.items()
}

# TraceObservationPoint enum value -> printed name ("to-endpoint").
TRACE_POINT_NAMES: Final[dict[int, str]] = {
    point: name for name, point in (
        (n, TRACE_SUBTYPE_TO_POINT[s]) for n, s in TRACE_SUBTYPES.items()
    )
}

# Agent event subtypes accepted by `-t agent:<name>` (AgentEventType values).
AGENT_SUBTYPES: Final[dict[str, int]] = {
    "unspecified": 0,
    "message": 1,
    "agent-started": 2,
    "policy-updated": 3,
    "policy-deleted": 4,
    "endpoint-regenerate-success": 5,
    "endpoint-regenerate-failure": 6,
    "endpoint-created": 7,
    "endpoint-deleted": 8,
    "ipcache-upserted": 9,
    "ipcache-deleted": 10,
}

# Flow.policy_match_type values and how they print.
POLICY_MATCH_TYPES: Final[dict[int, str]] = {
    0: "none",
    1: "L3-Only",
    2: "L3-L4",
    3: "L4-Only",
    4: "all",
    5: "L3-Proto",
    6: "Proto-Only",
}

# Reserved security identities (below 256) and their names.
RESERVED_IDENTITIES: Final[dict[int, str]] = {
    0: "unknown",
    1: "host",
    2: "world",
    3: "unmanaged",
    4: "health",
    5: "init",
    6: "remote-node",
    7: "kube-apiserver",
    8: "ingress",
    9: "world-ipv4",
    10: "world-ipv6",
}
RESERVED_IDENTITY_NUMBERS: Final[dict[str, int]] = {
    name: num for num, name in RESERVED_IDENTITIES.items()
}


def parse_identity(text: str) -> int:
    """A security identity as the CLI and the UI's filter box take it: a number below 2**32
    or a reserved name ("world"); ValueError otherwise."""
    if text in RESERVED_IDENTITY_NUMBERS:
        return RESERVED_IDENTITY_NUMBERS[text]
    if text.isdigit() and int(text) < 2**32:
        return int(text)
    names = ", ".join(RESERVED_IDENTITY_NUMBERS)
    raise ValueError(f"not a security identity: expected a number or one of {names}")


IDENTITY_HOST: Final = 1
IDENTITY_WORLD: Final = 2
# Identities at or above this are allocated for label sets.
FIRST_CLUSTER_IDENTITY: Final = 256

# TCP flags in the order Hubble's summary lists them.
TCP_FLAG_ORDER: Final[tuple[str, ...]] = (
    "SYN", "ACK", "RST", "FIN", "PSH", "URG", "ECE", "CWR", "NS",
)
