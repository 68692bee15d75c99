"""The stdout sink: ExportEvent JSON lines on standard output, for log shippers."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from flowscope.cli.exporters.records import Record


class StdoutSink:
    """Writes each batch and flushes it; holds nothing to recover from."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out if out is not None else sys.stdout

    def recovered(self) -> dict[str, int]:
        return {}

    def write(self, records: Sequence[Record]) -> None:
        self._out.write("".join(f"{record.line}\n" for record in records))
        self._out.flush()

    def close(self) -> None:
        self._out.flush()
