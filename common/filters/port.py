"""source_port, destination_port: decimal ports 0-65535 of TCP, UDP and SCTP flows."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from flowscope.common import accessors
from flowscope.common.errors import FilterError
from flowscope.common.filters.base import Clause, Dimension, SqlParams, column, set_fields
from flowscope.proto.flow import flow_pb2

_L4_PROTOCOL = column("l4_protocol")
# field -> (column, index in accessors.ports())
_FIELDS: Final = {
    "source_port": (column("source_port"), 0),
    "destination_port": (column("destination_port"), 1),
}
# The Layer4 cases that carry ports: those whose message has a source_port.
_WITH_PORTS: Final = tuple(
    case.name
    for case in flow_pb2.Layer4.DESCRIPTOR.oneofs_by_name["protocol"].fields
    if case.message_type is not None and "source_port" in case.message_type.fields_by_name
)
_DECIMAL: Final = re.compile(r"[0-9]{1,5}")
_MAX_PORT: Final = 65535


def _parse(field: str, text: str) -> int:
    if not _DECIMAL.fullmatch(text) or int(text) > _MAX_PORT:
        raise FilterError(field, text, f"not a port; expected a decimal number 0-{_MAX_PORT}")
    return int(text)


def _clause(field: str, values: Sequence[str], sql: SqlParams) -> Clause:
    sql_name, index = _FIELDS[field]
    wanted = frozenset(_parse(field, text) for text in values)
    with_ports = frozenset(_WITH_PORTS)

    # Port 0 is a real port of TCP, UDP and SCTP, and the stand-in of all others.
    def match(flow: flow_pb2.Flow) -> bool:
        return accessors.ports(flow)[index] in wanted and (
            accessors.l4_protocol(flow) in with_ports
        )

    ports = sql.one_of(sql_name, sorted(wanted), "UInt32")
    protocols = sql.one_of(_L4_PROTOCOL, _WITH_PORTS, "String")
    return Clause(match, f"{ports} AND {protocols}")


def _build(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    return [_clause(field, values, sql) for field, values in set_fields(ff, _FIELDS)]


PORT = Dimension("port", tuple(_FIELDS), _build)
