"""The policy store: revisions, agent events, atomic replacement and ordered map steps."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from flowscope.collector.endpoints import Endpoint, RegisteredEndpoint, endpoint_labels
from flowscope.collector.policy import (
    CompiledPolicy,
    CompilerConfig,
    PolicyStore,
    evaluate,
    parse_policies,
)
from flowscope.collector.policy import store as store_module
from flowscope.collector.policy.bpfmaps import (
    FS_ENFORCE_INGRESS,
    PolicyKey,
    PolicyValue,
)
from flowscope.collector.policy.model import Policy
from flowscope.collector.policy.store import MapName
from flowscope.common.errors import InputError
from flowscope.proto.flow import flow_pb2

TCP = 6


def endpoint(pod: str, identity: int) -> RegisteredEndpoint:
    labels = endpoint_labels("default", {"app": pod}, {})
    return RegisteredEndpoint(Endpoint("default", pod, labels, (), f"veth-{pod}"), identity,
                              identity)


NGINX, CLIENT, OTHER = endpoint("nginx", 300), endpoint("client", 301), endpoint("other", 302)


def policy(name: str, port: int, source: str = "client", kind: str = "NetworkPolicy") -> Policy:
    if kind == "NetworkPolicy":
        text = f"""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: {name}}}
spec:
  podSelector: {{matchLabels: {{app: nginx}}}}
  ingress: [{{from: [podSelector: {{matchLabels: {{app: {source}}}}}], ports: [port: {port}]}}]
"""
    else:
        text = f"""
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {{name: {name}}}
spec:
  endpointSelector: {{matchLabels: {{app: nginx}}}}
  ingress: [{{fromCIDR: [10.0.0.0/8], toPorts: [ports: [{{port: "{port}", protocol: TCP}}]]}}]
