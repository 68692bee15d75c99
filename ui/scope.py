"""What one view of the UI selects besides the filter box: a time range, the chosen
namespaces, and a clicked map node or edge, each turned into FlowFilters and
joined with the box's (AND) on the server.

FlowFilter lists are ORs of ANDs, so joining two lists is a product: every
filter of one with every filter of the other. When both constrain the same
field, the joined filter takes the values both accept: pod prefixes by
namespace and prefix, identities, workloads and verdicts by equality; a pair
with nothing in common is left out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from flowscope.common import vocab
from flowscope.common.errors import InputError
from flowscope.common.filters import names
from flowscope.common.timeparse import parse_time
from flowscope.proto.aggregate import aggregate_pb2
from flowscope.proto.flow import flow_pb2

NANOS: Final = 1_000_000_000
MINUTE_NS: Final = 60 * NANOS
RANGES: Final = {"5m": 300 * NANOS, "1h": 3600 * NANOS, "1d": 86400 * NANOS}
GROUPINGS: Final = {
    "workload": aggregate_pb2.WORKLOAD,
    "pod": aggregate_pb2.POD,
    "namespace": aggregate_pb2.NAMESPACE,
}
IDENTITY_PREFIX: Final = "identity:"
Filters = list[flow_pb2.FlowFilter]
# A filter no flow passes: flow UUIDs are never this text.
NOTHING: Final = flow_pb2.FlowFilter(uuid=["no flow"])
_JOINABLE: Final = {"verdict", "protocol", "source_port", "destination_port"} | {
    f"{side}_{kind}"
    for side in ("source", "destination")
    for kind in ("pod", "identity", "workload")
}


@dataclass(frozen=True, slots=True)
class TimeRange:
    """[since_ns, until_ns) in nanoseconds since the epoch."""

    since_ns: int
    until_ns: int

    def to_minutes(self) -> TimeRange:
        """The range widened to whole minutes, which the store's rollups answer."""
        since = self.since_ns - self.since_ns % MINUTE_NS
        until = -(-self.until_ns // MINUTE_NS) * MINUTE_NS
        return TimeRange(since, until)


def time_range(preset: str, since: str, until: str, now_ns: int | None = None) -> TimeRange:
    """The range a view asks for: a preset ("5m", "1h", "1d") back from now, or "custom"
    with since and until (any format `flowscope observe --since` takes)."""
    now = time.time_ns() if now_ns is None else now_ns
    if preset in RANGES:
        return TimeRange(now - RANGES[preset], now)
    if preset != "custom":
        raise InputError(f"range {preset!r}: expected one of {', '.join(RANGES)} or custom")
    if not since:
        raise InputError("range custom: needs since")
    start = parse_time(since, now_ns=now)
    end = parse_time(until, now_ns=now) if until else None
    since_ns = start.seconds * NANOS + start.nanos
    until_ns = end.seconds * NANOS + end.nanos if end is not None else now
    if until_ns <= since_ns:
        raise InputError(f"range since {since!r} until {until or 'now'!r}: until must be later")
    return TimeRange(since_ns, until_ns)


def grouping(name: str) -> aggregate_pb2.Grouping.ValueType:
    if name not in GROUPINGS:
        raise InputError(f"group {name!r}: expected one of {', '.join(GROUPINGS)}")
    return GROUPINGS[name]


def _prefixes_meet(a: str, b: str) -> str | None:
    """The pod value matching what both "[namespace/]prefix" values match, if any."""
    namespace_a, prefix_a = names.parse("pod", a)
    namespace_b, prefix_b = names.parse("pod", b)
    if namespace_a is not None and namespace_b is not None and namespace_a != namespace_b:
        return None
    namespace = namespace_a if namespace_a is not None else namespace_b
    if not (prefix_a.startswith(prefix_b) or prefix_b.startswith(prefix_a)):
        return None
    longer = max(prefix_a, prefix_b, key=len)
    return f"{namespace or ''}/{longer}"


def _workloads_meet(a: flow_pb2.Workload, b: flow_pb2.Workload) -> flow_pb2.Workload | None:
    if a.name and b.name and a.name != b.name:
        return None
    if a.kind and b.kind and a.kind != b.kind:
        return None
    return flow_pb2.Workload(name=a.name or b.name, kind=a.kind or b.kind)


def _meet(name: str, a: Sequence[object], b: Sequence[object]) -> list[object]:
    if name.endswith("_pod"):
        pods = (_prefixes_meet(str(x), str(y)) for x in a for y in b)
        return list(dict.fromkeys(pod for pod in pods if pod is not None))
    if name.endswith("_workload"):
        loads = (
            _workloads_meet(x, y)
            for x in a
            for y in b
            if isinstance(x, flow_pb2.Workload) and isinstance(y, flow_pb2.Workload)
        )
        return [load for load in loads if load is not None]
    return [x for x in a if x in b]


def _join_one(a: flow_pb2.FlowFilter, b: flow_pb2.FlowFilter) -> flow_pb2.FlowFilter | None:
    joined = flow_pb2.FlowFilter()
    joined.CopyFrom(a)
    for descriptor, values in b.ListFields():
        name = descriptor.name
        if not descriptor.is_repeated or name not in _JOINABLE:
            raise InputError(f"cannot narrow FlowFilter field {name}")
        mine = list(getattr(a, name))
        target = getattr(joined, name)
        kept = _meet(name, mine, list(values)) if mine else list(values)
        if not kept:
            return None
        del target[:]
        target.extend(kept)
    return joined


def join(filters: Filters, narrowing: Filters) -> Filters:
    """filters AND narrowing, as one list (an empty list matches every flow; when no
    pair has anything in common, the list is NOTHING)."""
    if not narrowing:
        return list(filters)
    if not filters:
        return list(narrowing)
    pairs = (_join_one(a, b) for a in filters for b in narrowing)
    joined = [ff for ff in pairs if ff is not None]
    return joined or [NOTHING]


def _side_filter(side: str, endpoint: str, level: str) -> flow_pb2.FlowFilter:
    """Flows whose `side` is the map's `endpoint` named at `level` (query.py's names)."""
    ff = flow_pb2.FlowFilter()
    if endpoint.startswith(IDENTITY_PREFIX):
        number = endpoint.removeprefix(IDENTITY_PREFIX)
        if not number.isdigit():
            raise InputError(f"endpoint {endpoint!r}: expected identity:<number>")
        getattr(ff, f"{side}_identity").append(int(number))
        return ff
    namespace, slash, name = endpoint.partition("/")
    if level == "namespace" or not slash:
        getattr(ff, f"{side}_pod").append(f"{namespace or endpoint}/")
    elif level == "pod":
        getattr(ff, f"{side}_pod").append(f"{namespace}/{name}")
    else:
        getattr(ff, f"{side}_pod").append(f"{namespace}/")
        getattr(ff, f"{side}_workload").append(flow_pb2.Workload(name=name))
    return ff


def node_filters(endpoint: str, level: str) -> Filters:
    """Flows from or to a map node."""
    return [_side_filter(side, endpoint, level) for side in ("source", "destination")]


def edge_filters(source: str, destination: str, port: int, protocol: str, level: str) -> Filters:
    """Flows of one map edge (destination port and protocol; 0 and "" for any)."""
    ff = flow_pb2.FlowFilter()
    ff.MergeFrom(_side_filter("source", source, level))
    ff.MergeFrom(_side_filter("destination", destination, level))
    if port:
        ff.destination_port.append(str(port))
    if protocol:
        ff.protocol.append(protocol.lower())
    return [ff]


def namespace_filters(namespaces: Sequence[str]) -> Filters:
    """Flows with either end in one of the namespaces ([] for all namespaces)."""
    if not namespaces:
        return []
    prefixes = [f"{namespace}/" for namespace in namespaces]
    return [flow_pb2.FlowFilter(source_pod=prefixes), flow_pb2.FlowFilter(destination_pod=prefixes)]


def endpoint_label(endpoint: str) -> str:
    """How the map names an endpoint: reserved identities by name ("world")."""
    if endpoint.startswith(IDENTITY_PREFIX):
        number = endpoint.removeprefix(IDENTITY_PREFIX)
        if number.isdigit() and int(number) in vocab.RESERVED_IDENTITIES:
            return vocab.RESERVED_IDENTITIES[int(number)]
    return endpoint.rpartition("/")[2] or endpoint
