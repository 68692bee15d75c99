"""TLS, mutual TLS and bearer tokens on a real gRPC server, end to end.

The server runs the health service and a small Observer whose GetFlows scopes
each request the way flowscope's servers do: scope_whitelist with the
caller's principal, then compile_predicate. Clients connect over localhost.
"""

from __future__ import annotations

import argparse
import base64
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from flowscope.cli import certs
from flowscope.common.auth import (
    HEALTH_METHODS,
    ClientAuth,
    ScopeError,
    TokenAuthInterceptor,
    TokenFile,
    TokenVerifier,
    authorized_channel,
    current_principal,
    scope_whitelist,
)
from flowscope.common.filters import compile_predicate
from flowscope.common.tls import ClientTLS, ServerTLS, secure_channel
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2, observer_pb2_grpc

FLOWS = [
    flow_pb2.Flow(
        uuid=uuid,
        source=flow_pb2.Endpoint(namespace=src, pod_name=f"{src}-pod"),
        destination=flow_pb2.Endpoint(namespace=dst, pod_name=f"{dst}-pod"),
    )
    for uuid, src, dst in [
        ("shop-shop", "shop", "shop"),
        ("shop-db", "shop", "db"),
        ("web-shop", "web", "shop"),
        ("web-db", "web", "db"),
        ("db-db", "db", "db"),
    ]
]


class ScopedObserver(observer_pb2_grpc.ObserverServicer):
    """GetFlows over FLOWS, scoped by the caller's token as flowscope's servers scope."""

    def GetFlows(
        self, request: observer_pb2.GetFlowsRequest, context: grpc.ServicerContext
    ) -> Iterator[observer_pb2.GetFlowsResponse]:
        try:
            whitelist = scope_whitelist(request.whitelist, current_principal())
        except ScopeError as err:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, str(err))
        keep = compile_predicate(whitelist, request.blacklist)
        for flow in FLOWS:
            if keep(flow):
                yield observer_pb2.GetFlowsResponse(flow=flow)

    def ServerStatus(
        self, request: observer_pb2.ServerStatusRequest, context: grpc.ServicerContext
    ) -> observer_pb2.ServerStatusResponse:
        principal = current_principal()
        assert principal is not None
        return observer_pb2.ServerStatusResponse(version=principal.name)


@dataclass
class Deployment:
    directory: Path
    port: int
    tokens: dict[str, str]

    def client_tls(self, *, client: str | None = "client", ca: str = "ca.crt") -> ClientTLS:
        if client is None:
            return ClientTLS(ca_files=(self.directory / ca,))
        return ClientTLS(
            ca_files=(self.directory / ca,),
            cert_file=self.directory / f"{client}.crt",
            key_file=self.directory / f"{client}.key",
        )

    def channel(self, tls: ClientTLS, auth: ClientAuth | None) -> grpc.Channel:
        server = f"localhost:{self.port}"
        return authorized_channel(secure_channel(server, tls), auth, server=server, tls=True)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    directory = tmp_path_factory.mktemp("tls")
    certs.create(directory, ["relay"], days=1)
    certs.create(directory / "other", ["relay"], days=1)  # another CA and its certificates
    token_file = TokenFile(directory / "tokens.json")
    tokens = {
        "admin": token_file.create("admin", None, None)[0],
        "shop": token_file.create("shop-team", ["shop"], None)[0],
        "revoked": token_file.create("gone", None, None)[0],
    }
    token_file.revoke(tokens["revoked"].split("_")[1])
    expired, _ = token_file.create(
        "old", None, 1_000_000_000, now=datetime.now(UTC) - timedelta(hours=1)
    )
    tokens["expired"] = expired

    interceptor = TokenAuthInterceptor(TokenVerifier(token_file), open_methods=HEALTH_METHODS)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=[interceptor])
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    observer_pb2_grpc.add_ObserverServicer_to_server(ScopedObserver(), server)
    tls = ServerTLS(directory / "relay.crt", directory / "relay.key", (directory / "ca.crt",))
    port = server.add_secure_port("localhost:0", tls.credentials())
    server.start()
    yield Deployment(directory, port, tokens)
    server.stop(None)


def _status(channel: grpc.Channel) -> str:
    with channel:
        stub = observer_pb2_grpc.ObserverStub(channel)
        response = stub.ServerStatus(observer_pb2.ServerStatusRequest(), timeout=5)
        return response.version


def _flows(channel: grpc.Channel, *whitelist: flow_pb2.FlowFilter) -> list[str]:
    with channel:
        stub = observer_pb2_grpc.ObserverStub(channel)
        request = observer_pb2.GetFlowsRequest(whitelist=whitelist)
        return [r.flow.uuid for r in stub.GetFlows(request, timeout=5)]


def _code(call: object) -> grpc.StatusCode:
    assert isinstance(call, grpc.Call)
    return call.code()


def test_valid_token_over_mutual_tls(deployment: Deployment) -> None:
    auth = ClientAuth.bearer(deployment.tokens["admin"])
    assert _status(deployment.channel(deployment.client_tls(), auth)) == "admin"


def test_basic_auth_with_the_token_as_password(deployment: Deployment) -> None:
    auth = ClientAuth.basic("anyone", deployment.tokens["shop"])
    assert _status(deployment.channel(deployment.client_tls(), auth)) == "shop-team"


