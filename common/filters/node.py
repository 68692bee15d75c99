"""node_name: globs against the flow's "cluster/node" name.

A pattern is "[cluster/]node": each part is a DNS-name glob (fqdn.py) and an
empty or missing part matches any name, so "k8s*" matches nodes of every
cluster, "prod/" every node of cluster prod. A flow's bare node name belongs
to the default cluster ("node1" is "default/node1").
"""

from __future__ import annotations

from typing import Final

from flowscope.common import accessors
from flowscope.common.errors import FilterError
from flowscope.common.filters import regex
from flowscope.common.filters.base import Clause, Dimension, SqlParams, column
from flowscope.common.filters.fqdn import name_pattern
from flowscope.proto.flow import flow_pb2

_NODE_NAME = column("node_name")
# Any DNS name: one or more dot-separated labels.
_ANY_NAME: Final = r"[-0-9_a-z]+(?:\.[-0-9_a-z]+)*"
_DEFAULT_CLUSTER, _ = accessors.node_cluster_and_name("")


def _pattern(text: str) -> str:
    if not text:
        raise FilterError("node_name", text, "empty pattern")
    cluster, _, node = text.rpartition("/")
    if "/" in cluster:
        raise FilterError("node_name", text, "more than one '/'; expected [cluster/]node")
    return "/".join(
        name_pattern("node_name", text, part) if part else _ANY_NAME for part in (cluster, node)
    )


def _build(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    if not ff.node_name:
        return []
    pattern = regex.whole("|".join(_pattern(text) for text in ff.node_name))
    test = pattern.test

    def match(flow: flow_pb2.Flow) -> bool:
        name = flow.node_name
        if not name:
            return False
        return bool(test("/".join(accessors.node_cluster_and_name(name))))

    slash = sql.bind("/", "String")
    default = sql.bind(f"{_DEFAULT_CLUSTER}/", "String")
    qualified = (
        f"if(position({_NODE_NAME}, {slash}) > 0, {_NODE_NAME}, concat({default}, {_NODE_NAME}))"
    )
    matches = f"match({qualified}, {sql.bind(pattern.re2, 'String')})"
    return [Clause(match, f"notEmpty({_NODE_NAME}) AND {matches}")]


NODE_NAME = Dimension("node_name", ("node_name",), _build)
