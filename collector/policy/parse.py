"""Parse and validate policy files: Kubernetes NetworkPolicy and Cilium's L3/L4 policies.

Supported kinds: networking.k8s.io/v1 NetworkPolicy, cilium.io/v2 CiliumNetworkPolicy and
CiliumClusterwideNetworkPolicy. A file may hold several YAML documents; a directory means its
*.yaml, *.yml and *.json files. Every problem raises one PolicyError naming the file, the line,
the field path (spec.ingress[0].from[1].ipBlock.cidr) and what is wrong; features flowscope
does not enforce (L7 rules, named ports, FQDNs, services, ...) are rejected by name.

Audit mode is the annotation `policy.flowscope.io/audit: "true"` on a policy: the endpoints it
selects pass, reported as AUDIT, what they would deny in the directions it covers.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Final

from flowscope.collector.policy.model import (
    ANY_PEER,
    ANY_PORT_FIRST,
    ANY_PORT_LAST,
    ENTITIES,
    KIND_CILIUM,
    KIND_CILIUM_CLUSTERWIDE,
    KIND_NETWORK_POLICY,
    Action,
    CidrPeer,
    Direction,
    EntityPeer,
    Network,
    Peer,
    Policy,
    PolicyName,
    PortRange,
    Protocol,
    Rule,
    Spec,
)
from flowscope.collector.policy.selectors import (
    combine,
    namespace_requirement,
    requirements,
)
from flowscope.collector.policy.yamlnodes import PolicyError, Value, parse_documents, read_documents

AUDIT_ANNOTATION: Final = "policy.flowscope.io/audit"
DEFAULT_NAMESPACE: Final = "default"

_API_VERSIONS: Final = {
    KIND_NETWORK_POLICY: "networking.k8s.io/v1",
    KIND_CILIUM: "cilium.io/v2",
    KIND_CILIUM_CLUSTERWIDE: "cilium.io/v2",
}
# Bookkeeping fields of Kubernetes objects (as `kubectl get -o yaml` prints them): accepted
# and ignored, so exported policies load as they are.
_IGNORED_METADATA: Final = {"uid", "resourceVersion", "generation", "creationTimestamp",
                            "managedFields", "finalizers", "ownerReferences", "selfLink"}
_DNS_SUBDOMAIN: Final = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?")
_DNS_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_NAMESPACE_KEY: Final = re.compile(r"!?(?:k8s|any):io\.kubernetes\.pod\.namespace(?![\w./-])")

# Cilium fields flowscope does not enforce, and why they are refused.
_L7: Final = "L7 rules are not supported (flowscope enforces L3/L4 only)"
_UNSUPPORTED_CILIUM: Final = {
    "fromRequires": "fromRequires is not supported",
    "toRequires": "toRequires is not supported",
    "fromGroups": "fromGroups is not supported",
    "toGroups": "toGroups is not supported",
    "fromNodes": "fromNodes is not supported",
    "toNodes": "toNodes is not supported",
    "toServices": "toServices is not supported",
    "toFQDNs": "toFQDNs (DNS-based rules) are not supported",
    "icmps": "ICMP rules are not supported",
    "authentication": "authentication is not supported",
    "nodeSelector": "nodeSelector (host policies) is not supported",
    "enableDefaultDeny": "enableDefaultDeny is not supported",
    "log": "policy log values are not supported",
    "rules": _L7,
    "listener": _L7,
    "serverNames": _L7,
    "terminatingTLS": _L7,
    "originatingTLS": _L7,
}


def load_policies(path: Path) -> list[Policy]:
    """The policies in a file or directory; raises PolicyError or InputError."""
    return _checked(path.as_posix(), [parse_policy(doc) for doc in read_documents(path)])


def parse_policies(text: str, file: str) -> list[Policy]:
    """The policies in YAML text; file names it in errors."""
    return _checked(file, [parse_policy(doc) for doc in parse_documents(text, file)])


def _checked(file: str, policies: list[Policy]) -> list[Policy]:
    seen: dict[PolicyName, Policy] = {}
    for policy in policies:
        if (first := seen.get(policy.id)) is not None:
            raise PolicyError(file, 0, "", f"{policy.id.kind} {policy.id} is defined twice "
                              f"({first.source} and {policy.source})")
        seen[policy.id] = policy
    return policies


def parse_policy(doc: Value) -> Policy:
    """One policy document."""
    fields = doc.fields({"apiVersion", "kind", "metadata", "spec", "specs", "status"})
    for required in ("apiVersion", "kind", "metadata"):
        if required not in fields:
            raise doc.error(f"missing field {required!r}")
    kind = fields["kind"].string()
    if kind not in _API_VERSIONS:
        raise fields["kind"].error(
            f"unsupported kind {kind!r} (expected one of: {', '.join(_API_VERSIONS)})")
    api_version = fields["apiVersion"].string()
    if api_version != _API_VERSIONS[kind]:
        raise fields["apiVersion"].error(
            f"{kind} needs apiVersion {_API_VERSIONS[kind]!r}, not {api_version!r}")
    policy_id, audit = _metadata(fields["metadata"], kind)
    source = f"{doc.file}:{doc.line}"
    if kind == KIND_NETWORK_POLICY:
        if "specs" in fields:
            raise fields["specs"].error("NetworkPolicy has no 'specs' (use 'spec')")
        if "spec" not in fields:
            raise doc.error("missing field 'spec'")
        specs: tuple[Spec, ...] = (_k8s_spec(fields["spec"], policy_id.namespace),)
    else:
        parsed = [_cilium_spec(fields["spec"], policy_id.namespace)] if "spec" in fields else []
        parsed += [_cilium_spec(s, policy_id.namespace) for s in _items(fields, "specs")]
        if not parsed:
            raise doc.error(f"{kind} needs 'spec' or 'specs'")
        specs = tuple(parsed)
    return Policy(id=policy_id, specs=specs, audit=audit, source=source)


def _metadata(value: Value, kind: str) -> tuple[PolicyName, bool]:
    fields = value.fields({"name", "namespace", "labels", "annotations"} | _IGNORED_METADATA)
    if "name" not in fields:
        raise value.error("missing field 'name'")
    name = fields["name"].string()
    if not _DNS_SUBDOMAIN.fullmatch(name):
        raise fields["name"].error(f"invalid name {name!r}: expected a DNS subdomain "
                                   "(lower-case alphanumerics, '-' and '.')")
    if kind == KIND_CILIUM_CLUSTERWIDE:
        if "namespace" in fields:
            raise fields["namespace"].error(f"a {kind} has no namespace")
        namespace = ""
    else:
        namespace = fields["namespace"].string() if "namespace" in fields else DEFAULT_NAMESPACE
        if not _DNS_LABEL.fullmatch(namespace):
            raise fields["namespace"].error(f"invalid namespace {namespace!r}: expected a DNS "
                                            "label (lower-case alphanumerics and '-')")
    if "labels" in fields:
        fields["labels"].string_map()
    annotations = fields["annotations"].string_map() if "annotations" in fields else {}
    audit_text = annotations.get(AUDIT_ANNOTATION, "false")
    if audit_text not in ("true", "false"):
        raise fields["annotations"].error(
            f"{AUDIT_ANNOTATION} must be \"true\" or \"false\", not {audit_text!r}")
    return PolicyName(kind, namespace, name), audit_text == "true"


def _items(fields: dict[str, Value], name: str) -> list[Value]:
    return list(fields[name].items()) if name in fields else []


# --- Kubernetes NetworkPolicy -------------------------------------------------------------


def _k8s_spec(value: Value, namespace: str) -> Spec:
    fields = value.fields({"podSelector", "policyTypes", "ingress", "egress"})
    if "podSelector" not in fields:
        raise value.error("missing field 'podSelector'")
    subject = combine([*requirements(fields["podSelector"], sources=False),
                       namespace_requirement(namespace)], fields["podSelector"])
    ingress, egress = _items(fields, "ingress"), _items(fields, "egress")
    # Kubernetes' defaulting: Ingress always, Egress when there are egress rules.
    enforces = {Direction.INGRESS} | ({Direction.EGRESS} if egress else set())
    if "policyTypes" in fields:
        enforces = set()
        for item in fields["policyTypes"].items():
            text = item.string()
            if text not in ("Ingress", "Egress"):
                raise item.error(f"unknown policy type {text!r} (expected Ingress or Egress)")
            enforces.add(Direction[text.upper()])
        if not enforces:
            raise fields["policyTypes"].error("expected Ingress, Egress or both")
    # Rules of a direction that policyTypes leaves out have no effect, as in Kubernetes.
    rules = [_k8s_rule(item, Direction.INGRESS, "from", namespace) for item in ingress
             if Direction.INGRESS in enforces]
    rules += [_k8s_rule(item, Direction.EGRESS, "to", namespace) for item in egress
              if Direction.EGRESS in enforces]
    return Spec(subject=subject, enforces=frozenset(enforces), rules=tuple(rules))


def _k8s_rule(value: Value, direction: Direction, peers_field: str, namespace: str) -> Rule:
    fields = value.fields({peers_field, "ports"})
    peer_items = _items(fields, peers_field)
    peers = tuple(_k8s_peer(item, namespace) for item in peer_items) or (ANY_PEER,)
    ports = tuple(port for item in _items(fields, "ports") for port in _k8s_port(item))
    return Rule(direction=direction, action=Action.ALLOW, peers=peers, ports=ports)


def _k8s_peer(value: Value, namespace: str) -> Peer:
    fields = value.fields({"podSelector", "namespaceSelector", "ipBlock"})
    if "ipBlock" in fields:
        if len(fields) > 1:
            raise value.error("ipBlock cannot be combined with podSelector or namespaceSelector")
        block = fields["ipBlock"].fields({"cidr", "except"})
        if "cidr" not in block:
            raise fields["ipBlock"].error("missing field 'cidr'")
        return _cidr_peer(block["cidr"], _items(block, "except"))
    if not fields:
        raise value.error("a peer needs podSelector, namespaceSelector or ipBlock")
    parts = requirements(fields["podSelector"], sources=False) if "podSelector" in fields else []
    if "namespaceSelector" in fields:
        parts += requirements(fields["namespaceSelector"], sources=False, namespace_labels=True)
    else:
        parts.append(namespace_requirement(namespace))
    return combine(parts, value)


def _k8s_port(value: Value) -> list[PortRange]:
    fields = value.fields({"protocol", "port", "endPort"})
    protocol = Protocol.TCP
    if "protocol" in fields:
        protocol = _protocols(fields["protocol"], allow_any=False)[0]
    if "port" not in fields:
        if "endPort" in fields:
            raise fields["endPort"].error("endPort needs port")
        return [PortRange(protocol, ANY_PORT_FIRST, ANY_PORT_LAST)]
    port_value = fields["port"]
    if port_value.is_string:
        raise port_value.error(f"named port {port_value.string()!r} is not supported "
                               "(use a port number)")
    first = _port_number(port_value, allow_zero=False)
    return [PortRange(protocol, first, _end_port(fields, first))]


# --- Cilium ---------------------------------------------------------------------------------


def _cilium_spec(value: Value, namespace: str) -> Spec:
    directions = {"ingress": (Direction.INGRESS, Action.ALLOW, "from"),
                  "ingressDeny": (Direction.INGRESS, Action.DENY, "from"),
                  "egress": (Direction.EGRESS, Action.ALLOW, "to"),
                  "egressDeny": (Direction.EGRESS, Action.DENY, "to")}
    fields = _cilium_fields(value, {"endpointSelector", "description", "labels", *directions})
    if "endpointSelector" not in fields:
        raise value.error("missing field 'endpointSelector'")
    parts = requirements(fields["endpointSelector"], sources=True)
    if namespace:
        parts.append(namespace_requirement(namespace))
    subject = combine(parts, fields["endpointSelector"])
    if "labels" in fields:
        for item in fields["labels"].items():
            item.fields({"key", "value", "source"})
    rules: list[Rule] = []
    enforces: set[Direction] = set()
    for name, (direction, action, prefix) in directions.items():
        items = _items(fields, name)
        if items:
            enforces.add(direction)
        rules += [_cilium_rule(item, direction, action, prefix, namespace) for item in items]
    return Spec(subject=subject, enforces=frozenset(enforces), rules=tuple(rules))


def _cilium_rule(value: Value, direction: Direction, action: Action, prefix: str,
                 namespace: str) -> Rule:
    endpoints, cidr, cidr_set, entities = (f"{prefix}Endpoints", f"{prefix}CIDR",
                                           f"{prefix}CIDRSet", f"{prefix}Entities")
    fields = _cilium_fields(value, {endpoints, cidr, cidr_set, entities, "toPorts"})
    peers: list[Peer] = []
    for item in _items(fields, endpoints):
        parts = requirements(item, sources=True)
        if namespace and not any(_NAMESPACE_KEY.match(part) for part in parts):
            parts.append(namespace_requirement(namespace))
        peers.append(combine(parts, item))
    peers += [_cidr_peer(item, [], bare_address=True) for item in _items(fields, cidr)]
    for item in _items(fields, cidr_set):
        entry = _cilium_fields(item, {"cidr", "except", "cidrGroupRef", "cidrGroupSelector"})
        for unsupported in ("cidrGroupRef", "cidrGroupSelector"):
            if unsupported in entry:
                raise entry[unsupported].error(f"{unsupported} is not supported")
        if "cidr" not in entry:
            raise item.error("missing field 'cidr'")
        peers.append(_cidr_peer(entry["cidr"], _items(entry, "except")))
    for item in _items(fields, entities):
        entity = item.string()
        if entity not in ENTITIES:
            raise item.error(f"unknown entity {entity!r} (expected one of: {', '.join(ENTITIES)})")
        peers.append(EntityPeer(entity))
    ports = tuple(port for item in _items(fields, "toPorts") for port in _cilium_port_rule(item))
    if not any(name in fields for name in (endpoints, cidr, cidr_set, entities)) and ports:
        # Only toPorts: the ports are open to every remote (an L4-only rule).
        peers.append(ANY_PEER)
    return Rule(direction=direction, action=action, peers=tuple(peers), ports=ports)


def _cilium_port_rule(value: Value) -> list[PortRange]:
    fields = _cilium_fields(value, {"ports"})
    items = _items(fields, "ports")
    if not items:
        raise value.error("toPorts entry needs a non-empty 'ports' list")
    ranges = []
    for item in items:
        port = _cilium_fields(item, {"port", "protocol", "endPort"})
        protocols = _protocols(port["protocol"], True) if "protocol" in port else list(Protocol)
        first, last = ANY_PORT_FIRST, ANY_PORT_LAST
        if "port" in port:
            number = _cilium_port_number(port["port"])
            if number:
                first, last = number, _end_port(port, number)
            elif "endPort" in port:
                raise port["endPort"].error("endPort needs a non-zero port")
        elif "endPort" in port:
            raise port["endPort"].error("endPort needs port")
        ranges += [PortRange(protocol, first, last) for protocol in protocols]
    return ranges


def _cilium_port_number(value: Value) -> int:
    """Cilium writes ports as strings ("80"); a name is a named port; 0 means any port."""
    if not value.is_string:
        return _port_number(value, allow_zero=True)
    text = value.string()
    if not text.isdigit():
        raise value.error(f"named port {text!r} is not supported (use a port number)")
    return _checked_port(int(text), value, allow_zero=True)


def _cilium_fields(value: Value, known: set[str]) -> dict[str, Value]:
    """Fields of a Cilium mapping; features flowscope does not enforce are named as such."""
    for name, field in value.entries().items():
        if name in _UNSUPPORTED_CILIUM and name not in known:
            raise field.error(_UNSUPPORTED_CILIUM[name])
    return value.fields(known)


# --- Shared pieces ----------------------------------------------------------------------------


def _protocols(value: Value, allow_any: bool) -> list[Protocol]:
    text = value.string()
    if allow_any and text == "ANY":
        return list(Protocol)
    if text not in Protocol.__members__:
        expected = [*Protocol.__members__, *(["ANY"] if allow_any else [])]
        raise value.error(f"unsupported protocol {text!r} (expected one of: "
                          f"{', '.join(expected)})")
    return [Protocol[text]]


def _port_number(value: Value, allow_zero: bool) -> int:
    return _checked_port(value.integer(), value, allow_zero)


def _checked_port(number: int, value: Value, allow_zero: bool) -> int:
    lowest = 0 if allow_zero else 1
    if not lowest <= number <= ANY_PORT_LAST:
        raise value.error(f"port {number} out of range ({lowest}-{ANY_PORT_LAST})")
    return number


def _end_port(fields: dict[str, Value], first: int) -> int:
    if "endPort" not in fields:
        return first
    end = _port_number(fields["endPort"], allow_zero=False)
    if end < first:
        raise fields["endPort"].error(f"endPort {end} is below port {first}")
    return end


def _cidr_peer(cidr_value: Value, excepted: list[Value], bare_address: bool = False) -> CidrPeer:
    cidr = _network(cidr_value, bare_address)
    blocks = []
    for item in excepted:
        block = _network(item)
        if block.version != cidr.version or not block.subnet_of(cidr):  # type: ignore[arg-type]
            raise item.error(f"except block {block} is not inside {cidr}")
        blocks.append(block)
    return CidrPeer(cidr, tuple(blocks))


def _network(value: Value, bare_address: bool = False) -> Network:
    """A CIDR; with bare_address, an address alone is its own /32 or /128 (as Cilium's
    fromCIDR/toCIDR accept)."""
    text = value.string()
    try:
        if bare_address and "/" not in text:
            address = ipaddress.ip_address(text)
            return ipaddress.ip_network(f"{address}/{address.max_prefixlen}")
        if "/" not in text:
            raise ValueError("expected address/prefix length")
        return ipaddress.ip_network(text)
    except ValueError as exc:
        raise value.error(f"invalid CIDR {text!r}: {exc}") from exc
