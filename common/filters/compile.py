"""FlowFilter lists to one predicate or one SQL condition.

Inside a FlowFilter every set field must match (AND); a whitelist matches
when any of its filters does, an empty whitelist matches everything; a
blacklist removes what any of its filters matches. Both backends compile from
the same clauses, so they cannot disagree on this algebra.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from flowscope.common.filters.base import (
    ALWAYS,
    Clause,
    Predicate,
    SqlParams,
    all_of,
    any_of,
    sql_all,
    sql_any,
)
from flowscope.common.filters.registry import DIMENSIONS
from flowscope.proto.flow import flow_pb2


@dataclass(frozen=True, slots=True)
class SqlCondition:
    """A ClickHouse boolean expression over the flow table and its bound parameters.

    Run it as `... WHERE {sql}` with parameters=params; sql is "1" when
    nothing is filtered.
    """

    sql: str
    params: dict[str, object] = field(default_factory=dict)


def _clauses(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    return [clause for dimension in DIMENSIONS for clause in dimension.build(ff, sql)]


def _compile(
    whitelist: Sequence[flow_pb2.FlowFilter], blacklist: Sequence[flow_pb2.FlowFilter]
) -> tuple[list[list[Clause]], list[list[Clause]], SqlParams]:
    sql = SqlParams()
    included = [_clauses(ff, sql) for ff in whitelist]
    excluded = [_clauses(ff, sql) for ff in blacklist]
    return included, excluded, sql


def compile_predicate(
    whitelist: Sequence[flow_pb2.FlowFilter], blacklist: Sequence[flow_pb2.FlowFilter]
) -> Callable[[flow_pb2.Flow], bool]:
    """A function telling whether a flow passes the whitelist and not the blacklist.

    Raises FilterError, naming the field and value, for a filter that cannot
    be compiled.
    """
    included, excluded, _ = _compile(whitelist, blacklist)

    def filter_predicate(clauses: list[Clause]) -> Predicate:
        return all_of([clause.match for clause in clauses])

    include = any_of([filter_predicate(c) for c in included]) if included else ALWAYS
    if not excluded:
        return include
    exclude = any_of([filter_predicate(c) for c in excluded])
    if include is ALWAYS:
        return lambda flow: not exclude(flow)
    return lambda flow: include(flow) and not exclude(flow)


def compile_sql(
    whitelist: Sequence[flow_pb2.FlowFilter], blacklist: Sequence[flow_pb2.FlowFilter]
) -> SqlCondition:
    """The same selection as compile_predicate, as SQL over the flow table (common/schema)."""
    included, excluded, sql = _compile(whitelist, blacklist)

    def filter_sql(clauses: list[Clause]) -> str:
        return sql_all([clause.sql for clause in clauses])

    parts = []
    if included:
        parts.append(sql_any([filter_sql(c) for c in included]))
    if excluded:
        parts.append(f"NOT ({sql_any([filter_sql(c) for c in excluded])})")
    return SqlCondition(sql_all(parts) if parts else "1", sql.values)
