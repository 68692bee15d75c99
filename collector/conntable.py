"""The datapath's connection table as the counter sweep reads it: its slots and conn_map.

The table (bpf/flowscope.h) keeps each connection in the slot its key hashes to, or in
conn_map, an LRU hash, when another connection holds that slot. Each part is read whole with
batch lookups and hands the sweep flat buffers of struct fs_conn_key and struct fs_conn
records; each part removes an idle connection its own way: conn_map by a delete, a slot by
running the datapath's fs_free_slot, so that only the datapath writes slots.

A slot is read while the datapath may be claiming or freeing it, and a batch read copies it
without ordering against those writes: a slot counts only when it is TAKEN and its key hashes
to its index, which a key read half written or half cleared does not (slot_of mirrors the
datapath's fs_slot_of).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from flowscope.collector import rawevent as raw
from flowscope.collector.loader import Datapath
from flowscope.common.errors import FlowscopeError

KEY_DTYPE: Final = np.dtype(raw.ConnKey)
CONN_DTYPE: Final = np.dtype(raw.Conn)
_SLOT_DTYPE: Final = np.dtype(raw.ConnSlot)
# fs_slot_of's factors, one per 64-bit word of the key.
_FACTORS: Final = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                            0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD], np.uint64)

Table = tuple[bytes, bytes, int]  # keys, values and count, as a table part hands them


def read_batch(table: Any, capacity: int) -> Table:
    """All (keys, values, count) of a BPF map, by BPF_MAP_LOOKUP_BATCH."""
    from bcc import libbcc  # system package, loaded on use

    key_size, value_size = ctypes.sizeof(table.Key), ctypes.sizeof(table.Leaf)
    keys = ctypes.create_string_buffer(key_size * capacity)
    values = ctypes.create_string_buffer(value_size * capacity)
    token = ctypes.c_uint32(0)
    count = ctypes.c_uint32(0)
    total = 0
    while total < capacity:
        count.value = capacity - total
        result = libbcc.lib.bpf_lookup_batch(
            table.map_fd, ctypes.byref(token) if total else None, ctypes.byref(token),
            ctypes.byref(keys, key_size * total), ctypes.byref(values, value_size * total),
            ctypes.byref(count))
        failure = ctypes.get_errno()
        total += count.value
        if result != 0:
            if failure not in (0, errno.ENOENT):
                raise FlowscopeError(f"reading the connection table failed: "
                                     f"{os.strerror(failure)}")
            break  # ENOENT: the whole map was read
        if count.value == 0:
            break
    return keys.raw[: key_size * total], values.raw[: value_size * total], total


def slot_of(keys: npt.NDArray[np.void], seed: int, slots: int) -> npt.NDArray[np.uint64]:
    """The slot index of each key (struct fs_conn_key records), as fs_slot_of computes it."""
    words = np.ascontiguousarray(keys).view(np.uint64).reshape(len(keys), len(_FACTORS))
    folded = words ^ (words >> np.uint64(32)) ^ np.uint64(seed)
    total: npt.NDArray[np.uint64] = (folded * _FACTORS).sum(axis=1, dtype=np.uint64)
    # The products and the sum wrap modulo 2**64, as the datapath's do.
    return (total ^ (total >> np.uint64(32))) & np.uint64(slots - 1)


class SlotPart:
    """The connections in slots: `read` for the sweep, `delete` frees a slot."""

    def __init__(self, datapath: Datapath) -> None:
        self._datapath = datapath
        self._slots = datapath.config.conn_slots
        self._index: dict[bytes, int] = {}  # key -> slot, as last read

    def read(self) -> Table:
        indexes_buf, slots_buf, n = read_batch(self._datapath.bpf[b"conn_slots"], self._slots)
        slots = np.frombuffer(slots_buf, _SLOT_DTYPE, n)
        taken = slots["claim"] == raw.SLOT_TAKEN
        keys, conns = slots["key"][taken], slots["conn"][taken]
        indexes = np.frombuffer(indexes_buf, np.uint32, n)[taken]
        whole = slot_of(keys, self._datapath.slot_seed, self._slots) == indexes
        keys_buf = keys[whole].tobytes()
        size = KEY_DTYPE.itemsize
        self._index = {keys_buf[i * size:(i + 1) * size]: int(index)
                       for i, index in enumerate(indexes[whole])}
        return keys_buf, conns[whole].tobytes(), len(self._index)

    def delete(self, key: bytes) -> None:
        # Only this sweep frees slots, so the slot still holds the key it read.
        self._datapath.free_slot(self._index.pop(key), raw.ConnKey.from_buffer_copy(key))


class MapPart:
    """The connections in conn_map: `read` for the sweep, `delete` removes one."""

    def __init__(self, datapath: Datapath) -> None:
        self._table = datapath.bpf[b"conn_map"]
        self._capacity = datapath.config.conn_max

    def read(self) -> Table:
        return read_batch(self._table, self._capacity)

    def delete(self, key: bytes) -> None:
        # One the LRU map evicted meanwhile is no error.
        with contextlib.suppress(KeyError):
            del self._table[self._table.Key.from_buffer_copy(key)]
