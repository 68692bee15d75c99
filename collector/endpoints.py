"""The node's endpoints: where they come from, their identities, and lookups by address.

Sources produce plain `Endpoint` descriptions: the labs on this machine (their state files) and
a static endpoints file. The registry gives each endpoint an ID and an identity, answers "which
endpoint has this address", and reports what changed between two refreshes, so the collector
can update the ipcache map and the tc attachments and send ENDPOINT_CREATED/DELETED agent
events. When a label set's identity changes (a relay's number replacing `init`), `relabel`
gives the endpoints their new number and `identity_events` the IPCACHE_UPSERTED agent events.

Static endpoints file format (YAML)::

    endpoints:
      - namespace: shop
        pod: frontend
        labels: {app: frontend}             # pod labels
        namespace_labels: {team: shop}      # optional
        workload: {name: frontend, kind: Deployment}   # optional
        ips: [10.0.0.5, "fd00::5"]
        interface: veth1234                 # host-side interface; tc programs attach here
        netns: /run/netns/frontend          # optional: process attribution of servers
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from flowscope.collector.command import run
from flowscope.collector.identity import Identities
from flowscope.collector.labconfig import LAB_STATE_DIR, Workload, read_state, state_files
from flowscope.common.errors import InputError
from flowscope.common.identity import label_key
from flowscope.proto.flow import flow_pb2

NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
NAMESPACE_LABELS_PREFIX = "io.cilium.k8s.namespace.labels."


@dataclass(frozen=True)
class Endpoint:
    """One endpoint as a source describes it."""

    namespace: str
    pod_name: str
    labels: tuple[str, ...]
    ips: tuple[str, ...]
    interface: str
    netns: str = ""
    workloads: tuple[Workload, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.pod_name}"


@dataclass(frozen=True)
class RegisteredEndpoint:
    endpoint: Endpoint
    id: int
    identity: int
    # Inode of the endpoint's network namespace (0: unknown), to match listening sockets.
    netns_inode: int = 0


@dataclass(frozen=True)
class Relabelled:
    """An endpoint whose identity changed, and its identity before."""

    old_identity: int
    registered: RegisteredEndpoint


@dataclass
class Changes:
    added: list[RegisteredEndpoint] = field(default_factory=list)
    removed: list[RegisteredEndpoint] = field(default_factory=list)


def endpoint_labels(namespace: str, pod_labels: Mapping[str, str],
                    namespace_labels: Mapping[str, str]) -> tuple[str, ...]:
    """The identity-relevant labels, as Cilium writes them ("k8s:app=x")."""
    labels = {f"k8s:{k}={v}" for k, v in pod_labels.items()}
    labels.add(f"k8s:{NAMESPACE_LABEL}={namespace}")
    labels |= {f"k8s:{NAMESPACE_LABELS_PREFIX}{k}={v}" for k, v in namespace_labels.items()}
    return tuple(sorted(labels))


def lab_endpoints(state_dir: Path = LAB_STATE_DIR) -> list[Endpoint]:
    """The pods of every lab on this machine (world hosts are not endpoints)."""
    endpoints = []
    for path in state_files(state_dir):
        lab = read_state(path)
        for pod in lab.pods:
            if pod.is_world:
                continue
            endpoints.append(Endpoint(
                namespace=pod.namespace,
                pod_name=pod.name,
                labels=endpoint_labels(pod.namespace, pod.labels,
                                       lab.namespaces.get(pod.namespace, {})),
                ips=(pod.ipv4, pod.ipv6),
                interface=lab.host_ifname(pod),
                netns=f"/run/netns/{lab.netns(pod)}",
                workloads=(pod.workload,) if pod.workload else (),
            ))
    return endpoints


def file_endpoints(path: Path) -> list[Endpoint]:
    """Endpoints from a static endpoints file (format in the module docstring)."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read endpoints file {path}: {exc}") from exc
    items = document.get("endpoints") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise InputError(f"{path}: expected a mapping with an 'endpoints' list")
    return [_file_endpoint(item, f"{path}: endpoints[{i}]") for i, item in enumerate(items)]


