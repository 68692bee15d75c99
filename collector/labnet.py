"""Building and removing a lab on the host: network namespaces, veth pairs and a bridge.

Every pod is a network namespace whose eth0 is one end of a veth pair; the other end
(the endpoint's host-side interface, where the collector attaches its tc programs) is a port of
the lab's bridge. The bridge holds the host's lab addresses. Pods get on-link routes for the lab
network only: no default route, no forwarding or masquerading, so lab traffic never leaves the
machine.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from flowscope.collector.command import CommandError, run
from flowscope.collector.labconfig import LAB_STATE_DIR, LabConfig, LabPod, read_state, write_state
from flowscope.common.errors import InputError


def create_lab(config: LabConfig, state_dir: Path = LAB_STATE_DIR) -> Path:
    """Build the lab and write its state file; on failure, remove what was built."""
    path = config.state_path(state_dir)
    if path.exists():
        raise InputError(f"lab {config.name!r} already exists ({path}); destroy it first")
    if Path("/sys/class/net", config.bridge).exists():
        raise InputError(f"interface {config.bridge} already exists; is lab {config.name!r} "
                         f"left over? run `flowscope lab destroy --name {config.name}`")
    # The state goes first, so that destroy can clean up after a build that failed midway.
    write_state(config, state_dir)
    try:
        _create_bridge(config)
        for pod in config.pods:
            _create_pod(config, pod)
    except Exception:
        destroy_lab(config.name, state_dir)
        raise
    return path


def _create_bridge(config: LabConfig) -> None:
    br = config.bridge
    host4, host6 = config.network.host_addresses()
    run(["ip", "link", "add", br, "type", "bridge"])
    run(["ip", "addr", "add", _with_prefix(host4, config.network.ipv4), "dev", br])
    run(["ip", "-6", "addr", "add", _with_prefix(host6, config.network.ipv6), "dev", br, "nodad"])
    run(["ip", "link", "set", br, "up"])


def _create_pod(config: LabConfig, pod: LabPod) -> None:
    netns, host_if = config.netns(pod), config.host_ifname(pod)
    run(["ip", "netns", "add", netns])
    run(["ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", netns])
    run(["ip", "link", "set", host_if, "master", config.bridge, "up"])
    run(["ip", "-n", netns, "link", "set", "lo", "up"])
    run(["ip", "-n", netns, "addr", "add", _with_prefix(pod.ipv4, config.network.ipv4),
         "dev", "eth0"])
    run(["ip", "-n", netns, "-6", "addr", "add", _with_prefix(pod.ipv6, config.network.ipv6),
         "dev", "eth0", "nodad"])
    run(["ip", "-n", netns, "link", "set", "eth0", "up"])


def _with_prefix(address: str, network: str) -> str:
    return f"{address}/{ipaddress.ip_network(network).prefixlen}"


def destroy_lab(name: str, state_dir: Path = LAB_STATE_DIR) -> list[str]:
    """Remove the lab's namespaces, interfaces, bridge and state file; return what was removed.

    Works from the state file and, independently of it, from the names a lab of this name
    uses, so a lab whose state file is lost or damaged is still removed completely.
    """
    removed: list[str] = []
    path = state_dir / f"{name}.json"
    netns_names = {ns for ns in _netns_list() if ns.startswith(f"fs-{name}-")}
    links = {f"fsbr-{name}"}
    if path.exists():
        try:
            config = read_state(path)
        except InputError:
            config = None
        if config is not None:
            netns_names |= {config.netns(p) for p in config.pods}
            links |= {config.host_ifname(p) for p in config.pods}
    for netns in sorted(netns_names):
        if _ignore_missing(["ip", "netns", "del", netns]):
            removed.append(f"netns {netns}")
    for link in sorted(links):
        if Path("/sys/class/net", link).exists() and _ignore_missing(["ip", "link", "del", link]):
            removed.append(f"link {link}")
    if path.exists():
        path.unlink()
        removed.append(str(path))
    return removed


def _ignore_missing(argv: list[str]) -> bool:
    try:
        run(argv)
    except CommandError as exc:
        if "No such file" in exc.stderr or "Cannot find device" in exc.stderr:
            return False
        raise
    return True


def _netns_list() -> list[str]:
    run_dir = Path("/run/netns")
    return sorted(os.listdir(run_dir)) if run_dir.is_dir() else []


def exec_argv(config: LabConfig, ref: str, command: list[str]) -> list[str]:
    """The argument list that runs `command` inside the pod `ref` ("namespace/name")."""
    if not command:
        raise InputError("lab exec: no command given (usage: lab exec NAMESPACE/POD -- CMD ...)")
    return ["ip", "netns", "exec", config.netns(config.find(ref)), *command]
