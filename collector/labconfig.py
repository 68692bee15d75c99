"""The lab's description: parsing and validating a lab file, the default lab, and the state file.

A lab is a set of pods (network namespaces) on one bridge of the host, plus "world" hosts: lab
namespaces whose addresses lie outside the pod range, so that traffic to them is world traffic.
The lab file (YAML) says which pods exist; everything in it is validated here, before any
command runs, because names end up in interface names, namespace names and file paths.

The state file (JSON, one per lab under /run/flowscope/labs/) records what `lab create` built:
pods, addresses, interfaces and labels. The collector reads it as an endpoint source; `lab
destroy` reads it to remove every trace.

Lab file format::

    name: default                  # lab name: [a-z][a-z0-9]{0,9}; the bridge is fsbr-<name>
    network:
      ipv4: 10.199.0.0/16          # the lab's link; the bridge (host) takes the first address
      ipv6: fd00:199::/64
      pod_ipv4: 10.199.1.0/24      # the pod range (world hosts lie outside it)
      pod_ipv6: fd00:199::1:0/112
    namespaces:                    # namespace -> labels
      shop: {team: shop}
    pods:
      - namespace: shop
        name: frontend             # DNS label
        labels: {app: frontend}
        workload: {name: frontend, kind: Deployment}   # optional
        ipv4: 10.199.1.10          # optional: the next free pod address when absent
        ipv6: fd00:199::1:10
    world:
      - name: internet
        ipv4: 10.199.200.10        # optional: the next free address outside the pod range
        ipv6: fd00:199::200:10
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from flowscope.common.errors import InputError

LAB_STATE_DIR: Final = Path("/run/flowscope/labs")
WORLD_NAMESPACE: Final = "world"

_LAB_NAME = re.compile(r"[a-z][a-z0-9]{0,9}")
# RFC 1123 label, as Kubernetes names namespaces and pods.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_LABEL_PREFIX = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
_WORKLOAD_KIND = re.compile(r"[A-Z][A-Za-z0-9]{0,62}")

IPv4Net = ipaddress.IPv4Network
IPv6Net = ipaddress.IPv6Network


@dataclass(frozen=True)
class Workload:
    name: str
    kind: str


@dataclass(frozen=True)
class LabPod:
    """One pod or world host of a lab, as built (addresses resolved)."""

    namespace: str
    name: str
    ipv4: str
    ipv6: str
    labels: dict[str, str] = field(default_factory=dict)
    workload: Workload | None = None

    @property
    def is_world(self) -> bool:
        return self.namespace == WORLD_NAMESPACE


@dataclass(frozen=True)
class LabNetwork:
    ipv4: str
    ipv6: str
    pod_ipv4: str
    pod_ipv6: str

    def host_addresses(self) -> tuple[str, str]:
        """The bridge's own addresses: the first host of each lab network."""
        return (str(next(IPv4Net(self.ipv4).hosts())), str(next(IPv6Net(self.ipv6).hosts())))


@dataclass(frozen=True)
class LabConfig:
    name: str
    network: LabNetwork
    namespaces: dict[str, dict[str, str]]
    pods: tuple[LabPod, ...]

    @property
    def bridge(self) -> str:
        return f"fsbr-{self.name}"

    def netns(self, pod: LabPod) -> str:
        """The network namespace's name (ip netns), unique per lab."""
        return f"fs-{self.name}-{pod.namespace}-{pod.name}"

    def host_ifname(self, pod: LabPod) -> str:
        """The host side of the pod's veth: short (IFNAMSIZ) and stable, so derived by hash."""
        digest = hashlib.sha256(self.netns(pod).encode()).hexdigest()
        return f"fs{digest[:10]}"

    def state_path(self, state_dir: Path = LAB_STATE_DIR) -> Path:
        return state_dir / f"{self.name}.json"

    def find(self, ref: str) -> LabPod:
        """The pod named "namespace/name"."""
        namespace, _, name = ref.partition("/")
        for pod in self.pods:
            if pod.namespace == namespace and pod.name == name:
                return pod
        raise InputError(f"lab {self.name!r} has no pod {ref!r} (expected NAMESPACE/POD)")

    def to_state(self) -> dict[str, Any]:
        """The state file's content: the config plus the names derived from it."""
        return {
            "name": self.name,
            "bridge": self.bridge,
            "network": asdict(self.network),
            "namespaces": self.namespaces,
            "pods": [
                {**asdict(p), "netns": self.netns(p), "host_ifname": self.host_ifname(p)}
                for p in self.pods
            ],
        }


