"""Policy semantics, stated through the datapath's decision procedure (evaluate, decide).

The policies are testdata/policies/semantics.yaml; each case is a connection's first packet
and the verdicts of the egress check at the source and the ingress check at the destination,
written "VERDICT match-type [policies] [drop reason]", or "-" where no check applies.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flowscope.collector.endpoints import Endpoint, RegisteredEndpoint, endpoint_labels
from flowscope.collector.policy import (
    CompiledPolicy,
    CompilerConfig,
    Decision,
    PathDecision,
    StoredPolicy,
    compile_policies,
    evaluate,
    load_policies,
    parse_policies,
)
from flowscope.common.vocab import IDENTITY_HOST, POLICY_MATCH_TYPES
from flowscope.proto.flow import flow_pb2

TESTDATA = Path(__file__).parent / "testdata" / "policies"
TCP, UDP = 6, 17

NAMESPACE_LABELS = {"default": {}, "shop": {"team": "shop"}, "infra": {"team": "infra"}}
ENDPOINTS = {
    # name: (namespace, app label, identity)
    "client": ("default", "client", 1001),
    "nginx": ("default", "nginx", 1002),
    "unauthorized": ("default", "unauthorized", 1003),
    "db": ("shop", "db", 1004),
    "worker": ("shop", "worker", 1005),
    "dns": ("infra", "dns", 1006),
    "lockdown": ("shop", "lockdown", 1007),
    "infra-worker": ("infra", "worker", 1008),
}


def endpoint(name: str) -> RegisteredEndpoint:
    namespace, app, identity = ENDPOINTS[name]
    labels = endpoint_labels(namespace, {"app": app}, NAMESPACE_LABELS[namespace])
    return RegisteredEndpoint(Endpoint(namespace, name, labels, (), f"veth-{name}"),
                              id=identity - 1000, identity=identity)


ALL_ENDPOINTS = [endpoint(name) for name in ENDPOINTS]


def compiled_from(policies: list[StoredPolicy], audit: bool = False) -> CompiledPolicy:
    return compile_policies(policies, ALL_ENDPOINTS, CompilerConfig(audit=audit))


def semantics(audit: bool = False) -> CompiledPolicy:
    stored = [StoredPolicy(p, 7) for p in load_policies(TESTDATA / "semantics.yaml")]
    return compiled_from(stored, audit)


def describe(decision: Decision | None) -> str:
    if decision is None:
        return "-"
    words = [flow_pb2.Verdict.Name(decision.verdict), POLICY_MATCH_TYPES[decision.match_type]]
    words += [f"{ref.id}@{ref.revision}" for ref in decision.policies]
    if decision.drop_reason:
        words.append(str(decision.drop_reason))
    return " ".join(words)


def party(name: str) -> RegisteredEndpoint | str | int:
    if name == "host":
        return IDENTITY_HOST
    return endpoint(name) if name in ENDPOINTS else name


ALLOW_NGINX = "FORWARDED L3-L4 default/nginx-ingress@7"
CASES = [
    # src, dst, protocol, port, egress at src, ingress at dst, passes
    ("client", "nginx", TCP, 80,
     "FORWARDED L3-Only default/client-egress@7", ALLOW_NGINX, True),
    ("unauthorized", "nginx", TCP, 80, "-", "DROPPED none 133", False),
    ("client", "nginx", TCP, 81, "FORWARDED L3-Only default/client-egress@7",
     "DROPPED none 133", False),
    ("client", "nginx", UDP, 80, "FORWARDED L3-Only default/client-egress@7",
     "DROPPED none 133", False),
    # namespaceSelector with an endPort range
    ("worker", "nginx", TCP, 8080, "FORWARDED all workers@7", ALLOW_NGINX, True),
    ("worker", "nginx", TCP, 8090, "FORWARDED all workers@7", ALLOW_NGINX, True),
    ("worker", "nginx", TCP, 8091, "FORWARDED all workers@7", "DROPPED none 133", False),
    ("worker", "nginx", TCP, 8079, "FORWARDED all workers@7", "DROPPED none 133", False),
    ("infra-worker", "nginx", TCP, 8085, "FORWARDED all workers@7", "DROPPED none 133", False),
    # namespaceSelector {} with podSelector: worker pods of every namespace
    ("worker", "db", TCP, 5432, "FORWARDED all workers@7",
     "FORWARDED L3-L4 shop/db-ingress@7", True),
    ("infra-worker", "db", TCP, 5432, "FORWARDED all workers@7",
     "FORWARDED L3-L4 shop/db-ingress@7", True),
    ("nginx", "db", TCP, 5432, "-", "DROPPED none 133", False),
    ("worker", "db", TCP, 5433, "FORWARDED all workers@7", "DROPPED none 133", False),
    # ipBlock with except, by longest prefix match in the ipcache
    ("192.168.5.5", "db", TCP, 5432, "-", "FORWARDED L3-L4 shop/db-ingress@7", True),
    ("192.168.1.5", "db", TCP, 5432, "-", "DROPPED none 133", False),
    ("10.9.9.9", "db", TCP, 5432, "-", "DROPPED none 133", False),
    # egress to the world entity, and an explicit deny inside it: deny wins
    ("client", "198.51.100.1", TCP, 443, "FORWARDED L3-L4 default/client-egress@7", "-", True),
    ("client", "203.0.113.7", TCP, 443, "DROPPED none default/client-egress@7 181", "-", False),
    ("client", "198.51.100.1", TCP, 80, "DROPPED none 133", "-", False),
    # egress to an endpoint in another namespace; ingress by the cluster entity
    ("client", "dns", UDP, 53, "FORWARDED L3-L4 default/client-egress@7",
     "FORWARDED L3-L4 infra/dns-ingress@7", True),
    ("client", "dns", TCP, 53, "DROPPED none 133", "AUDIT none 133", False),
    # audit mode (per policy): what it would deny passes, reported AUDIT
    ("worker", "dns", TCP, 80, "FORWARDED all workers@7", "AUDIT none 133", True),
    ("198.51.100.1", "dns", UDP, 53, "-", "AUDIT none 133", True),
    # host and world entities at a clusterwide policy's ingress
    ("host", "worker", TCP, 22, "-", "FORWARDED L3-Only workers@7", True),
    ("10.1.1.1", "worker", TCP, 22, "-", "DROPPED none 133", False),
    ("nginx", "worker", TCP, 22, "-", "DROPPED none 133", False),
    # policyTypes [Egress] without egress rules: deny all egress, ingress open
    ("lockdown", "198.51.100.1", TCP, 443, "DROPPED none 133", "-", False),
    ("lockdown", "nginx", TCP, 80, "DROPPED none 133", "DROPPED none 133", False),
    ("nginx", "lockdown", TCP, 80, "-", "-", True),
    # endpoints no policy selects
    ("nginx", "unauthorized", TCP, 80, "-", "-", True),
]


@pytest.fixture(scope="module")
def compiled() -> CompiledPolicy:
    return semantics()


@pytest.mark.parametrize(("src", "dst", "protocol", "port", "egress", "ingress", "passes"),
                         CASES)
def test_semantics(compiled: CompiledPolicy, src: str, dst: str, protocol: int, port: int,
                   egress: str, ingress: str, passes: bool) -> None:
    decision = evaluate(compiled, party(src), party(dst), protocol, port)
    assert (describe(decision.egress), describe(decision.ingress)) == (egress, ingress)
    assert decision.passes is passes


@pytest.mark.parametrize(("src", "dst", "port", "egress", "ingress"), [
    ("unauthorized", "nginx", 80, "-", "AUDIT none 133"),
    ("client", "203.0.113.7", 443, "AUDIT none default/client-egress@7 181", "-"),
    ("client", "nginx", 80, "FORWARDED L3-Only default/client-egress@7", ALLOW_NGINX),
])
def test_global_audit_passes_denials_as_audit(src: str, dst: str, port: int, egress: str,
                                              ingress: str) -> None:
    decision = evaluate(semantics(audit=True), party(src), party(dst), TCP, port)
    assert (describe(decision.egress), describe(decision.ingress)) == (egress, ingress)
    assert decision.passes


DENY_CASES = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: allow-client}
spec:
  endpointSelector: {matchLabels: {app: nginx}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
    - toPorts: [{ports: [{port: "8000", endPort: 8999, protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny-some}
spec:
  endpointSelector: {matchLabels: {app: nginx}}
  ingressDeny:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts: [{ports: [{port: "22"}]}]
    - toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
"""


