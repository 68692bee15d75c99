"""The options every printer takes, one field per `flowscope observe` flag."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# --output values; "jsonpb" is "json" and "tab" is "table".
OUTPUT_FORMATS: Final = ("compact", "dict", "json", "jsonpb", "table", "tab")


@dataclass(frozen=True)
class PrinterOptions:
    """What to print and how; the defaults are `flowscope observe`'s."""

    output: str = "compact"
    # One of timefmt.TIME_FORMATS; any other name prints as StampMilli.
    time_format: str = "StampMilli"
    # --print-node-name
    node_name: bool = False
    # --print-policy-names
    policy_names: bool = False
    # --color, resolved for the output stream (see color.color_enabled).
    color: bool = False
    # Names instead of addresses; --numeric turns it off.
    ip_translation: bool = True
    # Also print informational node status events (nodes connected, gone).
    debug: bool = False
