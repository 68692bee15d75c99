"""Compile policies and endpoints into the datapath's policy maps (layout in bpf/policy.h).

compile_policies() turns the stored policies and the node's endpoints into:
  entries      the fs_policy LPM trie: (endpoint identity, remote identity or 0, direction,
               protocol or 0, port prefix) -> (verdict, match type, policy reference, audit)
  enforcement  endpoint identity -> which directions deny by default, and which audit
  ipcache      CIDR -> local identity (1<<24 | n) for every block a CIDR rule names
  refs         policy reference index -> the policies (name, namespace, kind, revision)
It is pure: the same input gives the same maps, and indexes handed out before (CIDR
identities, reference indexes) are kept while still in use, so a change rewrites only the
entries it really changes.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from flowscope.collector.endpoints import RegisteredEndpoint
from flowscope.collector.policy.bpfmaps import (
    FS_AUDIT_EGRESS,
    FS_AUDIT_INGRESS,
    FS_ENFORCE_EGRESS,
    FS_ENFORCE_INGRESS,
    FS_IDENTITY_LOCAL_FLAG,
    FS_POLICY_ALLOW,
    FS_POLICY_DENY,
    PORT_BITS,
    PolicyKey,
    PolicyValue,
)
from flowscope.collector.policy.model import (
    ANY_PORT_FIRST,
    ANY_PORT_LAST,
    ENTITIES,
    Action,
    CidrPeer,
    Direction,
    EntityPeer,
    Network,
    Peer,
    PolicyRef,
    PortRange,
    Rule,
    StoredPolicy,
)
from flowscope.collector.policy.selectors import EndpointSelector
from flowscope.common.errors import InputError
from flowscope.common.vocab import IDENTITY_WORLD, POLICY_MATCH_TYPES

MATCH = {name: number for number, name in POLICY_MATCH_TYPES.items()}
ENFORCE_FLAGS = {Direction.INGRESS: FS_ENFORCE_INGRESS, Direction.EGRESS: FS_ENFORCE_EGRESS}
AUDIT_FLAGS = {Direction.INGRESS: FS_AUDIT_INGRESS, Direction.EGRESS: FS_AUDIT_EGRESS}
_LAST_LOCAL_NUMBER = FS_IDENTITY_LOCAL_FLAG - 1

# (protocol or 0, first port of the block, port prefix bits)
PortBlock = tuple[int, int, int]
_ANY_PROTOCOL: tuple[PortBlock, ...] = ((0, 0, 0),)


@dataclass(frozen=True)
class CompilerConfig:
    # Audit mode for every endpoint: denials pass, reported as AUDIT.
    audit: bool = False


@dataclass(frozen=True)
class CompiledPolicy:
    entries: Mapping[PolicyKey, PolicyValue] = field(default_factory=dict)
    enforcement: Mapping[int, int] = field(default_factory=dict)
    ipcache: Mapping[Network, int] = field(default_factory=dict)
    refs: Mapping[int, tuple[PolicyRef, ...]] = field(default_factory=dict)

    def identity_of_address(self, address: str) -> int:
        """The identity the ipcache gives an address outside the endpoints: the longest CIDR
        block holding it, else world."""
        ip = ipaddress.ip_address(address)
        best: tuple[int, int] = (-1, IDENTITY_WORLD)
        for network, identity in self.ipcache.items():
            if ip.version == network.version and ip in network and network.prefixlen > best[0]:
                best = (network.prefixlen, identity)
        return best[1]


def compile_policies(policies: Sequence[StoredPolicy], endpoints: Sequence[RegisteredEndpoint],
                     config: CompilerConfig,
                     previous: CompiledPolicy | None = None) -> CompiledPolicy:
    """The policy maps for these policies and endpoints (see the module docstring)."""
    previous = previous or CompiledPolicy()
    labels_by_identity = {ep.identity: ep.endpoint.labels for ep in endpoints}
    ipcache = _cidr_identities(policies, previous.ipcache)
    remotes = _RemoteResolver(labels_by_identity, ipcache)
    enforcement: dict[int, int] = defaultdict(int)
    contributions = _Contributions()
    for ordinal, stored in enumerate(policies):
        for spec in stored.policy.specs:
            selected = [identity for identity, labels in labels_by_identity.items()
                        if spec.subject.matches(labels)]
            for identity in selected:
                for direction in spec.enforces:
                    enforcement[identity] |= ENFORCE_FLAGS[direction]
                    if stored.policy.audit or config.audit:
                        enforcement[identity] |= AUDIT_FLAGS[direction]
            for rule in spec.rules:
                contributions.add(rule, selected, remotes.identities(rule.peers), ordinal)
    refs = _RefTable([stored.ref for stored in policies], previous.refs)
    entries = contributions.merge(enforcement, refs)
    return CompiledPolicy(entries=entries, enforcement=dict(enforcement), ipcache=ipcache,
                          refs=refs.table())


def port_blocks(ports: Iterable[PortRange]) -> tuple[PortBlock, ...]:
    """Port ranges as aligned power-of-two blocks (at most 30 per range); none: any."""
    blocks: list[PortBlock] = []
    for port_range in ports:
        if (port_range.first, port_range.last) == (ANY_PORT_FIRST, ANY_PORT_LAST):
            blocks.append((int(port_range.protocol), 0, 0))
            continue
        first = port_range.first
        while first <= port_range.last:
            size = first & -first or 1 << PORT_BITS
            while size > port_range.last - first + 1:
                size //= 2
            blocks.append((int(port_range.protocol), first, PORT_BITS - size.bit_length() + 1))
            first += size
    return tuple(dict.fromkeys(blocks)) or _ANY_PROTOCOL


def block_covers(outer: PortBlock, inner: PortBlock) -> bool:
    """Whether outer's protocol and ports contain inner's (protocol 0: any)."""
    if not outer[0]:
        return True
    shift = PORT_BITS - outer[2]
    return outer[0] == inner[0] and inner[2] >= outer[2] and inner[1] >> shift == outer[1] >> shift


# (endpoint identity, remote identity, direction): the fields one lookup fixes.
_Lookup = tuple[int, int, int]


class _Contributions:
    """Which policies (by ordinal) allow and deny each key, grouped by lookup."""

    def __init__(self) -> None:
        self._groups: dict[_Lookup, dict[PortBlock, tuple[set[int], set[int]]]] = {}

    def add(self, rule: Rule, selected: Sequence[int], remotes: Sequence[int],
            ordinal: int) -> None:
        blocks = port_blocks(rule.ports)
        side = 1 if rule.action is Action.DENY else 0
        direction = int(rule.direction)
        for endpoint in selected:
            for remote in remotes:
                group = self._groups.setdefault((endpoint, remote, direction), {})
                for block in blocks:
                    sets = group.get(block)
                    if sets is None:
                        sets = group[block] = (set(), set())
                    sets[side].add(ordinal)

    def merge(self, enforcement: Mapping[int, int],
              refs: _RefTable) -> dict[PolicyKey, PolicyValue]:
        """One value per key: a deny wins at its key and over allows nested in its block."""
        entries: dict[PolicyKey, PolicyValue] = {}
        for lookup, group in self._groups.items():
            endpoint, remote, direction = lookup
            audit = bool(enforcement.get(endpoint, 0) & AUDIT_FLAGS[Direction(direction)])
            deny_blocks = [block for block, (_, denied) in group.items() if denied]
            for block, (allowed, denied) in group.items():
                if not denied and deny_blocks:
                    denied = set().union(*(group[deny][1] for deny in deny_blocks
                                           if block_covers(deny, block)))
                key = PolicyKey(endpoint, remote, direction, *block)
                if denied:
                    entries[key] = PolicyValue(FS_POLICY_DENY, MATCH["none"],
                                               refs.index(denied), audit)
                else:
                    entries[key] = PolicyValue(FS_POLICY_ALLOW, _match_type(remote, block),
                                               refs.index(allowed), audit)
        return entries


def _match_type(remote: int, block: PortBlock) -> int:
    protocol, _, bits = block
    if remote:
        name = "L3-Only" if not protocol else "L3-Proto" if not bits else "L3-L4"
    else:
        name = "all" if not protocol else "Proto-Only" if not bits else "L4-Only"
    return MATCH[name]


class _RefTable:
    """Indexes of sets of policy references; a set indexed before keeps its index."""

    def __init__(self, refs: Sequence[PolicyRef],
                 previous: Mapping[int, tuple[PolicyRef, ...]]) -> None:
        self._refs = refs
        self._previous = {refs: index for index, refs in previous.items()}
        self._next = max(previous, default=0) + 1
        self._by_ordinals: dict[frozenset[int], int] = {}
        self._table: dict[int, tuple[PolicyRef, ...]] = {}

    def index(self, ordinals: set[int]) -> int:
        key = frozenset(ordinals)
        index = self._by_ordinals.get(key)
        if index is None:
            refs = tuple(sorted((self._refs[o] for o in key),
                                key=lambda ref: (str(ref.id), ref.id.kind)))
            index = self._previous.get(refs)
            if index is None:
                index, self._next = self._next, self._next + 1
            self._by_ordinals[key] = index
            self._table[index] = refs
        return index

    def table(self) -> dict[int, tuple[PolicyRef, ...]]:
        return dict(self._table)


def _cidr_identities(policies: Sequence[StoredPolicy],
                     previous: Mapping[Network, int]) -> dict[Network, int]:
    """A local identity for every CIDR block the rules name (/0 is the world identity)."""
    blocks = {block for stored in policies for spec in stored.policy.specs
              for rule in spec.rules for peer in rule.peers if isinstance(peer, CidrPeer)
              for block in (peer.cidr, *peer.excepted) if block.prefixlen}
    kept = {block: previous[block] for block in blocks if block in previous}
    # Numbers freed by this change are not reused in it: the old rules still name them until
    # the change's last step.
    taken = set(previous.values())
    number = 1
    for block in sorted(blocks - kept.keys(), key=lambda b: (b.version, b.network_address,
                                                              b.prefixlen)):
        while FS_IDENTITY_LOCAL_FLAG | number in taken:
            number += 1
        if number > _LAST_LOCAL_NUMBER:
            raise InputError("too many CIDR blocks in policies: no local identity left")
        kept[block] = FS_IDENTITY_LOCAL_FLAG | number
        taken.add(kept[block])
    return kept


class _RemoteResolver:
    """The remote identities a rule's peers stand for."""

    def __init__(self, labels_by_identity: Mapping[int, Sequence[str]],
                 ipcache: Mapping[Network, int]) -> None:
        self._labels = labels_by_identity
        self._ipcache = ipcache
        # Blocks by (family, first address): the blocks inside a CIDR are one slice of them,
        # so resolving every CIDR rule does not cost rules x blocks.
        self._blocks = sorted(ipcache.items(), key=lambda item: _start(item[0]))
        self._starts = [_start(block) for block, _ in self._blocks]

    def identities(self, peers: Sequence[Peer]) -> list[int]:
        found: set[int] = set()
        for peer in peers:
            found |= self._peer(peer)
        return sorted(found)

    def _peer(self, peer: Peer) -> set[int]:
        if isinstance(peer, EndpointSelector):
            return {identity for identity, labels in self._labels.items()
                    if peer.matches(labels)}
        if isinstance(peer, EntityPeer):
            identities = set(ENTITIES[peer.name])
            if peer.name == "world":
                identities |= set(self._ipcache.values())
            elif peer.name == "cluster":
                identities |= set(self._labels)
            return identities
        return self._cidr(peer)

    def _cidr(self, peer: CidrPeer) -> set[int]:
        # An address resolves to its longest ipcache block, so the rule holds exactly for the
        # blocks inside its CIDR and outside every except block; the world identity stands
        # for addresses outside all blocks, which only a /0 rule holds.
        identities = {IDENTITY_WORLD} if peer.cidr.prefixlen == 0 else set()
        cidr = peer.cidr
        first = bisect.bisect_left(self._starts, _start(cidr))
        last = bisect.bisect_right(self._starts, (cidr.version, int(cidr.broadcast_address)))
        for block, identity in self._blocks[first:last]:
            # An aligned block that starts inside the CIDR and is no larger lies within it.
            if block.prefixlen >= cidr.prefixlen and not any(
                    _within(block, ex) for ex in peer.excepted):
                identities.add(identity)
        return identities


def _start(network: Network) -> tuple[int, int]:
    return network.version, int(network.network_address)


def _within(inner: Network, outer: Network) -> bool:
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]
