"""The connection table on a real kernel: slots, conn_map beside them, and freeing a slot.

Ports are chosen so that connections meet in one slot: the collector mirrors the datapath's
slot hash, and the tests use it to find a source port whose connection collides with another.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from labtools import flows, run_in, start_collector, start_in, wait_for

from flowscope.collector import rawevent as raw
from flowscope.collector.collector import Collector
from flowscope.collector.conntable import KEY_DTYPE, MapPart, SlotPart, read_batch, slot_of
from flowscope.collector.labconfig import LabConfig
from flowscope.collector.ring import Event
from flowscope.proto.flow import flow_pb2

pytestmark = pytest.mark.kernel

SLOTS = 256
PORT = 6100
FIRST_SOURCE_PORT = 31000


@pytest.fixture
def config(lab: tuple[LabConfig, Path]) -> LabConfig:
    return lab[0]


@pytest.fixture
def small(lab: tuple[LabConfig, Path]) -> Iterator[Collector]:
    collector = start_collector(lab[1], idle_timeout=0.3, conn_slots=SLOTS)
    yield collector
    collector.stop()


def slot_table(collector: Collector) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    """(index, struct fs_conn_slot) of every slot."""
    datapath = collector.datapath
    indexes, slots, n = read_batch(datapath.bpf[b"conn_slots"], datapath.config.conn_slots)
    return np.frombuffer(indexes, np.uint32, n), np.frombuffer(slots, np.dtype(raw.ConnSlot), n)


def held(collector: Collector, source_port: int) -> tuple[int, np.void] | None:
    """(slot index, key) of the UDP connection from `source_port` if a slot holds it."""
    indexes, slots = slot_table(collector)
    for index, slot in zip(indexes, slots, strict=True):
        key = slot["key"]
        if (slot["claim"] == raw.SLOT_TAKEN and key["proto"] == 17
                and source_port in (key["port_a"], key["port_b"])):
            return int(index), key
    return None


def in_map(collector: Collector, source_port: int) -> bool:
    keys, _, n = MapPart(collector.datapath).read()
    found = np.frombuffer(keys, KEY_DTYPE, n)
    return bool(((found["port_a"] == source_port) | (found["port_b"] == source_port)).any())


def send(collector: Collector, config: LabConfig, source_port: int, count: int) -> None:
    client, server = config.find("shop/client"), config.find("data/server")
    start = collector.ring.next_seq()
    run_in(config, "shop/client", "udp-from", str(source_port), server.ipv4, str(PORT),
           str(count), "10")
    wait_for(collector, start, lambda ev: bool(flows(ev, src=client.ipv4, sport=source_port)))


def sent_to_a_slot(collector: Collector, config: LabConfig) -> tuple[int, int, np.void]:
    """A source port whose connection took a free slot, with that slot's index and key (a
    slot that the lab's own traffic holds sends a port's connection to conn_map)."""
    for source_port in range(FIRST_SOURCE_PORT, FIRST_SOURCE_PORT + 10):
        send(collector, config, source_port, 3)
        found = held(collector, source_port)
        if found:
            return source_port, *found
    raise AssertionError("no connection took a slot")


def colliding_port(collector: Collector, key: np.void, source_port: int) -> int:
    """Another source port whose connection hashes to the same slot as `key`'s."""
    seed = collector.datapath.slot_seed
    target = slot_of(np.array([key], KEY_DTYPE), seed, SLOTS)[0]
    candidates = np.repeat(np.array([key], KEY_DTYPE), 20000)
    candidates["port_a" if key["port_a"] == source_port else "port_b"] = np.arange(40000, 60000)
    return 40000 + int(np.flatnonzero(slot_of(candidates, seed, SLOTS) == target)[0])


def records(collector: Collector, start: int, client: str) -> dict[int, list[int]]:
    """Source port -> packets_forward of each counter record from `start` on."""
    entries, _ = collector.ring.read(start, limit=100_000)
    found: dict[int, list[int]] = {}
    for f in flows([e for _, e in entries], src=client, dport=PORT):
        if f.HasField("counters"):
            found.setdefault(f.l4.UDP.source_port, []).append(f.counters.packets_forward)
    return found


