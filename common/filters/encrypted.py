"""encrypted: flows whose IP.encrypted is one of the given values."""

from __future__ import annotations

from operator import attrgetter

from flowscope.common.filters.base import Clause, Dimension, SqlParams, column, member_of
from flowscope.proto.flow import flow_pb2

_ENCRYPTED = column("encrypted")


def _build(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    if not ff.encrypted:
        return []
    wanted = frozenset(ff.encrypted)
    return [
        Clause(
            member_of(attrgetter("IP.encrypted"), wanted),
            sql.one_of(_ENCRYPTED, sorted(wanted), "Bool"),
        )
    ]


ENCRYPTED = Dimension("encrypted", ("encrypted",), _build)
