"""Starting a flowscope gRPC server: what the node server and the relay share.

Both listen with or without TLS, start, and only then report SERVING through the
standard health service, under the service name Hubble's clients check.
"""

from __future__ import annotations

from typing import Final

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
