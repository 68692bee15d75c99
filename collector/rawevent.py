"""ctypes mirrors of the datapath structs in bpf/flowscope.h, the one place user space spells them.

The loader checks every mirror against BCC's reading of the compiled program (field names,
offsets, sizes) before anything is decoded, so a change on one side that the other lacks fails
at start with the field named. Unit tests decode recorded bytes through the same mirrors.
"""

from __future__ import annotations

import ctypes
from typing import Final

from flowscope.common.errors import FlowscopeError

# struct fs_event.kind
EVENT_TRACE: Final = 1
EVENT_DROP: Final = 2
EVENT_CONNECT: Final = 3
EVENT_LISTEN: Final = 4
EVENT_POLICY_VERDICT: Final = 5
EVENT_POLICY_DROP: Final = 6

# Observation points (monitor trace sub-types)
TO_ENDPOINT: Final = 0
FROM_ENDPOINT: Final = 5

# Per-CPU counters map indexes
COUNTER_TRANSPORT_FULL: Final = 0
COUNTER_RATE_LIMITED: Final = 1
COUNTER_EVENTS: Final = 2
COUNTER_MAX: Final = 3

# struct fs_conn_slot.claim
SLOT_FREE: Final = 0
SLOT_BUSY: Final = 1
SLOT_TAKEN: Final = 2

IPCACHE_LOCAL_ENDPOINT: Final = 0x1
SEEN_PACKET: Final = 0x8000
TCP_FIN: Final = 0x001
TCP_RST: Final = 0x004
IS_REPLY_UNKNOWN: Final = 2

_u8, _u16, _u32, _u64 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64


class RawEvent(ctypes.Structure):
    _fields_ = (
        ("ts_ns", _u64),
        ("saddr", _u8 * 16),
        ("daddr", _u8 * 16),
        ("smac", _u8 * 6),
        ("dmac", _u8 * 6),
        ("src_identity", _u32),
        ("dst_identity", _u32),
        ("ifindex", _u32),
        ("len", _u32),
        ("pid", _u32),
        ("drop_reason", _u32),
        ("policy_ref", _u32),
        ("sport", _u16),
        ("dport", _u16),
        ("tcp_flags", _u16),
        ("kind", _u8),
        ("family", _u8),
        ("proto", _u8),
        ("obs_point", _u8),
        ("is_reply", _u8),
        ("icmp_type", _u8),
        ("icmp_code", _u8),
        ("verdict", _u8),
        ("match_type", _u8),
        ("policy_direction", _u8),
        ("comm", ctypes.c_char * 16),
    )


class ConnKey(ctypes.Structure):
    _fields_ = (
        ("addr_a", _u8 * 16),
        ("addr_b", _u8 * 16),
        ("port_a", _u16),
        ("port_b", _u16),
        ("proto", _u8),
        ("family", _u8),
        ("pad", _u8 * 2),
    )


class Conn(ctypes.Structure):
    _fields_ = (
        ("packets", _u64 * 2),
        ("bytes", _u64 * 2),
        ("policy_gen", _u32 * 2),
        ("seen", _u16 * 4),
        ("retransmits", _u32),
        ("opener", _u8),
        ("policy_verdict", _u8 * 2),
        ("policy_drop", _u8 * 2),
        ("icmp_type", _u8),
        ("icmp_code", _u8),
        ("pad", _u8 * 5),
    )


class ConnSlot(ctypes.Structure):
    _fields_ = (
        ("claim", _u64),
        ("key", ConnKey),
        ("conn", Conn),
        ("pad", _u8 * 16),
    )


class SlotRequest(ctypes.Structure):
    _fields_ = (
        ("index", _u32),
        ("pad", _u32),
        ("key", ConnKey),
    )


class IpcacheKey(ctypes.Structure):
    _fields_ = (
        ("prefixlen", _u32),
        ("family", _u8),
        ("pad", _u8 * 3),
        ("addr", _u8 * 16),
    )


class IpcacheValue(ctypes.Structure):
    _fields_ = (("identity", _u32), ("flags", _u32))


class LayoutError(FlowscopeError):
    """A ctypes mirror disagrees with the compiled program's struct."""


def check_layout(mirror: type[ctypes.Structure], compiled: type[ctypes.Structure]) -> None:
    """Raise LayoutError unless `mirror` has the compiled struct's named fields and size."""
    name = mirror.__name__
    if ctypes.sizeof(mirror) != ctypes.sizeof(compiled):
        raise LayoutError(f"{name}: size {ctypes.sizeof(mirror)} in user space, "
                          f"{ctypes.sizeof(compiled)} in the BPF program")
    # BCC adds its own padding fields (__pad_N); only the declared fields are compared.
    theirs = {f[0]: getattr(compiled, f[0]) for f in compiled._fields_
              if not f[0].startswith("__pad")}
    ours = {f[0]: getattr(mirror, f[0]) for f in mirror._fields_}
    if set(theirs) != set(ours):
        raise LayoutError(f"{name}: fields differ: only in user space "
                          f"{sorted(set(ours) - set(theirs))}, only in the BPF program "
                          f"{sorted(set(theirs) - set(ours))}")
    for field, desc in ours.items():
        other = theirs[field]
        if (desc.offset, desc.size) != (other.offset, other.size):
            raise LayoutError(f"{name}.{field}: offset/size {desc.offset}/{desc.size} in user "
                              f"space, {other.offset}/{other.size} in the BPF program")
