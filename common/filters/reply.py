"""reply: flows whose is_reply is one of the given values; unknown never matches."""

from __future__ import annotations

from flowscope.common.filters.base import Clause, Dimension, SqlParams, column
from flowscope.proto.flow import flow_pb2

_IS_REPLY = column("is_reply")


def _build(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    if not ff.reply:
        return []
    wanted = frozenset(ff.reply)

    def match(flow: flow_pb2.Flow) -> bool:
        return flow.HasField("is_reply") and flow.is_reply.value in wanted

    # has() is false for NULL, where IN would give NULL.
    return [Clause(match, f"has({sql.bind(sorted(wanted), 'Array(Bool)')}, {_IS_REPLY})")]


REPLY = Dimension("reply", ("reply",), _build)
