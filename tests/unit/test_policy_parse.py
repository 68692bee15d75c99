"""Policy files: what parses into which model, and one clear error for each kind of mistake."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from flowscope.collector.policy import PolicyError, load_policies, parse_policies
from flowscope.collector.policy.model import (
    ANY_PEER,
    Action,
    CidrPeer,
    Direction,
    EntityPeer,
    PolicyName,
    PortRange,
    Protocol,
)
from flowscope.collector.policy.selectors import EndpointSelector
from flowscope.common.errors import InputError

TESTDATA = Path(__file__).parent / "testdata" / "policies"

K8S = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web
spec:
  podSelector:
    matchLabels: {app: web}
  ingress:
    - from:
        - podSelector:
            matchLabels: {app: client}
        - ipBlock:
            cidr: 10.0.0.0/8
            except: [10.1.0.0/16]
      ports:
        - port: 80
          endPort: 90
"""

CNP = """apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: web
spec:
  endpointSelector:
    matchLabels: {app: web}
  ingress:
    - fromEndpoints:
        - matchLabels: {app: client}
      toPorts:
        - ports:
            - port: "80"
              protocol: TCP
"""


def selector_text(selector: object) -> str:
    assert isinstance(selector, EndpointSelector)
    return selector.text


def test_network_policy_model() -> None:
    (policy,) = parse_policies(K8S, "web.yaml")
    assert policy.id == PolicyName("NetworkPolicy", "default", "web")
    assert (policy.audit, policy.source, policy.rule_count) == (False, "web.yaml:1", 1)
    (spec,) = policy.specs
    assert spec.subject.text == "k8s:app=web,k8s:io.kubernetes.pod.namespace=default"
    assert spec.enforces == {Direction.INGRESS}
    (rule,) = spec.rules
    assert (rule.direction, rule.action) == (Direction.INGRESS, Action.ALLOW)
    assert selector_text(rule.peers[0]) == "k8s:app=client,k8s:io.kubernetes.pod.namespace=default"
    assert rule.peers[1] == CidrPeer(ipaddress.ip_network("10.0.0.0/8"),
                                     (ipaddress.ip_network("10.1.0.0/16"),))
    assert rule.ports == (PortRange(Protocol.TCP, 80, 90),)


@pytest.mark.parametrize(("peer", "text"), [
    ("podSelector: {}", "k8s:io.kubernetes.pod.namespace=default"),
    ("namespaceSelector: {}", ""),
    ("namespaceSelector: {matchLabels: {team: a}}",
     "k8s:io.cilium.k8s.namespace.labels.team=a"),
    ("namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop}}",
     "k8s:io.kubernetes.pod.namespace=shop"),
    ("{namespaceSelector: {matchLabels: {team: a}}, podSelector: {matchLabels: {app: x}}}",
     "k8s:app=x,k8s:io.cilium.k8s.namespace.labels.team=a"),
    ("podSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [a, b]},"
     " {key: env, operator: Exists}, {key: old, operator: DoesNotExist}]}",
     "k8s:tier notin (a,b),k8s:env,!k8s:old,k8s:io.kubernetes.pod.namespace=default"),
])
def test_network_policy_peers(peer: str, text: str) -> None:
    doc = K8S.replace("""        - podSelector:
            matchLabels: {app: client}""", f"        - {peer}")
    (policy,) = parse_policies(doc, "p.yaml")
    assert selector_text(policy.specs[0].rules[0].peers[0]) == text


@pytest.mark.parametrize(("spec", "enforces", "rule_count"), [
    ("ingress: [{}]", {Direction.INGRESS}, 1),
    ("egress: [{}]", {Direction.INGRESS, Direction.EGRESS}, 1),
    ("egress: []", {Direction.INGRESS}, 0),
    ("policyTypes: [Egress]", {Direction.EGRESS}, 0),
    ("{policyTypes: [Egress], ingress: [{}]}", {Direction.EGRESS}, 0),
    ("{policyTypes: [Ingress, Egress], egress: [{}]}", {Direction.INGRESS, Direction.EGRESS}, 1),
])
def test_network_policy_types_default_as_in_kubernetes(
        spec: str, enforces: set[Direction], rule_count: int) -> None:
    text = f"""apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: p, namespace: shop}}
spec: {{podSelector: {{}}, {spec.strip("{}")}}}
"""
    (policy,) = parse_policies(text, "p.yaml")
    assert policy.specs[0].enforces == enforces
    assert policy.rule_count == rule_count
    rules = policy.specs[0].rules
    # An empty rule allows every remote on every port.
    assert all(rule.peers == (ANY_PEER,) and rule.ports == () for rule in rules)


