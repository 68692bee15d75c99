"""The UI's only way to the data: gRPC to the relay (observer.Observer and
flowscope.aggregate.Aggregates), asynchronous so one process serves many pages.

Failed calls become RelayError with the HTTP status the API answers with:
400 for a request the relay refuses as invalid, 503 when it is unreachable or
its store is down, 502 otherwise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import grpc
import grpc.aio

from flowscope.common.errors import FlowscopeError
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

    def __init__(self, address: str) -> None:
        self.address = address
        self._channel = grpc.aio.insecure_channel(address)
        self._observer = observer_pb2_grpc.ObserverStub(self._channel)
        self._aggregates = aggregate_pb2_grpc.AggregatesStub(self._channel)

    async def close(self) -> None:
        await self._channel.close(grace=None)

    async def status(self) -> RelayStatus:
        call = self._observer.ServerStatus(observer_pb2.ServerStatusRequest(), timeout=CALL_TIMEOUT)
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
                observer_pb2.GetNodesRequest(), timeout=CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as error:
            raise RelayError("GetNodes", error) from None

    async def namespaces(self) -> observer_pb2.GetNamespacesResponse:
        try:
            return await self._observer.GetNamespaces(
                observer_pb2.GetNamespacesRequest(), timeout=CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as error:
            raise RelayError("GetNamespaces", error) from None

    async def service_map(
        self, request: aggregate_pb2.AggregateRequest
    ) -> aggregate_pb2.ServiceMapResponse:
        try:
            return await self._aggregates.ServiceMap(request, timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as error:
            raise RelayError("ServiceMap", error) from None

    async def verdict_summary(
        self, request: aggregate_pb2.AggregateRequest
    ) -> aggregate_pb2.VerdictSummaryResponse:
        try:
            return await self._aggregates.VerdictSummary(request, timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as error:
            raise RelayError("VerdictSummary", error) from None

    async def flows(
        self, request: observer_pb2.GetFlowsRequest
    ) -> AsyncIterator[observer_pb2.GetFlowsResponse]:
        """GetFlows' responses; the call is cancelled when the iteration stops early."""
        call = self._observer.GetFlows(request, timeout=None if request.follow else CALL_TIMEOUT)
        try:
            async for response in call:
                yield response
        except grpc.aio.AioRpcError as error:
            raise RelayError("GetFlows", error) from None
        finally:
            call.cancel()
