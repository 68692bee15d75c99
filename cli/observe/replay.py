"""Replay of a JSON-lines file (`--input-file FILE|-`) as if a server answered.

The file holds what `flowscope observe -o jsonpb` (or Hubble's) writes: one
response per line. The request is served as `hubble observe --input-file` does:

* lines are read in file order and never sorted; there is no default limit;
* `--first N` writes the first N matching flows and stops reading, `--last N`
  keeps the last N in a ring of N and writes them at the end of the file;
* `--since` and `--until` bound each record's time, both inclusive;
* `--follow` ends at the end of the file;
* a line that is not a record is skipped with a warning naming its line number;
  the exit code stays 0.

Lost events and node status lines are bounded in time too, but pass the filters
and do not count toward N: they are written where they stand (with `--last`,
those among the last N flows).

This loop replays files of millions of flows, so it does per line only what the
request needs: the filter predicate, the time check and the field mask are left
out when the request has none.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable
from typing import IO, Any, Final

from google.protobuf.field_mask_pb2 import FieldMask

from flowscope.cli.observe.observer import (
    Request,
    WriteAgentEvents,
    WriteDebugEvents,
    WriteFlows,
)
from flowscope.cli.observe.selectors import ALL
from flowscope.common.errors import InputError
from flowscope.common.filters import compile_predicate
from flowscope.common.jsonlines import parse_line
from flowscope.common.timeparse import NANOS_PER_SECOND
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2

READ_BUFFER: Final = 1 << 20


class FileObserver:
    """An Observer over a JSON-lines file, or standard input for `-`."""

    def __init__(self, stream: IO[bytes], name: str, warn: Callable[[str], None] | None) -> None:
        self._stream = stream
        self._name = name
        self._warn = warn

    @classmethod
    def open(cls, path: str, warn: Callable[[str], None] | None) -> FileObserver:
        """Opens `path` (`-` for standard input) with a large read buffer."""
        try:
            if path == "-":
                stdin = sys.stdin.fileno()
                return cls(open(stdin, "rb", READ_BUFFER, closefd=False), "standard input", warn)
            return cls(open(path, "rb", READ_BUFFER), path, warn)
        except OSError as err:
            raise InputError(f"cannot read --input-file {path}: {err.strerror}") from None

    def close(self) -> None:
        self._stream.close()

    def get_flows(self, request: observer_pb2.GetFlowsRequest, write: WriteFlows) -> None:
        keep = None
        if request.whitelist or request.blacklist:
            keep = compile_predicate(request.whitelist, request.blacklist)
        if request.HasField("field_mask") and request.field_mask.paths:
            write = _masking(write, request.field_mask)
        self._replay(request, observer_pb2.GetFlowsResponse, "flow", keep, write)

    def get_agent_events(
        self, request: observer_pb2.GetAgentEventsRequest, write: WriteAgentEvents
    ) -> None:
        self._replay(request, observer_pb2.GetAgentEventsResponse, None, None, write)

    def get_debug_events(
        self, request: observer_pb2.GetDebugEventsRequest, write: WriteDebugEvents
    ) -> None:
        self._replay(request, observer_pb2.GetDebugEventsResponse, None, None, write)

    def _replay(
        self,
        request: Request,
        kind: type[Any],
        record: str | None,
        keep: Callable[[flow_pb2.Flow], bool] | None,
        write: Callable[[Any], None],
    ) -> None:
        """Writes the records of type `kind` that the request selects.

        `record` is the oneof case that counts (GetFlowsResponse.flow); other
        cases of that response pass through. `keep` is the flow predicate.
        """
        everything = request.number in (0, ALL)
        first = 0 if everything or not request.first else request.number
        last = 0 if everything or request.first else request.number
        since = _nanos(request.since) if request.HasField("since") else None
        until = _nanos(request.until) if request.HasField("until") else None
        bounded = since is not None or until is not None
        lowest = -(1 << 80) if since is None else since
        highest = 1 << 80 if until is None else until

        ring: deque[Any] | None = deque(maxlen=last) if last else None
        sink = write if ring is None else ring.append
        passing: deque[tuple[int, Any]] = deque()  # (records before it, response), with --last
        limit = first or -1
        taken = 0
        parse: Callable[[bytes], Any] = parse_line
        for number, line in enumerate(self._stream, 1):
            try:
                response = parse(line)
            except InputError as err:
                self._skip(number, line, err)
                continue
            if type(response) is not kind:
                continue  # a record of another kind: agent events in a flow log
            if bounded:
                stamp = response.time
                nanos = stamp.seconds * NANOS_PER_SECOND + stamp.nanos
                if nanos < lowest or nanos > highest:
                    continue
            if record is not None and not response.HasField(record):
                if ring is None:
                    write(response)
                else:
                    passing.append((taken, response))
                    while passing[0][0] < taken - last:
                        passing.popleft()
                continue
            if keep is not None and not keep(response.flow):
                continue
            sink(response)
            taken += 1
            if taken == limit:
                break
        if ring is not None:
            _drain(ring, passing, taken, write)

    def _skip(self, number: int, line: bytes, error: InputError) -> None:
        if self._warn is not None and line.strip():
            self._warn(f"skipped line {number} of {self._name}: {error}")


def _nanos(stamp: Any) -> int:
    return int(stamp.seconds) * NANOS_PER_SECOND + int(stamp.nanos)


def _drain(
    ring: deque[Any], passing: deque[tuple[int, Any]], taken: int, write: Callable[[Any], None]
) -> None:
    """Writes the kept records, with the pass-through responses where they stood."""
    index = taken - len(ring)  # records that came before the first one kept
    for position, response in passing:
        if position < index:
            continue
        while index < position:
            write(ring.popleft())
            index += 1
        write(response)
    for response in ring:
        write(response)


def _masking(write: WriteFlows, mask: FieldMask) -> WriteFlows:
    """`write` for flows cut down to the mask's paths (other responses as they are)."""

    def write_masked(response: observer_pb2.GetFlowsResponse) -> None:
        if not response.HasField("flow"):
            write(response)
            return
        masked = observer_pb2.GetFlowsResponse(node_name=response.node_name)
        if response.HasField("time"):
            masked.time.CopyFrom(response.time)
        masked.flow.SetInParent()
        mask.MergeMessage(response.flow, masked.flow)
        write(masked)

    return write_masked
