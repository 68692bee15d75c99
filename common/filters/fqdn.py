"""source_fqdn, destination_fqdn: DNS-name globs against source_names/destination_names.

A pattern is lower-cased, trimmed of spaces and of one trailing dot; "*"
matches any run of letters, digits, "-" and "."; letters, digits, "-", "_"
and "." match themselves; anything else is refused. The pattern must match
a whole name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Final

from flowscope.common.errors import FilterError
from flowscope.common.filters import regex
from flowscope.common.filters.base import Clause, Dimension, SqlParams, column, set_fields
from flowscope.proto.flow import flow_pb2

_FIELDS: Final[dict[str, tuple[str, Callable[[flow_pb2.Flow], Sequence[str]]]]] = {
    f"{side}_fqdn": (column(f"{side}_names"), attrgetter(f"{side}_names"))
    for side in ("source", "destination")
}
_LITERAL: Final = frozenset("-0123456789_abcdefghijklmnopqrstuvwxyz")


def name_pattern(field: str, text: str, element: str) -> str:
    """The regular expression for one DNS-name glob; element is its text in text."""
    pattern = element.strip().removesuffix(".").lower()
    if not pattern:
        raise FilterError(field, text, "empty pattern")
    if pattern.endswith("."):
        raise FilterError(field, text, "more than one trailing dot")
    parts = []
    for char in pattern:
        if char == ".":
            parts.append(r"\.")
        elif char == "*":
            parts.append("[-.0-9a-z]*")
        elif char in _LITERAL:
            parts.append(char)
        else:
            raise FilterError(
                field, text, f"{char!r} is not allowed; use letters, digits, '-', '_', '.', '*'"
            )
    return "".join(parts)


def _clause(field: str, values: Sequence[str], sql: SqlParams) -> Clause:
    sql_name, names_of = _FIELDS[field]
    pattern = regex.whole("|".join(name_pattern(field, text, text) for text in values))
    test = pattern.test

    def match(flow: flow_pb2.Flow) -> bool:
        return any(test(name) for name in names_of(flow))

    bound = sql.bind(pattern.re2, "String")
    return Clause(match, f"arrayExists(name -> match(name, {bound}), {sql_name})")


def _build(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    return [_clause(field, values, sql) for field, values in set_fields(ff, _FIELDS)]


FQDN = Dimension("fqdn", tuple(_FIELDS), _build)
