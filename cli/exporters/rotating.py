"""The file sink: ExportEvent JSON lines in a file rotated by size, as Hubble's exporter
writes them (max size, backups kept, gzip compression of the rotated files).

A rotated file is renamed NAME-<UTC time><EXT> (events-2026-01-31T12-00-00.000.log) and,
with compression, becomes NAME-<time><EXT>.gz; the oldest backups beyond the number kept
are removed (0 keeps them all). A batch is never split across files, so a batch is wholly
in the current file or wholly rotated out.

Exactly once: on start the file sink drops a partial last line (the export died while
writing it) and reads what the current file holds; the highest sequence per node there is
where the export resumes, even when the saved resume point missed the last batch.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import orjson

from flowscope.cli.exporters.records import Record
from flowscope.common.errors import InputError

MEGABYTE: Final = 1024 * 1024
_STAMP: Final = "%Y-%m-%dT%H-%M-%S"
_STAMP_LENGTH: Final = len("2026-01-31T12-00-00.000")


class RotatingFile:
    """An append-only file rotated once the next write would take it past max_bytes."""

    _handle: io.FileIO  # from open() on

    def __init__(
        self,
        path: Path,
        max_bytes: int,
        max_backups: int,
        compress: bool,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if max_bytes < 1:
            size = max_bytes / MEGABYTE
            raise InputError(f"invalid --max-size-mb {size:g}: expected more than 0")
        if max_backups < 0:
            raise InputError(f"invalid --max-backups {max_backups}: expected 0 or more")
        self.path = path
        self.max_bytes = max_bytes
        self.max_backups = max_backups
        self.compress = compress
        self._clock = clock
        self._size = 0

    def open(self) -> bytes:
        """Opens the file for appending, without a partial last line; its complete lines.
        Finishes the compression of backups a previous run left uncompressed."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            content = self.path.read_bytes() if self.path.exists() else b""
            complete = content[: content.rfind(b"\n") + 1]
            if len(complete) < len(content):
                with self.path.open("r+b") as partial:
                    partial.truncate(len(complete))
            self._handle = io.FileIO(self.path, "ab")
        except OSError as err:
            raise InputError(f"cannot open the export file {self.path}: {err}") from None
        self._size = len(complete)
        if self.compress:
            for backup in self.backups():
                if backup.suffix != ".gz":
                    self._gzip(backup)
        return complete

    def write(self, data: bytes) -> None:
        """Appends data whole, to a new file when it would take this one past the limit."""
        if self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
        view = memoryview(data)
        while view:
            written = self._handle.write(view)
            view = view[written or 0 :]
        self._size += len(data)

    def close(self) -> None:
        self._handle.close()

    def backups(self) -> list[Path]:
        """The rotated files, oldest first."""
        stem, suffix = self._parts()
        found = []
        for candidate in self.path.parent.glob(f"{stem}-*{suffix}*"):
            name = candidate.name
            stamp = name[len(stem) + 1 : len(stem) + 1 + _STAMP_LENGTH]
            rest = name[len(stem) + 1 + _STAMP_LENGTH :]
            if len(stamp) == _STAMP_LENGTH and rest in (suffix, f"{suffix}.gz"):
                found.append(candidate)
        return sorted(found, key=lambda backup: backup.name)

    def _parts(self) -> tuple[str, str]:
        suffix = self.path.suffix
        return self.path.name[: len(self.path.name) - len(suffix)], suffix

    def _rotate(self) -> None:
        self._handle.close()
        stem, suffix = self._parts()
        millis = self._clock() // 1_000_000
        while True:
            seconds, fraction = divmod(millis, 1000)
            stamp = f"{time.strftime(_STAMP, time.gmtime(seconds))}.{fraction:03d}"
            backup = self.path.with_name(f"{stem}-{stamp}{suffix}")
            if not backup.exists() and not backup.with_name(f"{backup.name}.gz").exists():
                break
            millis += 1  # two rotations within a millisecond keep both files
        os.replace(self.path, backup)
        self._handle = io.FileIO(self.path, "ab")
        self._size = 0
        if self.compress:
            self._gzip(backup)
        if self.max_backups:
            for old in self.backups()[: -self.max_backups]:
                old.unlink()

    @staticmethod
    def _gzip(backup: Path) -> None:
        """backup -> backup.gz, through a temporary file so no half-compressed file remains."""
        target = backup.with_name(f"{backup.name}.gz")
        temporary = backup.with_name(f"{backup.name}.gz.tmp")
        with backup.open("rb") as source, gzip.open(temporary, "wb") as sink:
            shutil.copyfileobj(source, sink)
        os.replace(temporary, target)
        backup.unlink()


class FileSink:
    """Export records as lines of a RotatingFile."""

    def __init__(self, file: RotatingFile) -> None:
        self._file = file
        self._held = _cursors_in(file.open(), file.path)

    def recovered(self) -> dict[str, int]:
        return dict(self._held)

    def write(self, records: Sequence[Record]) -> None:
        self._file.write("".join(f"{record.line}\n" for record in records).encode())

    def close(self) -> None:
        self._file.close()


def _cursors_in(content: bytes, path: Path) -> dict[str, int]:
    """Per node, the highest flow sequence among the ExportEvent lines."""
    cursors: dict[str, int] = {}
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            flow = orjson.loads(line).get("flow")
            if flow is None:
                continue
            node, sequence = flow.get("node_name", ""), int(flow.get("node_sequence", 0))
        except (orjson.JSONDecodeError, AttributeError, ValueError, TypeError) as err:
            raise InputError(
                f"{path}:{number}: not an export line ({err}); the file sink appends only "
                "to its own files"
            ) from None
        if sequence > cursors.get(node, 0):
            cursors[node] = sequence
    return cursors