def test_a_connection_meeting_a_taken_slot_is_counted_in_conn_map(
        small: Collector, config: LabConfig) -> None:
    client = config.find("shop/client").ipv4
    start = small.ring.next_seq()
    sink = start_in(config, "data/server", "udp-sink", str(PORT))
    try:
        first, index, key = sent_to_a_slot(small, config)
        second = colliding_port(small, key, first)
        send(small, config, second, 4)
        assert held(small, first) == (index, key)
        assert held(small, second) is None and in_map(small, second)
        small.sweep()
    finally:
        sink.kill()
        sink.wait()
    counted = records(small, start, client)
    assert (counted[first], counted[second]) == ([3], [4])


def test_an_idle_connections_slot_goes_to_the_next(small: Collector,
                                                   config: LabConfig) -> None:
    client = config.find("shop/client").ipv4
    start = small.ring.next_seq()
    sink = start_in(config, "data/server", "udp-sink", str(PORT))
    try:
        first, index, key = sent_to_a_slot(small, config)
        second = colliding_port(small, key, first)
        send(small, config, second, 4)
        small.sweep()
        time.sleep(0.5)
        small.sweep()  # both idle for longer than the timeout: forgotten
        assert held(small, first) is None and not in_map(small, second)
        assert slot_table(small)[1][index]["claim"] == raw.SLOT_FREE
        send(small, config, second, 5)  # a new connection: it takes the freed slot
        assert held(small, second) is not None
        small.sweep()
    finally:
        sink.kill()
        sink.wait()
    counted = records(small, start, client)
    assert (counted[first], counted[second]) == ([3], [4, 5])


def test_a_slot_is_freed_only_while_it_holds_the_key(small: Collector,
                                                     config: LabConfig) -> None:
    sink = start_in(config, "data/server", "udp-sink", str(PORT))
    try:
        _, index, key = sent_to_a_slot(small, config)
    finally:
        sink.kill()
        sink.wait()
    holder = raw.ConnKey.from_buffer_copy(key.tobytes())
    other = raw.ConnKey.from_buffer_copy(key.tobytes())
    other.port_a ^= 1
    datapath = small.datapath
    assert not datapath.free_slot(index, other)
    assert slot_table(small)[1][index]["claim"] == raw.SLOT_TAKEN
    assert datapath.free_slot(index, holder)
    assert slot_table(small)[1][index]["claim"] == raw.SLOT_FREE
    assert not datapath.free_slot(index, holder)


def test_each_connection_sits_in_the_slot_its_key_hashes_to(
        small: Collector, config: LabConfig) -> None:
    client, server = config.find("shop/client"), config.find("data/server")
    sink = start_in(config, "data/server", "udp-sink", str(PORT))
    try:
        start = small.ring.next_seq()
        run_in(config, "shop/client", "udp-spread", server.ipv4, str(PORT), "40")
        wait_for(small, start, lambda ev: len(flows(ev, src=client.ipv4, dport=PORT)) >= 80)
    finally:
        sink.kill()
        sink.wait()
    indexes, slots = slot_table(small)
    taken = slots["claim"] == raw.SLOT_TAKEN
    assert taken.sum() >= 20
    assert (slot_of(slots["key"][taken], small.datapath.slot_seed, SLOTS)
            == indexes[taken]).all()
    assert SlotPart(small.datapath).read()[2] == taken.sum()


def test_tcp_connections_in_conn_map_keep_their_direction(lab: tuple[LabConfig, Path],
                                                          config: LabConfig) -> None:
    client, server = config.find("shop/client"), config.find("data/server")
    collector = start_collector(lab[1], conn_slots=1)  # at most one connection in a slot
    sink = start_in(config, "data/server", "sink", str(PORT))
    try:
        start = collector.ring.next_seq()
        for _ in range(3):
            run_in(config, "shop/client", "tcp", server.ipv4, str(PORT), "2000")
        events: list[Event] = wait_for(collector, start, lambda ev: len(
            [f for f in flows(ev, src=server.ipv4, sport=PORT) if f.l4.TCP.flags.FIN]) >= 6)
    finally:
        sink.kill()
        sink.wait()
        collector.stop()
    request = flows(events, src=client.ipv4, dport=PORT)
    reply = flows(events, src=server.ipv4, sport=PORT)
    assert {f.is_reply.value for f in request} == {False}
    assert {f.is_reply.value for f in reply} == {True}
    assert len([f for f in request if f.l4.TCP.flags.SYN]) == 6  # 3 connections, 2 points
    assert len([f for f in reply if f.l4.TCP.flags.SYN]) == 6
    assert {f.verdict for f in request + reply} == {flow_pb2.FORWARDED}
