"""experimental.cel_expression: refused, flowscope does not evaluate CEL."""

from __future__ import annotations

from flowscope.common.errors import FilterError
from flowscope.common.filters.base import Clause, Dimension, SqlParams
from flowscope.proto.flow import flow_pb2


def _build(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    expressions = ff.experimental.cel_expression
    if expressions:
        raise FilterError(
            "experimental.cel_expression", expressions[0], "CEL expressions are not supported"
        )
    return []


CEL_EXPRESSION = Dimension("cel_expression", ("experimental",), _build)
