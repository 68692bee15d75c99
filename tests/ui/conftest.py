"""Fixtures of the UI tests: a relay process holding the scenario's flows
(relay_process.py), and the UI served by uvicorn on a free loopback port."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import RelayProcess, UiServer


@pytest.fixture(scope="session")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    """A relay holding the scenario's flows; tests must not add flows to it."""
    process = RelayProcess(tmp_path_factory.mktemp("relay"), "--scenario")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def ui(relay: RelayProcess) -> Iterator[str]:
    """The UI's URL, for the relay of the scenario."""
    server = UiServer(relay.address)
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def live_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    """A relay holding the scenario's flows, to which the module's tests add flows."""
    process = RelayProcess(tmp_path_factory.mktemp("live-relay"), "--scenario")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def live_ui(live_relay: RelayProcess) -> Iterator[str]:
    server = UiServer(live_relay.address)
    yield server.url
    server.stop()
