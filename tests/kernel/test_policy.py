"""Network policy in the datapath, with real packets: what passes, what is dropped, and the
policy-verdict and drop events that say so. One collector for the module.

Lab (labtools.TEST_LAB): shop/client (team=shop), data/server and data/other (team=data),
and the world host world/internet. Echo servers answer on data/server ports 80, 9005 and
9011, data/other port 80 and world/internet port 443.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from labtools import TRAFFIC, flows, start_collector, start_in, wait_for

from flowscope.collector.collector import Collector
from flowscope.collector.labconfig import LabConfig, parse_lab
from flowscope.collector.labnet import create_lab, destroy_lab
from flowscope.collector.policy import parse_policies
from flowscope.collector.ring import Event
from flowscope.common.vocab import EVENT_TYPE_DROP, EVENT_TYPE_POLICY_VERDICT, POLICY_MATCH_TYPES
from flowscope.proto.flow import flow_pb2

pytestmark = pytest.mark.kernel

SERVER_PORTS = (80, 9005, 9011)
DENIED_TIMEOUT = "0.6"  # seconds a test waits for a connection that policy drops


@pytest.fixture(scope="module")
def collector(lab: tuple[LabConfig, Path],
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    socket_path = tmp_path_factory.mktemp("control") / "collector.sock"
    collector = start_collector(lab[1], control_socket=socket_path)
    config = lab[0]
    servers = [start_in(config, "data/server", "echo", str(port)) for port in SERVER_PORTS]
    servers.append(start_in(config, "data/other", "echo", "80"))
    servers.append(start_in(config, "world/internet", "echo", "443"))
    yield collector
    for server in servers:
        server.kill()
        server.wait()
    collector.stop()


@pytest.fixture
def config(lab: tuple[LabConfig, Path]) -> LabConfig:
    return lab[0]


@pytest.fixture(autouse=True)
def no_policies(collector: Collector) -> Iterator[None]:
    yield
    for stored in collector.policies.list():
        collector.policies.delete(str(stored.policy.id), stored.policy.id.kind)


def apply(collector: Collector, text: str) -> None:
    collector.policies.apply(parse_policies(text, "test.yaml"))


def reach(config: LabConfig, ref: str, address: str, port: int,
          timeout: str = DENIED_TIMEOUT) -> bool:
    """Whether a TCP round trip from pod `ref` to address:port works."""
    done = subprocess.run(["ip", "netns", "exec", config.netns(config.find(ref)),
                           sys.executable, TRAFFIC, "reach", address, str(port), timeout],
                          timeout=30, check=False)
    assert done.returncode in (0, 3), f"reach {address}:{port} from {ref}: {done.returncode}"
    return done.returncode == 0


def verdicts(events: list[Event], dst: str, dport: int) -> list[tuple[str, str, str]]:
    """(match type, direction, verdict) of the policy-verdict events toward dst:dport."""
    return [(POLICY_MATCH_TYPES[f.policy_match_type],
             flow_pb2.TrafficDirection.Name(f.traffic_direction),
             flow_pb2.Verdict.Name(f.verdict))
            for f in flows(events, dst=dst, dport=dport)
            if f.event_type.type == EVENT_TYPE_POLICY_VERDICT]


def drops(events: list[Event], dst: str, dport: int) -> list[str]:
    return [flow_pb2.DropReason.Name(f.drop_reason_desc)
            for f in flows(events, dst=dst, dport=dport) if f.event_type.type == EVENT_TYPE_DROP]


def settle(collector: Collector, start: int, dst: str, dport: int,
           count: int) -> list[Event]:
    return wait_for(collector, start, lambda ev: len(verdicts(ev, dst, dport)) >= count,
                    timeout=2.0)


ALLOW_CLIENT = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client, namespace: data}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: client}}, namespaceSelector: {}}]
      ports: [{protocol: TCP, port: 80}]
"""


def test_pod_selector_allows_the_selected_and_drops_the_rest(
        collector: Collector, config: LabConfig) -> None:
    server = config.find("data/server").ipv4
    apply(collector, ALLOW_CLIENT)
    start = collector.ring.next_seq()
    assert reach(config, "shop/client", server, 80)
    assert not reach(config, "data/other", server, 80)
    events = settle(collector, start, server, 80, 2)
    assert verdicts(events, server, 80) == [("L3-L4", "INGRESS", "FORWARDED"),
                                            ("none", "INGRESS", "DROPPED")]
    allowed = next(f for f in flows(events, dst=server, dport=80)
                   if f.event_type.type == EVENT_TYPE_POLICY_VERDICT)
    assert [(p.name, p.namespace, p.kind) for p in allowed.ingress_allowed_by] == [
        ("allow-client", "data", "NetworkPolicy")]
    assert allowed.ingress_allowed_by[0].revision == collector.policies.revision
    assert allowed.is_reply.value is False and allowed.HasField("is_reply")
    denied = [f for f in flows(events, dst=server, dport=80)
              if f.event_type.type == EVENT_TYPE_POLICY_VERDICT][1]
    assert not denied.HasField("is_reply")
    assert denied.source.pod_name == "other"
    assert set(drops(events, server, 80)) == {"POLICY_DENIED"}
    # Other ports of the selected pod are denied too.
    assert not reach(config, "shop/client", server, 9005)


