"""Timestamps in the layouts `flowscope observe --time-format` offers.

The layouts and their names are Hubble's: StampMilli (the default,
"Jan _2 15:04:05.000"), YearMonthDay, YearMonthDayHour,
YearMonthDayHourMinute, RFC3339, RFC3339Milli, RFC3339Micro, RFC3339Nano
and RFC1123Z. Times print in UTC, as Hubble prints them. Fractions are cut,
never rounded; the RFC3339 fractions drop trailing zeros, and the dot too
when nothing is left, as Go does.

Formatting is on the path of every printed flow, so the part of the text
that only changes once a second is kept from the previous call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from google.protobuf.timestamp_pb2 import Timestamp

DEFAULT_TIME_FORMAT: Final = "StampMilli"
NOT_AVAILABLE: Final = "N/A"

_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# The range a protobuf Timestamp may hold: years 1 to 9999.
_MIN_SECONDS: Final = -62135596800
_MAX_SECONDS: Final = 253402300799


def _date(tm: time.struct_time) -> str:
    return f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}"


def _clock(tm: time.struct_time) -> str:
    return f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"


# Each layout splits into the text before the fraction, the fraction's
# digit count (0: none), whether its trailing zeros are trimmed, and the
# text after it.
_Split = tuple[str, int, bool, str]

_LAYOUTS: Final[dict[str, Callable[[time.struct_time], _Split]]] = {
    "StampMilli": lambda tm: (
        f"{_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} {_clock(tm)}", 3, False, ""),
    "YearMonthDay": lambda tm: (_date(tm), 0, False, ""),
    "YearMonthDayHour": lambda tm: (
        f"{_date(tm)}T{tm.tm_hour:02d}", 0, False, "Z"),
    "YearMonthDayHourMinute": lambda tm: (
        f"{_date(tm)}T{tm.tm_hour:02d}:{tm.tm_min:02d}", 0, False, "Z"),
    "RFC3339": lambda tm: (f"{_date(tm)}T{_clock(tm)}", 0, False, "Z"),
    "RFC3339Milli": lambda tm: (f"{_date(tm)}T{_clock(tm)}", 3, True, "Z"),
    "RFC3339Micro": lambda tm: (f"{_date(tm)}T{_clock(tm)}", 6, True, "Z"),
    "RFC3339Nano": lambda tm: (f"{_date(tm)}T{_clock(tm)}", 9, True, "Z"),
    "RFC1123Z": lambda tm: (
        f"{_WEEKDAYS[tm.tm_wday]}, {tm.tm_mday:02d} {_MONTHS[tm.tm_mon - 1]} "
        f"{tm.tm_year:04d} {_clock(tm)} +0000", 0, False, ""),
}

TIME_FORMATS: Final[tuple[str, ...]] = tuple(_LAYOUTS)


def is_time_format(name: str) -> bool:
    """Whether `name` is one of TIME_FORMATS (others fall back to StampMilli)."""
    return name in _LAYOUTS


class TimeFormatter:
    """Formats timestamps in one layout; unknown names mean StampMilli."""

    def __init__(self, name: str) -> None:
        self._layout = _LAYOUTS.get(name, _LAYOUTS[DEFAULT_TIME_FORMAT])
        # The last second formatted, split around its fraction.
        self._seconds: int | None = None
        self._split: _Split = ("", 0, False, "")
        # The last instant formatted and its text: flows come in bursts.
        self._last: tuple[int, int] = (0, -1)
        self._last_text = ""

    def format(self, seconds: int, nanos: int) -> str:
        """The instant `seconds`.`nanos` since the epoch; "N/A" if out of range."""
        if (seconds, nanos) == self._last:
            return self._last_text
        if not (_MIN_SECONDS <= seconds <= _MAX_SECONDS and 0 <= nanos < 1_000_000_000):
            return NOT_AVAILABLE
        if seconds != self._seconds:
            self._split = self._layout(time.gmtime(seconds))
            self._seconds = seconds
        head, digits, trim, tail = self._split
        text = head + tail
        if digits:
            fraction = f"{nanos:09d}"[:digits]
            if trim:
                fraction = fraction.rstrip("0")
            if fraction:
                text = f"{head}.{fraction}{tail}"
        self._last = (seconds, nanos)
        self._last_text = text
        return text

    def timestamp(self, value: Timestamp | None) -> str:
        """A protobuf Timestamp, "N/A" when it is absent or invalid."""
        if value is None:
            return NOT_AVAILABLE
        return self.format(value.seconds, value.nanos)
