"""Compiling and loading bpf/flowscope.bpf.c with BCC, and access to its maps.

The C sources ship as package data (flowscope/bpf links the top-level bpf/ folder) and are
configured by -D defines: the event transport, sizes, the rate limit, the seed of the
connection slots' hash, and what only the running kernel knows (struct sk_buff offsets from
BTF, drop reason values from tracefs). After loading, the ctypes mirrors of rawevent.py are
checked against BCC's reading of the program.
"""

from __future__ import annotations

import ctypes
import functools
import ipaddress
import os
import secrets
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

from flowscope.collector import rawevent as raw
from flowscope.collector import tc
from flowscope.collector.btf import load_vmlinux_btf
from flowscope.collector.dropreasons import DropReasons, read_drop_reasons
from flowscope.collector.policy import bpfmaps
from flowscope.common.errors import FlowscopeError, NotSupportedError

Transport = Literal["ring", "perf"]
SOURCE: Final = "flowscope.bpf.c"
PIN_DIR: Final = tc.BPFFS / "flowscope"


@dataclass(frozen=True)
class DatapathConfig:
    transport: Transport = "ring"
    # Ring buffer size, or perf buffer size per CPU, in pages (a power of two).
    buffer_pages: int = 256
    conn_slots: int = 65536  # connection slots (a power of two)
    conn_max: int = 65536  # conn_map entries: connections whose slot another one holds
    policy_max: int = 65536  # policy map entries
    rate_limit: int = 0  # events per second per source address; 0: no limit
    rate_burst: int = 1000

    def __post_init__(self) -> None:
        if self.transport not in ("ring", "perf"):
            raise ValueError(f"event transport must be ring or perf, not {self.transport!r}")
        if self.buffer_pages < 1 or self.buffer_pages & (self.buffer_pages - 1):
            raise ValueError(f"buffer pages must be a power of two, not {self.buffer_pages}")
        if self.conn_slots < 1 or self.conn_slots & (self.conn_slots - 1):
            raise ValueError(f"connection slots must be a power of two, not {self.conn_slots}")
        if min(self.conn_max, self.policy_max, self.rate_burst) < 1 or self.rate_limit < 0:
            raise ValueError("conn_max, policy_max and rate_burst must be positive, "
                             "rate_limit >= 0")


def bpf_dir() -> Path:
    """The folder of the BPF sources inside the installed package."""
    folder = resources.files("flowscope").joinpath("bpf")
    path = Path(str(folder))
    if not (path / SOURCE).is_file():
        raise NotSupportedError(f"the BPF sources are missing from the installation ({path})")
    return path


