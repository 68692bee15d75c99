"""Terminal colours of the compact and dict outputs.

Which parts are coloured, and in which colour, follows Hubble's printer:
hosts cyan with their port yellow, identities magenta, verdicts green
(forwarded, redirected), red (dropped, error) or yellow (audit, traced,
translated), and the auth type green, or red when it is TEST_ALWAYS_FAIL.
Each coloured part is wrapped in its SGR code and a reset ("\\x1b[36m" ...
"\\x1b[0m"), byte for byte as Hubble writes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final, TextIO

from flowscope.common.errors import InputError

RESET: Final = "\x1b[0m"
RED: Final = "\x1b[31m"
GREEN: Final = "\x1b[32m"
YELLOW: Final = "\x1b[33m"
MAGENTA: Final = "\x1b[35m"
CYAN: Final = "\x1b[36m"

COLOR_MODES: Final = ("auto", "always", "never")


@dataclass(frozen=True)
class Palette:
    """Wraps text in colour codes, or leaves it alone when disabled."""

    enabled: bool

    def paint(self, color: str, text: str) -> str:
        """`text` in `color` (one of the SGR constants above)."""
        if not self.enabled:
            return text
        return color + text + RESET


def color_enabled(mode: str, stream: TextIO) -> bool:
    """Resolve `--color auto|always|never` for output to `stream`.

    auto colours when `stream` is a terminal, TERM is not "dumb" and
    NO_COLOR is unset or empty.
    """
    if mode == "always":
        return True
    if mode == "never":
        return False
    if mode == "auto":
        return (
            stream.isatty()
            and os.environ.get("TERM") != "dumb"
            and not os.environ.get("NO_COLOR")
        )
    raise InputError(f"invalid --color {mode!r}: want one of {', '.join(COLOR_MODES)}")
