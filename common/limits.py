"""Bounds on what one server gives its clients: streams open at once, in total and per client.

A stream holds a server thread for as long as it runs, so the node server and the relay both
cap them; a stream over a cap is refused with RESOURCE_EXHAUSTED and a message the server
words (`describe`), and refusals can be counted (`on_refused`):

    limiter = StreamLimiter(total=64, per_client=16)
    with limiter.admitted(client_address(context.peer()), context, describe):
        yield from stream(request, context)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, Literal

import grpc

from flowscope.common.auth import parse_ttl
from flowscope.common.errors import InputError

NO_LIMIT: Final = "none"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A stream refused: which cap (all clients' streams or one client's), how many streams
    were open against it, and the cap."""

    limit: Literal["streams", "client_streams"]
    client: str
    open: int
    maximum: int


class StreamLimiter:
    """Counts open streams, in total and per client; `per_client` 0 caps only the total."""

    def __init__(
        self,
        total: int,
        per_client: int = 0,
        on_refused: Callable[[Refusal], None] | None = None,
    ) -> None:
        if total < 1:
            raise InputError(f"max streams {total}: expected at least 1")
        if per_client < 0:
            raise InputError(f"max streams per client {per_client}: expected 0 (none) or more")
        self._total = total
        self._per_client = per_client
        self._on_refused = on_refused
        self._lock = threading.Lock()
        self._open = 0
        self._by_client: dict[str, int] = {}

    @property
    def open(self) -> int:
        """Streams open now."""
        return self._open

    @contextmanager
    def admitted(
        self, client: str, context: grpc.ServicerContext, describe: Callable[[Refusal], str]
    ) -> Iterator[None]:
        """The block runs as one of `client`'s streams, or the call ends RESOURCE_EXHAUSTED
        with `describe(refusal)`."""
        refusal = self._acquire(client)
        if refusal is not None:
            if self._on_refused is not None:
                self._on_refused(refusal)
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, describe(refusal))
        try:
            yield
        finally:
            self._release(client)

    def _acquire(self, client: str) -> Refusal | None:
        with self._lock:
            if self._open >= self._total:
                return Refusal("streams", client, self._open, self._total)
            mine = self._by_client.get(client, 0)
            if self._per_client and mine >= self._per_client:
                return Refusal("client_streams", client, mine, self._per_client)
            self._open += 1
            self._by_client[client] = mine + 1
            return None

    def _release(self, client: str) -> None:
        with self._lock:
            self._open -= 1
            left = self._by_client[client] - 1
            if left:
                self._by_client[client] = left
            else:
                del self._by_client[client]


def client_address(peer: str) -> str:
    """The client's host in a gRPC peer string ("ipv4:10.0.0.1:5123" -> "10.0.0.1",
    "ipv6:[::1]:5123" -> "[::1]"); other peers (unix sockets) as they are."""
    scheme, _, address = peer.partition(":")
    if scheme in ("ipv4", "ipv6"):
        host, _, _ = address.rpartition(":")
        return host
    return peer


def parse_range(text: str, flag: str) -> int | None:
    """Nanoseconds of a limit such as 7d, 12h or 1d12h given to `flag`; None for "none"."""
    if text == NO_LIMIT:
        return None
    try:
        nanos = parse_ttl(text)
    except InputError:
        nanos = None
    if nanos is None:
        raise InputError(
            f"invalid {flag} {text!r}: expected a duration such as 7d, 12h or 1d12h, or {NO_LIMIT}"
        )
    return nanos
