"""The counter sweep on raw connection map contents: records of differences, idle expiry."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from flowscope.collector import rawevent as raw
from flowscope.collector.decode import Decoder
from flowscope.collector.dropreasons import parse_format
from flowscope.collector.endpoints import EndpointRegistry, lab_endpoints
from flowscope.collector.identity import IdentityAllocator
from flowscope.collector.labconfig import default_lab, write_state
from flowscope.collector.processes import ProcessTable
from flowscope.collector.sweep import CounterSweep
from flowscope.proto.flow import flow_pb2

SECOND = 10**9


def key(port: int, proto: int = 17) -> raw.ConnKey:
    k = raw.ConnKey(family=4, proto=proto, port_a=port, port_b=53)
    ctypes.memmove(k.addr_a, bytes([10, 199, 1, 1]), 4)
    ctypes.memmove(k.addr_b, bytes([10, 199, 1, 3]), 4)
    return k


def conn(packets: tuple[int, int], byte_counts: tuple[int, int]) -> raw.Conn:
    c = raw.Conn(opener=0)
    c.packets[:] = packets
    c.bytes[:] = byte_counts
    c.seen[0] = raw.SEEN_PACKET
    return c


class FakeMap:
    """The connection map's raw contents, as BPF_MAP_LOOKUP_BATCH returns them."""

    def __init__(self) -> None:
        self.entries: dict[bytes, raw.Conn] = {}
        self.deleted: list[int] = []

    def put(self, port: int, entry: raw.Conn, proto: int = 17) -> None:
        self.entries[bytes(key(port, proto))] = entry

    def read(self) -> tuple[bytes, bytes, int]:
        return (b"".join(self.entries), b"".join(bytes(v) for v in self.entries.values()),
                len(self.entries))

    def delete(self, raw_key: bytes) -> None:
        self.deleted.append(raw.ConnKey.from_buffer_copy(raw_key).port_a)
        del self.entries[raw_key]


@pytest.fixture
def decoder(tmp_path: Path) -> Decoder:
    write_state(default_lab(), tmp_path)
    registry = EndpointRegistry(IdentityAllocator(None))
    registry.replace(lab_endpoints(tmp_path))
    return Decoder("node-1", registry, parse_format('print fmt: "", { 2, "NOT_SPECIFIED" }'),
                   ProcessTable(), clock_offset_ns=0, ifname=str)


def counters(flows: list[flow_pb2.Flow]) -> list[tuple[int, int, int, int, int]]:
    return [(f.l4.UDP.source_port, f.counters.packets_forward, f.counters.bytes_forward,
             f.counters.packets_reply, f.counters.bytes_reply) for f in flows]


def test_records_carry_differences_and_idle_connections_expire(decoder: Decoder) -> None:
    conn_map = FakeMap()
    sweep = CounterSweep(conn_map.read, conn_map.delete, decoder, idle_timeout_ns=3 * SECOND)
    conn_map.put(1000, conn((2, 1), (200, 100)))
    conn_map.put(2000, conn((5, 0), (500, 0)))
    assert counters(sweep.sweep(0)) == [(1000, 2, 200, 1, 100), (2000, 5, 500, 0, 0)]

    conn_map.put(1000, conn((3, 1), (260, 100)))  # one more packet a -> b
    first = sweep.sweep(1 * SECOND)
    assert counters(first) == [(1000, 1, 60, 0, 0)]
    assert first[0].source.pod_name == "frontend"
    assert first[0].Summary == "UDP"

    assert sweep.sweep(2 * SECOND) == []  # nothing changed: no record
    assert sweep.sweep(4 * SECOND) == []  # 2000 idle for 4 s: forgotten
    assert (conn_map.deleted, sweep.expired) == ([2000], 1)

    conn_map.put(2000, conn((1, 0), (100, 0)))  # seen again: a new connection
    assert counters(sweep.sweep(5 * SECOND)) == [(2000, 1, 100, 0, 0)]
    assert sweep.sweep(7 * SECOND) == []
    assert conn_map.deleted == [2000, 1000]  # 1000 last changed at 1 s


def test_a_connection_the_map_evicted_starts_over(decoder: Decoder) -> None:
    conn_map = FakeMap()
    sweep = CounterSweep(conn_map.read, conn_map.delete, decoder, idle_timeout_ns=SECOND)
    conn_map.put(1000, conn((4, 4), (400, 400)))
    sweep.sweep(0)
    del conn_map.entries[bytes(key(1000))]  # evicted by the LRU map
    assert sweep.sweep(1) == []
    conn_map.put(1000, conn((1, 0), (100, 0)))
    assert counters(sweep.sweep(2)) == [(1000, 1, 100, 0, 0)]


def test_open_tcp_connections_are_kept_longer(decoder: Decoder) -> None:
    conn_map = FakeMap()
    sweep = CounterSweep(conn_map.read, conn_map.delete, decoder, idle_timeout_ns=SECOND,
                         open_tcp_timeout_ns=10 * SECOND)
    established, closed = conn((3, 2), (300, 200)), conn((4, 3), (400, 300))
    established.seen[0] = established.seen[2] = 0x12  # SYN, ACK
    closed.seen[0] = 0x11  # FIN, ACK
    conn_map.put(1000, established, proto=6)
    conn_map.put(2000, closed, proto=6)
    conn_map.put(3000, conn((1, 1), (10, 10)))  # UDP
    sweep.sweep(0)
    sweep.sweep(2 * SECOND)
    assert conn_map.deleted == [2000, 3000]
    sweep.sweep(11 * SECOND)
    assert conn_map.deleted == [2000, 3000, 1000]
