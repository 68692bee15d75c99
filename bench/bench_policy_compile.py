"""Parse and compile 1,000 policy rules for 200 endpoints; time a one-policy change.

Builds 100 CiliumNetworkPolicies of 10 rules each (endpoint selectors, port ranges, CIDR
blocks with except, entities, a few deny rules) over 200 endpoints: 100 apps of 2 replicas in
10 namespaces, each policy selecting one app (--broad: a quarter of all endpoints, which
multiplies the entries). Prints the time to parse them, to compile them into policy map
entries, and to apply a change of one policy through the store (compile + diff), with the map
sizes. The map entries are the product of selected endpoint identities, remote identities and
port blocks, so their number, not the number of rules, sets the compile time.

    bench/run policy-compile [--rules 1000] [--endpoints 200] [--broad]
"""

from __future__ import annotations

import argparse
import time

from flowscope.collector.endpoints import Endpoint, RegisteredEndpoint, endpoint_labels
from flowscope.collector.policy import (
    CompilerConfig,
    PolicyStore,
    StoredPolicy,
    compile_policies,
    parse_policies,
)

RULES_PER_POLICY = 10
NAMESPACES = 10


def endpoints(count: int) -> list[RegisteredEndpoint]:
    registered = []
    for n in range(count):
        app = n // 2  # two replicas of each app share its labels and identity
        namespace = f"ns{app % NAMESPACES}"
        labels = endpoint_labels(namespace, {"app": f"app{app}", "tier": f"t{app % 4}"},
                                 {"team": f"team{app % 3}"})
        endpoint = Endpoint(namespace, f"pod{n}", labels, (f"10.42.{n // 250}.{n % 250}",),
                            f"veth{n}")
        registered.append(RegisteredEndpoint(endpoint, n + 1, 1000 + app))
    return registered


def rule(n: int) -> str:
    kind = n % 5
    if kind == 0:
        return (f"    - fromEndpoints: [{{matchLabels: {{app: app{n % 100}}}}}]\n"
                f"      toPorts: [{{ports: [{{port: \"{1000 + n}\", protocol: TCP}}]}}]\n")
    if kind == 1:
        return (f"    - fromEndpoints: [{{matchLabels: {{tier: t{n % 4}}}}}]\n"
                f"      toPorts: [{{ports: [{{port: \"{8000 + n}\", endPort: {8100 + n},"
                " protocol: TCP}]}]\n")
    if kind == 2:
        return (f"    - fromCIDRSet: [{{cidr: 172.{16 + n % 16}.0.0/16,"
                f" except: [172.{16 + n % 16}.{n % 256}.0/24]}}]\n")
    if kind == 3:
        return (f"    - fromEntities: [host, world]\n"
                f"      toPorts: [{{ports: [{{port: \"{n % 1000 + 1}\", protocol: UDP}}]}}]\n")
    return f"    - toPorts: [{{ports: [{{port: \"{20000 + n}\"}}]}}]\n"


def policies_text(rules: int, broad: bool) -> str:
    documents = []
    for p in range(rules // RULES_PER_POLICY):
        body = "".join(rule(p * RULES_PER_POLICY + r) for r in range(RULES_PER_POLICY))
        deny = (f"  ingressDeny:\n    - fromEndpoints: [{{matchLabels: {{app: app{p}}}}}]\n"
                if p % 10 == 0 else "")
        subject = f"tier: t{p % 4}" if broad else f"app: app{p}"
        documents.append(
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
            f"metadata: {{name: p{p}, namespace: ns{p % NAMESPACES}}}\n"
            f"spec:\n  endpointSelector: {{matchLabels: {{{subject}}}}}\n"
            f"  ingress:\n{body}{deny}")
    return "---\n".join(documents)


def timed(label: str, start: float) -> float:
    now = time.perf_counter()
    print(f"{label:<34} {(now - start) * 1000:9.1f} ms")
    return now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=200)
    parser.add_argument("--broad", action="store_true",
                        help="each policy selects a quarter of the endpoints")
    args = parser.parse_args()
    registered = endpoints(args.endpoints)
    text = policies_text(args.rules, args.broad)
    start = time.perf_counter()
    policies = parse_policies(text, "bench.yaml")
    start = timed(f"parse {args.rules} rules", start)
    compiled = compile_policies([StoredPolicy(p, 1) for p in policies], registered,
                                CompilerConfig())
    timed(f"compile for {args.endpoints} endpoints", start)
    print(f"{'policy map entries':<34} {len(compiled.entries):9d}")
    print(f"{'ipcache CIDR entries':<34} {len(compiled.ipcache):9d}")
    print(f"{'enforced endpoint identities':<34} {len(compiled.enforcement):9d}")
    store = PolicyStore(CompilerConfig(), registered)
    store.apply(policies)
    changed = parse_policies(policies_text(RULES_PER_POLICY, args.broad), "one.yaml")
    start = time.perf_counter()
    change = store.apply(changed)
    timed("apply one changed policy (store)", start)
    writes = sum(len(step.write) + len(step.delete) for step in change.diff.steps())
    print(f"{'map operations for that change':<34} {writes:9d}")


if __name__ == "__main__":
    main()