"""
    (parsed,) = parse_policies(text, f"{name}.yaml")
    return parsed


def store() -> PolicyStore:
    return PolicyStore(CompilerConfig(), [NGINX, CLIENT, OTHER])


def event(kind: flow_pb2.AgentEventType.ValueType, name: str, revision: int,
          rules: int = 1) -> flow_pb2.AgentEvent:
    return flow_pb2.AgentEvent(type=kind, policy_update=flow_pb2.PolicyUpdateNotification(
        labels=["k8s:io.cilium.k8s.policy.derived-from=NetworkPolicy",
                f"k8s:io.cilium.k8s.policy.name={name}",
                "k8s:io.cilium.k8s.policy.namespace=default"],
        revision=revision, rule_count=rules))


def passes(compiled: CompiledPolicy, src: RegisteredEndpoint, port: int) -> bool:
    return evaluate(compiled, src, NGINX, TCP, port).passes


def test_apply_list_get_and_revisions() -> None:
    policies = store()
    assert (policies.revision, policies.list(), passes(policies.compiled, OTHER, 80)) == (
        0, [], True)
    change = policies.apply([policy("web", 80), policy("api", 8080)])
    assert change.revision == policies.revision == 1
    assert change.events == (event(flow_pb2.POLICY_UPDATED, "web", 1),
                             event(flow_pb2.POLICY_UPDATED, "api", 1))
    second = policies.apply([policy("api", 9090)])
    assert second.revision == 2
    assert [(str(s.policy.id), s.revision) for s in policies.list()] == [
        ("default/api", 2), ("default/web", 1)]
    assert policies.get("web").revision == 1
    assert policies.get("default/api", kind="NetworkPolicy").policy == policy("api", 9090)
    assert [passes(policies.compiled, CLIENT, port) for port in (80, 8080, 9090)] == [
        True, False, True]
    assert not passes(policies.compiled, OTHER, 80)


def test_delete_emits_policy_deleted_and_removes_enforcement() -> None:
    policies = store()
    policies.apply([policy("web", 80)])
    change = policies.delete("default/web")
    assert (change.revision, change.events) == (
        2, (event(flow_pb2.POLICY_DELETED, "web", 2),))
    assert policies.list() == []
    assert change.compiled.entries == {} and change.compiled.enforcement == {}
    assert passes(policies.compiled, OTHER, 80)


@pytest.mark.parametrize(("operation", "message"), [
    (lambda s: s.apply([]), "no policies to apply"),
    (lambda s: s.apply([policy("web", 1), policy("web", 2)]),
     "the same policy is given twice in one apply"),
    (lambda s: s.delete("default/nope"), "no policy 'default/nope'"),
    (lambda s: s.get("shop/web"), "no policy 'shop/web'"),
    (lambda s: s.get("web", kind="CiliumNetworkPolicy"),
     "no policy 'web' of kind CiliumNetworkPolicy"),
])
def test_bad_requests_change_nothing(operation: object, message: str) -> None:
    policies = store()
    policies.apply([policy("web", 80)])
    before = (policies.revision, policies.list(), policies.compiled)
    with pytest.raises(InputError) as raised:
        operation(policies)  # type: ignore[operator]
    assert str(raised.value) == message
    assert (policies.revision, policies.list(), policies.compiled) == before


def test_names_shared_by_two_kinds_need_the_kind() -> None:
    policies = store()
    policies.apply([policy("web", 80), policy("web", 81, kind="CiliumNetworkPolicy")])
    with pytest.raises(InputError) as raised:
        policies.delete("web")
    assert str(raised.value) == ("'web' is ambiguous (CiliumNetworkPolicy default/web, "
                                 "NetworkPolicy default/web): name the kind")
    policies.delete("web", kind="CiliumNetworkPolicy")
    assert [s.policy.id.kind for s in policies.list()] == ["NetworkPolicy"]


def test_a_failing_compile_leaves_the_policy_in_force(monkeypatch: pytest.MonkeyPatch) -> None:
    policies = store()
    policies.apply([policy("web", 80)])
    before = (policies.revision, policies.list(), policies.compiled)

    def refuse(*args: object) -> CompiledPolicy:
        raise InputError("too many CIDR blocks in policies: no local identity left")

    monkeypatch.setattr(store_module, "compile_policies", refuse)
    with pytest.raises(InputError):
        policies.apply([policy("api", 8080)])
    with pytest.raises(InputError):
        policies.delete("web")
    assert (policies.revision, policies.list(), policies.compiled) == before


def test_diff_steps_follow_the_documented_order() -> None:
    policies = store()
    policies.apply([policy("cidr", 80, kind="CiliumNetworkPolicy")])
    web = PolicyKey(300, 301, 1, TCP, 443, 16)
    old_cidr = PolicyKey(300, 1 << 24 | 1, 1, TCP, 80, 16)
    policies.apply([policy("web", 443)])
    change = policies.delete("cidr")
    assert change.diff.policy.delete == (old_cidr,)
    steps = [(step.map, dict(step.write), step.delete) for step in change.diff.steps()]
    assert steps == [
        (MapName.POLICY, {}, (old_cidr,)),
        (MapName.IPCACHE, {}, (ipaddress.ip_network("10.0.0.0/8"),)),
    ]
    # Re-applying a policy changes its revision and so its reference: values are updated.
    change = policies.apply([policy("web", 443)])
    assert change.diff.policy.update == {web: PolicyValue(1, 2, 3, False)}
    assert [(s.map, s.delete) for s in change.diff.steps()] == [(MapName.POLICY, ())]
    # A first policy: CIDR identity, then entries, then enforcement.
    fresh = store().apply([policy("cidr", 80, kind="CiliumNetworkPolicy")])
    assert [(s.map, dict(s.write), s.delete) for s in fresh.diff.steps()] == [
        (MapName.IPCACHE, {ipaddress.ip_network("10.0.0.0/8"): 1 << 24 | 1}, ()),
        (MapName.POLICY, {old_cidr: PolicyValue(1, 2, 1, False)}, ()),
        (MapName.ENFORCEMENT, {300: FS_ENFORCE_INGRESS}, ()),
    ]


def test_every_intermediate_state_decides_as_the_old_or_the_new_policy() -> None:
    transitions = [
        ([], [policy("web", 80)]),
        ([policy("web", 80)], [policy("web", 81)]),
        ([policy("web", 80)], [policy("web", 80, source="other")]),
        ([policy("web", 80), policy("api", 81)], [policy("api", 82)]),
    ]
    probes = [(src, port) for src in (CLIENT, OTHER) for port in (79, 80, 81, 82)]
    for before, after in transitions:
        policies = store()
        if before:
            policies.apply(before)
        old = policies.compiled
        for stored in policies.list():
            if stored.policy not in after:
                policies.delete(str(stored.policy.id))
        change = policies.apply(after)
        diff = store_module.PolicyDiff.between(old, change.compiled)
        maps: dict[MapName, dict[Any, Any]] = {
            MapName.POLICY: dict(old.entries), MapName.ENFORCEMENT: dict(old.enforcement),
            MapName.IPCACHE: dict(old.ipcache)}
        refs = {**old.refs, **change.compiled.refs}
        for step in diff.steps():
            maps[step.map].update(step.write)
            for key in step.delete:
                del maps[step.map][key]
            state = CompiledPolicy(maps[MapName.POLICY], maps[MapName.ENFORCEMENT],
                                   maps[MapName.IPCACHE], refs)
            for src, port in probes:
                assert passes(state, src, port) in (passes(old, src, port),
                                                    passes(change.compiled, src, port))


def test_new_endpoints_recompile_without_a_revision() -> None:
    policies = PolicyStore(CompilerConfig(), [NGINX])
    policies.apply([policy("web", 80)])
    change = policies.set_endpoints([NGINX, CLIENT])
    assert (change.revision, change.events) == (1, ())
    assert change.diff.policy.add == {PolicyKey(300, 301, 1, TCP, 80, 16):
                                      PolicyValue(1, 2, 1, False)}
    assert passes(policies.compiled, CLIENT, 80)
