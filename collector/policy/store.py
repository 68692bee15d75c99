"""The node's policies: apply, delete, list, get, with revisions, agent events and map diffs.

Every change compiles the complete new policy set first and only then replaces the store's
state, so a policy that fails to compile never replaces one in force. Each apply or delete
takes the next revision, yields POLICY_UPDATED or POLICY_DELETED agent events, and returns the
map operations that move the kernel maps from the old compiled state to the new one, in the
order bpf/policy.h documents (no moment without the old or the new rules).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flowscope.collector.endpoints import RegisteredEndpoint
from flowscope.collector.policy.bpfmaps import PolicyKey, PolicyValue
from flowscope.collector.policy.compiler import CompiledPolicy, CompilerConfig, compile_policies
from flowscope.collector.policy.model import Network, Policy, PolicyName, StoredPolicy
from flowscope.common.errors import InputError
from flowscope.proto.flow import flow_pb2


class MapName(enum.StrEnum):
    IPCACHE = "ipcache"
    POLICY = "fs_policy"
    ENFORCEMENT = "fs_enforcement"


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class MapDiff(Generic[K, V]):
    """What changes in one map: keys to add, keys whose value changes, keys to delete."""

    add: Mapping[K, V]
    update: Mapping[K, V]
    delete: tuple[K, ...]

    @classmethod
    def between(cls, old: Mapping[K, V], new: Mapping[K, V]) -> MapDiff[K, V]:
        return cls(add={k: v for k, v in new.items() if k not in old},
                   update={k: v for k, v in new.items() if k in old and old[k] != v},
                   delete=tuple(k for k in old if k not in new))

    def __bool__(self) -> bool:
        return bool(self.add or self.update or self.delete)


@dataclass(frozen=True)
class MapStep:
    """One step of a map update: write these entries, then delete those keys."""

    map: MapName
    write: Mapping[Any, Any]
    delete: tuple[Any, ...] = ()


@dataclass(frozen=True)
class PolicyDiff:
    policy: MapDiff[PolicyKey, PolicyValue]
    enforcement: MapDiff[int, int]
    ipcache: MapDiff[Network, int]

    @classmethod
    def between(cls, old: CompiledPolicy, new: CompiledPolicy) -> PolicyDiff:
        return cls(policy=MapDiff.between(old.entries, new.entries),
                   enforcement=MapDiff.between(old.enforcement, new.enforcement),
                   ipcache=MapDiff.between(old.ipcache, new.ipcache))

    def steps(self) -> list[MapStep]:
        """The map operations in the order of bpf/policy.h; empty steps left out."""
        steps = [
            MapStep(MapName.IPCACHE, {**self.ipcache.add, **self.ipcache.update}),
            MapStep(MapName.POLICY, {**self.policy.add, **self.policy.update}),
            MapStep(MapName.ENFORCEMENT, {**self.enforcement.add, **self.enforcement.update},
                    self.enforcement.delete),
            MapStep(MapName.POLICY, {}, self.policy.delete),
            MapStep(MapName.IPCACHE, {}, self.ipcache.delete),
        ]
        return [step for step in steps if step.write or step.delete]


@dataclass(frozen=True)
class Change:
    """The outcome of one store operation."""

    revision: int
    events: tuple[flow_pb2.AgentEvent, ...]
    diff: PolicyDiff
    compiled: CompiledPolicy


class PolicyStore:
    """The policies in force on this node; safe to call from several threads."""

    def __init__(self, config: CompilerConfig,
                 endpoints: Sequence[RegisteredEndpoint] = ()) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._policies: dict[PolicyName, StoredPolicy] = {}
        self._endpoints = tuple(endpoints)
        self._revision = 0
        self._compiled = compile_policies([], self._endpoints, config)

    @property
    def revision(self) -> int:
        return self._revision

    @property
    def compiled(self) -> CompiledPolicy:
        return self._compiled

    def list(self) -> list[StoredPolicy]:
        with self._lock:
            return sorted(self._policies.values(),
                          key=lambda s: (s.policy.id.namespace, s.policy.id.name,
                                         s.policy.id.kind))

    def get(self, name: str, kind: str | None = None) -> StoredPolicy:
        """The policy called "namespace/name" (or "name": clusterwide or in "default")."""
        with self._lock:
            return self._policies[self._find(name, kind)]

    def apply(self, policies: Sequence[Policy]) -> Change:
        """Add or replace these policies, all at one new revision."""
        ids = [policy.id for policy in policies]
        if len(set(ids)) != len(ids):
            raise InputError("the same policy is given twice in one apply")
        if not policies:
            raise InputError("no policies to apply")
        with self._lock:
            revision = self._revision + 1
            updated = dict(self._policies)
            updated.update({p.id: StoredPolicy(p, revision) for p in policies})
            events = tuple(_event(flow_pb2.POLICY_UPDATED, p.id, revision, p.rule_count)
                           for p in policies)
            return self._commit(updated, revision, events)

    def delete(self, name: str, kind: str | None = None) -> Change:
        """Remove the policy called "namespace/name" (see get)."""
        with self._lock:
            policy_id = self._find(name, kind)
            revision = self._revision + 1
            updated = {k: v for k, v in self._policies.items() if k != policy_id}
            rule_count = self._policies[policy_id].policy.rule_count
            event = _event(flow_pb2.POLICY_DELETED, policy_id, revision, rule_count)
            return self._commit(updated, revision, (event,))

    def set_endpoints(self, endpoints: Sequence[RegisteredEndpoint]) -> Change:
        """Recompile for a new set of endpoints; the revision stays."""
        with self._lock:
            self._endpoints = tuple(endpoints)
            return self._commit(self._policies, self._revision, ())

    def _commit(self, policies: Mapping[PolicyName, StoredPolicy], revision: int,
                events: tuple[flow_pb2.AgentEvent, ...]) -> Change:
        compiled = compile_policies(list(policies.values()), self._endpoints, self._config,
                                    self._compiled)
        diff = PolicyDiff.between(self._compiled, compiled)
        self._policies, self._revision, self._compiled = dict(policies), revision, compiled
        return Change(revision, events, diff, compiled)

    def _find(self, name: str, kind: str | None) -> PolicyName:
        namespace, slash, short = name.rpartition("/")
        candidates = [pid for pid in self._policies
                      if pid.name == short and (kind is None or pid.kind == kind)
                      and (pid.namespace == namespace if slash
                           else pid.namespace in ("", "default"))]
        if not candidates:
            raise InputError(f"no policy {name!r}" + (f" of kind {kind}" if kind else ""))
        if len(candidates) > 1:
            kinds = ", ".join(sorted(f"{pid.kind} {pid}" for pid in candidates))
            raise InputError(f"{name!r} is ambiguous ({kinds}): name the kind")
        return candidates[0]


def _event(kind: flow_pb2.AgentEventType.ValueType, policy_id: PolicyName, revision: int,
           rule_count: int) -> flow_pb2.AgentEvent:
    return flow_pb2.AgentEvent(type=kind, policy_update=flow_pb2.PolicyUpdateNotification(
        labels=policy_id.labels, revision=revision, rule_count=rule_count))
