"""Times and durations as users type them: `--since 1h43m`, `--until 2025-11-29T10:00Z`.

A time is either a duration in the past (Go's duration syntax, as Hubble takes
it: `3s`, `4m`, `1h43m`, `1.5h`, `300ms`) or an absolute time in one of the
layouts `hubble observe` accepts:

    YearMonthDay             2006-01-02                  (UTC midnight)
    YearMonthDayHour         2006-01-02T15Z07:00
    YearMonthDayHourMinute   2006-01-02T15:04Z07:00
    RFC3339 (Milli/Micro/Nano)  2006-01-02T15:04:05.999999999Z07:00
    RFC1123Z                 Mon, 02 Jan 2006 15:04:05 -0700
    StampMilli               Jan _2 15:04:05.000         (local time, latest past year)

where `Z07:00` is `Z` or a `+hh:mm`/`-hh:mm` offset. StampMilli is the compact
printer's default time format, so a time copied from its output works as is.
Times keep their nanoseconds.
"""

from __future__ import annotations

import calendar
import re
import time
from datetime import date
from typing import Final

from google.protobuf.timestamp_pb2 import Timestamp

from flowscope.common.errors import InputError

NANOS_PER_SECOND: Final = 1_000_000_000

_UNIT_NANOS: Final[dict[str, int]] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": NANOS_PER_SECOND,
    "m": 60 * NANOS_PER_SECOND,
    "h": 3600 * NANOS_PER_SECOND,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION = re.compile(rf"[-+]?(?:{_DURATION_PART.pattern})+")

_ZONE = r"(?P<zone>[Zz]|[+-]\d{2}:\d{2})"
_DATE = r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
_RFC3339_LIKE = re.compile(
    rf"{_DATE}(?:[Tt](?P<hour>\d{{2}})(?::(?P<minute>\d{{2}})"
    rf"(?::(?P<second>\d{{2}})(?:\.(?P<fraction>\d{{1,9}}))?)?)?{_ZONE})?"
)
_MONTHS: Final[dict[str, int]] = {name: i for i, name in enumerate(calendar.month_abbr) if name}
_DAYS = "|".join(name for name in calendar.day_abbr)
_RFC1123Z = re.compile(
    rf"(?:{_DAYS}), (?P<day>\d{{2}}) (?P<month>[A-Z][a-z]{{2}}) (?P<year>\d{{4}}) "
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2}) (?P<offset>[+-]\d{4})"
)
_STAMP = re.compile(
    r"(?P<month>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) "
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?"
)

FORMATS_HELP: Final = (
    "a duration before now (3s, 4m, 1h43m) or a time: 2006-01-02, 2006-01-02T15Z, "
    "2006-01-02T15:04Z, RFC 3339 (2006-01-02T15:04:05.999999999Z07:00), "
    "RFC 1123Z (Mon, 02 Jan 2006 15:04:05 -0700) or StampMilli (Jan _2 15:04:05.000)"
)


def parse_duration(text: str) -> int:
    """A Go duration (`1h43m`, `1.5s`, `-2m`, `0`) in nanoseconds."""
    if text in ("0", "+0", "-0"):
        return 0
    if not _DURATION.fullmatch(text):
        raise InputError(f"invalid duration {text!r}: expected a number and a unit, like 5s")
    total = sum(
        _number_nanos(number, _UNIT_NANOS[unit]) for number, unit in _DURATION_PART.findall(text)
    )
    return -total if text.startswith("-") else total


def parse_time(text: str, *, now_ns: int | None = None) -> Timestamp:
    """The time `text` names; a duration counts back from now (`now_ns`, epoch nanoseconds)."""
    text = text.strip()
    if _DURATION.fullmatch(text) or text == "0":
        now = time.time_ns() if now_ns is None else now_ns
        return _timestamp(now - parse_duration(text), text)
    for parse in (_parse_rfc3339_like, _parse_rfc1123z, _parse_stamp):
        nanos = parse(text, now_ns)
        if nanos is not None:
            return _timestamp(nanos, text)
    raise InputError(f"cannot read {text!r} as a time: expected {FORMATS_HELP}")


