"""dns_query: a regular expression searched in the DNS record's query."""

from __future__ import annotations

from flowscope.common.filters import regex
from flowscope.common.filters.base import Clause, Dimension, SqlParams, column, sql_any
from flowscope.proto.flow import flow_pb2

_L7_PROTOCOL = column("l7_protocol")
_DNS_QUERY = column("dns_query")
_DNS = "dns"  # the Layer7 record case


def _build(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    if not ff.dns_query:
        return []
    patterns = [regex.search("dns_query", pattern) for pattern in ff.dns_query]
    tests = tuple(pattern.test for pattern in patterns)

    def match(flow: flow_pb2.Flow) -> bool:
        l7 = flow.l7
        if l7.WhichOneof("record") != _DNS:
            return False
        query = l7.dns.query
        return any(test(query) for test in tests)

    matches = sql_any(
        [f"match({_DNS_QUERY}, {sql.bind(pattern.re2, 'String')})" for pattern in patterns]
    )
    return [Clause(match, f"{_L7_PROTOCOL} = {sql.bind(_DNS, 'String')} AND ({matches})")]


DNS_QUERY = Dimension("dns_query", ("dns_query",), _build)
