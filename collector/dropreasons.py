"""The kernel's drop reasons: their names from tracefs, and Hubble's DropReason where one matches.

enum skb_drop_reason is renumbered between kernel versions, so the names are read at run time
from the skb:kfree_skb tracepoint's format, never compiled in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from flowscope.common.errors import NotSupportedError
from flowscope.proto.flow import flow_pb2

TRACEFS: Final = Path("/sys/kernel/tracing")
KFREE_SKB_FORMAT: Final = "events/skb/kfree_skb/format"

_SYMBOL = re.compile(r'\{\s*(\d+),\s*"([A-Z0-9_]+)"\s*\}')

# Kernel reason -> the DropReason that means the same thing. Reasons without a counterpart
# travel only by name (Flow.kernel_drop_reason), with DROP_REASON_UNKNOWN.
TO_HUBBLE: Final[dict[str, int]] = {
    "NO_SOCKET": flow_pb2.SOCKET_LOOKUP_FAILED,
    "PKT_TOO_SMALL": flow_pb2.INVALID_PACKET_DROPPED,
    "IP_INHDR": flow_pb2.INVALID_PACKET_DROPPED,
    "IP_CSUM": flow_pb2.INVALID_PACKET_DROPPED,
    "TCP_CSUM": flow_pb2.ERROR_WHILE_CORRECTING_L4_CHECKSUM,
    "UDP_CSUM": flow_pb2.ERROR_WHILE_CORRECTING_L4_CHECKSUM,
    "IP_NOPROTO": flow_pb2.UNKNOWN_L4_PROTOCOL,
    "UNHANDLED_PROTO": flow_pb2.UNSUPPORTED_L3_PROTOCOL,
    "IP_RPFILTER": flow_pb2.INVALID_SOURCE_IP,
    "IP_INVALID_SOURCE": flow_pb2.INVALID_SOURCE_IP,
    "IP_OUTNOROUTES": flow_pb2.FIB_LOOKUP_FAILED,
    "IP_INNOROUTES": flow_pb2.FIB_LOOKUP_FAILED,
    "IPV6_BAD_EXTHDR": flow_pb2.INVALID_IPV6_EXTENSION_HEADER,
    "TTL_EXCEEDED": flow_pb2.TTL_EXCEEDED,
}


@dataclass(frozen=True)
class DropReasons:
    """The running kernel's enum skb_drop_reason: value -> name."""

    names: dict[int, str]

    def value(self, name: str) -> int:
        for value, known in self.names.items():
            if known == name:
                return value
        raise NotSupportedError(f"the kernel's drop reasons have no {name}")

    def describe(self, value: int) -> tuple[str, int]:
        """(kernel name, Hubble DropReason) of a reason value."""
        name = self.names.get(value, f"REASON_{value}")
        return name, TO_HUBBLE.get(name, flow_pb2.DROP_REASON_UNKNOWN)


def parse_format(text: str) -> DropReasons:
    """Read the reasons from the tracepoint format's __print_symbolic list."""
    fmt = text[text.find("print fmt:"):]
    names = {int(value): name for value, name in _SYMBOL.findall(fmt)}
    if not names:
        raise NotSupportedError("skb:kfree_skb has no drop reasons in its format "
                                "(the kernel is older than 5.17)")
    return DropReasons(names)


def read_drop_reasons(tracefs: Path = TRACEFS) -> DropReasons:
    path = tracefs / KFREE_SKB_FORMAT
    try:
        return parse_format(path.read_text())
    except OSError as exc:
        raise NotSupportedError(f"cannot read {path}: {exc.strerror} (is tracefs mounted at "
                                f"{tracefs}?)") from exc
