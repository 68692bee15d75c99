"""Suite-wide rules.

Kernel, store and browser tests skip with a reason on a machine that cannot
run them; under CI=true such a skip fails the run, because CI runs on a
machine that can run all of them.
"""

from __future__ import annotations

import os

import pytest

REAL_PART_MARKERS = ("kernel", "store", "browser")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") != "true" or not report.skipped:
        return
    marks = [m for m in REAL_PART_MARKERS if item.get_closest_marker(m)]
    if marks:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"{'/'.join(marks)} test skipped under CI=true: {reason}"