def test_network_policy_port_defaults() -> None:
    doc = K8S.replace("        - port: 80\n          endPort: 90\n",
                      "        - protocol: UDP\n        - port: 53\n          protocol: SCTP\n")
    (policy,) = parse_policies(doc, "p.yaml")
    assert policy.specs[0].rules[0].ports == (PortRange(Protocol.UDP, 0, 65535),
                                               PortRange(Protocol.SCTP, 53, 53))


def test_cilium_policy_model() -> None:
    text = CNP + """    - fromEntities: [host]
      fromCIDR: [192.0.2.1]
      fromCIDRSet: [{cidr: 198.51.100.0/24, except: [198.51.100.128/25]}]
    - fromEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: shop}}]
    - toPorts: [{ports: [{port: "8000", endPort: 8080}]}]
    - {}
  egressDeny:
    - toEndpoints: [{matchLabels: {any:app: db}}]
"""
    (policy,) = parse_policies(text, "c.yaml")
    (spec,) = policy.specs
    assert spec.subject.text == "k8s:app=web,k8s:io.kubernetes.pod.namespace=default"
    assert spec.enforces == {Direction.INGRESS, Direction.EGRESS}
    first, entities, other_namespace, ports_only, empty, deny = spec.rules
    assert selector_text(first.peers[0]) == "k8s:app=client,k8s:io.kubernetes.pod.namespace=default"
    assert first.ports == (PortRange(Protocol.TCP, 80, 80),)
    assert entities.peers == (
        CidrPeer(ipaddress.ip_network("192.0.2.1/32")),
        CidrPeer(ipaddress.ip_network("198.51.100.0/24"),
                 (ipaddress.ip_network("198.51.100.128/25"),)),
        EntityPeer("host"))
    assert entities.ports == ()
    assert selector_text(other_namespace.peers[0]) == "k8s:io.kubernetes.pod.namespace=shop"
    # Without a protocol a Cilium port means TCP, UDP and SCTP; without peers, any remote.
    assert ports_only.peers == (ANY_PEER,)
    assert ports_only.ports == tuple(PortRange(p, 8000, 8080) for p in Protocol)
    # An empty Cilium rule allows nothing but still switches on default deny.
    assert (empty.peers, empty.ports) == ((), ())
    assert (deny.direction, deny.action) == (Direction.EGRESS, Action.DENY)
    assert selector_text(deny.peers[0]) == "any:app=db,k8s:io.kubernetes.pod.namespace=default"


def test_clusterwide_policy_selects_every_namespace() -> None:
    text = CNP.replace("kind: CiliumNetworkPolicy", "kind: CiliumClusterwideNetworkPolicy")
    (policy,) = parse_policies(text, "c.yaml")
    assert policy.id == PolicyName("CiliumClusterwideNetworkPolicy", "", "web")
    assert str(policy.id) == "web"
    assert policy.specs[0].subject.text == "k8s:app=web"
    assert selector_text(policy.specs[0].rules[0].peers[0]) == "k8s:app=client"


def test_audit_annotation() -> None:
    text = K8S.replace("  name: web\n",
                       "  name: web\n  annotations: {policy.flowscope.io/audit: 'true'}\n")
    assert parse_policies(text, "p.yaml")[0].audit is True


def test_directory_with_several_files_and_documents() -> None:
    policies = load_policies(TESTDATA / "demo")
    assert [(str(p.id), p.id.kind, p.source) for p in policies] == [
        ("default/allow-client-to-nginx", "NetworkPolicy",
         f"{TESTDATA / 'demo' / '10-web.yaml'}:1"),
        ("shop/db", "CiliumNetworkPolicy", f"{TESTDATA / 'demo' / '20-db.yml'}:1"),
    ]


def test_multi_document_file() -> None:
    policies = load_policies(TESTDATA / "semantics.yaml")
    assert [str(p.id) for p in policies] == [
        "default/nginx-ingress", "shop/db-ingress", "shop/lockdown", "default/client-egress",
        "infra/dns-ingress", "workers"]


@pytest.mark.parametrize(("path", "message"), [
    ("broken.yaml", "{dir}/broken.yaml:6: YAML syntax error: expected ',' or ']', but got "
                    "'<stream end>'"),
    ("missing.yaml", "cannot read policy file {dir}/missing.yaml: No such file or directory"),
    ("empty", "{dir}/empty: no policy files (*.yaml, *.yml, *.json) in this directory"),
])
def test_file_errors(tmp_path: Path, path: str, message: str) -> None:
    (tmp_path / "empty").mkdir()
    directory = tmp_path if path == "empty" else TESTDATA
    with pytest.raises(InputError) as raised:
        load_policies(directory / path)
    assert str(raised.value) == message.format(dir=directory)


