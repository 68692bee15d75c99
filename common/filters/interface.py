"""interface: the flow's network interface has the entry's index and name; an
entry may leave one of them unset (0, ""), not both."""

from __future__ import annotations

from flowscope.common.errors import FilterError
from flowscope.common.filters.base import (
    Clause,
    Dimension,
    SqlParams,
    column,
    sql_all,
    sql_any,
)
from flowscope.proto.flow import flow_pb2

_INDEX = column("interface_index")
_NAME = column("interface_name")


def _build(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    if not ff.interface:
        return []
    wanted = []
    for entry in ff.interface:
        if not entry.index and not entry.name:
            raise FilterError("interface", "", "an entry needs an index, a name or both")
        wanted.append((entry.index, entry.name))
    entries = tuple(wanted)

    def match(flow: flow_pb2.Flow) -> bool:
        interface = flow.interface
        for index, name in entries:
            if (not index or index == interface.index) and (not name or name == interface.name):
                return True
        return False

    parts = []
    for index, name in entries:
        conditions = []
        if index:
            conditions.append(f"{_INDEX} = {sql.bind(index, 'UInt32')}")
        if name:
            conditions.append(f"{_NAME} = {sql.bind(name, 'String')}")
        parts.append(sql_all(conditions))
    return [Clause(match, sql_any(parts))]


INTERFACE = Dimension("interface", ("interface",), _build)
