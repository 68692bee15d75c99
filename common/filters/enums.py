"""Fields that equal one of a proto enum's values: verdict, drop_reason_desc,
traffic_direction and ip_version. Values outside the enum are refused."""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter

from google.protobuf.descriptor import EnumDescriptor

from flowscope.common.errors import FilterError
from flowscope.common.filters.base import Clause, Dimension, SqlParams, column, member_of
from flowscope.proto.flow import flow_pb2


def _enum_dimension(
    field: str, enum: EnumDescriptor, column_name: str, value: Callable[[flow_pb2.Flow], int]
) -> Dimension:
    known = frozenset(member.number for member in enum.values)
    sql_name = column(column_name)

    def build(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
        values = getattr(ff, field)
        if not values:
            return []
        for number in values:
            if number not in known:
                raise FilterError(field, number, f"not a {enum.name} value")
        wanted = frozenset(values)
        return [Clause(member_of(value, wanted), sql.one_of(sql_name, sorted(wanted), "Int16"))]

    return Dimension(field, (field,), build)


VERDICT = _enum_dimension("verdict", flow_pb2.Verdict.DESCRIPTOR, "verdict", attrgetter("verdict"))
DROP_REASON_DESC = _enum_dimension(
    "drop_reason_desc",
    flow_pb2.DropReason.DESCRIPTOR,
    "drop_reason_desc",
    attrgetter("drop_reason_desc"),
)
TRAFFIC_DIRECTION = _enum_dimension(
    "traffic_direction",
    flow_pb2.TrafficDirection.DESCRIPTOR,
    "traffic_direction",
    attrgetter("traffic_direction"),
)
IP_VERSION = _enum_dimension(
    "ip_version", flow_pb2.IPVersion.DESCRIPTOR, "ip_version", attrgetter("IP.ipVersion")
)
