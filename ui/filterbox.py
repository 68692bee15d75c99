"""The web UI's filter box: `[!][from:|to:]kind=value` terms compiled to FlowFilters.

A term names one endpoint property or one flow property:

    label=k8s:app=web    (or just `k8s:app=web`: label is the default kind)
    ip=10.0.0.5          ip=10.0.0.0/24
    dns=*.example.com    identity=world   identity=1234
    workload=web         workload=Deployment/web
    pod=ns/name-prefix   port=80
    tcp-flag=SYN,ACK     verdict=dropped

`from:` puts an endpoint term on the source, `to:` on the destination; without
either it matches the endpoint on either side. tcp-flag and verdict describe the
flow and take no direction. Terms are combined as `flowscope observe` combines
its flags: the whitelist is two FlowFilters, left and right, where an
either-side term goes to the source fields of the left one and the destination
fields of the right one, so `ip=X label=L` wants X and L on the same endpoint;
every other term goes to both. Terms of the same field add values, which match
when any does (`verdict=dropped verdict=audit`). `!` excludes what a term
matches: each negated term becomes its own blacklist entries (one per side).

Values are checked by the same filter compiler the relay and store use, once,
here: a bad term raises FilterBoxError naming the term, its position and the
problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from flowscope.common import vocab
from flowscope.common.errors import FilterError
from flowscope.common.filters import compile_predicate
from flowscope.proto.flow import flow_pb2

SIDES: Final = ("source", "destination")
DIRECTIONS: Final = {"from": ("source",), "to": ("destination",)}

# kind -> the FlowFilter field of each side ("{side}" filled in), or a flow field.
_ENDPOINT_FIELDS: Final = {
    "label": "{side}_label",
    "ip": "{side}_ip",
    "dns": "{side}_fqdn",
    "identity": "{side}_identity",
    "workload": "{side}_workload",
    "pod": "{side}_pod",
    "port": "{side}_port",
}
_FLOW_FIELDS: Final = {"tcp-flag": "tcp_flags", "verdict": "verdict"}
KINDS: Final = (*_ENDPOINT_FIELDS, *_FLOW_FIELDS)
_KIND_PREFIX: Final = re.compile(rf"({'|'.join(re.escape(kind) for kind in KINDS)})=")
_TERM: Final = re.compile(r"\S+")


class FilterBoxError(FilterError):
    """A term of the filter box that cannot be compiled; `term` is its text and
    `offset` where it starts in the box."""

    def __init__(self, term: str, offset: int, problem: str) -> None:
        self.term = term
        self.offset = offset
        super().__init__(f"filter term at column {offset + 1}", term, problem)


@dataclass(frozen=True, slots=True)
class CompiledFilters:
    whitelist: list[flow_pb2.FlowFilter] = field(default_factory=list)
    blacklist: list[flow_pb2.FlowFilter] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Term:
    text: str
    offset: int
    negated: bool
    sides: tuple[str, ...]  # () for a flow term
    either: bool  # an endpoint term without from:/to:
    field: str  # "{side}_ip" or "verdict"
    value: object


def _workload(text: str) -> object:
    kind, slash, name = text.partition("/")
    if not (name if slash else kind):
        raise ValueError("expected [kind/]name")
    return flow_pb2.Workload(kind=kind, name=name) if slash else flow_pb2.Workload(name=kind)


def _tcp_flags(text: str) -> object:
    flags = flow_pb2.TCPFlags()
    for name in text.split(","):
        if name.upper() not in vocab.TCP_FLAG_ORDER:
            raise ValueError(
                f"unknown TCP flag {name!r}: expected one of {', '.join(vocab.TCP_FLAG_ORDER)}"
            )
        setattr(flags, name.upper(), True)
    return flags


def _verdict(text: str) -> object:
    names = [v.name for v in flow_pb2.Verdict.DESCRIPTOR.values if v.name != "VERDICT_UNKNOWN"]
    if text.upper() not in names:
        raise ValueError(f"expected one of {', '.join(name.lower() for name in names)}")
    return flow_pb2.Verdict.Value(text.upper())


_CONVERT: Final[dict[str, Callable[[str], object]]] = {
    "identity": vocab.parse_identity,
    "workload": _workload,
    "tcp-flag": _tcp_flags,
    "verdict": _verdict,
}


def _add(ff: flow_pb2.FlowFilter, name: str, value: object) -> None:
    getattr(ff, name).append(value)


def _parse_term(text: str, offset: int) -> _Term:
    body = text
    negated = body.startswith("!")
    if negated:
        body = body[1:]
    direction, colon, rest = body.partition(":")
    sides: tuple[str, ...] = SIDES
    either = True
    if colon and direction in DIRECTIONS:
        sides, either, body = DIRECTIONS[direction], False, rest
    prefix = _KIND_PREFIX.match(body)
    kind, value = (prefix.group(1), body[prefix.end() :]) if prefix else ("label", body)
    if not value:
        raise FilterBoxError(text, offset, f"{kind} needs a value: {kind}=VALUE")
    if kind in _FLOW_FIELDS:
        if not either:
            raise FilterBoxError(text, offset, f"{kind} describes the flow: no from: or to:")
        sides, either = (), False
    try:
        converted = _CONVERT[kind](value) if kind in _CONVERT else value
    except ValueError as error:
        raise FilterBoxError(text, offset, str(error)) from None
    name = _FLOW_FIELDS.get(kind) or _ENDPOINT_FIELDS[kind]
    term = _Term(text, offset, negated, sides, either, name, converted)
    # The compiler checks IPs, CIDRs, ports, selectors and names: once, here.
    try:
        compile_predicate(_term_filters(term), [])
    except FilterError as error:
        raise FilterBoxError(text, offset, error.problem) from None
    return term


def _term_filters(term: _Term) -> list[flow_pb2.FlowFilter]:
    """The filters matching the term alone (its blacklist entries when negated)."""
    if not term.sides:
        ff = flow_pb2.FlowFilter()
        _add(ff, term.field, term.value)
        return [ff]
    filters = []
    for side in term.sides:
        ff = flow_pb2.FlowFilter()
        _add(ff, term.field.format(side=side), term.value)
        filters.append(ff)
    return filters


def parse(text: str) -> CompiledFilters:
    """The whitelist and blacklist the filter box's text selects; FilterBoxError if a
    term is invalid."""
    terms = [_parse_term(match.group(), match.start()) for match in _TERM.finditer(text)]
    blacklist = [ff for term in terms if term.negated for ff in _term_filters(term)]
    wanted = [term for term in terms if not term.negated]
    if not wanted:
        return CompiledFilters([], blacklist)
    left, right = flow_pb2.FlowFilter(), flow_pb2.FlowFilter()
    for term in wanted:
        if term.either:
            _add(left, term.field.format(side="source"), term.value)
            _add(right, term.field.format(side="destination"), term.value)
            continue
        for ff in (left, right):
            if term.sides:
                for side in term.sides:
                    _add(ff, term.field.format(side=side), term.value)
            else:
                _add(ff, term.field, term.value)
    whitelist = [left] if left == right else [left, right]
    return CompiledFilters(whitelist, blacklist)
