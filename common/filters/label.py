"""source_label, destination_label, node_labels: label selectors (common/labels.py).

The values of one field are alternatives; a selector's requirements must all
hold. Flows of one endpoint share a label set, so results are cached per set.
"""

from __future__ import annotations

import functools
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
from flowscope.common.labels import Operator, Requirement, Selector, parse_selector
from flowscope.proto.flow import flow_pb2

_FIELDS: Final[dict[str, tuple[str, Callable[[flow_pb2.Flow], Sequence[str]]]]] = {
    "source_label": (column("source_labels"), attrgetter("source.labels")),
    "destination_label": (column("destination_labels"), attrgetter("destination.labels")),
    "node_labels": (column("node_labels"), attrgetter("node_labels")),
}
_LABEL_SETS_CACHED: Final = 4096


def _requirement_sql(requirement: Requirement, sql_name: str, sql: SqlParams) -> str:
    pattern = sql.bind(requirement.anchored_pattern, "String")
    if requirement.operator in (Operator.GREATER, Operator.LESS):
        value = f"toInt64OrNull(extract(label, {pattern}))"
        comparison = ">" if requirement.operator is Operator.GREATER else "<"
        bound = sql.bind(requirement.bound, "Int64")
        return f"arrayExists(label -> ifNull({value} {comparison} {bound}, 0), {sql_name})"
    exists = f"arrayExists(label -> match(label, {pattern}), {sql_name})"
    if requirement.operator in (Operator.NOT_EXISTS, Operator.NOT_IN):
        return f"NOT {exists}"
    return exists


def _selector_sql(selector: Selector, sql_name: str, sql: SqlParams) -> str:
    return sql_all([_requirement_sql(r, sql_name, sql) for r in selector.requirements])


def _clause(field: str, values: Sequence[str], sql: SqlParams) -> Clause:
    sql_name, labels_of = _FIELDS[field]
    selectors = tuple(parse_selector(text, field) for text in values)

    @functools.lru_cache(maxsize=_LABEL_SETS_CACHED)
    def selected(labels: tuple[str, ...]) -> bool:
        return any(selector.matches(labels) for selector in selectors)

    def match(flow: flow_pb2.Flow) -> bool:
        return selected(tuple(labels_of(flow)))

    return Clause(match, sql_any([_selector_sql(s, sql_name, sql) for s in selectors]))


def _build(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    return [_clause(field, values, sql) for field, values in set_fields(ff, _FIELDS)]


LABELS = Dimension("labels", tuple(_FIELDS), _build)