def test_namespace_selector(collector: Collector, config: LabConfig) -> None:
    server = config.find("data/server").ipv4
    apply(collector, """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-shop, namespace: data}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {team: shop}}}]}]
""")
    start = collector.ring.next_seq()
    assert reach(config, "shop/client", server, 9005)
    assert not reach(config, "data/other", server, 9005)
    assert verdicts(settle(collector, start, server, 9005, 2), server, 9005) == [
        ("L3-Only", "INGRESS", "FORWARDED"), ("none", "INGRESS", "DROPPED")]


def test_ports_with_end_port(collector: Collector, config: LabConfig) -> None:
    server = config.find("data/server").ipv4
    apply(collector, """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: port-range, namespace: data}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress: [{ports: [{protocol: TCP, port: 9000, endPort: 9010}]}]
""")
    start = collector.ring.next_seq()
    assert reach(config, "shop/client", server, 9005)
    assert not reach(config, "shop/client", server, 9011)
    events = settle(collector, start, server, 9011, 1)
    assert verdicts(events, server, 9005) == [("L4-Only", "INGRESS", "FORWARDED")]
    assert verdicts(events, server, 9011) == [("none", "INGRESS", "DROPPED")]


def test_egress_is_checked_at_the_source(collector: Collector, config: LabConfig) -> None:
    server, other = config.find("data/server").ipv4, config.find("data/other").ipv4
    apply(collector, """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: client-out, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
    - toEndpoints: [{matchLabels: {app: server, k8s:io.kubernetes.pod.namespace: data}}]
      toPorts: [{ports: [{port: "80", protocol: TCP}]}]
""")
    start = collector.ring.next_seq()
    assert reach(config, "shop/client", server, 80)
    assert not reach(config, "shop/client", other, 80)
    events = settle(collector, start, other, 80, 1)
    assert verdicts(events, server, 80) == [("L3-L4", "EGRESS", "FORWARDED")]
    assert verdicts(events, other, 80) == [("none", "EGRESS", "DROPPED")]
    dropped = [f for f in flows(events, dst=other, dport=80)
               if f.event_type.type == EVENT_TYPE_DROP]
    assert dropped and all(f.traffic_direction == flow_pb2.EGRESS for f in dropped)
    assert dropped[0].interface.name == config.host_ifname(config.find("shop/client"))


def test_deny_wins_over_allow(collector: Collector, config: LabConfig) -> None:
    server = config.find("data/server").ipv4
    apply(collector, """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: all-but-other, namespace: data}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress: [{fromEntities: [all]}]
  ingressDeny: [{fromEndpoints: [{matchLabels: {app: other}}]}]
""")
    start = collector.ring.next_seq()
    assert reach(config, "shop/client", server, 80)
    assert not reach(config, "data/other", server, 80)
    events = settle(collector, start, server, 80, 2)
    assert verdicts(events, server, 80) == [("all", "INGRESS", "FORWARDED"),
                                            ("none", "INGRESS", "DROPPED")]
    denied = [f for f in flows(events, dst=server, dport=80)
              if f.event_type.type == EVENT_TYPE_POLICY_VERDICT][1]
    assert [p.name for p in denied.ingress_denied_by] == ["all-but-other"]
    assert denied.drop_reason_desc == flow_pb2.POLICY_DENY
    assert set(drops(events, server, 80)) == {"POLICY_DENY"}


