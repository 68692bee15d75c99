"""Starting a flowscope gRPC server: what the node server and the relay share.

Both listen with or without TLS, start, and only then report SERVING through the
standard health service, under the service name Hubble's clients check; both send their
version header (Hubble's `hubble-server-version` or `hubble-relay-version`) on every call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

import grpc
from grpc_health.v1 import health, health_pb2

from flowscope.common.errors import FlowscopeError

# The service Hubble's CLI asks the health service about (`hubble status`).
OBSERVER_HEALTH_SERVICE: Final = "hubble.server.Observer"


def start_serving(
    server: grpc.Server,
    address: str,
    credentials: grpc.ServerCredentials | None,
    health_servicer: health.HealthServicer,
) -> int:
    """Listen on `address` (TLS with credentials), start, report SERVING; the bound port."""
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError as err:
        raise FlowscopeError(f"cannot listen on {address}: {err}") from None
    server.start()
    for service in (OBSERVER_HEALTH_SERVICE, ""):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    return port


class VersionHeader(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Sends `name: version` as initial metadata first on every unary and streaming call.

    Placed last among a server's interceptors, calls refused by the ones before it do not
    get it."""

    def __init__(self, name: str, version: str) -> None:
        self._header = ((name, version),)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],  # type: ignore[type-arg]
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:  # type: ignore[type-arg]
        handler = continuation(details)
        if handler is None:
            return None
        header = self._header
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            def call(request: Any, context: grpc.ServicerContext) -> Any:
                context.send_initial_metadata(header)
                return unary(request, context)

            return grpc.unary_unary_rpc_method_handler(
                call, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream is not None:
            stream = handler.unary_stream

            def streamed(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                context.send_initial_metadata(header)
                yield from stream(request, context)

            return grpc.unary_stream_rpc_method_handler(
                streamed, handler.request_deserializer, handler.response_serializer
            )
        return handler
