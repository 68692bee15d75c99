"""The compiler's map contents, and the Python mirror of bpf/policy.h."""

from __future__ import annotations

import ctypes
import ipaddress
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from flowscope.collector.endpoints import Endpoint, RegisteredEndpoint, endpoint_labels
from flowscope.collector.policy import (
    CompiledPolicy,
    CompilerConfig,
    StoredPolicy,
    bpfmaps,
    compile_policies,
    parse_policies,
)
from flowscope.collector.policy.bpfmaps import PolicyKey, PolicyValue
from flowscope.collector.policy.compiler import port_blocks
from flowscope.collector.policy.model import Action, Direction, PortRange, Protocol

HEADER = Path(__file__).parents[2] / "bpf" / "policy.h"
TCP, UDP, SCTP = 6, 17, 132
INGRESS, EGRESS = 1, 2
ALLOW, DENY = 1, 2
LOCAL = 1 << 24


def endpoint(pod: str, app: str, identity: int, namespace: str = "default") -> RegisteredEndpoint:
    labels = endpoint_labels(namespace, {"app": app}, {})
    return RegisteredEndpoint(Endpoint(namespace, pod, labels, (), f"veth-{pod}"), identity,
                              identity)


NGINX, CLIENT = endpoint("nginx", "nginx", 300), endpoint("client", "client", 301)


def compile_text(text: str, revision: int = 1, audit: bool = False) -> CompiledPolicy:
    stored = [StoredPolicy(p, revision) for p in parse_policies(text, "t.yaml")]
    return compile_policies(stored, [NGINX, CLIENT], CompilerConfig(audit=audit))


@pytest.mark.parametrize(("ranges", "blocks"), [
    ([], ((0, 0, 0),)),
    ([(TCP, 80, 80)], ((TCP, 80, 16),)),
    ([(TCP, 80, 89)], ((TCP, 80, 13), (TCP, 88, 15))),
    ([(UDP, 0, 65535)], ((UDP, 0, 0),)),
    ([(TCP, 32768, 65535)], ((TCP, 32768, 1),)),
    ([(TCP, 80, 80), (TCP, 80, 80), (SCTP, 1024, 2047)], ((TCP, 80, 16), (SCTP, 1024, 6))),
])
def test_port_ranges_become_prefix_blocks(ranges: list[tuple[int, int, int]],
                                          blocks: tuple[tuple[int, int, int], ...]) -> None:
    assert port_blocks(PortRange(Protocol(p), a, b) for p, a, b in ranges) == blocks


def test_the_worst_range_takes_30_blocks_that_cover_it_exactly() -> None:
    blocks = port_blocks([PortRange(Protocol.TCP, 1, 65534)])
    assert len(blocks) == 30
    covered = [port for _, first, bits in blocks for port in range(first, first + 2 ** (16 - bits))]
    assert covered == list(range(1, 65535))


