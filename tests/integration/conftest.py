"""Fixtures of the integration tests: a node server on a loopback port chosen free."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from nodetools import StartServer, server_starter


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """start_server(ring, status=None, **config) -> (server, channel); closed after the test."""
    start, close = server_starter()
    yield start
    close()
