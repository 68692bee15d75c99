"""Running the system's network tools (ip, tc) with argument lists, never through a shell."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from flowscope.common.errors import FlowscopeError


class CommandError(FlowscopeError):
    """A system command failed; the message names the command and what it printed."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"{' '.join(argv)} failed ({returncode}): {self.stderr}")


def run(argv: Sequence[str]) -> str:
    """Run a command and return its standard output; raise CommandError when it fails."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise CommandError(argv, 127, f"{argv[0]} is not installed") from exc
    if done.returncode != 0:
        raise CommandError(argv, done.returncode, done.stderr)
    return done.stdout
