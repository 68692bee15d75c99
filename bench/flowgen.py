"""Realistic synthetic flows as Hubble JSON lines, for benchmarks and demos.

A small cluster (two nodes, several namespaces, workloads whose pods carry the
labels Kubernetes and Cilium put on them) exchanging TCP, UDP, ICMP, DNS and
HTTP traffic, with trace, policy-verdict and drop events in realistic
proportions. Lines are about 1.5 KB, like Hubble's exports of such clusters.
Deterministic for a given seed.

    python bench/flowgen.py --count 1000 --seed 1 > flows.jsonl
"""

from __future__ import annotations

import argparse
import random
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from flowscope.common import jsonlines
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2

NAMESPACES = ("default", "shop", "payments", "monitoring", "kube-system")
WORKLOADS = ("frontend", "cart", "checkout", "catalog", "ledger", "redis", "postgres", "coredns")
NODES = ("prod/worker-a", "prod/worker-b")
START = 1_764_374_400  # 2025-11-29T00:00:00Z


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    workload: str
    ip: str
    identity: int
    labels: tuple[str, ...]
    node: str


def _pods(rng: random.Random) -> list[Pod]:
    pods = []
    for n, namespace in enumerate(NAMESPACES):
        for w, workload in enumerate(WORKLOADS):
            template = f"{rng.getrandbits(40):010x}"[:10]
            labels = (
                f"k8s:app={workload}",
                f"k8s:app.kubernetes.io/name={workload}",
                "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=" + namespace,
                f"k8s:io.cilium.k8s.policy.serviceaccount={workload}",
                f"k8s:io.kubernetes.pod.namespace={namespace}",
                f"k8s:pod-template-hash={template}",
            )
            for replica in range(3):
                suffix = f"{rng.getrandbits(25):05x}"[:5]
                pods.append(
                    Pod(
                        namespace=namespace,
                        name=f"{workload}-{template}-{suffix}",
                        workload=workload,
                        ip=f"10.{n}.{w}.{10 + replica}",
                        identity=1000 + n * 100 + w,
                        labels=labels,
                        node=NODES[(n + w + replica) % len(NODES)],
                    )
                )
    return pods


def _endpoint(pod: Pod) -> dict[str, object]:
    return {
        "ID": 100 + pod.identity % 1000,
        "identity": pod.identity,
        "cluster_name": "prod",
        "namespace": pod.namespace,
        "labels": list(pod.labels),
        "pod_name": pod.name,
        "workloads": [{"name": pod.workload, "kind": "Deployment"}],
    }


WORLD = {"identity": 2, "labels": ["reserved:world"]}


def flows(count: int, seed: int) -> Iterator[observer_pb2.GetFlowsResponse]:
    """`count` responses, one flow each, a few milliseconds apart."""
    rng = random.Random(seed)
    pods = _pods(rng)
    nanos = 0
    for _ in range(count):
        nanos += rng.randrange(200_000, 4_000_000)
        src = rng.choice(pods)
        to_world = rng.random() < 0.05
        dst = None if to_world else rng.choice(pods)
        kind = rng.random()
        sport = rng.randrange(32768, 60999)
        dport = rng.choice((80, 443, 5432, 6379, 8080))
        flow: dict[str, object] = {
            "time": {"seconds": START + nanos // 1_000_000_000, "nanos": nanos % 1_000_000_000},
            "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "emitter": {"name": "Hubble", "version": "1.19.4"},
            "ethernet": {"source": "02:42:ac:11:00:02", "destination": "02:42:ac:11:00:03"},
            "IP": {
                "source": src.ip,
                "destination": f"203.0.113.{rng.randrange(1, 250)}" if dst is None else dst.ip,
                "ipVersion": flow_pb2.IPv4,
            },
            "source": _endpoint(src),
            "destination": WORLD if dst is None else _endpoint(dst),
            "node_name": src.node,
            "node_labels": ["kubernetes.io/hostname=" + src.node.split("/")[1],
                            "topology.kubernetes.io/zone=zone-a"],
            "Type": flow_pb2.L3_L4,
            "interface": {"index": rng.randrange(5, 40), "name": f"lxc{rng.getrandbits(28):07x}"},
        }
        if dst is None:
            flow["destination_names"] = ["api.example.com"]
        if dport == 53 or (dst is not None and dst.workload == "coredns"):
            flow["l4"] = {"UDP": {"source_port": sport, "destination_port": 53}}
            flow["Summary"] = "UDP"
        elif kind < 0.02:
            flow["l4"] = {"ICMPv4": {"type": 8}}
            flow["Summary"] = "ICMPv4 EchoRequest"
        else:
            syn = rng.random() < 0.5
            flags = {"SYN": True} if syn else {"ACK": True, "PSH": True}
            flow["l4"] = {"TCP": {"source_port": sport, "destination_port": dport,
                                  "flags": flags}}
            flow["Summary"] = "TCP Flags: SYN" if syn else "TCP Flags: ACK, PSH"
        if kind < 0.08:
            flow.update(verdict=flow_pb2.DROPPED, drop_reason_desc=flow_pb2.POLICY_DENIED,
                        drop_reason=133, event_type={"type": 1, "sub_type": 133},
                        traffic_direction=flow_pb2.INGRESS)
        elif kind < 0.25:
            flow.update(verdict=flow_pb2.FORWARDED, event_type={"type": 5},
                        traffic_direction=flow_pb2.INGRESS, policy_match_type=2,
                        is_reply={"value": False},
                        ingress_allowed_by=[{"name": "allow-" + src.workload,
                                             "namespace": src.namespace,
                                             "kind": "NetworkPolicy", "revision": 4}])
        else:
            reply = rng.random() < 0.4
            flow.update(verdict=flow_pb2.FORWARDED,
                        event_type={"type": 4, "sub_type": 0 if reply else 5},
                        trace_observation_point=(flow_pb2.TO_ENDPOINT if reply
                                                 else flow_pb2.FROM_ENDPOINT),
                        traffic_direction=flow_pb2.EGRESS, is_reply={"value": reply},
                        trace_reason=flow_pb2.REPLY if reply else flow_pb2.ESTABLISHED)
        message = flow_pb2.Flow(**flow)  # type: ignore[arg-type]
        yield observer_pb2.GetFlowsResponse(flow=message, node_name=message.node_name,
                                            time=message.time)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    out = sys.stdout
    for response in flows(args.count, args.seed):
        out.write(jsonlines.dumps(response))
        out.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