def _file_endpoint(item: object, where: str) -> Endpoint:
    if not isinstance(item, dict):
        raise InputError(f"{where}: expected a mapping")
    allowed = {"namespace", "pod", "labels", "namespace_labels", "workload", "ips", "interface",
               "netns"}
    if unknown := set(item) - allowed:
        raise InputError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    for key in ("namespace", "pod", "interface"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise InputError(f"{where}.{key}: expected a non-empty string")
    ips = item.get("ips")
    if not isinstance(ips, list) or not ips:
        raise InputError(f"{where}.ips: expected a list of addresses")
    for ip in ips:
        try:
            ipaddress.ip_address(str(ip))
        except ValueError as exc:
            raise InputError(f"{where}.ips: {ip!r} is not an IP address") from exc
    labels, ns_labels = item.get("labels", {}), item.get("namespace_labels", {})
    for key, value in (("labels", labels), ("namespace_labels", ns_labels)):
        if not isinstance(value, dict):
            raise InputError(f"{where}.{key}: expected a mapping")
    workloads: tuple[Workload, ...] = ()
    if (wl := item.get("workload")) is not None:
        if not isinstance(wl, dict) or not isinstance(wl.get("name"), str):
            raise InputError(f"{where}.workload: expected {{name: ..., kind: ...}}")
        workloads = (Workload(wl["name"], str(wl.get("kind", "Deployment"))),)
    namespace = item["namespace"]
    return Endpoint(
        namespace=namespace,
        pod_name=item["pod"],
        labels=endpoint_labels(namespace, {str(k): str(v) for k, v in labels.items()},
                               {str(k): str(v) for k, v in ns_labels.items()}),
        ips=tuple(str(ipaddress.ip_address(str(ip))) for ip in ips),
        interface=item["interface"],
        netns=str(item.get("netns", "")),
        workloads=workloads,
    )


def host_addresses() -> list[str]:
    """The node's own addresses (reserved identity `host`), link-local ones excluded."""
    links = json.loads(run(["ip", "-j", "addr", "show"]))
    addresses = []
    for link in links:
        for info in link.get("addr_info", []):
            addr = ipaddress.ip_address(info["local"])
            if not addr.is_link_local:
                addresses.append(str(addr))
    return addresses


class EndpointRegistry:
    """The current endpoints, with IDs and identities; safe to read from several threads."""

    def __init__(self, identities: Identities) -> None:
        self._identities = identities
        self._lock = threading.Lock()
        self._by_ref: dict[str, RegisteredEndpoint] = {}
        self._by_ip: dict[str, RegisteredEndpoint] = {}
        self._next_id = 1

    def replace(self, endpoints: Sequence[Endpoint]) -> Changes:
        """Make `endpoints` the registry's content; return what was added and removed."""
        changes = Changes()
        wanted = {e.ref: e for e in endpoints}
        if len(wanted) != len(endpoints):
            raise InputError("two endpoints share a namespace/pod name")
        with self._lock:
            for ref, old in list(self._by_ref.items()):
                if wanted.get(ref) != old.endpoint:
                    del self._by_ref[ref]
                    changes.removed.append(old)
            new = [endpoint for ref, endpoint in wanted.items() if ref not in self._by_ref]
            numbers = self._identities.identities_for([endpoint.labels for endpoint in new])
            for endpoint, identity in zip(new, numbers, strict=True):
                registered = RegisteredEndpoint(
                    endpoint=endpoint, id=self._next_id, identity=identity,
                    netns_inode=_inode(endpoint.netns))
                self._next_id += 1
                self._by_ref[endpoint.ref] = registered
                changes.added.append(registered)
            self._reindex()
        return changes

    def relabel(self, numbers: Mapping[str, int]) -> list[Relabelled]:
        """Give the endpoints of these label sets ({label set key: number}) their number;
        the endpoints whose identity changed."""
        relabelled = []
        with self._lock:
            for ref, old in self._by_ref.items():
                number = numbers.get(label_key(old.endpoint.labels))
                if number is not None and number != old.identity:
                    self._by_ref[ref] = replace(old, identity=number)
                    relabelled.append(Relabelled(old.identity, self._by_ref[ref]))
            self._reindex()
        return relabelled

    def _reindex(self) -> None:
        self._by_ip = {ip: r for r in self._by_ref.values() for ip in r.endpoint.ips}

    def by_ip(self, ip: str) -> RegisteredEndpoint | None:
        return self._by_ip.get(ip)

    def all(self) -> list[RegisteredEndpoint]:
        with self._lock:
            return list(self._by_ref.values())


def _inode(path: str) -> int:
    try:
        return os.stat(path).st_ino if path else 0
    except OSError:
        return 0


def agent_events(changes: Changes) -> Iterable[flow_pb2.AgentEvent]:
    """ENDPOINT_DELETED and ENDPOINT_CREATED agent events for a registry change."""
    for kind, group in ((flow_pb2.ENDPOINT_DELETED, changes.removed),
                        (flow_pb2.ENDPOINT_CREATED, changes.added)):
        for registered in group:
            ep = registered.endpoint
            yield flow_pb2.AgentEvent(
                type=kind,
                endpoint_update=flow_pb2.EndpointUpdateNotification(
                    id=registered.id, labels=list(ep.labels), pod_name=ep.pod_name,
                    namespace=ep.namespace))


def identity_events(relabelled: Iterable[Relabelled]) -> Iterable[flow_pb2.AgentEvent]:
    """IPCACHE_UPSERTED agent events for the addresses of endpoints whose identity changed."""
    for change in relabelled:
        ep = change.registered.endpoint
        for ip in ep.ips:
            update = flow_pb2.IPCacheNotification(
                cidr=host_cidr(ip), identity=change.registered.identity, namespace=ep.namespace,
                pod_name=ep.pod_name)
            update.old_identity.value = change.old_identity
            yield flow_pb2.AgentEvent(type=flow_pb2.IPCACHE_UPSERTED, ipcache_update=update)


def host_cidr(ip: str) -> str:
    """The single-address CIDR of ip ("10.0.0.5/32", "fd00::5/128")."""
    addr = ipaddress.ip_address(ip)
    return f"{addr}/{addr.max_prefixlen}"
