"""protocol: the L4 protocol (tcp, udp, icmp = icmpv4 or icmpv6, sctp, vrrp, igmp)
or the L7 record (dns, http, kafka), case-insensitive."""

from __future__ import annotations

from typing import Final

from flowscope.common import accessors
from flowscope.common.errors import FilterError
from flowscope.common.filters.base import Clause, Dimension, SqlParams, column, sql_any
from flowscope.proto.flow import flow_pb2

_L4_PROTOCOL = column("l4_protocol")
_L7_PROTOCOL = column("l7_protocol")

# Filter name -> the Layer4 oneof cases it stands for.
_L4: Final[dict[str, tuple[str, ...]]] = {
    "icmp": ("ICMPv4", "ICMPv6"),
    **{
        case.name.lower(): (case.name,)
        for case in flow_pb2.Layer4.DESCRIPTOR.oneofs_by_name["protocol"].fields
    },
}
# Filter name -> the Layer7 record oneof case.
_L7: Final[frozenset[str]] = frozenset(
    case.name for case in flow_pb2.Layer7.DESCRIPTOR.oneofs_by_name["record"].fields
)


def _build(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    if not ff.protocol:
        return []
    l4: set[str] = set()
    l7: set[str] = set()
    for name in ff.protocol:
        lowered = name.lower()
        if lowered in _L4:
            l4.update(_L4[lowered])
        elif lowered in _L7:
            l7.add(lowered)
        else:
            known = ", ".join([*_L4, *sorted(_L7)])
            raise FilterError("protocol", name, f"unknown protocol; known: {known}")
    l4_cases = frozenset(l4)
    l7_cases = frozenset(l7)

    def match(flow: flow_pb2.Flow) -> bool:
        return accessors.l4_protocol(flow) in l4_cases or flow.l7.WhichOneof("record") in l7_cases

    parts = []
    if l4:
        parts.append(sql.one_of(_L4_PROTOCOL, sorted(l4), "String"))
    if l7:
        parts.append(sql.one_of(_L7_PROTOCOL, sorted(l7), "String"))
    return [Clause(match, sql_any(parts))]


PROTOCOL = Dimension("protocol", ("protocol",), _build)
