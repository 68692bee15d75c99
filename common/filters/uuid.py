"""uuid: flows whose UUID is one of the given ones."""

from __future__ import annotations

from operator import attrgetter

from flowscope.common.filters.base import Clause, Dimension, SqlParams, column, member_of
from flowscope.proto.flow import flow_pb2

_UUID = column("uuid")
_UUID_OF = attrgetter("uuid")


def _build(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    if not ff.uuid:
        return []
    wanted = frozenset(ff.uuid)
    return [Clause(member_of(_UUID_OF, wanted), sql.one_of(_UUID, sorted(wanted), "String"))]


UUID = Dimension("uuid", ("uuid",), _build)
