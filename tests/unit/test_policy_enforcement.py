"""Policies reaching the kernel maps (through a recording stand-in for the loaded program),
the watched policy directory, and the demo's description."""

from __future__ import annotations

import ctypes
import ipaddress
import os
from pathlib import Path
from typing import Any, cast

import pytest

from flowscope.cli.demo import DEMO_LAB, POLICIES, pod_programs
from flowscope.collector.endpoints import Endpoint, RegisteredEndpoint, endpoint_labels
from flowscope.collector.enforcement import PolicyEnforcer
from flowscope.collector.labconfig import parse_lab
from flowscope.collector.loader import Datapath
from flowscope.collector.policy import CompilerConfig, PolicyStore, parse_policies
from flowscope.collector.policy.bpfmaps import FS_ENFORCE_INGRESS
from flowscope.collector.policydir import PolicyDirectory
from flowscope.proto.flow import flow_pb2

WEB = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress: [{fromCIDR: [10.9.0.0/16], toPorts: [{ports: [{port: "80", protocol: TCP}]}]}]
"""


class Table:
    """A BPF map as the enforcer writes it, recording every operation."""

    def __init__(self, name: str, log: list[tuple[str, str, Any]]) -> None:
        self._name = name
        self._log = log
        self.entries: dict[bytes, bytes] = {}

    def __setitem__(self, key: ctypes.Structure, value: ctypes.Structure) -> None:
        self.entries[bytes(key)] = bytes(value)
        self._log.append(("write", self._name, bytes(key)))

    def __delitem__(self, key: ctypes.Structure) -> None:
        if bytes(key) not in self.entries:
            raise KeyError(key)
        del self.entries[bytes(key)]
        self._log.append(("delete", self._name, bytes(key)))


class RecordingDatapath:
    def __init__(self) -> None:
        self.log: list[tuple[str, str, Any]] = []
        self.tables = {name.encode(): Table(name, self.log)
                       for name in ("fs_policy", "fs_enforcement")}
        self.ipcache: dict[str, int] = {}
        self.generation = 1

    @property
    def bpf(self) -> dict[bytes, Table]:
        return self.tables

    def set_ipcache(self, cidr: str, identity: int, flags: int) -> None:
        self.ipcache[cidr] = identity
        self.log.append(("write", "ipcache", cidr))

    def delete_ipcache(self, cidr: str) -> None:
        del self.ipcache[cidr]
        self.log.append(("delete", "ipcache", cidr))

    def bump_policy_generation(self) -> int:
        self.generation += 1
        self.log.append(("bump", "", self.generation))
        return self.generation


def web(identity: int = 300) -> RegisteredEndpoint:
    labels = endpoint_labels("default", {"app": "web"}, {})
    return RegisteredEndpoint(Endpoint("default", "web", labels, (), "veth-web"), 1, identity)


@pytest.fixture
def datapath() -> RecordingDatapath:
    return RecordingDatapath()


@pytest.fixture
def enforcer(datapath: RecordingDatapath) -> tuple[PolicyEnforcer, list[flow_pb2.AgentEvent]]:
    published: list[flow_pb2.AgentEvent] = []
    store = PolicyStore(CompilerConfig())
    return PolicyEnforcer(store, cast(Datapath, datapath), published.append), published


def test_a_change_is_written_in_order_then_the_generation_moves(
        datapath: RecordingDatapath,
        enforcer: tuple[PolicyEnforcer, list[flow_pb2.AgentEvent]]) -> None:
    policies, published = enforcer
    policies.set_endpoints([web()])
    datapath.log.clear()
    change = policies.apply(parse_policies(WEB, "web.yaml"))
    order = [(op, table) for op, table, _ in datapath.log]
    assert order == [("write", "ipcache"), ("write", "fs_policy"),
                     ("write", "fs_enforcement"), ("bump", "")]
    assert datapath.ipcache == {"10.9.0.0/16": (1 << 24) | 1}
    enforcement = datapath.tables[b"fs_enforcement"].entries
    assert enforcement == {(300).to_bytes(4, "little"):
                           FS_ENFORCE_INGRESS.to_bytes(4, "little")}
    assert [e.type for e in published] == [flow_pb2.POLICY_UPDATED]
    (index,) = change.compiled.refs
    assert [(p.name, p.namespace, p.revision) for p in policies.policies_of(index)] == [
        ("web", "default", 1)]

    datapath.log.clear()
    policies.delete("default/web")
    order = [(op, table) for op, table, _ in datapath.log]
    assert order == [("delete", "fs_enforcement"), ("delete", "fs_policy"),
                     ("delete", "ipcache"), ("bump", "")]
    assert not datapath.tables[b"fs_policy"].entries and not datapath.ipcache
    assert [e.type for e in published] == [flow_pb2.POLICY_UPDATED, flow_pb2.POLICY_DELETED]
    # Events still in flight name the retired index: it stays resolvable.
    assert policies.policies_of(index)[0].name == "web"


def test_new_endpoints_get_their_entries(
        datapath: RecordingDatapath,
        enforcer: tuple[PolicyEnforcer, list[flow_pb2.AgentEvent]]) -> None:
    policies, published = enforcer
    policies.apply(parse_policies(WEB, "web.yaml"))
    assert not datapath.tables[b"fs_enforcement"].entries  # nothing selected yet
    generation = datapath.generation
    policies.set_endpoints([web(301)])
    assert list(datapath.tables[b"fs_enforcement"].entries) == [(301).to_bytes(4, "little")]
    assert datapath.generation == generation + 1
    assert len(published) == 1  # endpoint changes make no policy events


def test_policy_directory_follows_its_files(
        tmp_path: Path, enforcer: tuple[PolicyEnforcer, list[flow_pb2.AgentEvent]]) -> None:
    policies, _ = enforcer
    folder = PolicyDirectory(tmp_path, policies.apply,
                             lambda name: policies.delete(str(name), name.kind))
    assert folder.poll() is True  # empty: nothing to apply
    (tmp_path / "web.yaml").write_text(WEB)
    assert folder.poll() is True
    assert [str(s.policy.id) for s in policies.list()] == ["default/web"]
    assert folder.poll() is False  # unchanged
    assert policies.revision == 1

    broken = WEB.replace("fromCIDR: [10.9.0.0/16]", "fromCIDR: [10.9.0.0/99]")
    (tmp_path / "web.yaml").write_text(broken)
    os.utime(tmp_path / "web.yaml", ns=(1, 1))
    assert folder.poll() is False
    assert folder.last_error is not None
    assert folder.last_error.startswith(f"{tmp_path}/web.yaml:6: spec.ingress[0].fromCIDR[0]")
    assert policies.revision == 1 and len(policies.list()) == 1  # still in force

    (tmp_path / "web.yaml").unlink()
    assert folder.poll() is True
    assert policies.list() == [] and policies.revision == 2
    assert folder.last_error is None


def test_demo_traffic_stays_in_the_lab() -> None:
    lab = parse_lab(DEMO_LAB, "demo lab")
    network = ipaddress.ip_network(lab.network.ipv4)
    programs = pod_programs(lab, 1.0)
    clients = [p for p in programs if p.args[0] == "client"]
    assert len(clients) == 7
    assert all(ipaddress.ip_address(p.args[2]) in network for p in clients)
    assert {p.ref.partition("/")[0] for p in programs} == {"default", "data", "world"}
    world = lab.find("world/internet").ipv4
    parsed = parse_policies(POLICIES.replace("WORLD", world), "demo-policies.yaml")
    assert [str(p.id) for p in parsed] == ["default/allow-client-to-nginx",
                                           "default/client-egress", "data/db", "data/dns"]
    assert [p.audit for p in parsed] == [False, False, False, True]
