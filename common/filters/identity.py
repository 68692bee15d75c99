"""source_identity, destination_identity: the endpoint's numeric security identity."""

from __future__ import annotations

from operator import attrgetter

from flowscope.common.filters.base import (
    Clause,
    Dimension,
    SqlParams,
    column,
    member_of,
    set_fields,
)
from flowscope.proto.flow import flow_pb2

_FIELDS = {
    f"{side}_identity": (column(f"{side}_identity"), attrgetter(f"{side}.identity"))
    for side in ("source", "destination")
}


def _build(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    clauses = []
    for field, values in set_fields(ff, _FIELDS):
        sql_name, identity = _FIELDS[field]
        wanted = frozenset(values)
        clauses.append(
            Clause(
                member_of(identity, wanted),
                sql.one_of(sql_name, sorted(wanted), "UInt32"),
            )
        )
    return clauses


IDENTITY = Dimension("identity", tuple(_FIELDS), _build)
