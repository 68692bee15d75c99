"""The web UI's access control: a bearer token (or HTTP basic auth with the token as
the password, which browsers prompt for) on every request, checked against the
token file as the relay checks it.

`TokenAuthMiddleware` answers 401 to a request without a valid token and runs the
others as the token's principal (common.auth.acting_as), so the relay client can
narrow every query to the token's namespaces (relay_client.py). Only the API's
schema is open: it holds no flows, and readiness checks read it.
"""

from __future__ import annotations

from typing import Final

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from flowscope.common.auth import AuthError, TokenVerifier, acting_as, token_from_metadata

OPEN_PATHS: Final = frozenset({"/openapi.json"})
# Basic makes a browser ask for a user name and password; the token is the password.
CHALLENGE: Final = 'Basic realm="flowscope", charset="UTF-8"'


class TokenAuthMiddleware:
    """Refuses HTTP requests without a valid token (401); runs the rest as its principal."""

    def __init__(self, app: ASGIApp, verifier: TokenVerifier) -> None:
        self._app = app
        self._verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self._app(scope, receive, send)
            return
        headers = [
            (key.decode("latin-1"), value.decode("latin-1")) for key, value in scope["headers"]
        ]
        try:
            principal = self._verifier.verify(token_from_metadata(headers))
        except AuthError as err:
            refusal = JSONResponse(
                {"error": str(err)}, status_code=401, headers={"WWW-Authenticate": CHALLENGE}
            )
            await refusal(scope, receive, send)
            return
        with acting_as(principal):
            await self._app(scope, receive, send)
