"""Bearer tokens: their file, their verification, the gRPC guard, and namespace scoping.

A token is opaque text, `fst_<id>_<secret>`, shown once when created. The token
file keeps only its SHA-256 beside the id (for lookup), name, namespaces,
creation, expiry and revocation times; it is JSON, mode 0600:

    {"tokens": [{"id": "4f1c...", "name": "ci", "sha256": "9b2e...",
                 "namespaces": ["shop"], "created": "2026-11-29T01:00:00Z",
                 "expires": "2026-12-29T01:00:00Z", "revoked": null}]}

Servers verify with `TokenVerifier` (it rereads the file when it changes) behind
`TokenAuthInterceptor`, which takes `authorization: Bearer <token>` or HTTP
basic auth with the token as the password (what Hubble's CLI sends), refuses
the call with UNAUTHENTICATED otherwise, and leaves the caller's Principal for
the servicer in `current_principal()`. A token scoped to namespaces sees only
flows whose source or destination namespace is one of them: servers pass each
request's whitelist through `scope_whitelist` before querying, so streams,
history and aggregates share one scoping rule. Clients attach their token with
`add_client_auth_flags` / `client_credentials` / `authorized_channel`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import contextvars
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import grpc

from flowscope.common.errors import FlowscopeError, InputError
from flowscope.common.filters.names import parse as parse_namespaced_name
from flowscope.common.timeparse import NANOS_PER_SECOND, parse_duration
from flowscope.common.tls import is_loopback, split_host_port, split_server_address
from flowscope.proto.flow import flow_pb2

TOKEN_FILE_ENV: Final = "FLOWSCOPE_TOKEN_FILE"
DEFAULT_TOKEN_FILE: Final = Path("/var/lib/flowscope/tokens.json")
TOKEN_ENV: Final = "FLOWSCOPE_TOKEN"
TOKEN_PREFIX: Final = "fst_"
# Health checks answer liveness probes, which carry no credentials.
HEALTH_METHODS: Final = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})

# grpc's stubs make its interceptor classes generic; at run time they are not.
if TYPE_CHECKING:
    _ServerInterceptor = grpc.ServerInterceptor[Any, Any]
    _UnaryUnary = grpc.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStream = grpc.UnaryStreamClientInterceptor[Any, Any]
    _StreamUnary = grpc.StreamUnaryClientInterceptor[Any, Any]
    _StreamStream = grpc.StreamStreamClientInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.ServerInterceptor
    _UnaryUnary = grpc.UnaryUnaryClientInterceptor
    _UnaryStream = grpc.UnaryStreamClientInterceptor
    _StreamUnary = grpc.StreamUnaryClientInterceptor
    _StreamStream = grpc.StreamStreamClientInterceptor

_TOKEN = re.compile(r"fst_(?P<id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})")
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# Whole days, then what parse_duration takes, unsigned: "30d", "1d12h", "90m".
_TTL = re.compile(r"(?:(?P<days>\d+)d)?(?P<rest>(?:[\d.]+[a-zµμ]+)*)")


class AuthError(FlowscopeError):
    """A call without valid credentials: none, unknown, revoked or expired."""


class ScopeError(FlowscopeError):
    """A request whose filters select only flows outside the token's namespaces."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's id and name, and its namespaces (None: all of them)."""

    token_id: str
    name: str
    namespaces: frozenset[str] | None

    def sees_namespace(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces


@dataclass(frozen=True)
class TokenRecord:
    """One token as the file keeps it: never the token itself, only its hash."""

    id: str
    name: str
    sha256: str
    namespaces: tuple[str, ...] | None
    created: datetime
    expires: datetime | None
    revoked: datetime | None = None

    def principal(self) -> Principal:
        scope = None if self.namespaces is None else frozenset(self.namespaces)
        return Principal(self.id, self.name, scope)

    def status(self, now: datetime) -> str:
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and now >= self.expires:
            return "expired"
        return "active"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _moment(text: object, where: str) -> datetime | None:
    if text is None:
        return None
    try:
        if isinstance(text, str):
            return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        pass
    raise InputError(f"{where}: expected an RFC 3339 time or null, got {text!r}")


def _record_to_json(record: TokenRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "name": record.name,
        "sha256": record.sha256,
        "namespaces": None if record.namespaces is None else list(record.namespaces),
        "created": _rfc3339(record.created),
        "expires": None if record.expires is None else _rfc3339(record.expires),
        "revoked": None if record.revoked is None else _rfc3339(record.revoked),
    }


def _record_from_json(item: object, where: str) -> TokenRecord:
    if not isinstance(item, dict):
        raise InputError(f"{where}: expected an object")
    try:
        ident, name, digest = item["id"], item["name"], item["sha256"]
        namespaces = item["namespaces"]
        created = _moment(item["created"], f"{where}.created")
    except KeyError as err:
        raise InputError(f"{where}: missing {err.args[0]!r}") from None
    if not all(isinstance(value, str) for value in (ident, name, digest)):
        raise InputError(f"{where}: id, name and sha256 must be strings")
    if namespaces is not None and not (
        isinstance(namespaces, list) and all(isinstance(ns, str) for ns in namespaces)
    ):
        raise InputError(f"{where}.namespaces: expected a list of strings or null")
    if created is None:
        raise InputError(f"{where}.created: missing")
    return TokenRecord(
        id=ident,
        name=name,
        sha256=digest,
        namespaces=None if namespaces is None else tuple(namespaces),
        created=created,
        expires=_moment(item.get("expires"), f"{where}.expires"),
        revoked=_moment(item.get("revoked"), f"{where}.revoked"),
    )


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_namespaces(text: str) -> tuple[str, ...]:
    """The namespaces of a "a,b" list, checked as Kubernetes namespace names."""
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",")))
    for name in names:
        if not _NAMESPACE.fullmatch(name):
            raise InputError(
                f"invalid --namespaces {text!r}: {name!r} is not a namespace name "
                "(lower-case letters, digits and '-', at most 63)"
            )
    return names


def parse_ttl(text: str) -> int | None:
    """Nanoseconds of a time to live such as 30d, 12h or 1d12h; None for "never"."""
    if text == "never":
        return None
    match = _TTL.fullmatch(text)
    nanos = 0
    if match is not None and (match["days"] or match["rest"]):
        nanos = int(match["days"] or 0) * 86400 * NANOS_PER_SECOND
        try:
            nanos += parse_duration(match["rest"]) if match["rest"] else 0
        except InputError:
            nanos = 0
    if nanos <= 0:
        raise InputError(f"invalid --ttl {text!r}: expected a duration such as 30d, 12h, or never")
    return nanos


class TokenFile:
    """The token file: read, and changed by atomic replacement (mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @staticmethod
    def from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> TokenFile:
        env = os.environ if env is None else env
        named: Path | None = getattr(args, "token_file", None)
        if named is not None:
            return TokenFile(named)
        from_env = env.get(TOKEN_FILE_ENV)
        return TokenFile(Path(from_env) if from_env else DEFAULT_TOKEN_FILE)

    def read(self, *, must_exist: bool = False) -> list[TokenRecord]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            if must_exist:
                raise InputError(
                    f"token file {self.path} does not exist; create a token with "
                    "`flowscope token create`"
                ) from None
            return []
        except OSError as err:
            raise InputError(f"cannot read token file {self.path}: {err.strerror}") from None
        try:
            document = json.loads(text)
        except ValueError as err:
            raise InputError(f"token file {self.path} is not valid JSON: {err}") from None
        items = document.get("tokens") if isinstance(document, dict) else None
        if not isinstance(items, list):
            raise InputError(f'token file {self.path}: expected {{"tokens": [...]}}')
        return [
            _record_from_json(item, f"token file {self.path}: tokens[{i}]")
            for i, item in enumerate(items)
        ]

    def write(self, records: Sequence[TokenRecord]) -> None:
        document = {"tokens": [_record_to_json(record) for record in records]}
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # A whole new file renamed over the old one: a reader sees either.
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".tokens-")
        try:
            with os.fdopen(handle, "w") as out:  # mkstemp creates it with mode 0600
                json.dump(document, out, indent=2)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def create(
        self,
        name: str,
        namespaces: Sequence[str] | None,
        ttl_ns: int | None,
        now: datetime | None = None,
    ) -> tuple[str, TokenRecord]:
        """A new token and its record, added to the file; the token is not stored."""
        # Whole seconds, as the file keeps them.
        now = (datetime.now(UTC) if now is None else now).replace(microsecond=0)
        records = self.read()
        ident = secrets.token_hex(8)
        while any(record.id == ident for record in records):
            ident = secrets.token_hex(8)
        token = f"{TOKEN_PREFIX}{ident}_{secrets.token_urlsafe(32)}"
        expires = None
        if ttl_ns is not None:
            expires = datetime.fromtimestamp(now.timestamp() + ttl_ns / NANOS_PER_SECOND, UTC)
        record = TokenRecord(
            id=ident,
            name=name,
            sha256=_digest(token),
            namespaces=None if namespaces is None else tuple(namespaces),
            created=now,
            expires=expires,
        )
        self.write([*records, record])
        return token, record

    def revoke(self, ident: str, now: datetime | None = None) -> TokenRecord:
        """Marks the token revoked (it stays listed); InputError for an unknown id."""
        now = datetime.now(UTC) if now is None else now
        records = self.read(must_exist=True)
        for i, record in enumerate(records):
            if record.id == ident:
                if record.revoked is None:
                    records[i] = replace(record, revoked=now)
                    self.write(records)
                return records[i]
        raise InputError(f"no token with id {ident!r} in {self.path}")


