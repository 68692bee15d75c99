"""trace_id (the W3C trace id of trace_context.parent) and ip_trace_id (the IP
option trace id, where 0 means none and is refused)."""

from __future__ import annotations

from operator import attrgetter

from flowscope.common.errors import FilterError
from flowscope.common.filters.base import Clause, Dimension, SqlParams, column, member_of
from flowscope.proto.flow import flow_pb2

_TRACE_ID = column("trace_id")
_IP_TRACE_ID = column("ip_trace_id")


def _build_trace_id(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    if not ff.trace_id:
        return []
    wanted = frozenset(ff.trace_id)
    return [
        Clause(
            member_of(attrgetter("trace_context.parent.trace_id"), wanted),
            sql.one_of(_TRACE_ID, sorted(wanted), "String"),
        )
    ]


def _build_ip_trace_id(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    if not ff.ip_trace_id:
        return []
    if 0 in ff.ip_trace_id:
        raise FilterError("ip_trace_id", 0, "0 means no trace id; give a trace id")
    wanted = frozenset(ff.ip_trace_id)
    return [
        Clause(
            member_of(attrgetter("ip_trace_id.trace_id"), wanted),
            sql.one_of(_IP_TRACE_ID, sorted(wanted), "UInt64"),
        )
    ]


TRACE_ID = Dimension("trace_id", ("trace_id",), _build_trace_id)
IP_TRACE_ID = Dimension("ip_trace_id", ("ip_trace_id",), _build_ip_trace_id)
