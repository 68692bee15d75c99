"""The periodic sweep of the connection table: one record per active connection, idle expiry.

The table has two parts (conntable.py: the slots and conn_map), swept alike and separately.
Each sweep reads a whole part into two flat buffers (keys, values) and decodes the counters in
bulk through numpy views of the values. It compares each connection's counters with what its
previous record reported and yields a flow record carrying the
difference, so summing the records of a connection gives its totals; only connections that
changed are turned into Flows. A connection whose counters did not change for longer than the
idle timeout (as the sweeps see it: the datapath keeps no per-packet time) is deleted from the
table; a TCP connection that saw no FIN or RST has a timeout of its own, as long as connection
tracking's for established connections, because the next packet of a forgotten connection
opens a new one whose direction, and so its policy check, follows that packet. Connections
conn_map (an LRU map) evicted are forgotten with it.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import compress

import numpy as np
import numpy.typing as npt

from flowscope.collector import rawevent as raw
from flowscope.collector.conntable import CONN_DTYPE, KEY_DTYPE, MapPart, SlotPart, Table
from flowscope.collector.decode import Decoder
from flowscope.collector.loader import Datapath
from flowscope.proto.flow import flow_pb2

KEY_SIZE = KEY_DTYPE.itemsize
VALUE_SIZE = CONN_DTYPE.itemsize
_TCP = 6
# Columns of the counters matrix: packets a->b, b->a, bytes a->b, b->a, retransmits.
COLUMNS = 5

Counts = npt.NDArray[np.uint64]


class CounterSweep:
    """Turns successive reads of one part of the connection table into records of what changed.

    `read` returns the part's raw (keys, values, count), `delete` removes one raw key:
    TableSweep binds them to the table's parts (conntable.py).
    """

    def __init__(self, read: Callable[[], Table], delete: Callable[[bytes], None],
                 decoder: Decoder, idle_timeout_ns: int,
                 open_tcp_timeout_ns: int | None = None) -> None:
        self._read = read
        self._delete = delete
        self._decoder = decoder
        self._idle_timeout_ns = idle_timeout_ns
        self._open_tcp_timeout_ns = (idle_timeout_ns if open_tcp_timeout_ns is None
                                     else open_tcp_timeout_ns)
        # What the previous records reported: key -> row of _counts and _changed_ns.
        self._index: dict[bytes, int] = {}
        self._counts: Counts = np.zeros((0, COLUMNS), np.uint64)
        self._changed_ns = np.zeros(0, np.int64)
        self.expired = 0

    def sweep(self, now_ns: int) -> list[flow_pb2.Flow]:
        keys_buf, values_buf, n = self._read()
        values = np.frombuffer(values_buf, dtype=CONN_DTYPE, count=n)
        counts = np.empty((n, COLUMNS), np.uint64)
        counts[:, 0:2] = values["packets"]
        counts[:, 2:4] = values["bytes"]
        counts[:, 4] = values["retransmits"]
        keys = [keys_buf[i * KEY_SIZE:(i + 1) * KEY_SIZE] for i in range(n)]
        rows = np.fromiter((self._index.get(k, -1) for k in keys), np.int64, count=n)
        known = rows >= 0
        before = np.zeros_like(counts)
        before[known] = self._counts[rows[known]]
        delta = counts - before
        changed = delta.any(axis=1)
        changed_ns = np.full(n, now_ns, np.int64)
        still = known & ~changed
        changed_ns[still] = self._changed_ns[rows[still]]
        protocols = np.frombuffer(keys_buf, dtype=KEY_DTYPE, count=n)["proto"]
        closing = (values["seen"] & (raw.TCP_FIN | raw.TCP_RST)).any(axis=1)
        open_tcp = (protocols == _TCP) & ~closing
        timeout = np.where(open_tcp, self._open_tcp_timeout_ns, self._idle_timeout_ns)
        idle = now_ns - changed_ns > timeout

        records = []
        for i in np.flatnonzero(changed):
            d = delta[i]
            records.append(self._decoder.connection_record(
                raw.ConnKey.from_buffer_copy(keys[i]),
                raw.Conn.from_buffer_copy(values_buf, int(i) * VALUE_SIZE),
                packets=(int(d[0]), int(d[1])), byte_counts=(int(d[2]), int(d[3])),
                retransmits=int(d[4]), now_ns=now_ns))
        for i in np.flatnonzero(idle):
            self._delete(keys[i])
        self.expired += int(idle.sum())
        keep = ~idle
        kept_keys = list(compress(keys, keep.tolist()))
        self._index = {k: j for j, k in enumerate(kept_keys)}
        self._counts = counts[keep]
        self._changed_ns = changed_ns[keep]
        return records


class TableSweep:
    """The sweep of the whole connection table: a CounterSweep for each of its parts."""

    def __init__(self, datapath: Datapath, decoder: Decoder, idle_timeout_ns: int,
                 open_tcp_timeout_ns: int) -> None:
        self._parts = [CounterSweep(part.read, part.delete, decoder, idle_timeout_ns,
                                    open_tcp_timeout_ns)
                       for part in (SlotPart(datapath), MapPart(datapath))]

    @property
    def expired(self) -> int:
        """Connections deleted for being idle, since the start."""
        return sum(part.expired for part in self._parts)

    def sweep(self, now_ns: int) -> list[flow_pb2.Flow]:
        return [flow for part in self._parts for flow in part.sweep(now_ns)]