POLICY = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: nginx}
spec:
  endpointSelector: {matchLabels: {app: nginx}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts: [{ports: [{port: "80", protocol: TCP}]}]
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts: [{ports: [{port: "0", protocol: UDP}]}]
    - fromCIDRSet: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]
    - toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
    - toPorts: [{ports: [{port: "0", protocol: SCTP}]}]
  ingressDeny:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts: [{ports: [{port: "80", endPort: 81, protocol: TCP}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress: [{}]
"""


def test_entries_enforcement_ipcache_and_refs() -> None:
    compiled = compile_text(POLICY, revision=4)
    net8, net16 = LOCAL | 1, LOCAL | 2
    assert compiled.ipcache == {ipaddress.ip_network("10.0.0.0/8"): net8,
                                ipaddress.ip_network("10.1.0.0/16"): net16}
    assert compiled.enforcement == {300: bpfmaps.FS_ENFORCE_INGRESS,
                                    301: bpfmaps.FS_ENFORCE_EGRESS}
    refs = {i: [f"{r.id.kind}/{r.id}@{r.revision}" for r in v]
            for i, v in compiled.refs.items()}
    assert refs == {1: ["CiliumNetworkPolicy/default/nginx@4"],
                    2: ["NetworkPolicy/default/client@4"]}
    assert compiled.entries == {
        # the allow of port 80 lies inside the deny of 80-81: written as a deny
        PolicyKey(300, 301, INGRESS, TCP, 80, 15): PolicyValue(DENY, 0, 1, False),
        PolicyKey(300, 301, INGRESS, TCP, 80, 16): PolicyValue(DENY, 0, 1, False),
        PolicyKey(300, 301, INGRESS, UDP, 0, 0): PolicyValue(ALLOW, 5, 1, False),  # L3-Proto
        PolicyKey(300, net8, INGRESS, 0, 0, 0): PolicyValue(ALLOW, 1, 1, False),  # L3-Only
        PolicyKey(300, 0, INGRESS, TCP, 8080, 16): PolicyValue(ALLOW, 3, 1, False),  # L4-Only
        PolicyKey(300, 0, INGRESS, SCTP, 0, 0): PolicyValue(ALLOW, 6, 1, False),  # Proto-Only
        PolicyKey(301, 0, EGRESS, 0, 0, 0): PolicyValue(ALLOW, 4, 2, False),  # all
    }


def test_audit_marks_the_entries_and_the_enforcement() -> None:
    compiled = compile_text(POLICY, audit=True)
    assert compiled.enforcement == {
        300: bpfmaps.FS_ENFORCE_INGRESS | bpfmaps.FS_AUDIT_INGRESS,
        301: bpfmaps.FS_ENFORCE_EGRESS | bpfmaps.FS_AUDIT_EGRESS}
    assert all(value.audit for value in compiled.entries.values())


def test_identities_and_reference_indexes_survive_recompiles() -> None:
    first = compile_text(POLICY, revision=1)
    more = POLICY.replace("except: [10.1.0.0/16]}]", "except: [10.1.0.0/16]}, {cidr: 9.0.0.0/8}]")
    policies = [StoredPolicy(p, 2 if p.id.name == "client" else 1)
                for p in parse_policies(more, "t.yaml")]
    second = compile_policies(policies, [NGINX, CLIENT], CompilerConfig(), first)
    assert second.ipcache == {ipaddress.ip_network("10.0.0.0/8"): LOCAL | 1,
                              ipaddress.ip_network("10.1.0.0/16"): LOCAL | 2,
                              ipaddress.ip_network("9.0.0.0/8"): LOCAL | 3}
    # nginx's policy kept its revision and index; client's was re-applied: a new index.
    assert {i: refs[0].revision for i, refs in second.refs.items()} == {1: 1, 3: 2}


def test_identities_freed_by_a_change_are_not_reused_in_it() -> None:
    first = compile_text(POLICY)
    swapped = POLICY.replace("{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}", "{cidr: 9.0.0.0/8}")
    stored = [StoredPolicy(p, 2) for p in parse_policies(swapped, "t.yaml")]
    second = compile_policies(stored, [NGINX, CLIENT], CompilerConfig(), first)
    assert second.ipcache == {ipaddress.ip_network("9.0.0.0/8"): LOCAL | 3}
    third = compile_policies(stored, [NGINX, CLIENT], CompilerConfig(), second)
    assert third.ipcache == second.ipcache


def test_header_constants_match_the_python_mirror() -> None:
    define = re.compile(r"^#define (FS_\w+)\s+([^/\n]+?)\s*(?:/\*.*)?$", re.MULTILINE)
    defines = dict(define.findall(HEADER.read_text()))
    assert defines.pop("FS_IDENTITY_LOCAL_FLAG") == "(1u << 24)"
    assert bpfmaps.FS_IDENTITY_LOCAL_FLAG == 1 << 24
    assert {name: int(value, 0) for name, value in defines.items()} == {
        name: getattr(bpfmaps, name) for name in defines}
    assert (Direction.INGRESS, Direction.EGRESS) == (bpfmaps.FS_POLICY_INGRESS,
                                                     bpfmaps.FS_POLICY_EGRESS)
    assert (Action.ALLOW, Action.DENY) == (bpfmaps.FS_POLICY_ALLOW, bpfmaps.FS_POLICY_DENY)


def test_header_layout_matches_the_python_mirror(tmp_path: Path) -> None:
    compiler = shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler to check bpf/policy.h's layout")
    fields = {"fs_policy_key": bpfmaps.FsPolicyKey, "fs_policy_value": bpfmaps.FsPolicyValue,
              "fs_enforcement_value": bpfmaps.FsEnforcementValue}
    lines = [f'printf("{struct} {name} %zu\\n", offsetof(struct {struct}, {name}));'
             for struct, mirror in fields.items() for name, *_ in mirror._fields_]
    lines += [f'printf("{struct} size %zu\\n", sizeof(struct {struct}));' for struct in fields]
    source = tmp_path / "layout.c"
    source.write_text(f'#include <stddef.h>\n#include <stdio.h>\n#include "{HEADER}"\n'
                      f"int main(void) {{ {' '.join(lines)} return 0; }}\n")
    subprocess.run([compiler, "-o", str(tmp_path / "layout"), str(source)], check=True)
    output = subprocess.run([str(tmp_path / "layout")], check=True, capture_output=True,
                            text=True).stdout.split("\n")
    expected = [f"{struct} {name} {getattr(mirror, name).offset}"
                for struct, mirror in fields.items() for name, *_ in mirror._fields_]
    expected += [f"{struct} size {ctypes.sizeof(mirror)}" for struct, mirror in fields.items()]
    assert output[:-1] == expected


def test_encoded_key_and_value_bytes() -> None:
    key = bpfmaps.encode_key(PolicyKey(0x1000001, 301, INGRESS, TCP, 8080, 13))
    assert bytes(key).hex() == "5d000000" "01000001" "0000012d" "01" "06" "1f90"
    assert PolicyKey(300, 0, EGRESS, 0, 0, 0).prefixlen == 72
    value = bpfmaps.encode_value(PolicyValue(DENY, 0, 7, True))
    assert bytes(value).hex() == "07000000" "02" "00" "01" "00"