class TokenVerifier:
    """Tells who holds a token, from a token file it rereads whenever the file changes."""

    def __init__(self, token_file: TokenFile, clock: Callable[[], float] = time.time) -> None:
        self._file = token_file
        self._clock = clock
        self._lock = threading.Lock()
        self._by_id: dict[str, TokenRecord] = {}
        self._version: tuple[int, int, int] | None = None
        self._reload(must_exist=True)

    def _reload(self, *, must_exist: bool = False) -> None:
        try:
            stat = self._file.path.stat()
            version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            if must_exist:
                self._file.read(must_exist=True)  # raises the error that explains it
            version = (0, 0, 0)
        if version != self._version:
            records = self._file.read()
            self._by_id = {record.id: record for record in records}
            self._version = version

    def verify(self, token: str) -> Principal:
        """The token's Principal; AuthError when it is unknown, revoked or expired."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise AuthError("invalid token: not a flowscope token")
        with self._lock:
            try:
                self._reload()
            except InputError as err:
                raise AuthError(f"cannot check tokens: {err}") from None
            record = self._by_id.get(match["id"])
        if record is None or not hmac.compare_digest(record.sha256, _digest(token)):
            raise AuthError(f"unknown token {TOKEN_PREFIX}{match['id']}_…")
        now = datetime.fromtimestamp(self._clock(), UTC)
        if record.revoked is not None:
            raise AuthError(f"token {record.id} was revoked at {_rfc3339(record.revoked)}")
        if record.expires is not None and now >= record.expires:
            raise AuthError(f"token {record.id} expired at {_rfc3339(record.expires)}")
        return record.principal()


def token_from_metadata(metadata: Iterable[tuple[str, str | bytes]]) -> str:
    """The token of an `authorization` header: Bearer, or Basic with it as password."""
    for key, value in metadata:
        if key.lower() != "authorization":
            continue
        text = value.decode() if isinstance(value, bytes) else value
        scheme, _, credentials = text.strip().partition(" ")
        if scheme.lower() == "bearer":
            return credentials.strip()
        if scheme.lower() == "basic":
            try:
                pair = base64.b64decode(credentials.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise AuthError("invalid basic authorization: not base64 of user:pass") from None
            return pair.partition(":")[2]
        raise AuthError(f"unsupported authorization scheme {scheme!r}: use Bearer or Basic")
    raise AuthError("missing credentials: send authorization: Bearer <token>")


_PRINCIPAL: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "flowscope_principal", default=None
)


def current_principal() -> Principal | None:
    """The caller of the RPC this thread serves; None when the server checks no tokens.

    Set by TokenAuthInterceptor before the servicer method runs, in the thread
    that runs it: read it at the start of the method, and hand it on to any
    other thread that works for the call.
    """
    return _PRINCIPAL.get()


@contextlib.contextmanager
def acting_as(principal: Principal | None) -> Iterator[None]:
    """current_principal() is `principal` within the block (in this thread or task):
    for servers other than gRPC's, such as the web UI's."""
    token = _PRINCIPAL.set(principal)
    try:
        yield
    finally:
        _PRINCIPAL.reset(token)


class TokenAuthInterceptor(_ServerInterceptor):
    """Refuses calls without a valid token (UNAUTHENTICATED) and sets current_principal().

    Methods in `open_methods` (e.g. HEALTH_METHODS) need no token; they run
    with no principal.
    """

    def __init__(self, verifier: TokenVerifier, open_methods: Iterable[str] = frozenset()) -> None:
        self._verifier = verifier
        self._open = frozenset(open_methods)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        checked = handler_call_details.method not in self._open
        return _wrap_handler(handler, lambda behaviour: self._guard(behaviour, checked))

    def _guard(self, behaviour: Callable[..., Any], checked: bool) -> Callable[..., Any]:
        # Runs in the thread that runs the servicer method, so the context
        # variable is set where the method reads it.
        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            principal = None
            if checked:
                try:
                    token = token_from_metadata(context.invocation_metadata())
                    principal = self._verifier.verify(token)
                except AuthError as err:
                    context.abort(grpc.StatusCode.UNAUTHENTICATED, str(err))
            _PRINCIPAL.set(principal)
            return behaviour(request, context)

        return guarded


# (request streaming, response streaming) -> the handler's behaviour attribute and factory
_HANDLER_KINDS: Final[dict[tuple[bool, bool], tuple[str, Callable[..., Any]]]] = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def _wrap_handler(
    handler: grpc.RpcMethodHandler[Any, Any],
    wrap: Callable[[Callable[..., Any]], Callable[..., Any]],
) -> grpc.RpcMethodHandler[Any, Any]:
    """The same handler with its behaviour wrapped, whichever of the four kinds it is."""
    attribute, factory = _HANDLER_KINDS[handler.request_streaming, handler.response_streaming]
    wrapped: grpc.RpcMethodHandler[Any, Any] = factory(
        wrap(getattr(handler, attribute)),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
    return wrapped


def scope_whitelist(
    whitelist: Sequence[flow_pb2.FlowFilter], principal: Principal | None
) -> list[flow_pb2.FlowFilter]:
    """The whitelist narrowed to flows the principal may see.

    A scoped principal sees a flow when its source or destination namespace is
    in scope, so each entry F becomes (F and source in scope) or (F and
    destination in scope): two entries, since a FlowFilter ANDs its fields and
    a whitelist ORs its entries. Where F already names pods on that side, its
    values are narrowed to the namespaces in scope instead. An empty whitelist
    (everything) becomes the two scope entries. The blacklist needs no change.
    Raises ScopeError when no entry can match a flow in scope, rather than
    return an empty whitelist, which would mean every flow.
    """
    if principal is None or principal.namespaces is None:
        return list(whitelist)
    scope = sorted(principal.namespaces)
    scoped = []
    for entry in whitelist or [flow_pb2.FlowFilter()]:
        for field in ("source_pod", "destination_pod"):
            values = _narrow(field, getattr(entry, field), scope)
            if values:
                narrowed = flow_pb2.FlowFilter()
                narrowed.CopyFrom(entry)
                getattr(narrowed, field)[:] = values
                scoped.append(narrowed)
    if not scoped:
        raise ScopeError(
            f"token {principal.name!r} sees namespaces {', '.join(scope)} only, "
            "and the request's filters select none of them"
        )
    return scoped


def _narrow(field: str, values: Sequence[str], scope: Sequence[str]) -> list[str]:
    """Pod filter values matching the same pods as `values`, within the scope's namespaces."""
    if not values:
        return [f"{namespace}/" for namespace in scope]
    narrowed: list[str] = []
    for value in values:
        namespace, prefix = parse_namespaced_name(field, value)
        if namespace is None:
            narrowed.extend(f"{ns}/{prefix}" for ns in scope)
        elif namespace in scope:
            narrowed.append(f"{namespace}/{prefix}")
    return list(dict.fromkeys(narrowed))


