"""Label selectors: Kubernetes selector syntax over flowscope's labels.

Endpoint labels are strings "source:key=value" ("k8s:app=web"; "reserved:world"
has an empty value); node labels usually have no source ("kubernetes.io/os=linux").
The source is what comes before the first ":" that precedes any "=".

A selector is a comma-separated list of requirements that must all hold:

    key          a label with the key exists        !key          none exists
    key=v        a label with the key has value v   key!=v        none has value v
    key==v       same as key=v                      key=          the value is empty
    key in (a,b) a label with the key has a or b    key notin (a,b)  none has a or b
    key>n        a label with the key has an integer value above n (key<n: below)

A key is "source:name" ("k8s:app") or just "name" ("app"); without a source, or
with the source "any", it matches the name under every source.

Each requirement compiles to one regular expression over a whole label string,
written in the common subset of Python's re and RE2, so that in-memory filters
and the store's SQL (ClickHouse match/extract) test labels alike.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from flowscope.common.errors import FilterError

# Integer values compared by > and < have at most 18 digits, so that they fit
# ClickHouse's Int64 as well as Python's int.
_INTEGER: Final = "-?[0-9]{1,18}"
_INTEGER_VALUE: Final = re.compile(_INTEGER)
_SOURCE: Final = re.compile(r"[A-Za-z0-9_-]+")
_NAME: Final = re.compile(r"[A-Za-z0-9_./-]+")
# Any source, or none: a label without ":" before its "=" has no source.
_ANY_SOURCE_PREFIX: Final = "(?:[^:=]*:)?"
_ANY_SOURCE: Final = "any"

_TOKENS: Final = re.compile(
    r"\s*(?:(?P<op>==|!=|=|>|<|!|,|\(|\))|(?P<word>[A-Za-z0-9_./:-]+)|(?P<bad>\S))"
)


class Operator(enum.Enum):
    """How a requirement tests the labels that carry its key."""

    EXISTS = "exists"
    NOT_EXISTS = "!"
    IN = "in"
    NOT_IN = "notin"
    GREATER = ">"
    LESS = "<"


@dataclass(frozen=True, slots=True)
class Requirement:
    """One requirement of a selector.

    pattern matches a whole label string that carries the key (and, for IN and
    NOT_IN, one of the values); for GREATER and LESS its one group captures the
    integer value, compared with bound.
    """

    operator: Operator
    pattern: str
    bound: int = 0
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", re.compile(self.pattern))

    @property
    def anchored_pattern(self) -> str:
        """pattern anchored at both ends, for RE2's match() and extract()."""
        return f"^(?:{self.pattern})$"

    def holds(self, labels: Sequence[str]) -> bool:
        """Whether the label set satisfies this requirement."""
        fullmatch = self._regex.fullmatch
        if self.operator is Operator.GREATER:
            return any((m := fullmatch(label)) and int(m[1]) > self.bound for label in labels)
        if self.operator is Operator.LESS:
            return any((m := fullmatch(label)) and int(m[1]) < self.bound for label in labels)
        present = any(fullmatch(label) for label in labels)
        if self.operator is Operator.NOT_EXISTS or self.operator is Operator.NOT_IN:
            return not present
        return present


@dataclass(frozen=True, slots=True)
class Selector:
    """A parsed selector: the label set matches when every requirement holds."""

    text: str
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Sequence[str]) -> bool:
        return all(requirement.holds(labels) for requirement in self.requirements)


def parse_selector(text: str, field_name: str) -> Selector:
    """Parse a selector; field_name names the filter field in a FilterError."""
    return Selector(text, _Parser(text, field_name).selector())


class _Parser:
    """Recursive descent over the selector's tokens."""

    def __init__(self, text: str, field_name: str) -> None:
        self.text = text
        self.field_name = field_name
        self.tokens: list[tuple[str, str]] = []
        for token in _TOKENS.finditer(text):
            kind = token.lastgroup
            if kind == "bad":
                raise self.error(f"unexpected {token['bad']!r} at position {token.start('bad')}")
            if kind is not None:
                self.tokens.append((kind, token[kind]))
        self.position = 0

    def error(self, problem: str) -> FilterError:
        return FilterError(self.field_name, self.text, problem)

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str] | None:
        token = self.peek()
        self.position += 1
        return token

    def expect_op(self, op: str) -> None:
        token = self.take()
        if token != ("op", op):
            found = "the end" if token is None else repr(token[1])
            raise self.error(f"expected {op!r} but found {found}")

    def selector(self) -> tuple[Requirement, ...]:
        if not self.tokens:
            raise self.error("empty selector")
        requirements = [self.requirement()]
        while self.peek() is not None:
            self.expect_op(",")
            requirements.append(self.requirement())
        return tuple(requirements)

    def requirement(self) -> Requirement:
        if self.peek() == ("op", "!"):
            self.take()
            key = self.key()
            return Requirement(Operator.NOT_EXISTS, key + "(?:=.*)?")
        key = self.key()
        token = self.peek()
        if token is None or token == ("op", ","):
            return Requirement(Operator.EXISTS, key + "(?:=.*)?")
        self.take()
        if token in (("op", "="), ("op", "==")):
            return Requirement(Operator.IN, key + _value_tail([self.optional_value()]))
        if token == ("op", "!="):
            return Requirement(Operator.NOT_IN, key + _value_tail([self.optional_value()]))
        if token in (("op", ">"), ("op", "<")):
            bound = self.integer()
            operator = Operator.GREATER if token[1] == ">" else Operator.LESS
            return Requirement(operator, f"{key}=({_INTEGER})", bound)
        if token in (("word", "in"), ("word", "notin")):
            operator = Operator.IN if token[1] == "in" else Operator.NOT_IN
            return Requirement(operator, key + _value_tail(self.value_set()))
        raise self.error(f"unexpected {token[1]!r} after a key")

    def key(self) -> str:
        token = self.take()
        if token is None or token[0] != "word":
            raise self.error("expected a label key")
        source, colon, name = token[1].rpartition(":")
        if colon and not _SOURCE.fullmatch(source):
            raise self.error(f"invalid label source {source!r}")
        if not _NAME.fullmatch(name):
            raise self.error(f"invalid label key {name!r}")
        prefix = re.escape(source) + ":" if source and source != _ANY_SOURCE else _ANY_SOURCE_PREFIX
        return prefix + re.escape(name)

    def optional_value(self) -> str:
        token = self.peek()
        if token is None or token == ("op", ","):
            return ""
        return self.value()

    def value(self) -> str:
        token = self.take()
        if token is None or token[0] != "word":
            raise self.error("expected a label value")
        return token[1]

    def integer(self) -> int:
        text = self.value()
        if not _INTEGER_VALUE.fullmatch(text):
            raise self.error(f"{text!r} is not an integer of at most 18 digits")
        return int(text)

    def value_set(self) -> list[str]:
        self.expect_op("(")
        values = [self.value()]
        while self.peek() == ("op", ","):
            self.take()
            values.append(self.value())
        self.expect_op(")")
        return values


def _value_tail(values: Sequence[str]) -> str:
    """The pattern for "=value" with one of values; an empty value also matches no "="."""
    listed = [re.escape(value) for value in values if value]
    tail = "=(?:" + "|".join(listed) + ")" if listed else ""
    if "" not in values:
        return tail
    return f"(?:{tail}|=?)" if tail else "=?"