DEFAULT_LAB: Final[dict[str, Any]] = {
    "name": "default",
    "network": {
        "ipv4": "10.199.0.0/16",
        "ipv6": "fd00:199::/64",
        "pod_ipv4": "10.199.1.0/24",
        "pod_ipv6": "fd00:199::1:0/112",
    },
    "namespaces": {"shop": {"team": "shop"}, "data": {"team": "data"}},
    "pods": [
        {"namespace": "shop", "name": "frontend", "labels": {"app": "frontend"},
         "workload": {"name": "frontend", "kind": "Deployment"}},
        {"namespace": "shop", "name": "checkout", "labels": {"app": "checkout"},
         "workload": {"name": "checkout", "kind": "Deployment"}},
        {"namespace": "data", "name": "db-0", "labels": {"app": "db"},
         "workload": {"name": "db", "kind": "StatefulSet"}},
        {"namespace": "data", "name": "cache", "labels": {"app": "cache"},
         "workload": {"name": "cache", "kind": "Deployment"}},
    ],
    "world": [{"name": "internet"}],
}


def load_lab_file(path: Path) -> LabConfig:
    """Read and validate a lab file."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read lab file {path}: {exc}") from exc
    return parse_lab(document, where=str(path))


def default_lab() -> LabConfig:
    return parse_lab(DEFAULT_LAB, where="default lab")


def parse_lab(document: object, where: str) -> LabConfig:
    """Validate a lab description (the YAML document) and resolve its addresses."""
    doc = _mapping(document, where, {"name", "network", "namespaces", "pods", "world"})
    name = _match(_LAB_NAME, doc.get("name", "default"), f"{where}: name")
    network = _parse_network(doc.get("network"), f"{where}: network")
    namespaces = {
        _match(_DNS_LABEL, ns, f"{where}: namespaces"): _labels(labels, f"{where}: namespaces.{ns}")
        for ns, labels in _mapping(doc.get("namespaces", {}), f"{where}: namespaces").items()
    }
    if WORLD_NAMESPACE in namespaces:
        raise InputError(f"{where}: namespaces: {WORLD_NAMESPACE!r} is reserved for world hosts")
    pods = [
        _parse_pod(p, f"{where}: pods[{i}]", namespaces)
        for i, p in enumerate(_sequence(doc.get("pods", []), f"{where}: pods"))
    ]
    world = [
        _parse_pod({**_mapping(p, f"{where}: world[{i}]"), "namespace": WORLD_NAMESPACE},
                   f"{where}: world[{i}]", {WORLD_NAMESPACE: {}})
        for i, p in enumerate(_sequence(doc.get("world", []), f"{where}: world"))
    ]
    resolved = _assign_addresses(pods, world, network, where)
    seen: set[tuple[str, str]] = set()
    for pod in resolved:
        if (pod.namespace, pod.name) in seen:
            raise InputError(f"{where}: pod {pod.namespace}/{pod.name} is declared twice")
        seen.add((pod.namespace, pod.name))
    return LabConfig(name=name, network=network, namespaces=namespaces, pods=tuple(resolved))


def _parse_network(value: object, where: str) -> LabNetwork:
    doc = _mapping(value, where, {"ipv4", "ipv6", "pod_ipv4", "pod_ipv6"})
    nets: dict[str, str] = {}
    for key, kind in (("ipv4", IPv4Net), ("ipv6", IPv6Net),
                      ("pod_ipv4", IPv4Net), ("pod_ipv6", IPv6Net)):
        raw = doc.get(key)
        try:
            net = kind(str(raw))
        except ValueError as exc:
            raise InputError(f"{where}.{key}: {raw!r} is not an {kind.__name__[:4]} "
                             f"network ({exc})") from exc
        if net.num_addresses < 4:
            raise InputError(f"{where}.{key}: {raw!r} is too small")
        nets[key] = str(net)
    for family in ("ipv4", "ipv6"):
        outer = ipaddress.ip_network(nets[family])
        inner = ipaddress.ip_network(nets[f"pod_{family}"])
        if not inner.subnet_of(outer):  # type: ignore[arg-type]
            raise InputError(f"{where}.pod_{family}: {inner} is not inside {family} {outer}")
        if inner == outer:
            raise InputError(f"{where}.pod_{family}: {inner} leaves no room for world hosts")
    return LabNetwork(**nets)


def _parse_pod(value: object, where: str, namespaces: Mapping[str, object]) -> dict[str, Any]:
    doc = _mapping(value, where, {"namespace", "name", "labels", "workload", "ipv4", "ipv6"})
    namespace = _match(_DNS_LABEL, doc.get("namespace"), f"{where}.namespace")
    if namespace not in namespaces:
        raise InputError(f"{where}.namespace: {namespace!r} is not declared under namespaces")
    pod: dict[str, Any] = {
        "namespace": namespace,
        "name": _match(_DNS_LABEL, doc.get("name"), f"{where}.name"),
        "labels": _labels(doc.get("labels", {}), f"{where}.labels"),
        "workload": None,
        "ipv4": _address(doc.get("ipv4"), 4, f"{where}.ipv4"),
        "ipv6": _address(doc.get("ipv6"), 6, f"{where}.ipv6"),
    }
    if "workload" in doc:
        wl = _mapping(doc["workload"], f"{where}.workload", {"name", "kind"})
        pod["workload"] = Workload(
            name=_match(_DNS_LABEL, wl.get("name"), f"{where}.workload.name"),
            kind=_match(_WORKLOAD_KIND, wl.get("kind", "Deployment"), f"{where}.workload.kind"),
        )
    return pod


def _assign_addresses(pods: list[dict[str, Any]], world: list[dict[str, Any]],
                      network: LabNetwork, where: str) -> list[LabPod]:
    """Check given addresses against the ranges and hand out the next free one where absent."""
    used = set(network.host_addresses())
    for pod in pods + world:
        for family in ("ipv4", "ipv6"):
            if pod[family] in used:
                raise InputError(f"{where}: {pod['namespace']}/{pod['name']} {family} "
                                 f"{pod[family]} is already used (by a pod or the bridge)")
            if pod[family]:
                used.add(pod[family])
    resolved = []
    for group, is_world in ((pods, False), (world, True)):
        for pod in group:
            for family in ("ipv4", "ipv6"):
                lab_net = ipaddress.ip_network(getattr(network, family))
                pod_net = ipaddress.ip_network(getattr(network, f"pod_{family}"))
                if pod[family] is None:
                    pod[family] = _next_free(lab_net, pod_net, is_world, used)
                    used.add(pod[family])
                addr = ipaddress.ip_address(pod[family])
                ref = f"{where}: {pod['namespace']}/{pod['name']} {family} {addr}"
                if addr not in lab_net:
                    raise InputError(f"{ref} is outside the lab network {lab_net}")
                if (addr in pod_net) == is_world:
                    side = "inside" if is_world else "outside"
                    raise InputError(f"{ref} is {side} the pod range {pod_net}")
            resolved.append(LabPod(**pod))
    return resolved


def _next_free(lab_net: IPv4Net | IPv6Net, pod_net: IPv4Net | IPv6Net, is_world: bool,
               used: set[str]) -> str:
    candidates: Iterator[ipaddress.IPv4Address | ipaddress.IPv6Address]
    if is_world:
        # World hosts come from the top of the lab network, far from the pod range.
        last = int(lab_net.broadcast_address) - 1
        candidates = (ipaddress.ip_address(n) for n in range(last, last - 4096, -1))
        candidates = (a for a in candidates if a not in pod_net)
    else:
        candidates = (a for a in pod_net.hosts())
    for addr in candidates:
        if str(addr) not in used:
            return str(addr)
    raise InputError(f"no free address left in {pod_net if not is_world else lab_net}")


def _labels(value: object, where: str) -> dict[str, str]:
    labels = {}
    for key, val in _mapping(value, where).items():
        prefix, slash, name = str(key).rpartition("/")
        if slash:
            _match(_LABEL_PREFIX, prefix, f"{where}: label key prefix")
        _match(_LABEL_NAME, name, f"{where}: label key")
        text = "" if val is None else str(val)
        labels[str(key)] = _match(_LABEL_VALUE, text, f"{where}.{key}")
    return labels


def _address(value: object, version: int, where: str) -> str | None:
    if value is None:
        return None
    try:
        addr = ipaddress.ip_address(str(value))
    except ValueError as exc:
        raise InputError(f"{where}: {value!r} is not an IP address") from exc
    if addr.version != version:
        raise InputError(f"{where}: {value!r} is not an IPv{version} address")
    return str(addr)


def _match(pattern: re.Pattern[str], value: object, where: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InputError(f"{where}: {value!r} is not a valid name (expected {pattern.pattern})")
    return value


def _mapping(value: object, where: str, allowed: set[str] | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a mapping, got {type(value).__name__}")
    if allowed is not None and (unknown := set(map(str, value)) - allowed):
        raise InputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    return value


def _sequence(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InputError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def write_state(config: LabConfig, state_dir: Path = LAB_STATE_DIR) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = config.state_path(state_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config.to_state(), indent=2))
    tmp.replace(path)
    return path


def read_state(path: Path) -> LabConfig:
    """A lab as its state file records it (validated again: the file may have been edited)."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read lab state {path}: {exc}") from exc
    doc = _mapping(state, str(path))
    pods = [p for p in doc.get("pods", []) if isinstance(p, dict)]
    document = {
        "name": doc.get("name"),
        "network": doc.get("network"),
        "namespaces": doc.get("namespaces", {}),
        "pods": [_pod_doc(p) for p in pods if p.get("namespace") != WORLD_NAMESPACE],
        "world": [
            {k: v for k, v in _pod_doc(p).items() if k != "namespace"}
            for p in pods if p.get("namespace") == WORLD_NAMESPACE
        ],
    }
    return parse_lab(document, where=str(path))


def _pod_doc(pod: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        k: pod[k] for k in ("namespace", "name", "labels", "ipv4", "ipv6") if k in pod}
    if pod.get("workload"):
        doc["workload"] = pod["workload"]
    return doc


def state_files(state_dir: Path = LAB_STATE_DIR) -> list[Path]:
    return sorted(state_dir.glob("*.json")) if state_dir.is_dir() else []
