"""The writer on the real engine: batches by size and by time, the spool while
the store fails and its replay (nothing lost, nothing twice), duplicates
dropped against the per-node cursor, and overflow counted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_support import config, drop, realistic, running, stored_count

from flowscope.relay.store import Store
from flowscope.relay.store.received import Batch, frame
from flowscope.relay.store.spool import Spool, decode, encode

pytestmark = pytest.mark.store

FLOWS = realistic(1_000)
SERIALIZED = [flow.SerializeToString() for flow in FLOWS]


class Fault:
    """The fault-injection hook: inserts fail while failing is set."""

    def __init__(self) -> None:
        self.failing = False

    def __call__(self, table: str) -> None:
        if self.failing:
            raise ConnectionError(f"injected failure inserting into {table}")


FAULT = Fault()


@pytest.fixture(scope="module")
def store(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    # One lane: the counts of inserts and spool files below are one lane's.
    settings = config(
        backend,
        Path(tmp_path_factory.mktemp("writer")),
        batch_max_rows=100,
        batch_max_wait=0.3,
        insert_threads=1,
    )
    with running(settings, FAULT) as opened:
        yield opened
    drop(settings)


def test_batches_by_size(store: Store) -> None:
    before = store.counters().writer.inserts
    store.write(FLOWS[:250])
    assert store.drain()
    assert store.counters().writer.inserts - before == 3  # 100 + 100 + 50 at the drain
    assert stored_count(store) == (250, 250)


def test_batches_by_time(store: Store) -> None:
    before = store.counters().writer.inserts
    store.write(FLOWS[250:260])
    deadline = time.monotonic() + 5
    while store.counters().writer.inserts == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.counters().writer.inserts - before == 1
    assert stored_count(store) == (260, 260)


def test_spool_while_failing_then_replay(store: Store) -> None:
    FAULT.failing = True
    store.write(FLOWS[260:500])
    assert store.drain()
    counters = store.counters()
    assert counters.writer.spooled == 240
    assert counters.spool_files == 3
    assert counters.writer.last_error.startswith("ConnectionError: injected failure")
    assert stored_count(store) == (260, 260)
    store.write(FLOWS[500:600])  # behind the spooled batches, even once the store is back
    FAULT.failing = False
    assert store.drain()
    counters = store.counters()
    assert (counters.writer.replayed, counters.spool_files, counters.spool_bytes) == (340, 0, 0)
    assert stored_count(store) == (600, 600)


def test_duplicates_are_dropped_against_the_cursor(store: Store) -> None:
    before = store.counters().writer.duplicates
    store.write(FLOWS[550:700])
    assert store.drain()
    assert store.counters().writer.duplicates - before == 50
    assert stored_count(store) == (700, 700)
    assert store.cursors() == store.queries.cursors()


def test_malformed_flows_are_dropped_counted_and_hold_nothing_back(store: Store) -> None:
    before = store.counters().writer
    node = FLOWS[700].node_name
    own = [flow for flow in FLOWS[700:800] if flow.node_name == node][:10]
    wire = [flow.SerializeToString() for flow in own]
    wire.insert(5, b"\x0a\x05ab")  # field 1 announcing 5 bytes where 2 follow
    batch = Batch(frame(wire), len(wire), node, own[0].node_sequence, own[-1].node_sequence)
    unnamed = Batch(frame([b"\x0a\x05ab", wire[0]]), 2)  # read flow by flow: a duplicate
    assert store.write_batch(batch) and store.write_batch(unnamed)
    assert store.drain()
    after = store.counters().writer
    assert after.malformed - before.malformed == 2
    assert after.stored - before.stored == 10
    assert after.duplicates - before.duplicates == 1
    assert (after.spooled, after.insert_failures - before.insert_failures) == (before.spooled, 1)
    assert stored_count(store) == (710, 710)


def test_spool_overflow_is_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=len(encode(SERIALIZED[:10])) + 1)
    spool.open()
    assert spool.append(SERIALIZED[:10])
    assert not spool.append(SERIALIZED[10:11])
    assert len(spool) == 1
    entry = spool.oldest()
    assert entry is not None
    assert entry[1] == SERIALIZED[:10]


def test_truncated_spool_file_is_named() -> None:
    data = encode(SERIALIZED[:2])
    with pytest.raises(Exception, match=r"x\.spool: truncated flow at byte 4"):
        decode(data[:10], "x.spool")


def test_corrupt_spool_files_are_set_aside(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.open()
    assert spool.append(SERIALIZED[:3])
    assert spool.append(SERIALIZED[3:5])
    first = tmp_path / "000000000000.spool"
    first.write_bytes(first.read_bytes()[:-3])
    with pytest.raises(Exception, match=r"spool file set aside: .*truncated flow"):
        spool.oldest()
    assert (tmp_path / "000000000000.spool.corrupt").exists()
    entry = spool.oldest()
    assert entry is not None
    assert entry[1] == SERIALIZED[3:5]
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    reopened.open()
    assert list(reopened.batches()) == [SERIALIZED[3:5]]
