"""Endpoint sources (lab state, endpoints file), the registry, and its agent events."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowscope.collector.endpoints import (
    Endpoint,
    EndpointRegistry,
    agent_events,
    endpoint_labels,
    file_endpoints,
    identity_events,
    lab_endpoints,
)
from flowscope.collector.identity import IdentityAllocator
from flowscope.collector.labconfig import Workload, default_lab, write_state
from flowscope.common.errors import InputError
from flowscope.common.identity import label_key
from flowscope.proto.flow import flow_pb2


def test_labels_include_the_namespace_and_its_labels() -> None:
    assert endpoint_labels("shop", {"app": "web"}, {"team": "t1"}) == (
        "k8s:app=web",
        "k8s:io.cilium.k8s.namespace.labels.team=t1",
        "k8s:io.kubernetes.pod.namespace=shop",
    )


def test_lab_endpoints_exclude_world_hosts(tmp_path: Path) -> None:
    write_state(default_lab(), tmp_path)
    endpoints = lab_endpoints(tmp_path)
    assert [e.ref for e in endpoints] == ["shop/frontend", "shop/checkout", "data/db-0",
                                          "data/cache"]
    db = endpoints[2]
    assert db.ips == ("10.199.1.3", "fd00:199::1:3")
    assert db.interface == "fs00bc46a77f"
    assert db.netns == "/run/netns/fs-default-data-db-0"
    assert db.workloads == (Workload("db", "StatefulSet"),)


def test_endpoints_file(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.yaml"
    path.write_text("""
endpoints:
  - namespace: prod
    pod: api-1
    labels: {app: api}
    namespace_labels: {env: prod}
    workload: {name: api, kind: Deployment}
    ips: [10.0.0.5, "fd00::0005"]
    interface: veth1
""")
    assert file_endpoints(path) == [Endpoint(
        namespace="prod", pod_name="api-1",
        labels=("k8s:app=api", "k8s:io.cilium.k8s.namespace.labels.env=prod",
                "k8s:io.kubernetes.pod.namespace=prod"),
        ips=("10.0.0.5", "fd00::5"), interface="veth1",
        workloads=(Workload("api", "Deployment"),))]


@pytest.mark.parametrize(("text", "message"), [
    ("endpoints: 3", "expected a mapping with an 'endpoints' list"),
    ("endpoints: [{namespace: a, pod: b, interface: c, ips: [1.2.3]}]",
     r"endpoints\[0\].ips: '1.2.3' is not an IP address"),
    ("endpoints: [{namespace: a, pod: b, ips: [1.2.3.4]}]", r"endpoints\[0\].interface"),
    ("endpoints: [{namespace: a, pod: b, interface: c, ips: [1.2.3.4], color: red}]",
     r"unknown key\(s\) color"),
    ("endpoints: [{namespace: a, pod: b, interface: c, ips: []}]", "expected a list of addr"),
])
def test_bad_endpoints_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "endpoints.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        file_endpoints(path)


def endpoint(pod: str, ip: str, app: str = "web") -> Endpoint:
    return Endpoint("shop", pod, (f"k8s:app={app}",), (ip,), f"if-{pod}")


def test_registry_reports_changes_and_keeps_ids() -> None:
    registry = EndpointRegistry(IdentityAllocator(None))
    first = registry.replace([endpoint("a", "10.0.0.1"), endpoint("b", "10.0.0.2")])
    assert [(r.endpoint.pod_name, r.id) for r in first.added] == [("a", 1), ("b", 2)]
    assert first.removed == []
    assert registry.by_ip("10.0.0.2") == first.added[1]
    # Same label set, same identity.
    assert first.added[0].identity == first.added[1].identity

    second = registry.replace([endpoint("a", "10.0.0.1"), endpoint("c", "10.0.0.3", "db")])
    assert [r.endpoint.pod_name for r in second.removed] == ["b"]
    assert [(r.endpoint.pod_name, r.id) for r in second.added] == [("c", 3)]
    assert registry.by_ip("10.0.0.2") is None
    assert registry.by_ip("10.0.0.1") == first.added[0]

    events = list(agent_events(second))
    assert [(e.type, e.endpoint_update.pod_name, e.endpoint_update.id) for e in events] == [
        (flow_pb2.ENDPOINT_DELETED, "b", 2), (flow_pb2.ENDPOINT_CREATED, "c", 3)]
    assert list(events[1].endpoint_update.labels) == ["k8s:app=db"]
    assert events[1].endpoint_update.namespace == "shop"


def test_a_changed_endpoint_is_replaced() -> None:
    registry = EndpointRegistry(IdentityAllocator(None))
    registry.replace([endpoint("a", "10.0.0.1")])
    changes = registry.replace([endpoint("a", "10.0.0.9")])
    assert [r.id for r in changes.removed] == [1]
    assert [r.id for r in changes.added] == [2]
    assert registry.by_ip("10.0.0.1") is None


def test_duplicate_endpoint_names_are_refused() -> None:
    registry = EndpointRegistry(IdentityAllocator(None))
    with pytest.raises(InputError, match="share a namespace/pod name"):
        registry.replace([endpoint("a", "10.0.0.1"), endpoint("a", "10.0.0.2")])


def test_relabel_gives_the_endpoints_of_a_label_set_their_new_number() -> None:
    registry = EndpointRegistry(IdentityAllocator(None))
    added = registry.replace([
        endpoint("a", "10.0.0.1"), endpoint("b", "fd00::2"), endpoint("c", "10.0.0.3", "db")
    ]).added
    web = label_key(added[0].endpoint.labels)
    db_identity = added[2].identity
    relabelled = registry.relabel({web: 4242, label_key(added[2].endpoint.labels): db_identity})
    assert [(r.registered.endpoint.pod_name, r.old_identity, r.registered.identity)
            for r in relabelled] == [("a", added[0].identity, 4242),
                                     ("b", added[1].identity, 4242)]
    by_ip = registry.by_ip("fd00::2")
    assert by_ip is not None
    assert (by_ip.id, by_ip.identity) == (2, 4242)
    assert registry.relabel({web: 4242}) == []
    # A relabelled endpoint is no change for the next refresh.
    unchanged = registry.replace([
        endpoint("a", "10.0.0.1"), endpoint("b", "fd00::2"), endpoint("c", "10.0.0.3", "db")])
    assert (unchanged.added, unchanged.removed) == ([], [])

    events = list(identity_events(relabelled))
    assert [(e.type, e.ipcache_update.cidr, e.ipcache_update.identity,
             e.ipcache_update.old_identity.value, e.ipcache_update.pod_name,
             e.ipcache_update.namespace) for e in events] == [
        (flow_pb2.IPCACHE_UPSERTED, "10.0.0.1/32", 4242, added[0].identity, "a", "shop"),
        (flow_pb2.IPCACHE_UPSERTED, "fd00::2/128", 4242, added[1].identity, "b", "shop"),
    ]