def test_ip_block_with_except_against_the_world(collector: Collector,
                                                config: LabConfig) -> None:
    world = config.find("world/internet").ipv4
    block = config.network.ipv4  # the lab's link: world hosts and pods
    other_world = world.rpartition(".")[0] + ".1"  # in the block, outside the except
    apply(collector, f"""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: world-out, namespace: shop}}
spec:
  podSelector: {{matchLabels: {{app: client}}}}
  policyTypes: [Egress]
  egress: [{{to: [{{ipBlock: {{cidr: {block}, except: [{world}/32]}}}}]}}]
""")
    start = collector.ring.next_seq()
    assert not reach(config, "shop/client", world, 443)
    events = settle(collector, start, world, 443, 1)
    assert verdicts(events, world, 443) == [("none", "EGRESS", "DROPPED")]
    # Without the except, the world host is reached.
    apply(collector, f"""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: world-out, namespace: shop}}
spec:
  podSelector: {{matchLabels: {{app: client}}}}
  policyTypes: [Egress]
  egress: [{{to: [{{ipBlock: {{cidr: {block}, except: [{other_world}/32]}}}}]}}]
""")
    start = collector.ring.next_seq()
    assert reach(config, "shop/client", world, 443)
    events = settle(collector, start, world, 443, 1)
    assert verdicts(events, world, 443) == [("L3-Only", "EGRESS", "FORWARDED")]
    verdict = next(f for f in flows(events, dst=world, dport=443)
                   if f.event_type.type == EVENT_TYPE_POLICY_VERDICT)
    assert verdict.destination.identity >= 1 << 24  # the CIDR block's local identity


def test_entities_world_and_host(collector: Collector, config: LabConfig) -> None:
    server, world = config.find("data/server").ipv4, config.find("world/internet").ipv4
    apply(collector, """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: entities, namespace: data}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress: [{fromEntities: [host]}]
  egress: [{toEntities: [world]}]
""")
    start = collector.ring.next_seq()
    # From the host (this process runs in the root network namespace).
    with socket.create_connection((server, 80), timeout=2) as sock:
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"
    assert reach(config, "data/server", world, 443)
    assert not reach(config, "shop/client", server, 80)
    events = settle(collector, start, server, 80, 2)
    assert verdicts(events, server, 80) == [("L3-Only", "INGRESS", "FORWARDED"),
                                            ("none", "INGRESS", "DROPPED")]
    assert verdicts(events, world, 443) == [("L3-Only", "EGRESS", "FORWARDED")]
    host = next(f for f in flows(events, dst=server, dport=80)
                if f.event_type.type == EVENT_TYPE_POLICY_VERDICT)
    assert host.source.identity == 1 and list(host.source.labels) == ["reserved:host"]


def test_audit_passes_and_says_so(collector: Collector, config: LabConfig) -> None:
    server = config.find("data/server").ipv4
    apply(collector, ALLOW_CLIENT.replace(
        "metadata: {name: allow-client, namespace: data}",
        "metadata: {name: allow-client, namespace: data, "
        "annotations: {policy.flowscope.io/audit: 'true'}}"))
    start = collector.ring.next_seq()
    assert reach(config, "data/other", server, 80, timeout="2")
    assert reach(config, "shop/client", server, 80, timeout="2")
    events = settle(collector, start, server, 80, 2)
    assert verdicts(events, server, 80) == [("none", "INGRESS", "AUDIT"),
                                            ("L3-L4", "INGRESS", "FORWARDED")]
    assert drops(events, server, 80) == []


def test_revoking_an_allow_cuts_an_established_connection(
        collector: Collector, config: LabConfig) -> None:
    server = config.find("data/server").ipv4
    apply(collector, ALLOW_CLIENT)
    start = collector.ring.next_seq()
    client = start_in(config, "shop/client", "tcp-on-cue", server, "80", "1000",
                      ready="connected")
    try:
        collector.policies.delete("data/allow-client")
        apply(collector, ALLOW_CLIENT.replace("app: client", "app: nobody"))
        assert client.stdin is not None
        client.stdin.write("go\n")
        client.stdin.flush()
        # The data never reaches the server: the client waits in vain for the echo.
        time.sleep(1.0)
        assert client.poll() is None
    finally:
        client.kill()
        client.wait()
    events = settle(collector, start, server, 80, 2)
    assert verdicts(events, server, 80) == [("L3-L4", "INGRESS", "FORWARDED"),
                                            ("none", "INGRESS", "DROPPED")]
    assert "POLICY_DENIED" in drops(events, server, 80)
    deleted = [e for e in wait_for(collector, start, lambda ev: True)
               if isinstance(e, flow_pb2.AgentEvent) and e.type == flow_pb2.POLICY_DELETED]
    assert len(deleted) == 1


