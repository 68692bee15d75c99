"""The store's writer: serialized flows become landing rows (received.py) in the
submitting thread, while the writer's thread inserts; a bounded queue; the
thread batches rows by size and by time into inserts, drops what the per-node
cursor says is already stored, and sends batches the store refuses to the
spool, replaying it in order once the store takes inserts again. Everything
lost is counted."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flowscope.common.errors import StorageError
from flowscope.relay.store.config import StoreConfig
from flowscope.relay.store.received import Row, row
from flowscope.relay.store.spool import Spool

Insert = Callable[[Sequence[Row]], None]
# Told of every insert the store took: its rows and the seconds it took (for metrics).
InsertObserver = Callable[[int, float], None]


@dataclass(slots=True)
class WriterCounters:
    """What went through the writer, in flows unless named otherwise (for metrics)."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    queue_overflow: int = 0
    spooled: int = 0
    replayed: int = 0
    spool_overflow: int = 0
    spool_corrupt_files: int = 0
    inserts: int = 0
    insert_failures: int = 0
    last_error: str = ""


_STOP = object()


class Writer:
    """Batches flows into insert(); inert until start()."""

    def __init__(
        self,
        config: StoreConfig,
        insert: Insert,
        spool: Spool,
        cursors: dict[str, int],
        on_insert: InsertObserver | None = None,
    ) -> None:
        self._config = config
        self._insert = insert
        self._on_insert = on_insert
        self._spool = spool
        self._cursors = cursors
        self._queue: queue.Queue[object] = queue.Queue(config.queue_max_batches)
        self._thread: threading.Thread | None = None
        self._next_retry = 0.0
        self.counters = WriterCounters()

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="flowscope-store-writer", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Write what is pending (to the store or the spool), then end the thread."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def submit(self, flows: Sequence[bytes]) -> bool:
        """Queue serialized flows for the store; False, counted, when the queue stays full."""
        try:
            self._queue.put(list(map(row, flows)), timeout=self._config.enqueue_timeout)
        except queue.Full:
            self.counters.queue_overflow += len(flows)
            return False
        return True

    def drain(self, timeout: float = 30.0) -> bool:
        """Write everything queued now and retry the spool once; True when done in time."""
        done = threading.Event()
        self._queue.put(done, timeout=timeout)
        return done.wait(timeout)

    def cursors(self) -> dict[str, int]:
        """The highest node_sequence accepted per node (stored, spooled or pending)."""
        return dict(self._cursors)

    def _run(self) -> None:
        pending: list[Row] = []
        deadline = 0.0
        limit = self._config.batch_max_rows
        while True:
            wait = self._config.retry_interval if not pending else deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=max(wait, 0.0))
            except queue.Empty:
                item = None
            if isinstance(item, list):
                if not pending:
                    deadline = time.monotonic() + self._config.batch_max_wait
                pending += self._fresh(item)
            while len(pending) >= limit:
                self._write(pending[:limit])
                pending = pending[limit:]
            final = item is _STOP or isinstance(item, threading.Event)
            if pending and (final or time.monotonic() >= deadline):
                self._write(pending)
                pending = []
            if len(self._spool) and (final or time.monotonic() >= self._next_retry):
                self._replay()
            if isinstance(item, threading.Event):
                item.set()
            if item is _STOP:
                return

    def _fresh(self, rows: list[Row]) -> list[Row]:
        """rows past their node's cursor (flows without a sequence always pass)."""
        self.counters.received += len(rows)
        cursors = self._cursors
        fresh = []
        for item in rows:
            sequence = item.node_sequence
            if sequence:
                node = item.node_name
                if sequence <= cursors.get(node, 0):
                    self.counters.duplicates += 1
                    continue
                cursors[node] = sequence
            fresh.append(item)
        return fresh

    def _write(self, rows: list[Row]) -> None:
        if len(self._spool):
            self._to_spool(rows)  # behind older spooled batches, to keep the order
            return
        if self._try_insert(rows):
            self.counters.stored += len(rows)
        else:
            self._to_spool(rows)

    def _try_insert(self, rows: Sequence[Row]) -> bool:
        started = time.monotonic()
        try:
            self._insert(rows)
        except Exception as error:  # any failure of the store: the spool takes over
            self.counters.insert_failures += 1
            self.counters.last_error = f"{type(error).__name__}: {error}"
            self._next_retry = time.monotonic() + self._config.retry_interval
            return False
        self.counters.inserts += 1
        if self._on_insert is not None:
            self._on_insert(len(rows), time.monotonic() - started)
        return True

    def _to_spool(self, rows: list[Row]) -> None:
        try:
            spooled = self._spool.append([item.flow for item in rows])
        except OSError as error:  # a full or read-only spool disk loses the batch, counted
            self.counters.last_error = f"spool: {error}"
            spooled = False
        if spooled:
            self.counters.spooled += len(rows)
        else:
            self.counters.spool_overflow += len(rows)

    def _replay(self) -> None:
        while True:
            try:
                entry = self._spool.oldest()
            except StorageError as error:  # set aside by the spool; the next one is tried
                self.counters.spool_corrupt_files += 1
                self.counters.last_error = str(error)
                continue
            if entry is None:
                return
            path, flows = entry
            if not self._try_insert(list(map(row, flows))):
                return
            self._spool.remove(path)
            self.counters.replayed += len(flows)
            self.counters.stored += len(flows)