class Datapath:
    """The loaded program: attach it to interfaces, fill the ipcache, read its maps."""

    def __init__(self, config: DatapathConfig) -> None:
        self.config = config
        self.drop_reasons: DropReasons | None = None
        # Seeds the hash that places connections in slots, so that no one outside can aim
        # connections at one slot (they would only go to conn_map, but slower).
        self.slot_seed = secrets.randbits(64)
        self._bpf: Any = None
        self._progs: dict[str, int] = {}
        self._free_slot_fd = -1
        self._attached: set[str] = set()

    def cflags(self) -> list[str]:
        """The defines that configure the program for this kernel and this configuration."""
        btf = load_vmlinux_btf()
        self.drop_reasons = read_drop_reasons()
        c = self.config
        flags = [
            f"-I{bpf_dir()}",
            f"-DFS_RING_PAGES={c.buffer_pages}",
            f"-DFS_CONN_SLOTS={c.conn_slots}",
            f"-DFS_SLOT_SEED={self.slot_seed:#x}ULL",
            f"-DFS_CONN_MAX={c.conn_max}",
            f"-DFS_POLICY_MAX={c.policy_max}",
            f"-DFS_RATE_LIMIT={c.rate_limit}",
            f"-DFS_RATE_BURST={c.rate_burst}",
            f"-DFS_SKB_HEAD_OFF={btf.member_offset('sk_buff', 'head')}",
            f"-DFS_SKB_NETWORK_HEADER_OFF={btf.member_offset('sk_buff', 'network_header')}",
            f"-DFS_DROP_TC_INGRESS={self.drop_reasons.value('TC_INGRESS')}",
            f"-DFS_DROP_TC_EGRESS={self.drop_reasons.value('TC_EGRESS')}",
            f"-DFS_DROP_NOT_SPECIFIED={self.drop_reasons.value('NOT_SPECIFIED')}",
        ]
        if c.transport == "perf":
            flags.append("-DFS_PERF_EVENTS")
        return flags

    def load(self) -> None:
        """Compile and load the programs; the tracepoints attach here, tc filters later."""
        if os.geteuid() != 0:
            raise NotSupportedError("loading eBPF programs needs root (CAP_BPF, CAP_NET_ADMIN, "
                                    "CAP_PERFMON)")
        try:
            from bcc import BPF
        except ImportError as exc:
            raise NotSupportedError("BCC's Python module is not installed "
                                    "(Debian: python3-bpfcc)") from exc
        source = bpf_dir() / SOURCE
        try:
            self._bpf = BPF(src_file=str(source).encode(), cflags=self.cflags())
            for name in tc.PROGRAM_NAMES.values():
                self._progs[name] = self._bpf.load_func(name.encode(), BPF.SCHED_CLS).fd
            self._free_slot_fd = self._bpf.load_func(b"fs_free_slot", BPF.SCHED_CLS).fd
        except Exception as exc:
            self.close()
            raise NotSupportedError(f"the kernel refused flowscope's BPF program: {exc}") from exc
        self._check_layouts()
        self.bump_policy_generation()  # from 0: every connection checks policy at once
        tc.ensure_bpffs()

    def _check_layouts(self) -> None:
        bpf = self._bpf
        raw.check_layout(raw.RawEvent, bpf[b"event_layout"].Leaf)
        raw.check_layout(raw.ConnKey, bpf[b"conn_map"].Key)
        raw.check_layout(raw.Conn, bpf[b"conn_map"].Leaf)
        raw.check_layout(raw.ConnSlot, bpf[b"conn_slots"].Leaf)
        raw.check_layout(raw.SlotRequest, bpf[b"slot_request"].Leaf)
        raw.check_layout(raw.IpcacheKey, bpf[b"ipcache"].Key)
        raw.check_layout(raw.IpcacheValue, bpf[b"ipcache"].Leaf)
        raw.check_layout(bpfmaps.FsPolicyKey, bpf[b"fs_policy"].Key)
        raw.check_layout(bpfmaps.FsPolicyValue, bpf[b"fs_policy"].Leaf)
        raw.check_layout(bpfmaps.FsEnforcementValue, bpf[b"fs_enforcement"].Leaf)

    @property
    def bpf(self) -> Any:
        """The BCC object (tables by name: events, conn_slots, conn_map, counters, ipcache,
        fs_policy, fs_enforcement, policy_generation)."""
        if self._bpf is None:
            raise RuntimeError("the datapath is not loaded")
        return self._bpf

    def attach(self, ifname: str) -> None:
        for direction, name in tc.PROGRAM_NAMES.items():
            tc.attach(ifname, direction, self._progs[name], PIN_DIR)
        self._attached.add(ifname)

    def detach(self, ifname: str) -> None:
        tc.detach(ifname)
        self._attached.discard(ifname)

    def program_fds(self) -> list[int]:
        """File descriptors of the loaded tc programs (for their run-time statistics)."""
        return list(self._progs.values())

    @property
    def attached_interfaces(self) -> set[str]:
        return set(self._attached)

    def set_ipcache(self, cidr: str, identity: int, flags: int) -> None:
        table = self.bpf[b"ipcache"]
        table[_ipcache_key(cidr)] = raw.IpcacheValue(identity=identity, flags=flags)

    def delete_ipcache(self, cidr: str) -> None:
        table = self.bpf[b"ipcache"]
        key = _ipcache_key(cidr)
        if table.get(key) is not None:
            del table[key]

    def bump_policy_generation(self) -> int:
        """Make every connection check policy again at its next forward packet (after the
        policy maps or the ipcache changed); the new generation."""
        table = self.bpf[b"policy_generation"]
        key = ctypes.c_int(0)
        generation = (table[key].value + 1) & 0xFFFFFFFF or 1
        table[key] = ctypes.c_uint32(generation)
        return generation

    def free_slot(self, index: int, key: raw.ConnKey) -> bool:
        """Free connection slot `index` if it still holds `key` (by running fs_free_slot, so
        that the slot changes hands only by the datapath's atomic claim); whether it did. One
        caller at a time (the sweep): the request is a single map element."""
        self.bpf[b"slot_request"][ctypes.c_int(0)] = raw.SlotRequest(index=index, key=key)
        return _test_run(self._free_slot_fd) == 1

    def counters(self) -> list[list[int]]:
        """Per CPU, the kernel's loss counters, indexed as rawevent.COUNTER_*."""
        table = self.bpf[b"counters"]
        per_index = [list(table[ctypes.c_int(i)]) for i in range(raw.COUNTER_MAX)]
        return [list(cpu) for cpu in zip(*per_index, strict=True)]

    def close(self) -> None:
        """Detach from every interface and unload (tracepoints detach with the BPF object)."""
        for ifname in sorted(self._attached):
            tc.detach(ifname)
        self._attached.clear()
        if PIN_DIR.is_dir() and not any(PIN_DIR.iterdir()):
            PIN_DIR.rmdir()
        if self._bpf is not None:
            self._bpf.cleanup()
            self._bpf = None
        self._progs.clear()
        self._free_slot_fd = -1


class _TestRunOpts(ctypes.Structure):
    """libbpf's struct bpf_test_run_opts (its sz field makes it version-proof)."""

    _fields_ = (
        ("sz", ctypes.c_size_t),
        ("data_in", ctypes.c_void_p),
        ("data_out", ctypes.c_void_p),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_void_p),
        ("ctx_out", ctypes.c_void_p),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("repeat", ctypes.c_int),
        ("duration", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    )


# A tc program runs on a packet: the smallest one, an Ethernet header of zeros.
_TEST_PACKET = ctypes.create_string_buffer(14)


@functools.cache
def _bpf_prog_test_run() -> Any:
    from bcc import libbcc  # system package, loaded on use

    run = libbcc.lib.bpf_prog_test_run_opts  # libbpf's, exported by libbcc
    run.argtypes = (ctypes.c_int, ctypes.POINTER(_TestRunOpts))
    run.restype = ctypes.c_int
    return run


def _test_run(prog_fd: int) -> int:
    """Run a tc program once (BPF_PROG_TEST_RUN) on a dummy packet; its return value."""
    opts = _TestRunOpts(sz=ctypes.sizeof(_TestRunOpts), data_in=ctypes.addressof(_TEST_PACKET),
                        data_size_in=len(_TEST_PACKET))
    result = _bpf_prog_test_run()(prog_fd, ctypes.byref(opts))
    if result != 0:
        raise FlowscopeError(f"running a BPF program failed: {os.strerror(-result)}")
    return int(opts.retval)


def _ipcache_key(cidr: str) -> raw.IpcacheKey:
    net = ipaddress.ip_network(cidr, strict=False)
    key = raw.IpcacheKey(prefixlen=32 + net.prefixlen, family=net.version)
    packed = net.network_address.packed
    ctypes.memmove(key.addr, packed, len(packed))
    return key
