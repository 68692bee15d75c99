"""Times and durations as --since and --until take them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from flowscope.common.errors import InputError
from flowscope.common.timeparse import parse_duration, parse_time

# 2019-07-01T14:00:00Z, a Monday.
NOW = 1_561_989_600 * 1_000_000_000


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """StampMilli is local time: fix the zone, and restore it after."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10s", "2019-07-01T13:59:50Z"),
        ("5m", "2019-07-01T13:55:00Z"),
        ("20h", "2019-06-30T18:00:00Z"),
        ("1h43m", "2019-07-01T12:17:00Z"),
        ("1.5h", "2019-07-01T12:30:00Z"),
        ("300ms", "2019-07-01T13:59:59.700Z"),
        ("1m30s250us", "2019-07-01T13:58:29.999750Z"),
        ("0", "2019-07-01T14:00:00Z"),
        ("-1h", "2019-07-01T15:00:00Z"),
        ("2019-06-30", "2019-06-30T00:00:00Z"),
        ("2019-06-30T18Z", "2019-06-30T18:00:00Z"),
        ("2019-06-30T18+02:00", "2019-06-30T16:00:00Z"),
        ("2019-06-30T18:45Z", "2019-06-30T18:45:00Z"),
        ("2019-06-30T18:45+02:00", "2019-06-30T16:45:00Z"),
        ("2019-06-30T18:00:00Z", "2019-06-30T18:00:00Z"),
        ("2019-06-30T18:00:00.123Z", "2019-06-30T18:00:00.123Z"),
        ("2019-06-30T18:00:00.123456789-01:30", "2019-06-30T19:30:00.123456789Z"),
        ("Sun, 30 Jun 2019 18:00:00 +0200", "2019-06-30T16:00:00Z"),
        ("Jun 30 18:00:00.123", "2019-06-30T18:00:00.123Z"),
        ("Jul  1 13:00:00.000", "2019-07-01T13:00:00Z"),
        # StampMilli has no year: a date later in the year is last year's.
        ("Dec 31 23:00:00.000", "2018-12-31T23:00:00Z"),
    ],
)
def test_parse_time(text: str, expected: str) -> None:
    assert parse_time(text, now_ns=NOW).ToJsonString() == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", "cannot read 'yesterday' as a time: expected a duration before now"),
        ("3 s", "cannot read '3 s' as a time"),
        ("1h-3m", "cannot read '1h-3m' as a time"),
        ("2019-02-29", "cannot read '2019-02-29' as a time: no such date"),
        ("2019-06-30T25Z", "cannot read '2019-06-30T25Z' as a time: no such time of day"),
        ("Feb 30 10:00:00.000", "cannot read 'Feb 30 10:00:00.000' as a time: no such date"),
        ("2019-06-30T18:00:00", "cannot read '2019-06-30T18:00:00' as a time"),
    ],
)
def test_parse_time_rejects(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_time(text, now_ns=NOW)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("5s", 5_000_000_000),
        ("1h43m", 6_180_000_000_000),
        ("1.5ms", 1_500_000),
        ("2µs", 2_000),
        ("7ns", 7),
        ("-2m", -120_000_000_000),
        ("0", 0),
    ],
)
def test_parse_duration(text: str, nanos: int) -> None:
    assert parse_duration(text) == nanos


@pytest.mark.parametrize("text", ["", "5", "s", "5x", "1h 2m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(InputError, match=f"invalid duration {text!r}"):
        parse_duration(text)
