"""source_workload, destination_workload: the endpoint has a workload with the
given name and kind; an empty name or kind matches any."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Final

from flowscope.common.filters.base import (
    Clause,
    Dimension,
    SqlParams,
    column,
    set_fields,
    sql_all,
    sql_any,
)
from flowscope.proto.flow import flow_pb2

# field -> (names column, kinds column, flow -> the endpoint's workloads)
_Field = tuple[str, str, Callable[[flow_pb2.Flow], Sequence[flow_pb2.Workload]]]
_FIELDS: Final[dict[str, _Field]] = {
    f"{side}_workload": (
        column(f"{side}_workload_names"),
        column(f"{side}_workload_kinds"),
        attrgetter(f"{side}.workloads"),
    )
    for side in ("source", "destination")
}


def _clause(field: str, values: Sequence[flow_pb2.Workload], sql: SqlParams) -> Clause:
    names_column, kinds_column, workloads_of = _FIELDS[field]
    wanted = tuple((workload.name, workload.kind) for workload in values)

    def match(flow: flow_pb2.Flow) -> bool:
        for workload in workloads_of(flow):
            for name, kind in wanted:
                if (not name or name == workload.name) and (not kind or kind == workload.kind):
                    return True
        return False

    entries = []
    for name, kind in wanted:
        parts = []
        if name:
            parts.append(f"workload_name = {sql.bind(name, 'String')}")
        if kind:
            parts.append(f"workload_kind = {sql.bind(kind, 'String')}")
        entries.append(sql_all(parts))
    lambda_ = f"(workload_name, workload_kind) -> {sql_any(entries)}"
    return Clause(match, f"arrayExists({lambda_}, {names_column}, {kinds_column})")


def _build(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    return [_clause(field, values, sql) for field, values in set_fields(ff, _FIELDS)]


WORKLOAD = Dimension("workload", tuple(_FIELDS), _build)