def test_plaintext_client_refused(deployment: Deployment) -> None:
    with grpc.insecure_channel(f"localhost:{deployment.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert _code(caught.value) is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("client", "ca"),
    [
        pytest.param(None, "ca.crt", id="no client certificate"),
        pytest.param("other/client", "ca.crt", id="client certificate from another CA"),
    ],
)
def test_mutual_tls_refuses_unknown_clients(
    deployment: Deployment, client: str | None, ca: str
) -> None:
    channel = deployment.channel(deployment.client_tls(client=client, ca=ca), None)
    with channel, pytest.raises(grpc.RpcError) as caught:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert _code(caught.value) is grpc.StatusCode.UNAVAILABLE


def test_client_refuses_server_from_another_ca(deployment: Deployment) -> None:
    channel = deployment.channel(deployment.client_tls(ca="other/ca.crt"), None)
    with channel, pytest.raises(grpc.RpcError) as caught:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert _code(caught.value) is grpc.StatusCode.UNAVAILABLE


def test_health_needs_no_token(deployment: Deployment) -> None:
    with deployment.channel(deployment.client_tls(), None) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    ("header", "message"),
    [
        pytest.param(None, "missing credentials: send authorization: Bearer <token>", id="none"),
        pytest.param("Bearer fst_nope", "invalid token: not a flowscope token", id="malformed"),
        pytest.param("revoked", "was revoked at", id="revoked"),
        pytest.param("expired", "expired at", id="expired"),
        pytest.param("Token abc", "unsupported authorization scheme 'Token'", id="scheme"),
    ],
)
def test_bad_credentials_unauthenticated(
    deployment: Deployment, header: str | None, message: str
) -> None:
    if header in deployment.tokens:
        auth: ClientAuth | None = ClientAuth.bearer(deployment.tokens[header])
    else:
        auth = None if header is None else ClientAuth(header)
    with pytest.raises(grpc.RpcError) as caught:
        _flows(deployment.channel(deployment.client_tls(), auth))
    assert _code(caught.value) is grpc.StatusCode.UNAUTHENTICATED
    assert isinstance(caught.value, grpc.Call)
    assert message in (caught.value.details() or "")


def test_unknown_secret_for_a_known_id(deployment: Deployment) -> None:
    ident = deployment.tokens["admin"].split("_")[1]
    forged = f"fst_{ident}_{base64.urlsafe_b64encode(bytes(32)).decode().rstrip('=')}"
    with pytest.raises(grpc.RpcError) as caught:
        _flows(deployment.channel(deployment.client_tls(), ClientAuth.bearer(forged)))
    assert _code(caught.value) is grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("token", "whitelist", "expected"),
    [
        ("admin", [], ["shop-shop", "shop-db", "web-shop", "web-db", "db-db"]),
        ("shop", [], ["shop-shop", "shop-db", "web-shop"]),
        ("shop", [flow_pb2.FlowFilter(source_pod=["web/"])], ["web-shop"]),
        ("shop", [flow_pb2.FlowFilter(destination_pod=["db/"])], ["shop-db"]),
        ("shop", [flow_pb2.FlowFilter(uuid=["web-db", "shop-db"])], ["shop-db"]),
    ],
)
def test_scoped_token_sees_its_namespaces_only(
    deployment: Deployment, token: str, whitelist: list[flow_pb2.FlowFilter], expected: list[str]
) -> None:
    auth = ClientAuth.bearer(deployment.tokens[token])
    assert _flows(deployment.channel(deployment.client_tls(), auth), *whitelist) == expected


def test_scoped_token_asking_for_other_namespaces_is_denied(deployment: Deployment) -> None:
    auth = ClientAuth.bearer(deployment.tokens["shop"])
    only_web_to_db = flow_pb2.FlowFilter(source_pod=["web/"], destination_pod=["db/"])
    with pytest.raises(grpc.RpcError) as caught:
        _flows(deployment.channel(deployment.client_tls(), auth), only_web_to_db)
    assert _code(caught.value) is grpc.StatusCode.PERMISSION_DENIED


def test_revocation_applies_without_restart(deployment: Deployment) -> None:
    token_file = TokenFile(deployment.directory / "tokens.json")
    token, record = token_file.create("short-lived", None, None)
    auth = ClientAuth.bearer(token)
    assert _status(deployment.channel(deployment.client_tls(), auth)) == "short-lived"
    token_file.revoke(record.id)
    with pytest.raises(grpc.RpcError) as caught:
        _status(deployment.channel(deployment.client_tls(), auth))
    assert _code(caught.value) is grpc.StatusCode.UNAUTHENTICATED


def test_client_flags_build_working_credentials(deployment: Deployment) -> None:
    """The client flag parsers end to end: flags -> ClientTLS -> channel."""
    from flowscope.common import auth as auth_module
    from flowscope.common import tls as tls_module

    parser = argparse.ArgumentParser()
    tls_module.add_client_tls_flags(parser)
    auth_module.add_client_auth_flags(parser)
    d = deployment.directory
    server = f"tls://localhost:{deployment.port}"
    args = parser.parse_args(
        [
            "--tls-ca-cert-files", str(d / "ca.crt"),
            "--tls-client-cert-file", str(d / "client.crt"),
            "--tls-client-key-file", str(d / "client.key"),
            "--tls-server-name", "relay",
            "--token", deployment.tokens["admin"],
        ]
    )  # fmt: skip
    client_tls = tls_module.client_tls_from_args(args, server)
    assert client_tls is not None
    credentials = auth_module.client_credentials(args, env={})
    channel = authorized_channel(
        secure_channel(server, client_tls), credentials, server=server, tls=True
    )
    assert _status(channel) == "admin"
