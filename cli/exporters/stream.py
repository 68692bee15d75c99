"""The export loop: follow the relay from the resume point, deliver records to a sink in
batches, and move the resume point after each delivered batch.

    exporter = Exporter(dial, request, sink, StateFile(state_dir), start_ns)
    exporter.run()        # until stop is set; ServerError when the relay refuses the request

The request goes out with `since` (when the export began) and the per-node resume cursors
(GetFlowsRequest.resume_after, a flowscope extension); the relay answers from its store and
then live, with nothing missed or repeated in between. When the stream breaks (the relay
restarts, the network fails) or the sink fails (a syslog receiver goes away), the exporter
waits, backing off, and asks again from the cursors of what was delivered. A flow at or
below its node's cursor is never delivered twice. Lost events and node status events are
delivered too; they do not move the cursors.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final, Protocol

import grpc

from flowscope.cli.client import ServerError
from flowscope.cli.exporters import Sink
from flowscope.cli.exporters.records import Record, record_of
from flowscope.cli.exporters.state import ResumePoint, StateFile
from flowscope.proto.observer import observer_pb2, observer_pb2_grpc

Response = observer_pb2.GetFlowsResponse
# Answers that asking again will not change.
FATAL_CODES: Final = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
_END: Final = object()
# How often a waiting exporter looks at its stop event.
_POLL: Final = 0.2


@dataclass(frozen=True)
class ExportConfig:
    """batch_size: most records per sink write; linger: how long a batch waits for more
    records after its first (seconds); queue: most responses read ahead of the sink;
    backoff_min/max: waits between attempts after a failure (seconds)."""

    batch_size: int = 1000
    linger: float = 0.05
    queue: int = 10_000
    backoff_min: float = 0.1
    backoff_max: float = 5.0


def _warn(message: str) -> None:
    sys.stderr.write(f"flowscope export: {message}\n")


class _Call(Protocol):
    def __iter__(self) -> Iterator[Response]: ...
    def cancel(self) -> bool: ...


class _Reader:
    """Reads a GetFlows stream on a thread into a bounded queue, ending with _END or the
    stream's error."""

    def __init__(self, call: _Call, size: int) -> None:
        self._call = call
        self.items: queue.Queue[object] = queue.Queue(size)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._read, name="export-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        last: object = _END
        try:
            for response in self._call:
                if not self._put(response):
                    return
        except grpc.RpcError as err:
            last = err
        self._put(last)

    def _put(self, item: object) -> bool:
        while not self._stopped.is_set():
            try:
                self.items.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def close(self) -> None:
        self._stopped.set()
        self._call.cancel()
        self._thread.join()


class Exporter:
    """Follows the relay into a sink; see the module docstring."""

    def __init__(
        self,
        dial: Callable[[], grpc.Channel],
        request: observer_pb2.GetFlowsRequest,
        sink: Sink,
        state: StateFile,
        start_ns: int,
        config: ExportConfig | None = None,
        stop: threading.Event | None = None,
        warn: Callable[[str], None] = _warn,
    ) -> None:
        """dial: a connected channel to the relay, or ServerError; request: the filters and
        field mask (since, follow and the cursors are set here); start_ns: the export's
        start when no resume point is saved."""
        self._dial = dial
        self._request = request
        self._sink = sink
        self._state = state
        self._start_ns = start_ns
        self._config = config or ExportConfig()
        self.stop = stop or threading.Event()
        self._warn = warn
        self.point = ResumePoint(start_ns)
        self.delivered = 0

    def run(self) -> None:
        """Exports until stop is set. ServerError when the relay cannot be reached at first
        or refuses the request; OSError or InputError when the sink or the state fails."""
        self.point = self._state.load() or ResumePoint(self._start_ns)
        self.point.advance(self._sink.recovered())
        self._state.save(self.point)
        config = self._config
        delay = config.backoff_min
        connected_once = False
        while not self.stop.is_set():
            try:
                channel = self._dial()
            except ServerError as err:
                if not connected_once:
                    raise
                self._warn(f"{err}; trying again in {delay:g}s")
            else:
                connected_once = True
                before = self.delivered
                try:
                    self._follow(channel)
                except grpc.RpcError as err:
                    self._stream_failed(err, delay)
                except OSError as err:
                    self._warn(f"the sink failed ({err}); sending again in {delay:g}s")
                finally:
                    channel.close()
                if self.delivered > before:
                    delay = config.backoff_min
            self.stop.wait(delay)
            delay = min(delay * 2, config.backoff_max)

    def _stream_failed(self, err: grpc.RpcError, delay: float) -> None:
        code = err.code() if isinstance(err, grpc.Call) else None
        details = err.details() if isinstance(err, grpc.Call) else str(err)
        if code in FATAL_CODES:
            raise ServerError(f"the relay refused the export: {details}") from None
        self._warn(f"the relay's stream ended ({details}); resuming in {delay:g}s")

    def _follow(self, channel: grpc.Channel) -> None:
        request = observer_pb2.GetFlowsRequest()
        request.CopyFrom(self._request)
        request.follow = True
        request.since.FromNanoseconds(self.point.since_ns)
        request.resume_after.extend(
            observer_pb2.NodeCursor(node_name=node, sequence=sequence)
            for node, sequence in sorted(self.point.cursors.items())
        )
        call = observer_pb2_grpc.ObserverStub(channel).GetFlows(request)
        reader = _Reader(call, self._config.queue)
        try:
            while not self.stop.is_set():
                try:
                    first = reader.items.get(timeout=_POLL)
                except queue.Empty:
                    continue
                batch = [first]
                deadline = time.monotonic() + self._config.linger
                while len(batch) < self._config.batch_size and isinstance(batch[-1], Response):
                    try:
                        wait = max(0.0, deadline - time.monotonic())
                        batch.append(reader.items.get(timeout=wait))
                    except queue.Empty:
                        break
                self._deliver([item for item in batch if isinstance(item, Response)])
                if isinstance(batch[-1], grpc.RpcError):
                    raise batch[-1]
                if batch[-1] is _END:
                    return
        finally:
            reader.close()

    def _deliver(self, responses: list[Response]) -> None:
        """Writes the responses not yet delivered, then saves the moved resume point."""
        cursors = self.point.cursors
        moved: dict[str, int] = {}
        records: list[Record] = []
        for response in responses:
            if response.HasField("flow"):
                node, sequence = response.node_name, response.flow.node_sequence
                if sequence and sequence <= max(cursors.get(node, 0), moved.get(node, 0)):
                    continue
                if sequence:
                    moved[node] = sequence
            records.append(record_of(response))
        if not records:
            return
        self._sink.write(records)
        self.delivered += len(records)
        if moved:
            self.point.advance(moved)
            self._state.save(self.point)
