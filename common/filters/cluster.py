"""source_cluster_name, destination_cluster_name: the endpoint's cluster, exactly."""

from __future__ import annotations

from operator import attrgetter

from flowscope.common.errors import FilterError
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
    f"{side}_cluster_name": (column(f"{side}_cluster_name"), attrgetter(f"{side}.cluster_name"))
    for side in ("source", "destination")
}


def _build(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    clauses = []
    for field, values in set_fields(ff, _FIELDS):
        if "" in values:
            raise FilterError(field, "", "a cluster name must not be empty")
        sql_name, cluster = _FIELDS[field]
        wanted = frozenset(values)
        clauses.append(
            Clause(
                member_of(cluster, wanted),
                sql.one_of(sql_name, sorted(wanted), "String"),
            )
        )
    return clauses


CLUSTER_NAME = Dimension("cluster_name", tuple(_FIELDS), _build)
