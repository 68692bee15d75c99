"""The known flows the UI tests run against: a small shop with a denied connection.

    shop/frontend -> shop/checkout :8080/TCP   forwarded  x3   (2,000 bytes each)
    shop/checkout -> shop/db       :5432/TCP   forwarded  x2
    shop/frontend -> shop/db       :5432/TCP   dropped    x2   (policy shop/db-ingress)
    ops/monitor   -> shop/frontend :9090/TCP   audit      x1   (policy ops/audit-scrape)
    shop/frontend -> world         :443/TCP    forwarded  x1   (DNS names, one with markup)
    host          -> shop/frontend :8080/TCP   forwarded  x1
    shop/checkout -> shop/frontend :40080/TCP  forwarded  x1   (a reply: SYN-ACK from :8080)

All of them on node "history-node", between 4 and 2 minutes before `now_ns`;
live flows are made with `live_flow` on node "lab-node".
"""

from __future__ import annotations

import itertools
import uuid
from typing import Final

from google.protobuf.wrappers_pb2 import BoolValue

from flowscope.proto.flow import flow_pb2

HISTORY_NODE: Final = "history-node"
LIVE_NODE: Final = "lab-node"
MARKUP_DNS: Final = "<img src=x onerror=alert(1)>.example.com"
WORLD_IP: Final = "203.0.113.10"
WORLD_DNS: Final = "api.example.com"

# name -> (namespace, pod, workload, ip, identity)
PODS: Final = {
    "frontend": ("shop", "frontend-7d9f-abcde", "frontend", "10.10.0.11", 1001),
    "checkout": ("shop", "checkout-5c8b-fghij", "checkout", "10.10.0.12", 1002),
    "db": ("shop", "db-0", "db", "10.10.0.13", 1003),
    "monitor": ("ops", "monitor-6f4d-klmno", "monitor", "10.10.0.21", 1004),
    "cache": ("shop", "cache-1a2b-pqrst", "cache", "10.10.0.14", 1005),
}


def endpoint(name: str) -> flow_pb2.Endpoint:
    if name == "world":
        return flow_pb2.Endpoint(identity=2, labels=["reserved:world"])
    if name == "host":
        return flow_pb2.Endpoint(identity=1, labels=["reserved:host"])
    namespace, pod, workload, _, identity = PODS[name]
    return flow_pb2.Endpoint(
        namespace=namespace,
        pod_name=pod,
        identity=identity,
        labels=[f"k8s:app={workload}", f"k8s:io.kubernetes.pod.namespace={namespace}"],
        workloads=[flow_pb2.Workload(name=workload, kind="Deployment")],
    )


def _ip(name: str) -> str:
    return {"world": WORLD_IP, "host": "10.10.0.1"}.get(name) or PODS[name][3]


def flow(
    source: str,
    destination: str,
    port: int,
    verdict: flow_pb2.Verdict.ValueType,
    time_ns: int,
    node: str,
    policy: str = "",
) -> flow_pb2.Flow:
    """A TCP SYN from source to destination, with its verdict and byte counters."""
    made = flow_pb2.Flow(
        uuid=str(uuid.uuid4()),
        verdict=verdict,
        node_name=node,
        source=endpoint(source),
        destination=endpoint(destination),
        IP=flow_pb2.IP(source=_ip(source), destination=_ip(destination), ipVersion=flow_pb2.IPv4),
        l4=flow_pb2.Layer4(
            TCP=flow_pb2.TCP(
                source_port=40000 + port % 1000,
                destination_port=port,
                flags=flow_pb2.TCPFlags(SYN=True),
            )
        ),
        Type=flow_pb2.L3_L4,
        traffic_direction=flow_pb2.EGRESS,
        is_reply=BoolValue(value=False),
        counters=flow_pb2.FlowCounters(packets_forward=2, bytes_forward=2000),
    )
    made.time.FromNanoseconds(time_ns)
    if verdict == flow_pb2.DROPPED:
        made.event_type.type = 1
        made.drop_reason_desc = flow_pb2.POLICY_DENIED
    else:
        made.event_type.type = 5 if verdict == flow_pb2.AUDIT else 4
    if policy:
        namespace, _, name = policy.partition("/")
        rule = flow_pb2.Policy(namespace=namespace, name=name, kind="NetworkPolicy")
        target = made.ingress_denied_by if verdict == flow_pb2.DROPPED else made.ingress_allowed_by
        target.append(rule)
    if destination == "world":
        made.destination_names.extend([WORLD_DNS, MARKUP_DNS])
    return made


EDGES: Final = (
    ("frontend", "checkout", 8080, flow_pb2.FORWARDED, 3, ""),
    ("checkout", "db", 5432, flow_pb2.FORWARDED, 2, ""),
    ("frontend", "db", 5432, flow_pb2.DROPPED, 2, "shop/db-ingress"),
    ("monitor", "frontend", 9090, flow_pb2.AUDIT, 1, "ops/audit-scrape"),
    ("frontend", "world", 443, flow_pb2.FORWARDED, 1, ""),
    ("host", "frontend", 8080, flow_pb2.FORWARDED, 1, ""),
)


def history(now_ns: int) -> list[flow_pb2.Flow]:
    """The scenario's flows, in time order, one second apart from 4 minutes ago; the
    reply last."""
    start = now_ns - 240 * 1_000_000_000
    sequence = itertools.count(1)
    made = []
    for source, destination, port, verdict, count, policy in EDGES:
        for _ in range(count):
            index = next(sequence)
            item = flow(
                source,
                destination,
                port,
                verdict,
                start + index * 1_000_000_000,
                HISTORY_NODE,
                policy,
            )
            item.node_sequence = index
            made.append(item)
    reply = flow(
        "checkout", "frontend", 40080, flow_pb2.FORWARDED, start + 11 * 1_000_000_000, HISTORY_NODE
    )
    reply.is_reply.value = True
    reply.l4.TCP.source_port = 8080
    reply.l4.TCP.flags.ACK = True
    reply.node_sequence = 11
    made.append(reply)
    return made


def live_flow(now_ns: int) -> flow_pb2.Flow:
    """A new connection: shop/cache -> shop/db :6379, forwarded."""
    return flow("cache", "db", 6379, flow_pb2.FORWARDED, now_ns, LIVE_NODE)
