"""What every filter dimension is made of, and the pieces they share.

A dimension reads some FlowFilter fields and compiles each set field into one
Clause: an in-memory predicate over a Flow and the equivalent ClickHouse
boolean expression. Filter values reach SQL only as bound parameters
({p0:Type}), allocated by SqlParams; the SQL text holds column names,
functions, placeholders and flowscope's own numeric constants, never a quoted
literal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from flowscope.common import schema
from flowscope.proto.flow import flow_pb2

Predicate = Callable[[flow_pb2.Flow], bool]


@dataclass(frozen=True, slots=True)
class Clause:
    """One compiled FlowFilter field: its predicate and its SQL, which must agree."""

    match: Predicate
    sql: str


class SqlParams:
    """Allocates the bound parameters of one compiled condition (p0, p1, ...)."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def bind(self, value: object, clickhouse_type: str) -> str:
        """Register value and return its placeholder, "{p3:Array(String)}"."""
        name = f"p{len(self.values)}"
        self.values[name] = value
        return "{" + name + ":" + clickhouse_type + "}"

    def one_of(self, column: str, values: Iterable[object], clickhouse_type: str) -> str:
        """SQL for "column holds one of values" (column must not be Nullable)."""
        return f"{column} IN {self.bind(list(values), f'Array({clickhouse_type})')}"


@dataclass(frozen=True, slots=True)
class Dimension:
    """A filter dimension: the FlowFilter fields it owns and how it compiles them."""

    name: str
    fields: tuple[str, ...]
    build: Callable[[flow_pb2.FlowFilter, SqlParams], list[Clause]]


def set_fields(ff: flow_pb2.FlowFilter, fields: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """(field, values) for each of fields that the FlowFilter sets."""
    for field in fields:
        values = getattr(ff, field)
        if values:
            yield field, values


def _always(flow: flow_pb2.Flow) -> bool:
    return True


def _never(flow: flow_pb2.Flow) -> bool:
    return False


ALWAYS: Final[Predicate] = _always
NEVER: Final[Predicate] = _never


def all_of(predicates: Sequence[Predicate]) -> Predicate:
    """A predicate true when all are (true for none)."""
    if not predicates:
        return ALWAYS
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        return lambda flow: first(flow) and second(flow)
    chain = tuple(predicates)

    def every(flow: flow_pb2.Flow) -> bool:
        # A plain loop: all() over a generator costs twice as much per flow.
        for predicate in chain:  # noqa: SIM110
            if not predicate(flow):
                return False
        return True

    return every


def any_of(predicates: Sequence[Predicate]) -> Predicate:
    """A predicate true when any is (false for none)."""
    if not predicates:
        return NEVER
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        return lambda flow: first(flow) or second(flow)
    chain = tuple(predicates)

    def some(flow: flow_pb2.Flow) -> bool:
        for predicate in chain:  # noqa: SIM110 (as in all_of)
            if predicate(flow):
                return True
        return False

    return some


def sql_all(parts: Sequence[str]) -> str:
    """SQL conjunction of parts; "1" when there are none."""
    return " AND ".join(f"({part})" for part in parts) if parts else "1"


def sql_any(parts: Sequence[str]) -> str:
    """SQL disjunction of parts; "0" when there are none."""
    return " OR ".join(f"({part})" for part in parts) if parts else "0"


def column(name: str) -> str:
    """The SQL name of a flow-table column; fails at import when the schema lacks it."""
    return schema.column(name).name


def member_of(value: Callable[[flow_pb2.Flow], object], wanted: frozenset[object]) -> Predicate:
    """A predicate true when value(flow) is one of wanted."""
    return lambda flow: value(flow) in wanted
