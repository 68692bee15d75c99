"""flowscope.aggregate.Aggregates over the store's aggregate queries.

The web UI's service map and policy view, and `flowscope top`, ask the relay for
counts rather than streaming raw flows: service-map edges, top talkers and flows
by verdict and policy over a time range with FlowFilters. The store picks the
smallest table that answers (relay/store/query.py); this module only translates
requests and answers, narrows each request's whitelist to the caller's
namespaces (scope_whitelist: a scoped token sees only its namespaces' flows), and
maps bad requests to INVALID_ARGUMENT, requests outside the token's scope to
PERMISSION_DENIED and store failures to UNAVAILABLE. The relay's server adds it
beside observer.Observer:

    add_aggregates_service(server, store.queries)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NoReturn, Protocol

import grpc

from flowscope.common.auth import ScopeError, current_principal, scope_whitelist
from flowscope.common.errors import FilterError, InputError, StorageError
from flowscope.proto.aggregate import aggregate_pb2, aggregate_pb2_grpc
from flowscope.proto.flow import flow_pb2
from flowscope.relay.store.query import Aggregate, Edge, Talker, VerdictCount

Filters = Sequence[flow_pb2.FlowFilter]

GROUPINGS: Final = {
    aggregate_pb2.WORKLOAD: "workload",
    aggregate_pb2.POD: "pod",
    aggregate_pb2.NAMESPACE: "namespace",
}
DEFAULT_TALKERS: Final = 10
MAX_TALKERS: Final = 1000


class AggregateQueries(Protocol):
    """The store's aggregate queries (relay/store Queries)."""

    def edges(
        self, since: int, until: int, whitelist: Filters, blacklist: Filters, grouping: str
    ) -> Aggregate[Edge]: ...

    def top_talkers(
        self,
        since: int,
        until: int,
        whitelist: Filters,
        blacklist: Filters,
        grouping: str,
        by: str,
        limit: int,
    ) -> Aggregate[Talker]: ...

    def verdicts_by_policy(
        self, since: int, until: int, whitelist: Filters, blacklist: Filters
    ) -> Aggregate[VerdictCount]: ...


def _abort(context: grpc.ServicerContext, error: Exception) -> NoReturn:
    if isinstance(error, StorageError):
        code = grpc.StatusCode.UNAVAILABLE
    elif isinstance(error, ScopeError):
        code = grpc.StatusCode.PERMISSION_DENIED
    else:
        code = grpc.StatusCode.INVALID_ARGUMENT
    context.abort(code, str(error))
    raise AssertionError("context.abort returns only by raising")


def _check_range(request: aggregate_pb2.AggregateRequest) -> None:
    if request.until_ns <= request.since_ns:
        raise InputError(
            f"time range since_ns={request.since_ns} until_ns={request.until_ns}:"
            " until must be after since"
        )
    if request.grouping not in GROUPINGS:
        raise InputError(f"grouping {request.grouping}: expected one of {sorted(GROUPINGS)}")


class AggregatesServicer(aggregate_pb2_grpc.AggregatesServicer):
    """Answers the Aggregates RPCs from `queries`."""

    def __init__(self, queries: AggregateQueries) -> None:
        self._queries = queries

    def ServiceMap(
        self, request: aggregate_pb2.AggregateRequest, context: grpc.ServicerContext
    ) -> aggregate_pb2.ServiceMapResponse:
        try:
            _check_range(request)
            answer = self._queries.edges(
                request.since_ns,
                request.until_ns,
                scope_whitelist(request.whitelist, current_principal()),
                request.blacklist,
                GROUPINGS[request.grouping],
            )
        except (FilterError, InputError, ScopeError, StorageError) as error:
            _abort(context, error)
        response = aggregate_pb2.ServiceMapResponse(table=answer.table)
        add = response.edges.add  # in place: about 3 times faster than building a list
        for edge in answer.rows:
            added = add(
                source=edge.source,
                destination=edge.destination,
                destination_port=edge.destination_port,
                protocol=edge.protocol,
                flows=edge.flows,
                bytes=edge.bytes,
            )
            added.verdicts.update(edge.verdicts)
        return response

    def TopTalkers(
        self, request: aggregate_pb2.TopTalkersRequest, context: grpc.ServicerContext
    ) -> aggregate_pb2.TopTalkersResponse:
        limit = request.limit or DEFAULT_TALKERS
        try:
            _check_range(request.range)
            if limit > MAX_TALKERS:
                raise InputError(f"limit {limit}: expected at most {MAX_TALKERS}")
            answer = self._queries.top_talkers(
                request.range.since_ns,
                request.range.until_ns,
                scope_whitelist(request.range.whitelist, current_principal()),
                request.range.blacklist,
                GROUPINGS[request.range.grouping],
                request.by or "flows",
                limit,
            )
        except (FilterError, InputError, ScopeError, StorageError) as error:
            _abort(context, error)
        return aggregate_pb2.TopTalkersResponse(
            talkers=[
                aggregate_pb2.Talker(name=talker.name, flows=talker.flows, bytes=talker.bytes)
                for talker in answer.rows
            ],
            table=answer.table,
        )

    def VerdictSummary(
        self, request: aggregate_pb2.AggregateRequest, context: grpc.ServicerContext
    ) -> aggregate_pb2.VerdictSummaryResponse:
        try:
            _check_range(request)
            answer = self._queries.verdicts_by_policy(
                request.since_ns,
                request.until_ns,
                scope_whitelist(request.whitelist, current_principal()),
                request.blacklist,
            )
        except (FilterError, InputError, ScopeError, StorageError) as error:
            _abort(context, error)
        return aggregate_pb2.VerdictSummaryResponse(
            counts=[
                aggregate_pb2.VerdictCount(verdict=row.verdict, policy=row.policy, flows=row.flows)
                for row in answer.rows
            ],
            table=answer.table,
        )


def add_aggregates_service(server: grpc.Server, queries: AggregateQueries) -> None:
    """Serves flowscope.aggregate.Aggregates on `server` from `queries`."""
    aggregate_pb2_grpc.add_AggregatesServicer_to_server(AggregatesServicer(queries), server)