# Client side


@dataclass(frozen=True)
class ClientAuth:
    """The authorization header a client sends with every call."""

    header: str

    @staticmethod
    def bearer(token: str) -> ClientAuth:
        return ClientAuth(f"Bearer {token}")

    @staticmethod
    def basic(username: str, password: str) -> ClientAuth:
        pair = base64.b64encode(f"{username}:{password}".encode()).decode()
        return ClientAuth(f"Basic {pair}")


def add_client_auth_flags(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "--token", metavar="TOKEN", help=f"bearer token for the server; env {TOKEN_ENV}"
    )
    parser.add_argument("--basic-auth-username", metavar="USER", help="HTTP basic auth user name")
    parser.add_argument(
        "--basic-auth-password",
        metavar="PASSWORD",
        help="HTTP basic auth password (for flowscope: a token)",
    )


def client_credentials(
    args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> ClientAuth | None:
    """The credentials the flags (or FLOWSCOPE_TOKEN) give; None for none."""
    env = os.environ if env is None else env
    token: str | None = args.token or env.get(TOKEN_ENV) or None
    user: str | None = args.basic_auth_username
    password: str | None = args.basic_auth_password
    if args.token and (user or password):
        raise InputError("--token and --basic-auth-* are alternatives: give one of them")
    if user or password:
        if not password:
            raise InputError("--basic-auth-username needs --basic-auth-password")
        return ClientAuth.basic(user or "", password)
    return ClientAuth.bearer(token) if token else None


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Sequence[tuple[str, str | bytes]] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class _AuthorizationInterceptor(_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream):
    """Adds the authorization header to every call of a channel."""

    def __init__(self, auth: ClientAuth) -> None:
        self._header = ("authorization", auth.header)

    def _details(self, details: Any) -> _CallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            [*(details.metadata or ()), self._header],
            details.credentials,
            details.wait_for_ready,
            details.compression,
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


def authorized_channel(
    channel: grpc.Channel, auth: ClientAuth | None, *, server: str, tls: bool
) -> grpc.Channel:
    """The channel sending `auth` with every call.

    Refuses to send credentials in plain text to another host, where anyone
    on the path could read and reuse them.
    """
    if auth is None:
        return channel
    address, _ = split_server_address(server)
    if not tls and not is_loopback(split_host_port(address)[0]):
        raise InputError(
            f"refusing to send credentials to {server} without TLS: add --tls "
            "(or use a tls:// address)"
        )
    return grpc.intercept_channel(channel, _AuthorizationInterceptor(auth))
