"""Network policy in user space: parse and validate policies, compile them with the node's
endpoints into the datapath's policy maps (bpf/policy.h), and keep them in a store with
revisions, agent events and map diffs.

    parse.py      policy files -> model.Policy (NetworkPolicy, CiliumNetworkPolicy, ...)
    compiler.py   policies + endpoints -> CompiledPolicy (map entries, ipcache CIDRs, refs)
    evaluate.py   the datapath's decision over a CompiledPolicy, in Python
    store.py      PolicyStore: apply, delete, list, get; revisions, events, map steps
    bpfmaps.py    the C structs of bpf/policy.h, mirrored once
"""

from __future__ import annotations

from flowscope.collector.policy.compiler import CompiledPolicy, CompilerConfig, compile_policies
from flowscope.collector.policy.evaluate import Decision, PathDecision, decide, evaluate
from flowscope.collector.policy.model import Policy, PolicyName, PolicyRef, StoredPolicy
from flowscope.collector.policy.parse import load_policies, parse_policies
from flowscope.collector.policy.store import Change, MapStep, PolicyDiff, PolicyStore
from flowscope.collector.policy.yamlnodes import PolicyError

__all__ = [
    "Change",
    "CompiledPolicy",
    "CompilerConfig",
    "Decision",
    "MapStep",
    "PathDecision",
    "Policy",
    "PolicyDiff",
    "PolicyError",
    "PolicyName",
    "PolicyRef",
    "PolicyStore",
    "StoredPolicy",
    "compile_policies",
    "decide",
    "evaluate",
    "load_policies",
    "parse_policies",
]