ERRORS = [
    (K8S.replace("  ingress:\n", "  ingress: [\n", 1),
     "p.yaml:9: YAML syntax error: expected the node content, but found '-'"),
    (K8S.replace("    - from:", "    - form:"),
     "p.yaml:9: spec.ingress[0].form: unknown field (expected one of: from, ports)"),
    (K8S.replace("        - port: 80", "        - port: [80]"),
     "p.yaml:16: spec.ingress[0].ports[0].port: expected an integer, found a list"),
    (K8S.replace("        - port: 80", "        - port: http"),
     "p.yaml:16: spec.ingress[0].ports[0].port: named port 'http' is not supported "
     "(use a port number)"),
    (K8S.replace("        - port: 80", "        - port: 70000"),
     "p.yaml:16: spec.ingress[0].ports[0].port: port 70000 out of range (1-65535)"),
    (K8S.replace("endPort: 90", "endPort: 79"),
     "p.yaml:17: spec.ingress[0].ports[0].endPort: endPort 79 is below port 80"),
    (K8S.replace("        - port: 80\n", "        - protocol: UDP\n"),
     "p.yaml:17: spec.ingress[0].ports[0].endPort: endPort needs port"),
    (K8S.replace("        - port: 80", "        - protocol: ICMP\n          port: 80"),
     "p.yaml:16: spec.ingress[0].ports[0].protocol: unsupported protocol 'ICMP' "
     "(expected one of: TCP, UDP, SCTP)"),
    (K8S.replace("10.0.0.0/8", "10.0.0.0/33"),
     "p.yaml:13: spec.ingress[0].from[1].ipBlock.cidr: invalid CIDR '10.0.0.0/33': "
     "'10.0.0.0/33' does not appear to be an IPv4 or IPv6 network"),
    (K8S.replace("10.0.0.0/8", "10.0.0.1/8"),
     "p.yaml:13: spec.ingress[0].from[1].ipBlock.cidr: invalid CIDR '10.0.0.1/8': "
     "10.0.0.1/8 has host bits set"),
    (K8S.replace("10.0.0.0/8", "10.0.0.1"),
     "p.yaml:13: spec.ingress[0].from[1].ipBlock.cidr: invalid CIDR '10.0.0.1': "
     "expected address/prefix length"),
    (K8S.replace("10.1.0.0/16", "11.0.0.0/16"),
     "p.yaml:14: spec.ingress[0].from[1].ipBlock.except[0]: except block 11.0.0.0/16 is not "
     "inside 10.0.0.0/8"),
    (K8S.replace("{app: client}", "{app: 'bad value!'}"),
     "p.yaml:11: spec.ingress[0].from[0].podSelector.matchLabels.app: invalid label value "
     "'bad value!': expected at most 63 characters [A-Za-z0-9_.-], starting and ending "
     "alphanumeric"),
    (K8S.replace("{app: client}", "{'bad key!': x}"),
     "p.yaml:11: spec.ingress[0].from[0].podSelector.matchLabels.bad key!: invalid label key "
     "'bad key!': expected [prefix/]name, where name has at most 63 characters [A-Za-z0-9_.-] "
     "and starts and ends alphanumeric, and prefix is a DNS subdomain"),
    (K8S.replace("{app: client}", "{k8s:app: client}"),
     "p.yaml:11: spec.ingress[0].from[0].podSelector.matchLabels.k8s:app: invalid label key "
     "'k8s:app': ':' is not allowed in a key"),
    (K8S.replace("matchLabels: {app: web}", "matchExpressions: [{key: app, operator: Has}]"),
     "p.yaml:7: spec.podSelector.matchExpressions[0].operator: unknown operator 'Has' "
     "(expected one of: In, NotIn, Exists, DoesNotExist)"),
    (K8S.replace("matchLabels: {app: web}", "matchExpressions: [{key: app, operator: In}]"),
     "p.yaml:7: spec.podSelector.matchExpressions[0]: operator In needs at least one value"),
    (K8S.replace("matchLabels: {app: web}",
                 "matchExpressions: [{key: app, operator: Exists, values: [a]}]"),
     "p.yaml:7: spec.podSelector.matchExpressions[0]: operator Exists takes no values"),
    (K8S.replace("        - ipBlock:", "          ipBlock:"),
     "p.yaml:10: spec.ingress[0].from[0]: ipBlock cannot be combined with podSelector or "
     "namespaceSelector"),
    (K8S.replace("        - podSelector:\n            matchLabels: {app: client}\n",
                 "        - {}\n"),
     "p.yaml:10: spec.ingress[0].from[0]: a peer needs podSelector, namespaceSelector or "
     "ipBlock"),
    (K8S.replace("kind: NetworkPolicy", "kind: NetworkPolicyX"),
     "p.yaml:2: kind: unsupported kind 'NetworkPolicyX' (expected one of: NetworkPolicy, "
     "CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy)"),
    (K8S.replace("networking.k8s.io/v1", "networking.k8s.io/v1beta1"),
     "p.yaml:1: apiVersion: NetworkPolicy needs apiVersion 'networking.k8s.io/v1', "
     "not 'networking.k8s.io/v1beta1'"),
    (K8S.replace("  name: web\n", "  namespace: shop\n"),
     "p.yaml:3: metadata: missing field 'name'"),
    (K8S.replace("  name: web\n", ""),
     "p.yaml:3: metadata: expected a mapping, found nothing (null)"),
    (K8S.replace("  name: web\n", "  name: Web_1\n"),
     "p.yaml:4: metadata.name: invalid name 'Web_1': expected a DNS subdomain (lower-case "
     "alphanumerics, '-' and '.')"),
    (K8S.replace("  name: web\n", "  name: 80\n"),
     "p.yaml:4: metadata.name: expected a string, found an integer '80'"),
    (K8S + "---\n" + K8S,
     "p.yaml: NetworkPolicy default/web is defined twice (p.yaml:1 and p.yaml:19)"),
    (K8S.replace("  ingress:\n", "  policyTypes: [Inbound]\n  ingress:\n"),
     "p.yaml:8: spec.policyTypes[0]: unknown policy type 'Inbound' (expected Ingress or "
     "Egress)"),
    (K8S.replace("  name: web\n",
                 "  name: web\n  annotations: {policy.flowscope.io/audit: 'yes'}\n"),
     "p.yaml:5: metadata.annotations: policy.flowscope.io/audit must be \"true\" or \"false\", "
     "not 'yes'"),
    (K8S.replace("spec:\n", "specs:\n"),
     "p.yaml:5: specs: NetworkPolicy has no 'specs' (use 'spec')"),
    (CNP + "          rules:\n            http: [{method: GET}]\n",
     "p.yaml:15: spec.ingress[0].toPorts[0].rules: L7 rules are not supported (flowscope "
     "enforces L3/L4 only)"),
    (CNP.replace('port: "80"', "port: http"),
     "p.yaml:13: spec.ingress[0].toPorts[0].ports[0].port: named port 'http' is not supported "
     "(use a port number)"),
    (CNP.replace("    - fromEndpoints:",
                 "    - fromEntities: [world, everywhere]\n      fromEndpoints:"),
     "p.yaml:9: spec.ingress[0].fromEntities[1]: unknown entity 'everywhere' (expected one "
     "of: world, host, remote-node, health, init, kube-apiserver, ingress, unmanaged, "
     "cluster, all)"),
    (CNP.replace("  ingress:", "  egress:\n    - toFQDNs: [{matchName: x.com}]\n  ingress:"),
     "p.yaml:9: spec.egress[0].toFQDNs: toFQDNs (DNS-based rules) are not supported"),
    (CNP.replace("matchLabels: {app: client}", "matchLabels: {foo:app: client}"),
     "p.yaml:10: spec.ingress[0].fromEndpoints[0].matchLabels.foo:app: unsupported label "
     "source 'foo' in 'foo:app' (expected one of: k8s, any)"),
    (CNP.replace("      toPorts:", "      fromEndpoints: []\n      toPorts:"),
     "p.yaml:11: spec.ingress[0].fromEndpoints: field given twice"),
    (CNP.replace("spec:", "specx:"),
     "p.yaml:5: specx: unknown field (expected one of: apiVersion, kind, metadata, spec, "
     "specs, status)"),
    (CNP.replace("    - fromEndpoints:", "    - fromCIDRSet: [{cidrGroupRef: g}]\n"
                                          "      fromEndpoints:"),
     "p.yaml:9: spec.ingress[0].fromCIDRSet[0].cidrGroupRef: cidrGroupRef is not supported"),
    (CNP.replace("        - ports:\n", "        - x: 1\n          ports:\n"),
     "p.yaml:12: spec.ingress[0].toPorts[0].x: unknown field (expected one of: ports)"),
    (CNP.replace('        - ports:\n            - port: "80"\n              protocol: TCP\n',
                 "        - ports: []\n"),
     "p.yaml:12: spec.ingress[0].toPorts[0]: toPorts entry needs a non-empty 'ports' list"),
    (CNP.replace("metadata:", "metadata:\n  namespace: Shop"),
     "p.yaml:4: metadata.namespace: invalid namespace 'Shop': expected a DNS label "
     "(lower-case alphanumerics and '-')"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_invalid_policy_names_file_line_path_and_problem(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policies(text, "p.yaml")
    assert str(raised.value) == message
