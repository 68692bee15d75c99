"""Regular expressions that mean the same in memory (Python re) and in the store (RE2).

Filter values such as http_path or dns_query are RE2 expressions (Hubble's
syntax, and ClickHouse's match()). Python's re reads most of RE2 alike once
\\d, \\w, \\s and \\b are restricted to ASCII as in RE2, and "." matches a
newline as ClickHouse configures RE2 to do. Where the two differ
on a construct that is simple to spot, the pattern is refused when the filter
is compiled instead of meaning one thing in memory and another in the store:
lookarounds, backreferences, atomic groups, conditionals, possessive
quantifiers, "{,n}" (a repetition in Python, a literal in RE2), repetition
counts above RE2's 1000, POSIX classes such as [[:alpha:]], "[[", "&&", "||",
"~~" and "--" inside a class (reserved by Python for set operations) and
Python-only escapes and flags. Python's "$" also matches before a final
newline, RE2's only at the end: Python is given \\Z in its place, unless the
pattern turns on multiline mode, where both end lines alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from flowscope.common.errors import FilterError

_RE2_MAX_REPEAT: Final = 1000
# Group openings "(?X" that RE2 reads, besides inline flag groups.
_RE2_GROUPS: Final = ("(?:", "(?P<")
_RE2_FLAGS: Final = frozenset("imsU-")
_PYTHON_ONLY_ESCAPES: Final = frozenset("0123456789ZuUN")
_REPEAT: Final = re.compile(r"\{(\d*)(,(\d*))?\}")
_POSIX_CLASS: Final = re.compile(r"\[:[a-z]+:\]")
_SET_OPERATORS: Final = frozenset("[&|~-")
# As ClickHouse runs RE2: "." also matches a newline; classes are ASCII.
_FLAGS: Final = re.ASCII | re.DOTALL


@dataclass(frozen=True, slots=True)
class Regex:
    """A compiled pattern: test() for flows in memory, re2 for ClickHouse's match()."""

    test: Callable[[str], object]
    re2: str


def search(field: str, pattern: str) -> Regex:
    """A user's pattern, matched anywhere in the text as RE2's match() does."""
    try:
        compiled = re.compile(_python_pattern(pattern), _FLAGS)
    except _Unsupported as unsupported:
        raise FilterError(field, pattern, str(unsupported)) from None
    except re.error as error:
        raise FilterError(field, pattern, f"invalid regular expression: {error}") from None
    return Regex(compiled.search, pattern)


def whole(pattern: str) -> Regex:
    """A pattern flowscope generated (from the common subset), matching the whole text."""
    return Regex(re.compile(pattern, _FLAGS).fullmatch, f"^(?:{pattern})$")


class _Unsupported(ValueError):
    """A construct that Python and RE2 would read differently."""


def _python_pattern(pattern: str) -> str:
    """pattern as Python must read it to agree with RE2; _Unsupported when it cannot."""
    if _POSIX_CLASS.search(pattern):
        raise _Unsupported("POSIX character classes such as [[:alpha:]] are not supported")
    in_class = False
    multiline = False
    ends: list[int] = []  # positions of "$" anchors
    i = 0
    while i < len(pattern):
        char = pattern[i]
        following = pattern[i + 1 : i + 2]
        if char == "\\":
            if following in _PYTHON_ONLY_ESCAPES and following:
                raise _Unsupported(f"the escape \\{following} is not supported")
            i += 2
            continue
        if in_class:
            if char == "]":
                in_class = False
            elif char in _SET_OPERATORS and following == char:
                raise _Unsupported(f"{char * 2!r} inside a character class is not supported")
        elif char == "[":
            in_class = True
            # A "]" right after "[" or "[^" is a literal member of the class.
            if pattern[i + 1 : i + 3] == "^]":
                i += 2
            elif following == "]":
                i += 1
        elif char == "(" and following == "?":
            multiline |= "m" in _group_flags(pattern[i:])
        elif char in "*+?" and following == "+":
            raise _Unsupported("possessive quantifiers are not supported")
        elif char == "{":
            _check_repeat(pattern[i:])
        elif char == "$":
            ends.append(i)
        i += 1
    if multiline:  # "$" ends lines alike in both
        return pattern
    # Outside multiline mode RE2's "$" is the end of the text; Python's is \\Z.
    for position in reversed(ends):
        pattern = pattern[:position] + r"\Z" + pattern[position + 1 :]
    return pattern


def _group_flags(group: str) -> str:
    """The inline flags a group opening "(?" sets ("i" for "(?i)"); _Unsupported
    for the groups RE2 lacks."""
    if group.startswith(_RE2_GROUPS):
        return ""
    flags = re.match(r"\(\?([^:)]*)[:)]", group)
    if flags is not None and flags[1] and set(flags[1]) <= _RE2_FLAGS:
        return flags[1]
    raise _Unsupported(
        f"groups opening with {group[:3]!r} are not supported "
        "(no lookarounds, backreferences, atomic groups, conditionals or comments)"
    )


def _check_repeat(text: str) -> None:
    """_Unsupported when a "{" opens a repetition that RE2 reads otherwise."""
    repeat = _REPEAT.match(text)
    if repeat is None or not (repeat[1] or repeat[2]):
        return  # a literal "{" in both
    low, high = repeat[1], repeat[3]
    if not low:
        raise _Unsupported(f"the repetition {repeat[0]!r} needs a lower bound")
    if any(bound and int(bound) > _RE2_MAX_REPEAT for bound in (low, high)):
        raise _Unsupported(f"the repetition {repeat[0]!r} exceeds {_RE2_MAX_REPEAT}")
    if text[len(repeat[0]) :].startswith("+"):
        raise _Unsupported("possessive quantifiers are not supported")
