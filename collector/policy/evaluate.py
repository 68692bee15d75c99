"""The datapath's policy decision, in Python, over compiled maps (procedure in bpf/policy.h).

decide() is one direction's check at one endpoint; evaluate() checks a connection's first
packet as the tc programs do: egress at the source if it is a local endpoint, ingress at the
destination if it is one. Tests state policy semantics through these functions, and the
collector can use them to explain a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowscope.collector.endpoints import RegisteredEndpoint
from flowscope.collector.policy.bpfmaps import (
    FS_POLICY_DENY,
    PORT_BITS,
    PolicyKey,
    PolicyValue,
)
from flowscope.collector.policy.compiler import (
    AUDIT_FLAGS,
    ENFORCE_FLAGS,
    MATCH,
    CompiledPolicy,
)
from flowscope.collector.policy.model import Direction, PolicyRef
from flowscope.proto.flow import flow_pb2

POLICY_DENIED = flow_pb2.POLICY_DENIED  # no rule allows (default deny)
POLICY_DENY = flow_pb2.POLICY_DENY  # an explicit deny rule

# An endpoint, an address outside the endpoints (resolved through the compiled ipcache), or
# an identity (for reserved identities such as host).
Party = RegisteredEndpoint | str | int


@dataclass(frozen=True)
class Decision:
    """One direction's verdict at one endpoint, as the policy-verdict event reports it."""

    verdict: flow_pb2.Verdict.ValueType  # FORWARDED, DROPPED or AUDIT
    match_type: int
    policies: tuple[PolicyRef, ...] = ()  # allowed_by, or denied_by for an explicit deny
    drop_reason: int = 0  # POLICY_DENIED or POLICY_DENY when the rules deny (also in audit)

    @property
    def passes(self) -> bool:
        return self.verdict != flow_pb2.DROPPED


@dataclass(frozen=True)
class PathDecision:
    egress: Decision | None  # None: the source is no local endpoint or does not enforce
    ingress: Decision | None

    @property
    def passes(self) -> bool:
        return all(d is None or d.passes for d in (self.egress, self.ingress))


def lookup(compiled: CompiledPolicy, endpoint: int, remote: int, direction: Direction,
           protocol: int, port: int) -> PolicyValue | None:
    """The longest-prefix match in the policy trie for one remote identity."""
    for bits in range(PORT_BITS, -1, -1):
        block = port >> (PORT_BITS - bits) << (PORT_BITS - bits)
        value = compiled.entries.get(PolicyKey(endpoint, remote, direction, protocol, block, bits))
        if value is not None:
            return value
    return compiled.entries.get(PolicyKey(endpoint, remote, direction, 0, 0, 0))


def decide(compiled: CompiledPolicy, endpoint: int, remote: int, direction: Direction,
           protocol: int, port: int) -> Decision | None:
    """The check of one direction at an endpoint; None where the endpoint does not enforce."""
    flags = compiled.enforcement.get(endpoint, 0)
    if not flags & ENFORCE_FLAGS[direction]:
        return None
    specific = lookup(compiled, endpoint, remote, direction, protocol, port)
    wildcard = lookup(compiled, endpoint, 0, direction, protocol, port)
    found = [v for v in (specific, wildcard) if v is not None]
    chosen = next((v for v in found if v.verdict == FS_POLICY_DENY), found[0] if found else None)
    if chosen is None:
        audit = bool(flags & AUDIT_FLAGS[direction])
        return Decision(flow_pb2.AUDIT if audit else flow_pb2.DROPPED, MATCH["none"],
                        drop_reason=POLICY_DENIED)
    policies = compiled.refs.get(chosen.policy_ref, ())
    if chosen.verdict != FS_POLICY_DENY:
        return Decision(flow_pb2.FORWARDED, chosen.match_type, policies)
    return Decision(flow_pb2.AUDIT if chosen.audit else flow_pb2.DROPPED, chosen.match_type,
                    policies, POLICY_DENY)


def evaluate(compiled: CompiledPolicy, src: Party, dst: Party, protocol: int,
             port: int) -> PathDecision:
    """The checks a connection from src to dst port/protocol meets on this node."""
    src_identity, dst_identity = _identity(compiled, src), _identity(compiled, dst)
    egress = ingress = None
    if isinstance(src, RegisteredEndpoint):
        egress = decide(compiled, src_identity, dst_identity, Direction.EGRESS, protocol, port)
    if isinstance(dst, RegisteredEndpoint):
        ingress = decide(compiled, dst_identity, src_identity, Direction.INGRESS, protocol, port)
    return PathDecision(egress, ingress)


def _identity(compiled: CompiledPolicy, party: Party) -> int:
    if isinstance(party, RegisteredEndpoint):
        return party.identity
    if isinstance(party, str):
        return compiled.identity_of_address(party)
    return party
