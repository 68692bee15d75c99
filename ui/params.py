"""The query parameters every view shares, and the FlowFilters and time range they
compile to, once per request (bad values are a 400 naming the parameter).

    q       the filter box's text (ui/filterbox.py)
    ns      namespaces, comma-separated ("" for all)
    range   5m, 1h, 1d or custom; custom takes since and until
    group   workload, pod or namespace: how the map names endpoints
    node    a map node: flows from or to it
    edge    a map edge, "source>destination:port/protocol": its flows
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Query

from flowscope.common.errors import InputError
from flowscope.proto.aggregate import aggregate_pb2
from flowscope.proto.flow import flow_pb2
from flowscope.ui import filterbox, scope

REPLIES: Final = flow_pb2.FlowFilter(reply=[True])
_EDGE: Final = re.compile(r"(?P<source>[^>]+)>(?P<destination>.+):(?P<port>\d+)/(?P<protocol>\w*)")


@dataclass(frozen=True, slots=True)
class View:
    """One view's selection: FlowFilters (box, namespaces, node or edge joined) and time."""

    whitelist: list[flow_pb2.FlowFilter]
    blacklist: list[flow_pb2.FlowFilter]
    time: scope.TimeRange
    level: str

    def aggregate(
        self, whitelist: list[flow_pb2.FlowFilter] | None = None
    ) -> aggregate_pb2.AggregateRequest:
        """The aggregate request over this view, on whole minutes (the rollups' buckets).
        Replies are left out, as Hubble UI leaves them out: each would draw its
        connection backwards, to the client's ephemeral port."""
        minutes = self.time.to_minutes()
        return aggregate_pb2.AggregateRequest(
            since_ns=minutes.since_ns,
            until_ns=minutes.until_ns,
            whitelist=self.whitelist if whitelist is None else whitelist,
            blacklist=[*self.blacklist, REPLIES],
            grouping=scope.grouping(self.level),
        )


def _edge(text: str, level: str) -> list[flow_pb2.FlowFilter]:
    match = _EDGE.fullmatch(text)
    if match is None:
        raise InputError(f"edge {text!r}: expected source>destination:port/protocol")
    return scope.edge_filters(
        match["source"], match["destination"], int(match["port"]), match["protocol"], level
    )


def view(
    q: Annotated[str, Query(description="filter box text: [!][from:|to:]kind=value ...")] = "",
    ns: Annotated[str, Query(description="namespaces, comma-separated; empty for all")] = "",
    range: Annotated[str, Query(description="5m, 1h, 1d or custom")] = "1h",
    since: Annotated[str, Query(description="with range=custom: a time or a duration ago")] = "",
    until: Annotated[str, Query(description="with range=custom: a time; empty for now")] = "",
    group: Annotated[str, Query(description="workload, pod or namespace")] = "workload",
    node: Annotated[str, Query(description="a map node: its flows")] = "",
    edge: Annotated[str, Query(description="a map edge: its flows")] = "",
) -> View:
    """The View of a request's query parameters; FilterError or InputError when invalid."""
    box = filterbox.parse(q)
    scope.grouping(group)
    whitelist = scope.join(box.whitelist, scope.namespace_filters([n for n in ns.split(",") if n]))
    if node:
        whitelist = scope.join(whitelist, scope.node_filters(node, group))
    if edge:
        whitelist = scope.join(whitelist, _edge(edge, group))
    return View(whitelist, box.blacklist, scope.time_range(range, since, until), group)
