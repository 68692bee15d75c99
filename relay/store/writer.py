"""The store's writer: batches of serialized flows (received.Batch) wait in a
bounded queue; the writer's thread drops what the per-node cursor says is
already stored, and gathers batches into inserts by size and by time in
`insert_threads` lanes that insert at once (each insert decodes on one engine
thread). A node's batches always go to the same lane, whose inserts run one
after the other: each node's flows commit in order, so the highest sequence
stored per node (where a restarted relay resumes) never has an unstored flow
of that node below it.
Inserts the store refuses go to the spool, which is replayed in order once the
store takes inserts again; before that, the refused batches are read in
Python, and flows that do not read as flows are dropped (counted as
malformed) and the rest inserted again: a malformed flow never holds the
others back. Everything lost is counted."""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from flowscope.common.errors import StorageError
from flowscope.proto.flow import flow_pb2
from flowscope.proto.stream import stream_pb2
from flowscope.relay.store.config import StoreConfig
from flowscope.relay.store.received import Batch, flows_of, frame
from flowscope.relay.store.spool import Spool

Insert = Callable[[Sequence[Batch]], None]
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
    malformed: int = 0
    inserts: int = 0
    insert_failures: int = 0
    last_error: str = ""


_STOP = object()


class Writer:
    """Batches flows into insert(), which must be safe to call from several threads
    at once; inert until start()."""

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
        self._lanes: list[_Lane] = []
        self._lane_of: dict[str, _Lane] = {}
        # Guards the counters and the spool against the insert threads.
        self._lock = threading.Lock()
        self._next_retry = 0.0
        self.counters = WriterCounters()

    def start(self) -> None:
        self._lanes = [_Lane(index) for index in range(self._config.insert_threads)]
        self._thread = threading.Thread(
            target=self._run, name="flowscope-store-writer", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Write what is pending (to the store or the spool), then end the threads."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        for lane in self._lanes:
            lane.inserter.shutdown()
        self._lanes = []

    def submit(self, batches: Sequence[Batch]) -> bool:
        """Queue batches for the store; False, counted, when the queue stays full."""
        try:
            self._queue.put(list(batches), timeout=self._config.enqueue_timeout)
        except queue.Full:
            with self._lock:
                self.counters.queue_overflow += sum(batch.size for batch in batches)
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
        limit = self._config.batch_max_rows
        while True:
            deadlines = [lane.deadline for lane in self._lanes if lane.pending]
            wait = min(deadlines) - time.monotonic() if deadlines else self._config.retry_interval
            try:
                item = self._queue.get(timeout=max(wait, 0.0))
            except queue.Empty:
                item = None
            if isinstance(item, list):
                for batch in item:
                    for piece in _pieces(self._fresh(batch), limit):
                        self._route(piece)
            final = item is _STOP or isinstance(item, threading.Event)
            now = time.monotonic()
            for lane in self._lanes:
                if lane.pending and (final or now >= lane.deadline):
                    self._dispatch(lane)
            if len(self._spool) and (final or time.monotonic() >= self._next_retry):
                self._settle()
                self._replay()
            if final:
                self._settle()
            if isinstance(item, threading.Event):
                item.set()
            if item is _STOP:
                return

    def _route(self, batch: Batch) -> None:
        """Add batch to its node's lane, and insert the lane's batches once they are
        enough; a batch of unknown nodes is inserted alone, with no insert beside it."""
        if batch.node is None:
            for lane in self._lanes:
                if lane.pending:
                    self._dispatch(lane)
            self._settle()
            self._write([batch])
            return
        if batch.node not in self._lane_of:  # a new node joins the lane that took the fewest
            self._lane_of[batch.node] = min(self._lanes, key=lambda lane: lane.rows)
        lane = self._lane_of[batch.node]
        if not lane.pending:
            lane.deadline = time.monotonic() + self._config.batch_max_wait
        lane.pending.append(batch)
        lane.pending_rows += batch.size
        lane.rows += batch.size
        if lane.pending_rows >= self._config.batch_max_rows:
            self._dispatch(lane)

    def _fresh(self, batch: Batch) -> Batch | None:
        """The batch's flows past their node's cursor (flows without a sequence
        always pass): the batch itself when all are, None when none is."""
        self.counters.received += batch.size
        cursors = self._cursors
        if batch.node is not None:
            if not batch.first:
                return batch
            if batch.first > cursors.get(batch.node, 0):
                cursors[batch.node] = batch.last
                return batch
            if batch.last <= cursors.get(batch.node, 0):
                with self._lock:
                    self.counters.duplicates += batch.size
                return None
        fresh = []
        sequences = []
        malformed = 0
        for flow in flows_of(batch):
            try:
                keys = flow_pb2.Flow.FromString(flow)
            except DecodeError:
                malformed += 1
                continue
            sequence = keys.node_sequence
            if sequence:
                if sequence <= cursors.get(keys.node_name, 0):
                    continue
                cursors[keys.node_name] = sequence
            fresh.append(flow)
            sequences.append(sequence)
        with self._lock:
            self.counters.malformed += malformed
            self.counters.duplicates += batch.size - len(fresh) - malformed
        if len(fresh) == batch.size:
            return batch
        if not fresh:
            return None
        # What is left of one node's run is still that node's, for its lane.
        return Batch(frame(fresh), len(fresh), batch.node, sequences[0], sequences[-1])

    def _dispatch(self, lane: _Lane) -> None:
        """Queue the lane's batches as its next insert; at most one waits behind the
        one running."""
        while len(lane.in_flight) > 1:
            lane.in_flight.popleft().result()
        lane.in_flight.append(lane.inserter.submit(self._write, lane.pending))
        lane.pending, lane.pending_rows = [], 0

    def _settle(self) -> None:
        """Wait for the inserts in flight."""
        for lane in self._lanes:
            while lane.in_flight:
                lane.in_flight.popleft().result()

    def _write(self, batches: list[Batch]) -> None:
        with self._lock:
            behind = len(self._spool) > 0
        if behind:
            self._to_spool(batches)  # behind older spooled batches, to keep the order
            return
        if not self._try_insert(batches):
            readable = self._readable(batches)
            if readable is None or not self._try_insert(readable):
                self._to_spool(readable if readable is not None else batches)
                return
            batches = readable
        with self._lock:
            self.counters.stored += sum(batch.size for batch in batches)

    def _readable(self, batches: list[Batch]) -> list[Batch] | None:
        """batches without the flows that do not read as flows (counted as malformed);
        None when every flow reads."""
        readable = []
        dropped = 0
        for batch in batches:
            try:
                stream_pb2.FlowBatch.FromString(batch.data)
            except DecodeError:
                flows = [flow for flow in flows_of(batch) if _reads(flow)]
                dropped += batch.size - len(flows)
                if flows:
                    readable.append(Batch(frame(flows), len(flows)))
            else:
                readable.append(batch)
        if not dropped:
            return None
        with self._lock:
            self.counters.malformed += dropped
            self.counters.last_error = f"dropped {dropped} malformed flows"
        return readable

    def _try_insert(self, batches: Sequence[Batch]) -> bool:
        started = time.monotonic()
        try:
            self._insert(batches)
        except Exception as error:  # any failure of the store: the spool takes over
            with self._lock:
                self.counters.insert_failures += 1
                self.counters.last_error = f"{type(error).__name__}: {error}"
                self._next_retry = time.monotonic() + self._config.retry_interval
            return False
        with self._lock:
            self.counters.inserts += 1
        if self._on_insert is not None:
            self._on_insert(sum(batch.size for batch in batches), time.monotonic() - started)
        return True

    def _to_spool(self, batches: list[Batch]) -> None:
        flows = [flow for batch in batches for flow in flows_of(batch)]
        with self._lock:
            try:
                spooled = self._spool.append(flows)
            except OSError as error:  # a full or read-only spool disk loses the batch, counted
                self.counters.last_error = f"spool: {error}"
                spooled = False
            if spooled:
                self.counters.spooled += len(flows)
            else:
                self.counters.spool_overflow += len(flows)

    def _replay(self) -> None:
        """Insert the spooled batches, oldest first, while the store takes them (no
        insert is in flight: the writer's thread settled them)."""
        while True:
            try:
                entry = self._spool.oldest()
            except StorageError as error:  # set aside by the spool; the next one is tried
                with self._lock:
                    self.counters.spool_corrupt_files += 1
                    self.counters.last_error = str(error)
                continue
            if entry is None:
                return
            path, flows = entry
            if not self._try_insert([Batch(frame(flows), len(flows))]):
                return
            with self._lock:
                self._spool.remove(path)
                self.counters.replayed += len(flows)
                self.counters.stored += len(flows)


class _Lane:
    """Inserts one after the other: its own thread, the batches it gathers, and the
    flows it took so far (new nodes join the lane with the fewest)."""

    def __init__(self, index: int) -> None:
        self.inserter = ThreadPoolExecutor(1, thread_name_prefix=f"flowscope-store-lane-{index}")
        self.in_flight: deque[Future[None]] = deque()
        self.pending: list[Batch] = []
        self.pending_rows = 0
        self.deadline = 0.0
        self.rows = 0


def _reads(flow: bytes) -> bool:
    try:
        flow_pb2.Flow.FromString(flow)
    except DecodeError:
        return False
    return True


def _pieces(batch: Batch | None, limit: int) -> list[Batch]:
    """batch in pieces of at most limit flows (most batches are one piece)."""
    if batch is None:
        return []
    if batch.size <= limit:
        return [batch]
    flows = flows_of(batch)
    pieces = [flows[start : start + limit] for start in range(0, len(flows), limit)]
    return [Batch(frame(piece), len(piece)) for piece in pieces]
