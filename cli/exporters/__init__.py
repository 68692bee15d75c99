"""The sinks of `flowscope export` and what they share.

A sink takes batches of records (one ExportEvent JSON line each, with the flow's node,
sequence number and uuid beside it) and says, when it can, which flows it already holds:

    sink.recovered()      {node: highest sequence held}; the file sink reads its file
    sink.write(records)   delivers the batch, or raises OSError (the batch is sent again)
    sink.close()

stdout.py, rotating.py (a file with size-based rotation) and syslog.py (RFC 5424 over TCP,
optionally TLS) are the sinks; records.py builds the records; state.py keeps the resume
point on disk; stream.py runs the export.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from flowscope.cli.exporters.records import Record


class Sink(Protocol):
    def recovered(self) -> dict[str, int]:
        """Per node, the highest sequence number the sink already holds (empty when it
        cannot tell)."""

    def write(self, records: Sequence[Record]) -> None:
        """Delivers the records in order; OSError when they may not have arrived."""

    def close(self) -> None: ...