@pytest.mark.parametrize(("src", "port", "ingress"), [
    # an L3 allow and an L3-L4 deny of the same remote: the deny's port wins
    ("client", 80, "FORWARDED L3-Only default/allow-client@1"),
    ("client", 22, "DROPPED none default/deny-some@1 181"),
    # an L3 allow of the remote and a deny of any remote on the port: deny wins
    ("client", 8080, "DROPPED none default/deny-some@1 181"),
    # an L4-only range allow with a nested L4-only deny
    ("unauthorized", 8081, "FORWARDED L4-Only default/allow-client@1"),
    ("unauthorized", 8080, "DROPPED none default/deny-some@1 181"),
    ("unauthorized", 22, "DROPPED none 133"),
])
def test_deny_wins_over_allow(src: str, port: int, ingress: str) -> None:
    policies = [StoredPolicy(p, 1) for p in parse_policies(DENY_CASES, "deny.yaml")]
    decision = evaluate(compiled_from(policies), endpoint(src), endpoint("nginx"), TCP, port)
    assert describe(decision.ingress) == ingress


def test_allow_from_several_policies_reports_all_of_them() -> None:
    text = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a}
spec:
  podSelector: {matchLabels: {app: nginx}}
  ingress: [{ports: [{port: 80}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b}
spec:
  podSelector: {}
  ingress: [{ports: [{port: 80}]}]
"""
    policies = [StoredPolicy(p, 3) for p in parse_policies(text, "two.yaml")]
    decision = evaluate(compiled_from(policies), "10.1.1.1", endpoint("nginx"), TCP, 80)
    assert describe(decision.ingress) == "FORWARDED L4-Only default/a@3 default/b@3"
    assert isinstance(decision, PathDecision)
