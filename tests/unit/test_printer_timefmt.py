"""Timestamps in every --time-format layout."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from flowscope.cli.printers.timefmt import TIME_FORMATS, TimeFormatter, is_time_format

# 2026-03-05 07:08:09 UTC, a Thursday.
INSTANT = 1772694489


@pytest.fixture
def zone() -> Iterator[None]:
    previous = os.environ.get("TZ")
    yield
    if previous is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = previous
    time.tzset()


def use_zone(name: str) -> None:
    os.environ["TZ"] = name
    time.tzset()


@pytest.mark.parametrize(("layout", "nanos", "expected"), [
    ("StampMilli", 123_456_789, "Mar  5 07:08:09.123"),
    ("StampMilli", 999_999_999, "Mar  5 07:08:09.999"),
    ("StampMilli", 0, "Mar  5 07:08:09.000"),
    ("YearMonthDay", 123_456_789, "2026-03-05"),
    ("YearMonthDayHour", 123_456_789, "2026-03-05T07Z"),
    ("YearMonthDayHourMinute", 123_456_789, "2026-03-05T07:08Z"),
    ("RFC3339", 123_456_789, "2026-03-05T07:08:09Z"),
    ("RFC3339Milli", 123_456_789, "2026-03-05T07:08:09.123Z"),
    ("RFC3339Milli", 120_000_000, "2026-03-05T07:08:09.12Z"),
    ("RFC3339Milli", 999_999, "2026-03-05T07:08:09Z"),
    ("RFC3339Micro", 123_456_789, "2026-03-05T07:08:09.123456Z"),
    ("RFC3339Micro", 100_000, "2026-03-05T07:08:09.0001Z"),
    ("RFC3339Nano", 123_456_789, "2026-03-05T07:08:09.123456789Z"),
    ("RFC3339Nano", 500_000_000, "2026-03-05T07:08:09.5Z"),
    ("RFC3339Nano", 0, "2026-03-05T07:08:09Z"),
    ("RFC1123Z", 123_456_789, "Thu, 05 Mar 2026 07:08:09 +0000"),
    ("NoSuchLayout", 123_456_789, "Mar  5 07:08:09.123"),
])
def test_layouts_in_utc(zone: None, layout: str, nanos: int, expected: str) -> None:
    use_zone("UTC")
    assert TimeFormatter(layout).format(INSTANT, nanos) == expected


@pytest.mark.parametrize("tz", ["EST+5", "IST-5:30"])
@pytest.mark.parametrize("layout", TIME_FORMATS)
def test_local_time_zone_is_ignored(zone: None, tz: str, layout: str) -> None:
    """Times print in UTC, as Hubble prints them, whatever TZ says."""
    use_zone("UTC")
    expected = TimeFormatter(layout).format(INSTANT, 250_000_000)
    use_zone(tz)
    assert TimeFormatter(layout).format(INSTANT, 250_000_000) == expected


@pytest.mark.parametrize(("seconds", "nanos"), [
    (-62135596801, 0),
    (253402300800, 0),
    (INSTANT, -1),
    (INSTANT, 1_000_000_000),
])
def test_out_of_range_is_not_available(seconds: int, nanos: int) -> None:
    assert TimeFormatter("RFC3339").format(seconds, nanos) == "N/A"


def test_absent_timestamp_is_not_available() -> None:
    assert TimeFormatter("StampMilli").timestamp(None) == "N/A"


def test_range_limits_format(zone: None) -> None:
    use_zone("UTC")
    formatter = TimeFormatter("RFC3339Nano")
    assert formatter.format(-62135596800, 0) == "0001-01-01T00:00:00Z"
    assert formatter.format(253402300799, 999_999_999) == "9999-12-31T23:59:59.999999999Z"


def test_consecutive_instants_in_one_second(zone: None) -> None:
    use_zone("UTC")
    formatter = TimeFormatter("StampMilli")
    stamps = [Timestamp(seconds=INSTANT, nanos=n) for n in (1_000_000, 1_000_000, 2_000_000)]
    stamps.append(Timestamp(seconds=INSTANT + 1, nanos=0))
    assert [formatter.timestamp(stamp) for stamp in stamps] == [
        "Mar  5 07:08:09.001", "Mar  5 07:08:09.001", "Mar  5 07:08:09.002",
        "Mar  5 07:08:10.000"]


def test_names() -> None:
    assert TIME_FORMATS == (
        "StampMilli", "YearMonthDay", "YearMonthDayHour", "YearMonthDayHourMinute", "RFC3339",
        "RFC3339Milli", "RFC3339Micro", "RFC3339Nano", "RFC1123Z")
    assert is_time_format("RFC3339Nano")
    assert not is_time_format("rfc3339")