def _number_nanos(number: str, unit: int) -> int:
    whole, _, fraction = number.partition(".")
    nanos = int(whole or "0") * unit
    if fraction:
        nanos += int(fraction) * unit // 10 ** len(fraction)
    return nanos


def _timestamp(nanos: int, text: str) -> Timestamp:
    seconds, fraction = divmod(nanos, NANOS_PER_SECOND)
    # Timestamp's valid range is years 1 to 9999.
    if not -62_135_596_800 <= seconds <= 253_402_300_799:
        raise InputError(f"time {text!r} is out of range")
    return Timestamp(seconds=seconds, nanos=fraction)


def _utc_nanos(
    text: str, year: int, month: int, day: int, hour: int, minute: int, second: int
) -> int:
    """Epoch nanoseconds of a UTC wall time, checking that the date exists."""
    try:
        date(year, month, day)
    except ValueError:
        raise InputError(f"cannot read {text!r} as a time: no such date") from None
    if hour > 23 or minute > 59 or second > 60:
        raise InputError(f"cannot read {text!r} as a time: no such time of day")
    return calendar.timegm((year, month, day, hour, minute, second)) * NANOS_PER_SECOND


def _fraction_nanos(fraction: str | None) -> int:
    return int(fraction.ljust(9, "0")) if fraction else 0


def _parse_rfc3339_like(text: str, now_ns: int | None) -> int | None:
    match = _RFC3339_LIKE.fullmatch(text)
    if match is None:
        return None
    year, month, day = int(match["year"]), int(match["month"]), int(match["day"])
    hour, minute, second = (int(match[name] or 0) for name in ("hour", "minute", "second"))
    nanos = _utc_nanos(text, year, month, day, hour, minute, second)
    zone = match["zone"]
    if zone and zone not in "Zz":
        sign = -1 if zone[0] == "-" else 1
        nanos -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * NANOS_PER_SECOND
    return nanos + _fraction_nanos(match["fraction"])


def _parse_rfc1123z(text: str, now_ns: int | None) -> int | None:
    match = _RFC1123Z.fullmatch(text)
    if match is None or match["month"] not in _MONTHS:
        return None
    month, day = _MONTHS[match["month"]], int(match["day"])
    hour, minute, second = int(match["hour"]), int(match["minute"]), int(match["second"])
    nanos = _utc_nanos(text, int(match["year"]), month, day, hour, minute, second)
    offset = match["offset"]
    sign = -1 if offset[0] == "-" else 1
    return nanos - sign * (int(offset[1:3]) * 3600 + int(offset[3:5]) * 60) * NANOS_PER_SECOND


def _parse_stamp(text: str, now_ns: int | None) -> int | None:
    """StampMilli has no year: the latest local time so written that is not in the future."""
    match = _STAMP.fullmatch(text)
    if match is None or match["month"] not in _MONTHS:
        return None
    month, day = _MONTHS[match["month"]], int(match["day"])
    hour, minute, second = int(match["hour"]), int(match["minute"]), int(match["second"])
    # The date must exist in some year; 2000 is a leap year.
    _utc_nanos(text, 2000, month, day, hour, minute, second)
    now = time.time_ns() if now_ns is None else now_ns
    year = time.localtime(now // NANOS_PER_SECOND).tm_year
    fraction = _fraction_nanos(match["fraction"])
    for candidate in range(year, year - 8, -1):
        if (month, day) == (2, 29) and not calendar.isleap(candidate):
            continue
        local = (candidate, month, day, hour, minute, second, 0, 0, -1)
        nanos = int(time.mktime(local)) * NANOS_PER_SECOND + fraction
        if nanos <= now:
            return nanos
    raise AssertionError("a leap year comes within 8 years")
