"""The policy model both policy kinds parse into, and which the compiler reads.

A Policy has one or more Specs; a Spec selects the endpoints it applies to, names the
directions in which it switches on default deny, and lists its Rules. A Rule allows or denies
traffic in one direction between the selected endpoints and its peers (endpoint selectors,
CIDR blocks, entities) on its ports (none listed: every protocol and port).
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from typing import Final

from flowscope.collector.policy.selectors import EndpointSelector
from flowscope.common.vocab import RESERVED_IDENTITY_NUMBERS
from flowscope.proto.flow import flow_pb2

KIND_NETWORK_POLICY: Final = "NetworkPolicy"
KIND_CILIUM: Final = "CiliumNetworkPolicy"
KIND_CILIUM_CLUSTERWIDE: Final = "CiliumClusterwideNetworkPolicy"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Direction(enum.IntEnum):
    """Traffic direction from the selected endpoint's side (TrafficDirection values)."""

    INGRESS = flow_pb2.INGRESS
    EGRESS = flow_pb2.EGRESS


class Action(enum.IntEnum):
    """What a rule does with the traffic it matches (the datapath's FS_POLICY_ALLOW/DENY)."""

    ALLOW = 1
    DENY = 2


class Protocol(enum.IntEnum):
    """L4 protocols a port rule may name (IP protocol numbers)."""

    TCP = 6
    UDP = 17
    SCTP = 132


@dataclass(frozen=True)
class PortRange:
    """Destination ports first..last of one protocol; 0..65535 means any port."""

    protocol: Protocol
    first: int
    last: int


ANY_PORT_FIRST: Final = 0
ANY_PORT_LAST: Final = 65535


@dataclass(frozen=True)
class CidrPeer:
    """Addresses in cidr but in none of the excepted blocks."""

    cidr: Network
    excepted: tuple[Network, ...] = ()


# Cilium entities and the reserved identities they stand for. The compiler adds every CIDR
# identity to "world" (addresses outside the endpoints and the node) and every endpoint's
# identity to "cluster"; "all" is the wildcard remote identity 0.
_ENTITY_RESERVED_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "world": ("world",),
    "host": ("host",),
    "remote-node": ("remote-node",),
    "health": ("health",),
    "init": ("init",),
    "kube-apiserver": ("kube-apiserver",),
    "ingress": ("ingress",),
    "unmanaged": ("unmanaged",),
    "cluster": ("host", "remote-node", "health", "init", "kube-apiserver", "ingress"),
    "all": ("unknown",),
}
ENTITIES: Final[dict[str, frozenset[int]]] = {
    entity: frozenset(RESERVED_IDENTITY_NUMBERS[name] for name in names)
    for entity, names in _ENTITY_RESERVED_NAMES.items()
}


@dataclass(frozen=True)
class EntityPeer:
    """A Cilium entity: a name in ENTITIES."""

    name: str


Peer = EndpointSelector | CidrPeer | EntityPeer
# A rule that names no peer applies to every remote (Kubernetes' absent "from"/"to").
ANY_PEER: Final = EntityPeer("all")


@dataclass(frozen=True)
class Rule:
    direction: Direction
    action: Action
    peers: tuple[Peer, ...]
    ports: tuple[PortRange, ...]  # empty: every protocol and port


@dataclass(frozen=True)
class Spec:
    subject: EndpointSelector
    # Directions in which the endpoints selected here deny what no rule allows.
    enforces: frozenset[Direction]
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class PolicyName:
    """A policy's identity in the store; namespace is "" for clusterwide policies."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @property
    def labels(self) -> list[str]:
        """The policy's labels as Cilium derives them (agent events, Flow.*_allowed_by)."""
        labels = [f"k8s:io.cilium.k8s.policy.derived-from={self.kind}",
                  f"k8s:io.cilium.k8s.policy.name={self.name}"]
        if self.namespace:
            labels.append(f"k8s:io.cilium.k8s.policy.namespace={self.namespace}")
        return labels


@dataclass(frozen=True)
class Policy:
    id: PolicyName
    specs: tuple[Spec, ...]
    # Audit mode: the endpoints this policy selects pass what they would deny in its
    # directions, reported as AUDIT.
    audit: bool
    source: str  # "file:line" of the document

    @property
    def rule_count(self) -> int:
        return sum(len(spec.rules) for spec in self.specs)


@dataclass(frozen=True)
class PolicyRef:
    """A policy at a revision, as flows report it (Flow.*_allowed_by, *_denied_by)."""

    id: PolicyName
    revision: int

    def to_proto(self) -> flow_pb2.Policy:
        return flow_pb2.Policy(name=self.id.name, namespace=self.id.namespace,
                               labels=self.id.labels, kind=self.id.kind, revision=self.revision)


@dataclass(frozen=True)
class StoredPolicy:
    """A policy as the store holds it: with the revision that last applied it."""

    policy: Policy
    revision: int

    @property
    def ref(self) -> PolicyRef:
        return PolicyRef(self.policy.id, self.revision)
