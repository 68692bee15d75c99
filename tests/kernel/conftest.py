"""Fixtures of the kernel tests: one lab for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from labtools import TEST_LAB, kernel_ready

from flowscope.collector.labconfig import LabConfig, parse_lab
from flowscope.collector.labnet import create_lab, destroy_lab


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabConfig, Path]]:
    reason = kernel_ready()
    if reason:
        pytest.skip(reason)
    state_dir = tmp_path_factory.mktemp("labs")
    config = parse_lab(TEST_LAB, "test lab")
    destroy_lab(config.name, state_dir)  # a crashed earlier session may have left it
    create_lab(config, state_dir)
    yield config, state_dir
    destroy_lab(config.name, state_dir)
