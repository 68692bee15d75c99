"""tcp_flags: the flow's TCP flags include every flag of at least one entry.

An entry without any flag set is refused: it would say nothing.
"""

from __future__ import annotations

from flowscope.common import accessors
from flowscope.common.errors import FilterError
from flowscope.common.filters.base import Clause, Dimension, SqlParams, column, sql_any
from flowscope.proto.flow import flow_pb2

_TCP_FLAGS = column("tcp_flags")


def _build(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    if not ff.tcp_flags:
        return []
    masks = []
    for entry in ff.tcp_flags:
        mask = accessors.tcp_flag_mask(entry)
        if not mask:
            raise FilterError("tcp_flags", "", "an entry must set at least one flag")
        masks.append(mask)
    wanted = tuple(sorted(set(masks)))

    def match(flow: flow_pb2.Flow) -> bool:
        l4 = flow.l4
        if not l4.HasField("TCP"):
            return False
        flags = accessors.tcp_flag_mask(l4.TCP.flags)
        return any(flags & mask == mask for mask in wanted)

    parts = []
    for mask in wanted:
        bound = sql.bind(mask, "UInt16")
        parts.append(f"bitAnd({_TCP_FLAGS}, {bound}) = {bound}")
    return [Clause(match, sql_any(parts))]


TCP_FLAGS = Dimension("tcp_flags", ("tcp_flags",), _build)
