"""Reading datapath events from the BPF ring buffer or the perf buffer.

Each record is copied out of the kernel's buffer into a RawEvent (the buffer slot is reused
once the callback returns) and handed to the consumer. Losses are counted by the BPF program
itself (every failed ring reserve or perf output), which is what the collector turns into
LostEvents; the perf buffer's own lost records arrive late (only when a later record fits), so
`perf_lost` is informational.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

from flowscope.collector import rawevent as raw
from flowscope.collector.loader import Datapath

EVENT_SIZE = ctypes.sizeof(raw.RawEvent)


class EventReader:
    def __init__(self, datapath: Datapath, on_event: Callable[[raw.RawEvent], None]) -> None:
        self._datapath = datapath
        self._on_event = on_event
        self.received = 0
        self.perf_lost = 0
        self.short_records = 0
        self._bpf: Any = None

    def open(self) -> None:
        bpf = self._datapath.bpf
        table = bpf[b"events"]
        if self._datapath.config.transport == "perf":
            table.open_perf_buffer(self._perf_record, page_cnt=self._datapath.config.buffer_pages,
                                   lost_cb=self._perf_lost)
        else:
            table.open_ring_buffer(self._ring_record)
        self._bpf = bpf

    def poll(self, timeout_ms: int) -> None:
        """Deliver what is waiting, waiting up to `timeout_ms` for something to arrive."""
        if self._datapath.config.transport == "perf":
            self._bpf.perf_buffer_poll(timeout_ms)
        else:
            self._bpf.ring_buffer_poll(timeout_ms)

    def _copy(self, data: int, size: int) -> None:
        if size < EVENT_SIZE:
            self.short_records += 1
            return
        event = raw.RawEvent()
        ctypes.memmove(ctypes.addressof(event), data, EVENT_SIZE)
        self.received += 1
        self._on_event(event)

    def _ring_record(self, _ctx: object, data: int, size: int) -> int:
        self._copy(data, size)
        return 0

    def _perf_record(self, _cpu: int, data: int, size: int) -> None:
        self._copy(data, size)

    def _perf_lost(self, count: int) -> None:
        self.perf_lost += count
