"""Struct member offsets of the running kernel, read from its BTF (/sys/kernel/btf/vmlinux).

The kernel headers present at build time may belong to another kernel version; the programs
read kernel structs only at offsets found here, at load time.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Final

from flowscope.common.errors import NotSupportedError

VMLINUX_BTF: Final = Path("/sys/kernel/btf/vmlinux")

_MAGIC = 0xEB9F
_KIND_STRUCT, _KIND_UNION = 4, 5
_KIND_TYPEDEF, _KIND_VOLATILE, _KIND_CONST, _KIND_RESTRICT, _KIND_TYPE_TAG = 8, 9, 10, 11, 18
_MODIFIERS = {_KIND_TYPEDEF, _KIND_VOLATILE, _KIND_CONST, _KIND_RESTRICT, _KIND_TYPE_TAG}
# Bytes that follow struct btf_type, per kind: a fixed part and a per-member part.
_EXTRA: Final[dict[int, tuple[int, int]]] = {
    1: (4, 0), 3: (12, 0), 4: (0, 12), 5: (0, 12), 6: (0, 8), 13: (0, 8), 14: (4, 0),
    15: (0, 12), 17: (4, 0), 19: (0, 12),
}


class Btf:
    """The types of one BTF blob, enough to find struct members by name."""

    def __init__(self, blob: bytes) -> None:
        magic, _version, _flags, hdr_len = struct.unpack_from("<HBBI", blob, 0)
        if magic != _MAGIC:
            raise NotSupportedError("BTF: bad magic (is /sys/kernel/btf/vmlinux BTF?)")
        type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", blob, 8)
        base = hdr_len
        self._strings = blob[base + str_off: base + str_off + str_len]
        # (kind, name, size_or_type, members) with type ids starting at 1.
        self._types: list[tuple[int, str, int, list[tuple[str, int, int]]]] = [(0, "", 0, [])]
        self._by_name: dict[tuple[int, str], int] = {}
        pos, end = base + type_off, base + type_off + type_len
        while pos < end:
            name_off, info, size_or_type = struct.unpack_from("<III", blob, pos)
            pos += 12
            kind, vlen, kflag = (info >> 24) & 0x1F, info & 0xFFFF, info >> 31
            fixed, per_member = _EXTRA.get(kind, (0, 0))
            members: list[tuple[str, int, int]] = []
            if kind in (_KIND_STRUCT, _KIND_UNION):
                for i in range(vlen):
                    m_name, m_type, m_off = struct.unpack_from("<III", blob, pos + 12 * i)
                    bit_offset = m_off & 0xFFFFFF if kflag else m_off
                    members.append((self._string(m_name), m_type, bit_offset))
            pos += fixed + per_member * vlen
            name = self._string(name_off)
            self._types.append((kind, name, size_or_type, members))
            if kind in (_KIND_STRUCT, _KIND_UNION) and name:
                self._by_name.setdefault((kind, name), len(self._types) - 1)

    def _string(self, offset: int) -> str:
        return self._strings[offset: self._strings.index(b"\0", offset)].decode()

    def member_offset(self, struct_name: str, member: str) -> int:
        """Byte offset of `member` in `struct struct_name`, looking into anonymous members."""
        type_id = self._by_name.get((_KIND_STRUCT, struct_name))
        if type_id is None:
            raise NotSupportedError(f"BTF: the running kernel has no struct {struct_name}")
        found = self._find(type_id, member)
        if found is None:
            raise NotSupportedError(f"BTF: struct {struct_name} has no member {member}")
        if found % 8:
            raise NotSupportedError(f"BTF: {struct_name}.{member} is a bit field")
        return found // 8

    def _find(self, type_id: int, member: str) -> int | None:
        kind, _, size_or_type, members = self._types[type_id]
        while kind in _MODIFIERS:
            type_id = size_or_type
            kind, _, size_or_type, members = self._types[type_id]
        for name, m_type, bit_offset in members:
            if name == member:
                return bit_offset
            if not name:
                inner = self._find(m_type, member)
                if inner is not None:
                    return bit_offset + inner
        return None


def load_vmlinux_btf(path: Path = VMLINUX_BTF) -> Btf:
    try:
        return Btf(path.read_bytes())
    except OSError as exc:
        raise NotSupportedError(f"kernel BTF is not available ({path}: {exc.strerror}); "
                                "flowscope needs CONFIG_DEBUG_INFO_BTF") from exc
