"""The writer's lanes on the real engine: each node's batches go to one lane, whose
inserts run one after the other, so each node's flows commit in order while
another lane inserts other nodes' flows at the same time."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from store_support import config, drop, realistic, running, stored_count

from flowscope.relay.store.received import Batch

pytestmark = pytest.mark.store


def test_each_node_inserts_in_order_on_its_own_lane(backend: str, tmp_path: Path) -> None:
    settings = config(backend, tmp_path, batch_max_rows=100, batch_max_wait=30, insert_threads=2)
    flows = realistic(400)
    nodes = sorted({flow.node_name for flow in flows})
    assert len(nodes) == 2
    inserts: list[tuple[str, str | None, int]] = []
    with running(settings) as opened:
        writer: Any = opened._writer
        insert = writer._insert

        def recording(batches: list[Batch]) -> None:
            for batch in batches:
                inserts.append((threading.current_thread().name, batch.node, batch.first))
            insert(batches)

        writer._insert = recording
        for node in nodes:  # as collectors send them: per node, in order
            own = [flow for flow in flows if flow.node_name == node]
            for start in range(0, len(own), 50):
                assert opened.write(own[start : start + 50])
        assert opened.drain()
        assert stored_count(opened) == (400, 400)
        # Each lane inserts every 100 flows of its node, then the rest at the drain.
        counts = [sum(flow.node_name == node for flow in flows) for node in nodes]
        assert opened.counters().writer.inserts == sum(-(-count // 100) for count in counts)
    drop(settings)
    lanes = {node: {name for name, of, _ in inserts if of == node} for node in nodes}
    assert all(len(names) == 1 for names in lanes.values())
    assert lanes[nodes[0]] != lanes[nodes[1]]
    for node in nodes:
        firsts = [first for _, of, first in inserts if of == node]
        assert firsts == sorted(firsts)
