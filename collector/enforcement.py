"""The node's policies in force: a PolicyStore whose every change reaches the kernel maps.

Each store operation (apply, delete, new endpoints) yields a Change; its map steps are written
in the order bpf/policy.h documents (no moment without the old or the new rules), then the
policy generation is bumped so that connections check their cached decisions again at their
next forward packet, and the change's agent events are published. Policy reference indexes
stay resolvable after the change that retires them, for events still in flight.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flowscope.collector.endpoints import RegisteredEndpoint
from flowscope.collector.loader import Datapath
from flowscope.collector.policy import Change, MapStep, Policy, PolicyStore, StoredPolicy
from flowscope.collector.policy.bpfmaps import (
    PolicyKey,
    PolicyValue,
    encode_enforcement,
    encode_key,
    encode_value,
)
from flowscope.collector.policy.model import Network
from flowscope.collector.policy.store import MapName
from flowscope.proto.flow import flow_pb2

Publish = Callable[[flow_pb2.AgentEvent], object]


def write_step(datapath: Datapath, step: MapStep) -> None:
    """Write one map step into the kernel: its entries first, then its deletions."""
    if step.map is MapName.IPCACHE:
        ipcache: Mapping[Network, int] = step.write
        for network, identity in ipcache.items():
            datapath.set_ipcache(str(network), identity, 0)
        for network in step.delete:
            datapath.delete_ipcache(str(network))
        return
    table = datapath.bpf[step.map.value.encode()]
    if step.map is MapName.POLICY:
        entries: Mapping[PolicyKey, PolicyValue] = step.write
        for key, value in entries.items():
            table[encode_key(key)] = encode_value(value)
        keys: list[Any] = [encode_key(key) for key in step.delete]
    else:
        enforcement: Mapping[int, int] = step.write
        for identity, flags in enforcement.items():
            table[ctypes.c_uint32(identity)] = encode_enforcement(flags)
        keys = [ctypes.c_uint32(identity) for identity in step.delete]
    for key in keys:
        # A key never written (after a failed earlier change) is already as wanted.
        with contextlib.suppress(KeyError):
            del table[key]


class PolicyEnforcer:
    """Apply, delete, list and get policies; thread-safe (changes are installed in order)."""

    def __init__(self, store: PolicyStore, datapath: Datapath, publish: Publish) -> None:
        self._store = store
        self._datapath = datapath
        self._publish = publish
        self._lock = threading.Lock()
        self._refs: dict[int, tuple[flow_pb2.Policy, ...]] = {}

    @property
    def revision(self) -> int:
        return self._store.revision

    def list(self) -> list[StoredPolicy]:
        return self._store.list()

    def get(self, name: str, kind: str | None = None) -> StoredPolicy:
        return self._store.get(name, kind)

    def apply(self, policies: Sequence[Policy]) -> Change:
        with self._lock:
            return self._install(self._store.apply(policies))

    def delete(self, name: str, kind: str | None = None) -> Change:
        with self._lock:
            return self._install(self._store.delete(name, kind))

    def set_endpoints(self, endpoints: Sequence[RegisteredEndpoint]) -> Change:
        """Recompile for these endpoints (whose ipcache entries are in place)."""
        with self._lock:
            return self._install(self._store.set_endpoints(endpoints))

    def policies_of(self, ref_index: int) -> tuple[flow_pb2.Policy, ...]:
        """The policies a datapath reference index stands for (Flow.*_allowed_by, ...)."""
        return self._refs.get(ref_index, ())

    def _install(self, change: Change) -> Change:
        # New indexes resolve before any entry that names them is written; old ones stay.
        self._refs.update({index: tuple(ref.to_proto() for ref in refs)
                           for index, refs in change.compiled.refs.items()})
        for step in change.diff.steps():
            write_step(self._datapath, step)
        self._datapath.bump_policy_generation()
        for event in change.events:
            self._publish(event)
        return change
