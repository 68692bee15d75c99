"""The store tests' fixture: the backends to run on (see store_support)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The conformance flows and filter cases are shared with tests/conformance;
# bench/flowgen gives the realistic flows.
sys.path.insert(0, str(Path(__file__).parents[1] / "conformance"))
sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))

from store_support import BACKENDS


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
