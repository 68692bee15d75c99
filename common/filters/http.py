"""HTTP fields of L7 flows: http_status_code, http_method, http_path, http_url, http_header.

As in Hubble, a FlowFilter with any http_* field must either not filter on
event_type or include the l7 event type among its event_type entries.
http_status_code is a full code ("404") or a prefix ("5+", "40+");
http_method is case-insensitive; http_path (the URL's percent-decoded path)
and http_url are regular expressions searched in the text; http_header needs
an exact key and value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final

from flowscope.common import accessors, vocab
from flowscope.common.errors import FilterError
from flowscope.common.filters import event_type, regex
from flowscope.common.filters.base import (
    Clause,
    Dimension,
    SqlParams,
    column,
    set_fields,
    sql_any,
)
from flowscope.proto.flow import flow_pb2

_CODE = column("http_code")
_METHOD = column("http_method")
_URL = column("http_url")
_PATH = column("http_path")
_HEADERS = column("http_headers")
_FULL_CODE: Final = re.compile(r"[1-5][0-9]{2}")
_CODE_PREFIX: Final = re.compile(r"[1-5][0-9]?\+")
# The smallest code with three digits: smaller ones print as "0xx", no prefix's start.
_THREE_DIGITS: Final = 100


def _status_code(values: Sequence[str], sql: SqlParams) -> Clause:
    full: set[int] = set()
    prefixes: list[str] = []
    for text in values:
        if _FULL_CODE.fullmatch(text):
            full.add(int(text))
        elif _CODE_PREFIX.fullmatch(text):
            prefixes.append(text.removesuffix("+"))
        else:
            raise FilterError(
                "http_status_code", text, 'expected a code such as "404" or a prefix such as "5+"'
            )
    codes = frozenset(full)
    starts = tuple(prefixes)

    def match(flow: flow_pb2.Flow) -> bool:
        code = flow.l7.http.code
        return code in codes or (code >= _THREE_DIGITS and str(code).startswith(starts))

    parts = []
    if codes:
        parts.append(sql.one_of(_CODE, sorted(codes), "UInt32"))
    if starts:
        prefix_match = sql_any(
            [f"startsWith(toString({_CODE}), {sql.bind(p, 'String')})" for p in starts]
        )
        parts.append(f"{_CODE} >= {_THREE_DIGITS} AND ({prefix_match})")
    return Clause(match, sql_any(parts))


def _method(values: Sequence[str], sql: SqlParams) -> Clause:
    wanted = frozenset(method.lower() for method in values)

    def match(flow: flow_pb2.Flow) -> bool:
        method = flow.l7.http.method
        return bool(method) and method.lower() in wanted

    lowered = sql.one_of(f"lowerUTF8({_METHOD})", sorted(wanted), "String")
    return Clause(match, f"notEmpty({_METHOD}) AND {lowered}")


def _path(values: Sequence[str], sql: SqlParams) -> Clause:
    patterns = [regex.search("http_path", pattern) for pattern in values]
    tests = tuple(pattern.test for pattern in patterns)

    def match(flow: flow_pb2.Flow) -> bool:
        path = accessors.http_path(flow.l7.http.url)
        return path is not None and any(test(path) for test in tests)

    matches = [f"match({_PATH}, {sql.bind(pattern.re2, 'String')})" for pattern in patterns]
    return Clause(match, f"{_PATH} IS NOT NULL AND ({sql_any(matches)})")


def _url(values: Sequence[str], sql: SqlParams) -> Clause:
    patterns = [regex.search("http_url", pattern) for pattern in values]
    tests = tuple(pattern.test for pattern in patterns)

    def match(flow: flow_pb2.Flow) -> bool:
        url = flow.l7.http.url
        return bool(url) and any(test(url) for test in tests)

    matches = [f"match({_URL}, {sql.bind(pattern.re2, 'String')})" for pattern in patterns]
    return Clause(match, f"notEmpty({_URL}) AND ({sql_any(matches)})")


def _header(values: Sequence[flow_pb2.HTTPHeader], sql: SqlParams) -> Clause:
    wanted = frozenset((header.key, header.value) for header in values)

    def match(flow: flow_pb2.Flow) -> bool:
        return any((header.key, header.value) in wanted for header in flow.l7.http.headers)

    pairs = sql.bind(sorted(wanted), "Array(Tuple(String, String))")
    return Clause(match, f"hasAny({_HEADERS}, {pairs})")


_BUILDERS: Final[dict[str, Callable[[Any, SqlParams], Clause]]] = {
    "http_status_code": _status_code,
    "http_method": _method,
    "http_path": _path,
    "http_url": _url,
    "http_header": _header,
}


def _text(value: str | flow_pb2.HTTPHeader) -> str:
    return value if isinstance(value, str) else f"{value.key}:{value.value}"


def _build(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    clauses = []
    for field, values in set_fields(ff, _BUILDERS):
        if ff.event_type and all(entry.type != vocab.EVENT_TYPE_L7 for entry in ff.event_type):
            types = ", ".join(event_type.describe(entry) for entry in ff.event_type)
            raise FilterError(
                field,
                ", ".join(_text(value) for value in values),
                f"HTTP filters need event_type to include l7 ({vocab.EVENT_TYPE_L7}), got {types}",
            )
        clauses.append(_BUILDERS[field](values, sql))
    return clauses


HTTP = Dimension("http", tuple(_BUILDERS), _build)
