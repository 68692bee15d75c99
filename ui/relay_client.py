"""The UI's only way to the data: gRPC to the relay (observer.Observer and
flowscope.aggregate.Aggregates), asynchronous so one process serves many pages.

Every query is narrowed to the namespaces of the caller's token (the principal the
UI's auth middleware acts as; ui/auth.py): GetFlows and the aggregates through
scope_whitelist, GetNamespaces by leaving the others out. With TLS settings the
channel is TLS; with credentials, every call carries the UI's own token.

Failed calls become RelayError with the HTTP status the API answers with:
400 for a request the relay refuses as invalid, 503 when it is unreachable or
its store is down, 502 otherwise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final, TypeVar

import grpc
import grpc.aio

from flowscope.common.auth import ClientAuth, current_principal, scope_whitelist
from flowscope.common.errors import FlowscopeError
from flowscope.common.tls import ClientTLS, split_server_address
from flowscope.proto.aggregate import aggregate_pb2, aggregate_pb2_grpc
from flowscope.proto.observer import observer_pb2, observer_pb2_grpc

STORE_OLDEST_KEY: Final = "flowscope-store-oldest-ns"
STORE_NEWEST_KEY: Final = "flowscope-store-newest-ns"
CALL_TIMEOUT: Final = 30.0
_HTTP_STATUS: Final = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


class RelayError(FlowscopeError):
    """A relay call that failed; http_status is what the API answers."""

    def __init__(self, call: str, error: grpc.aio.AioRpcError) -> None:
        self.http_status = _HTTP_STATUS.get(error.code(), 502)
        code = error.code().name if error.code() is not None else "UNKNOWN"
        super().__init__(f"relay {call}: {code}: {error.details()}")


@dataclass(frozen=True, slots=True)
class RelayStatus:
    """ServerStatus and the time range the relay's store covers (None: empty store)."""

    status: observer_pb2.ServerStatusResponse
    store_oldest_ns: int | None
    store_newest_ns: int | None


class RelayClient:
    """Calls to one relay address; open until close()."""

    def __init__(
        self, address: str, tls: ClientTLS | None = None, auth: ClientAuth | None = None
    ) -> None:
        self.address = address
        target, _ = split_server_address(address)
        if tls is None:
            self._channel = grpc.aio.insecure_channel(target)
        else:
            self._channel = grpc.aio.secure_channel(
                target, tls.credentials(), options=tls.channel_options()
            )
        self._metadata = () if auth is None else (("authorization", auth.header),)
        self._observer = observer_pb2_grpc.ObserverStub(self._channel)
        self._aggregates = aggregate_pb2_grpc.AggregatesStub(self._channel)

    async def close(self) -> None:
        await self._channel.close(grace=None)

    async def status(self) -> RelayStatus:
        call = self._observer.ServerStatus(
            observer_pb2.ServerStatusRequest(), timeout=CALL_TIMEOUT, metadata=self._metadata
        )
        try:
            status = await call
            trailer = dict((await call.trailing_metadata()) or ())
        except grpc.aio.AioRpcError as error:
            raise RelayError("ServerStatus", error) from None
        oldest, newest = trailer.get(STORE_OLDEST_KEY), trailer.get(STORE_NEWEST_KEY)
        return RelayStatus(
            status,
            int(oldest) if isinstance(oldest, str) else None,
            int(newest) if isinstance(newest, str) else None,
        )

    async def nodes(self) -> observer_pb2.GetNodesResponse:
        try:
            return await self._observer.GetNodes(
                observer_pb2.GetNodesRequest(), timeout=CALL_TIMEOUT, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as error:
            raise RelayError("GetNodes", error) from None

    async def namespaces(self) -> observer_pb2.GetNamespacesResponse:
        principal = current_principal()
        try:
            answer: observer_pb2.GetNamespacesResponse = await self._observer.GetNamespaces(
                observer_pb2.GetNamespacesRequest(), timeout=CALL_TIMEOUT, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as error:
            raise RelayError("GetNamespaces", error) from None
        if principal is None:
            return answer
        return observer_pb2.GetNamespacesResponse(
            namespaces=[ns for ns in answer.namespaces if principal.sees_namespace(ns.namespace)]
        )

    async def service_map(
        self, request: aggregate_pb2.AggregateRequest
    ) -> aggregate_pb2.ServiceMapResponse:
        request = _scoped(request)
        try:
            return await self._aggregates.ServiceMap(
                request, timeout=CALL_TIMEOUT, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as error:
            raise RelayError("ServiceMap", error) from None

    async def verdict_summary(
        self, request: aggregate_pb2.AggregateRequest
    ) -> aggregate_pb2.VerdictSummaryResponse:
        request = _scoped(request)
        try:
            return await self._aggregates.VerdictSummary(
                request, timeout=CALL_TIMEOUT, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as error:
            raise RelayError("VerdictSummary", error) from None

    async def flows(
        self, request: observer_pb2.GetFlowsRequest
    ) -> AsyncIterator[observer_pb2.GetFlowsResponse]:
        """GetFlows' responses; the call is cancelled when the iteration stops early."""
        request = _scoped(request)
        call = self._observer.GetFlows(
            request,
            timeout=None if request.follow else CALL_TIMEOUT,
            metadata=self._metadata,
        )
        try:
            async for response in call:
                yield response
        except grpc.aio.AioRpcError as error:
            raise RelayError("GetFlows", error) from None
        finally:
            call.cancel()


Scoped = TypeVar("Scoped", observer_pb2.GetFlowsRequest, aggregate_pb2.AggregateRequest)


def _scoped(request: Scoped) -> Scoped:
    """The request with its whitelist narrowed to the caller's namespaces; ScopeError
    when its filters select none of them."""
    principal = current_principal()
    if principal is None or principal.namespaces is None:
        return request
    scoped = type(request)()
    scoped.CopyFrom(request)
    del scoped.whitelist[:]
    scoped.whitelist.extend(scope_whitelist(request.whitelist, principal))
    return scoped
