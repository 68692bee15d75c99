"""The web UI's FastAPI application: the JSON API (its OpenAPI schema at
/openapi.json, documentation at /docs) and the page that uses it.

    app = create_app("localhost:4245")     # the relay's gRPC address
    uvicorn.run(app, host="127.0.0.1", port=12000)

The app talks to the relay over gRPC only (with TLS settings and its own
credentials when given). With a TokenVerifier every request needs a token
(ui/auth.py), 401 without one, and sees only its namespaces' flows: 403 for a
query that selects none of them. Errors reach the page as JSON
{"error": message} with 400 for a bad request (for a filter-box term also
"term" and "offset", where it starts), and the relay's failures as 502 to 504.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import flowscope
from flowscope.common.auth import ClientAuth, ScopeError, TokenVerifier
from flowscope.common.errors import FilterError, FlowscopeError
from flowscope.common.tls import ClientTLS
from flowscope.ui.auth import TokenAuthMiddleware
from flowscope.ui.filterbox import FilterBoxError
from flowscope.ui.lost import LostEventWatcher
from flowscope.ui.relay_client import RelayClient, RelayError
from flowscope.ui.routers import cluster, flows, page, servicemap


def _error_body(error: FlowscopeError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": str(error)}
    if isinstance(error, FilterError):
        body |= {"field": error.field, "value": str(error.value), "problem": error.problem}
    if isinstance(error, FilterBoxError):
        body |= {"term": error.term, "offset": error.offset}
    return body


async def _flowscope_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, FlowscopeError)
    if isinstance(error, RelayError):
        status = error.http_status
    else:
        status = 403 if isinstance(error, ScopeError) else 400
    return JSONResponse(_error_body(error), status_code=status)


def create_app(
    relay_address: str,
    *,
    verifier: TokenVerifier | None = None,
    relay_tls: ClientTLS | None = None,
    relay_auth: ClientAuth | None = None,
) -> FastAPI:
    """The UI for the relay at relay_address, checking tokens with `verifier` (None:
    open to all); FlowscopeError when the page's libraries are not installed."""
    page.check_libraries()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = RelayClient(relay_address, relay_tls, relay_auth)
        watcher = LostEventWatcher(client)
        app.state.relay = client
        app.state.lost_watcher = watcher
        watcher.start()
        try:
            yield
        finally:
            await watcher.stop()
            await client.close()

    app = FastAPI(
        title="flowscope UI",
        version=flowscope.__version__,
        description="Service map, flows and policy verdicts from a flowscope relay.",
        lifespan=lifespan,
    )
    app.add_exception_handler(FlowscopeError, _flowscope_error)
    for module in (servicemap, flows, cluster, page):
        app.include_router(module.router)
    if verifier is not None:
        app.add_middleware(TokenAuthMiddleware, verifier=verifier)
    return app
