"""`flowscope demo`: a lab, policies, steady traffic and the collector, in one command (root).

It builds the demo lab (pods in namespaces default and data, and a world host), applies demo
policies that allow, deny and audit, starts servers and steady clients inside the pods (one
request a second per client and target, to lab addresses only), runs the collector and the
node's gRPC server (localhost:4244) and the relay with its embedded store (localhost:4245) as
`flowscope up` does, and prints what to run next. Ctrl-C (or SIGTERM, or the
end of --duration) stops the traffic and the collector (tc filters removed) and destroys the
lab. With --print, the policy verdicts are printed as `flowscope observe` prints them.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Final

from flowscope.cli import up
from flowscope.cli.printers import PrinterOptions, make_printer
from flowscope.collector.collector import Config
from flowscope.collector.control import DEFAULT_SOCKET
from flowscope.collector.labconfig import LAB_STATE_DIR, LabConfig, parse_lab
from flowscope.collector.labnet import create_lab, destroy_lab
from flowscope.collector.policy import parse_policies
from flowscope.collector.ring import FlowRing
from flowscope.common.vocab import EVENT_TYPE_POLICY_VERDICT
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2

NGINX: Final = "nginx-5d7f8c9b4-x2kqp"
DEMO_STORE: Final = Path("/var/lib/flowscope/demo-store")
DEMO_LAB: Final = {
    "name": "demo",
    "network": {"ipv4": "10.194.0.0/16", "ipv6": "fd00:194::/64",
                "pod_ipv4": "10.194.1.0/24", "pod_ipv6": "fd00:194::1:0/112"},
    "namespaces": {"default": {}, "data": {"team": "data"}},
    "pods": [
        {"namespace": "default", "name": "client", "labels": {"app": "client"}},
        {"namespace": "default", "name": NGINX, "labels": {"app": "nginx"},
         "workload": {"name": "nginx", "kind": "Deployment"}},
        {"namespace": "default", "name": "unauthorized-client",
         "labels": {"app": "unauthorized-client"}},
        {"namespace": "data", "name": "dns", "labels": {"app": "dns"}},
        {"namespace": "data", "name": "db-0", "labels": {"app": "db"},
         "workload": {"name": "db", "kind": "StatefulSet"}},
    ],
    "world": [{"name": "internet"}],
}
HTTP_PORT, DNS_PORT, DB_PORT, WORLD_PORT = 80, 53, 5432, 443

# Allowed: client -> nginx:80 (L3-L4), client -> db:5432, client -> dns:53, client -> the
# world host's :443 (egress). Denied: unauthorized-client -> nginx (no rule allows) and
# -> db (an explicit deny). Audited: unauthorized-client -> dns (audit mode: passes).
POLICIES: Final = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client-to-nginx, namespace: default}
spec:
  podSelector: {matchLabels: {app: nginx}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: client}}}]
      ports: [{protocol: TCP, port: 80}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: client-egress, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
    - toEntities: [cluster]
    - toCIDRSet: [{cidr: WORLD/32}]
      toPorts: [{ports: [{port: "443", protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: db, namespace: data}
spec:
  endpointSelector: {matchLabels: {app: db}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client, k8s:io.kubernetes.pod.namespace: default}}]
      toPorts: [{ports: [{port: "5432", protocol: TCP}]}]
  ingressDeny:
    - fromEndpoints:
        - {matchLabels: {app: unauthorized-client, k8s:io.kubernetes.pod.namespace: default}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: dns
  namespace: data
  annotations: {policy.flowscope.io/audit: "true"}
spec:
  podSelector: {matchLabels: {app: dns}}
  ingress:
    - from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: client}}}]
      ports: [{protocol: UDP, port: 53}]
"""

EXAMPLES = """examples:
  sudo flowscope demo                     # until Ctrl-C
  sudo flowscope demo --print             # also print the policy verdicts
  sudo flowscope demo --duration 10 --print
"""


@dataclass(frozen=True)
class Pod:
    """A program of the demo inside a pod: (namespace/pod, demo_pods arguments)."""

    ref: str
    args: tuple[str, ...]


