"""Fixtures of the integration tests: node servers on loopback ports chosen free, and
stores on the module's one chDB engine (chDB opens one path per process)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from nodetools import StartServer, server_starter
from relay_cluster import Node

from flowscope.relay.storage import StoreBackend
from flowscope.relay.store import StoreConfig


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """start_server(ring, status=None, **config) -> (server, channel); closed after the test."""
    start, close = server_starter()
    yield start
    close()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's one chDB path (one engine per process)."""
    pytest.importorskip("clickhouse_connect")
    pytest.importorskip("chdb")
    return tmp_path_factory.mktemp("store")


@pytest.fixture
def store_config(engine: Path, tmp_path: Path) -> StoreConfig:
    """A database of the test's own on the module's engine."""
    return StoreConfig(
        dsn=f"chdb://{engine}",
        database=f"test_{uuid.uuid4().hex[:12]}",
        spool_dir=tmp_path / "spool",
        batch_max_wait=0.2,
    )


@pytest.fixture
def store(store_config: StoreConfig) -> Iterator[StoreBackend]:
    """A store in a database of its own on the module's engine."""
    backend = StoreBackend.open(store_config)
    yield backend
    backend.close()


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    """Two node servers, node-1 and node-2, on rings the test fills."""
    started = [Node("node-1"), Node("node-2")]
    for node in started:
        node.start()
    yield started
    for node in started:
        node.stop()