def test_updates_under_load_lose_no_enforcement(collector: Collector,
                                                config: LabConfig) -> None:
    """Connections run while the policy is replaced again and again: every allowed one
    succeeds and no denied one gets through."""
    server = config.find("data/server").ipv4
    apply(collector, ALLOW_CLIENT)
    stop = threading.Event()
    results: dict[str, list[bool]] = {"shop/client": [], "data/other": []}

    def stream(ref: str) -> None:
        script = ("import socket,sys,time\n"
                  "ok=0\n"
                  "for i in range(int(sys.argv[2])):\n"
                  "  try:\n"
                  "    s=socket.create_connection((sys.argv[1],80),timeout=0.5)\n"
                  "    s.sendall(b'ping'); r=s.recv(4); s.close(); print(1 if r==b'ping' else 0)\n"
                  "  except OSError: print(0)\n"
                  "  sys.stdout.flush()\n")
        done = subprocess.run(["ip", "netns", "exec", config.netns(config.find(ref)),
                               sys.executable, "-c", script, server,
                               "60" if ref == "shop/client" else "6"],
                              capture_output=True, text=True, timeout=60, check=True)
        results[ref] = [line == "1" for line in done.stdout.split()]

    threads = [threading.Thread(target=stream, args=(ref,)) for ref in results]
    for thread in threads:
        thread.start()
    updates = 0
    while any(t.is_alive() for t in threads) and updates < 40:
        # Alternate between two policy sets that both allow the client on port 80.
        extra = "" if updates % 2 else "\n    - ports: [{protocol: TCP, port: 9005}]"
        apply(collector, ALLOW_CLIENT + extra)
        updates += 1
        time.sleep(0.02)
    stop.set()
    for thread in threads:
        thread.join()
    assert updates >= 10
    assert results["shop/client"] == [True] * 60
    assert results["data/other"] == [False] * 6


BAD_FILES = {
    "syntax.yaml": ("kind: NetworkPolicy\nmetadata: {name: x\n", ":3: YAML syntax error"),
    "unknown.yaml": ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                     "metadata: {name: x}\nspec:\n  podSelector: {}\n  ingres: []\n",
                     ":6: spec.ingres: unknown field"),
    "cidr.yaml": ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                  "metadata: {name: x}\nspec:\n  podSelector: {}\n"
                  "  ingress: [{from: [{ipBlock: {cidr: 10.0.0.300/8}}]}]\n",
                  "ipBlock.cidr"),
    "l7.yaml": ("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
                "metadata: {name: x}\nspec:\n  endpointSelector: {}\n"
                "  ingress: [{toPorts: [{ports: [{port: '80'}], rules: {http: []}}]}]\n",
                "L7 rules are not supported"),
    "selector.yaml": ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                      "metadata: {name: x}\nspec:\n  podSelector:\n    matchExpressions:\n"
                      "      - {key: app, operator: Near, values: [a]}\n",
                      "operator"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_policy_files_change_nothing(collector: Collector, config: LabConfig,
                                         tmp_path: Path, name: str) -> None:
    server = config.find("data/server").ipv4
    good = tmp_path / "good.yaml"
    good.write_text(ALLOW_CLIENT)
    cli = [sys.executable, "-m", "flowscope.cli.main", "policy",
           "--socket", str(collector.config.control_socket)]
    subprocess.run([*cli, "apply", "-f", str(good)], check=True, capture_output=True)
    revision = collector.policies.revision
    text, message = BAD_FILES[name]
    bad = tmp_path / name
    bad.write_text(text)
    done = subprocess.run([*cli, "apply", "-f", str(bad)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(str(bad)), done.stderr
    assert message in done.stderr
    assert collector.policies.revision == revision
    listed = subprocess.run([*cli, "list"], capture_output=True, text=True, check=True)
    assert "allow-client" in listed.stdout
    assert not reach(config, "data/other", server, 80)


def test_endpoints_that_appear_later_meet_the_policies_in_force(
        collector: Collector, lab: tuple[LabConfig, Path]) -> None:
    _, state_dir = lab
    late = parse_lab({
        "name": "klate",
        "network": {"ipv4": "10.193.0.0/16", "ipv6": "fd00:193::/64",
                    "pod_ipv4": "10.193.1.0/24", "pod_ipv6": "fd00:193::1:0/112"},
        "namespaces": {"late": {}},
        "pods": [{"namespace": "late", "name": "server", "labels": {"app": "late"}}],
    }, "late lab")
    apply(collector, """
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: late-from-world}
spec:
  endpointSelector: {matchLabels: {app: late}}
  ingress: [{fromEntities: [world]}]
""")
    create_lab(late, state_dir)
    try:
        address = late.find("late/server").ipv4
        echo = start_in(late, "late/server", "echo", "80")
        try:
            start = collector.ring.next_seq()
            collector.refresh_endpoints()
            # From the host: not the world, so denied.
            with pytest.raises(TimeoutError):
                socket.create_connection((address, 80), timeout=0.6).close()
            events = settle(collector, start, address, 80, 1)
        finally:
            echo.kill()
            echo.wait()
    finally:
        destroy_lab(late.name, state_dir)
        collector.refresh_endpoints()
    assert verdicts(events, address, 80)[0] == ("none", "INGRESS", "DROPPED")