def pod_programs(lab: LabConfig, interval: float) -> list[Pod]:
    """The servers first, then the clients (each: one target, one request per interval)."""
    nginx, dns, db = (lab.find(ref).ipv4 for ref in (f"default/{NGINX}", "data/dns",
                                                     "data/db-0"))
    world = lab.find("world/internet").ipv4
    every = str(interval)
    servers = [Pod(f"default/{NGINX}", ("http-server", str(HTTP_PORT))),
               Pod("data/dns", ("udp-echo", str(DNS_PORT))),
               Pod("data/db-0", ("tcp-echo", str(DB_PORT))),
               Pod("world/internet", ("tcp-echo", str(WORLD_PORT)))]
    targets = {"default/client": [("http", nginx, HTTP_PORT), ("udp", dns, DNS_PORT),
                                  ("tcp", db, DB_PORT), ("tcp", world, WORLD_PORT)],
               "default/unauthorized-client": [("http", nginx, HTTP_PORT),
                                               ("udp", dns, DNS_PORT), ("tcp", db, DB_PORT)]}
    clients = [Pod(ref, ("client", kind, address, str(port), every))
               for ref, wanted in targets.items() for kind, address, port in wanted]
    return servers + clients


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `demo` command to the CLI."""
    parser = subparsers.add_parser(
        "demo",
        help="run a demo: lab, policies, traffic and the collector (root; Ctrl-C ends it)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=_positive_seconds,
                        help="stop after this many seconds (default: at Ctrl-C)")
    parser.add_argument("--print", action="store_true",
                        help="print the policy verdicts (compact format)")
    parser.add_argument("--print-policy-names", action="store_true",
                        help="with --print: name the policies that allowed or denied")
    parser.add_argument("--interval", type=_positive_seconds, default=1.0,
                        help="seconds between two requests of one client (default 1)")
    parser.add_argument("--lab-state-dir", type=Path, default=LAB_STATE_DIR,
                        help=f"where the demo lab's state goes (default {LAB_STATE_DIR})")
    parser.add_argument("--control-socket", type=Path, default=DEFAULT_SOCKET,
                        help=f"the collector's control socket (default {DEFAULT_SOCKET})")
    up.add_stack_flags(parser)
    parser.set_defaults(func=run, store=DEMO_STORE)


def _positive_seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    lab = parse_lab(DEMO_LAB, "demo lab")
    with ExitStack() as stack:
        stack.enter_context(_lab(lab, args.lab_state_dir))
        node = stack.enter_context(up.node_stack(_collector_config(args), args))
        collector = node.collector
        collector.policies.apply(parse_policies(
            POLICIES.replace("WORLD", lab.find("world/internet").ipv4), "demo-policies.yaml"))
        stack.enter_context(_pods(lab, args.interval))
        _print_next_steps(lab, node, args)
        deadline = None if args.duration is None else time.monotonic() + args.duration
        _follow(collector.ring, args, stop, deadline)
    print("demo stopped: traffic, collector and lab removed", file=sys.stderr)
    return 0


@contextmanager
def _lab(lab: LabConfig, state_dir: Path) -> Iterator[None]:
    destroy_lab(lab.name, state_dir)  # a demo that was killed may have left it
    create_lab(lab, state_dir)
    try:
        yield
    finally:
        destroy_lab(lab.name, state_dir)


def _collector_config(args: argparse.Namespace) -> Config:
    return Config(node_name="flowscope-demo", lab_state_dir=args.lab_state_dir,
                  identity_state=None, control_socket=args.control_socket)


@contextmanager
def _pods(lab: LabConfig, interval: float) -> Iterator[None]:
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for pod in pod_programs(lab, interval):
            argv = ["ip", "netns", "exec", lab.netns(lab.find(pod.ref)), sys.executable,
                    "-m", "flowscope.cli.demo_pods", *pod.args]
            processes.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                              stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()


def _print_next_steps(lab: LabConfig, node: up.Node, args: argparse.Namespace) -> None:
    policy = "flowscope policy" + ("" if args.control_socket == DEFAULT_SOCKET
                                   else f" --socket {args.control_socket}")
    lab_cmd = "flowscope lab" + ("" if args.lab_state_dir == LAB_STATE_DIR
                                 else f" --state-dir {args.lab_state_dir}")
    pods = [pod for pod in lab.pods if not pod.is_world]
    ui = "" if node.ui_url is None else f",\nand the web UI at {node.ui_url}"
    print(f"""flowscope demo is running: lab {lab.name!r} with {len(pods)} pods and a world \
host, the collector (node API {node.node_address}), and the relay with its store
(relay API {node.relay_address}, history in {args.store}){ui}.

Traffic: default/client -> nginx, dns, db and the world host are allowed (dns by an \
audited policy);
unauthorized-client -> nginx is denied (no rule allows it), -> db denied by a deny rule, \
-> dns audited.

Next:
  flowscope observe -t policy-verdict -f
  flowscope observe --verdict DROPPED --since 5m
  flowscope observe -t policy-verdict --print-policy-names --last 20
  flowscope observe --server {node.node_address} -f      # the node itself, without the relay
  sudo {policy} list
  sudo {lab_cmd} exec default/client -- ping -c1 {lab.find(f"default/{NGINX}").ipv4}

Ctrl-C stops the demo and removes everything it built.
""", file=sys.stderr, flush=True)


def _follow(ring: FlowRing, args: argparse.Namespace, stop: threading.Event,
            deadline: float | None) -> None:
    """Until stopped: print the policy verdicts that reach the ring (with --print)."""
    printer = make_printer(PrinterOptions(policy_names=args.print_policy_names),
                           sys.stdout, sys.stderr)
    seq = ring.next_seq()
    while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
        ring.wait(seq, timeout=0.2)
        entries, lost = ring.read(seq, limit=4096)
        seq = entries[-1][0] + 1 if entries else seq + lost
        if not args.print:
            continue
        for _, event in entries:
            if (isinstance(event, flow_pb2.Flow)
                    and event.event_type.type == EVENT_TYPE_POLICY_VERDICT):
                printer.write_flows_response(observer_pb2.GetFlowsResponse(flow=event))
        sys.stdout.flush()
    printer.close()
