"""The on-disk spool: batches the store could not take wait here, in order, as
files of length-prefixed serialized flows, within a size bound."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final, TypeAlias

from flowscope.common.errors import StorageError

# A flow as its node serialized it (`bytes` is a property of Spool's).
Serialized: TypeAlias = bytes
_LENGTH: Final = struct.Struct("<I")
_SUFFIX: Final = ".spool"


def encode(flows: Iterable[Serialized]) -> bytes:
    """Serialized flows as one spool file's bytes: each flow's length (4 bytes, LE),
    then the flow."""
    parts: list[bytes] = []
    for flow in flows:
        parts += (_LENGTH.pack(len(flow)), flow)
    return b"".join(parts)


def decode(data: bytes, source: str = "spool") -> list[Serialized]:
    """The serialized flows of one spool file's bytes; StorageError names source
    when truncated."""
    flows = []
    offset = 0
    while offset < len(data):
        if offset + _LENGTH.size > len(data):
            raise StorageError(f"{source}: truncated length at byte {offset}")
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        if offset + length > len(data):
            raise StorageError(f"{source}: truncated flow at byte {offset}")
        flows.append(data[offset : offset + length])
        offset += length
    return flows


class Spool:
    """Spool files in directory, oldest first, holding at most max_bytes."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self._directory = directory
        self._max_bytes = max_bytes
        self._files: list[Path] = []
        self._bytes = 0
        self._next = 0

    def open(self) -> None:
        """Create the directory and pick up the files a previous run left."""
        self._directory.mkdir(parents=True, exist_ok=True)
        for leftover in self._directory.glob(f"*{_SUFFIX}.tmp"):
            leftover.unlink()
        self._files = sorted(self._directory.glob(f"*{_SUFFIX}"))
        self._bytes = sum(path.stat().st_size for path in self._files)
        self._next = int(self._files[-1].stem) + 1 if self._files else 0

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._files)

    def append(self, flows: Sequence[Serialized]) -> bool:
        """Spool a batch; False (and nothing written) when it would exceed the bound."""
        data = encode(flows)
        if self._bytes + len(data) > self._max_bytes:
            return False
        path = self._directory / f"{self._next:012d}{_SUFFIX}"
        temporary = path.with_name(path.name + ".tmp")
        with temporary.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        temporary.rename(path)  # a batch is in the spool whole or not at all
        self._next += 1
        self._files.append(path)
        self._bytes += len(data)
        return True

    def oldest(self) -> tuple[Path, list[Serialized]] | None:
        """The oldest batch; a file that cannot be read is set aside as *.corrupt
        and StorageError names it."""
        if not self._files:
            return None
        path = self._files[0]
        try:
            return path, decode(path.read_bytes(), str(path))
        except (OSError, StorageError) as error:
            self._set_aside(path)
            raise StorageError(f"spool file set aside: {error}") from error

    def _set_aside(self, path: Path) -> None:
        self._files.remove(path)
        self._bytes -= path.stat().st_size
        path.rename(path.with_name(path.name + ".corrupt"))

    def remove(self, path: Path) -> None:
        """Remove the oldest file, once the store holds its flows."""
        if not self._files or self._files[0] != path:
            raise StorageError(f"{path} is not the oldest spool file")
        self._bytes -= path.stat().st_size
        path.unlink()
        self._files.pop(0)

    def batches(self) -> Iterable[list[Serialized]]:
        """Every readable spooled batch, oldest first (to rebuild cursors at start);
        unreadable files are set aside as *.corrupt."""
        for path in list(self._files):
            try:
                yield decode(path.read_bytes(), str(path))
            except (OSError, StorageError):
                self._set_aside(path)
