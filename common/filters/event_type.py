"""event_type: the monitor event type, and optionally its sub-type.

An entry {type: 4} matches every trace event; {type: 4, match_sub_type: true,
sub_type: 0} only to-endpoint traces. Type 0 is refused: it names no event.
"""

from __future__ import annotations

from flowscope.common.errors import FilterError
from flowscope.common.filters.base import Clause, Dimension, SqlParams, column, sql_any
from flowscope.proto.flow import flow_pb2

_TYPE = column("event_type")
_SUB_TYPE = column("event_sub_type")


def describe(entry: flow_pb2.EventTypeFilter) -> str:
    """An entry as the CLI writes it: "4" or "4:0"."""
    return f"{entry.type}:{entry.sub_type}" if entry.match_sub_type else str(entry.type)


def _build(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    if not ff.event_type:
        return []
    types: set[int] = set()
    pairs: set[tuple[int, int]] = set()
    for entry in ff.event_type:
        if entry.type == 0:
            raise FilterError("event_type", describe(entry), "event type 0 names no event")
        if entry.match_sub_type:
            pairs.add((entry.type, entry.sub_type))
        else:
            types.add(entry.type)
    any_type = frozenset(types)
    any_pair = frozenset(pairs)

    def match(flow: flow_pb2.Flow) -> bool:
        event = flow.event_type
        return event.type in any_type or (event.type, event.sub_type) in any_pair

    parts = []
    if types:
        parts.append(sql.one_of(_TYPE, sorted(types), "Int32"))
    if pairs:
        wanted = sql.bind(sorted(pairs), "Array(Tuple(Int32, Int32))")
        parts.append(f"has({wanted}, ({_TYPE}, {_SUB_TYPE}))")
    return [Clause(match, sql_any(parts))]


EVENT_TYPE = Dimension("event_type", ("event_type",), _build)
