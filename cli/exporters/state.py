"""The export's resume point on disk: when the export began and, per node, the sequence
number of the last flow delivered. Written atomically (a new file renamed over the old)
after every delivered batch, so a restart continues where the export stopped."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from flowscope.common.errors import InputError

STATE_FILE: Final = "export-cursor.json"


@dataclass
class ResumePoint:
    """since_ns: the export's start (bounds nodes it has no cursor for); cursors: per node,
    the last delivered sequence number."""

    since_ns: int
    cursors: dict[str, int] = field(default_factory=dict)

    def advance(self, cursors: dict[str, int]) -> None:
        """Takes each node's higher sequence number."""
        for node, sequence in cursors.items():
            if sequence > self.cursors.get(node, 0):
                self.cursors[node] = sequence


class StateFile:
    """The resume point in DIR/export-cursor.json."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / STATE_FILE

    def load(self) -> ResumePoint | None:
        """The saved point; None when there is none; InputError naming a damaged file."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as err:
            raise InputError(f"cannot read the export state {self.path}: {err}") from None
        try:
            data = json.loads(text)
            point = ResumePoint(
                int(data["since_ns"]),
                {str(node): int(sequence) for node, sequence in data["cursors"].items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise InputError(
                f"the export state {self.path} is damaged ({err!r}); remove it to start afresh"
            ) from None
        return point

    def save(self, point: ResumePoint) -> None:
        """Replaces the saved point at once (never a half-written file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f"{self.path.name}.tmp")
        temporary.write_text(
            json.dumps({"since_ns": point.since_ns, "cursors": point.cursors}, sort_keys=True),
            encoding="utf-8",
        )
        os.replace(temporary, self.path)
