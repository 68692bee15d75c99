"""The web UI's access control: tokens on every request, and namespace scoping.

The UI runs in-process (TestClient) with a token file, against the relay process of
the scenario (namespaces shop and ops; the only ops flow is monitor -> frontend).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from servers import RelayProcess

from flowscope.common.auth import TokenFile, TokenVerifier
from flowscope.ui.app import create_app
from flowscope.ui.auth import CHALLENGE

OPS_FLOW = ("ops", "shop")  # (source, destination) namespaces of the scenario's ops flow


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    token_file = TokenFile(tmp_path_factory.mktemp("ui-auth") / "tokens.json")
    made = {
        "admin": token_file.create("admin", None, None)[0],
        "ops": token_file.create("ops-team", ["ops"], None)[0],
        "revoked": token_file.create("gone", None, None)[0],
        "expired": token_file.create(
            "old", None, 1_000_000_000, now=datetime.now(UTC) - timedelta(hours=1)
        )[0],
    }
    token_file.revoke(made["revoked"].split("_")[1])
    return token_file.path, made


@pytest.fixture(scope="module")
def client(relay: RelayProcess, tokens: tuple[Path, dict[str, str]]) -> Iterator[TestClient]:
    verifier = TokenVerifier(TokenFile(tokens[0]))
    with TestClient(create_app(relay.address, verifier=verifier)) as test_client:
        yield test_client


def bearer(tokens: tuple[Path, dict[str, str]], name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[1][name]}"}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing credentials: send authorization: Bearer <token>"),
        ({"Authorization": "Bearer fst_nope"}, "invalid token: not a flowscope token"),
        ({"Authorization": "Digest abc"}, "unsupported authorization scheme 'Digest'"),
    ],
)
def test_a_request_without_a_valid_token_is_refused(
    client: TestClient, headers: dict[str, str], message: str
) -> None:
    for path in ("/", "/api/flows", "/api/map", "/api/namespaces", "/api/status"):
        answer = client.get(path, headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == CHALLENGE
        assert answer.json()["error"].startswith(message)


@pytest.mark.parametrize(("name", "message"), [("revoked", "was revoked"), ("expired", "expired")])
def test_revoked_and_expired_tokens_are_refused(
    client: TestClient, tokens: tuple[Path, dict[str, str]], name: str, message: str
) -> None:
    answer = client.get("/api/flows", headers=bearer(tokens, name))
    assert answer.status_code == 401
    assert message in answer.json()["error"]


def test_basic_auth_with_the_token_as_password(
    client: TestClient, tokens: tuple[Path, dict[str, str]]
) -> None:
    pair = base64.b64encode(f"anyone:{tokens[1]['admin']}".encode()).decode()
    answer = client.get("/api/flows", headers={"Authorization": f"Basic {pair}"})
    assert answer.status_code == 200
    assert len(answer.json()["flows"]) == 11


def test_the_schema_is_open(client: TestClient) -> None:
    assert client.get("/openapi.json").status_code == 200


def test_a_scoped_token_sees_only_its_namespace(
    client: TestClient, tokens: tuple[Path, dict[str, str]]
) -> None:
    headers = bearer(tokens, "ops")
    flows = client.get("/api/flows", headers=headers).json()["flows"]
    assert [
        (entry["flow"]["source"]["namespace"], entry["flow"]["destination"]["namespace"])
        for entry in flows
    ] == [OPS_FLOW]
    names = client.get("/api/namespaces", headers=headers).json()["namespaces"]
    assert [item["namespace"] for item in names] == ["ops"]
    edges = client.get("/api/map", headers=headers).json()["edges"]
    assert [edge["id"] for edge in edges] == ["ops/monitor>shop/frontend:9090/TCP"]
    # The denied shop flows (shop/db-ingress) are not the ops team's; its audited one is.
    policy = str(client.get("/api/policy", headers=headers).json())
    assert "shop/db-ingress" not in policy
    assert "ops/audit-scrape" in policy


def test_a_scoped_token_viewing_another_namespace_sees_only_what_touches_its_own(
    client: TestClient, tokens: tuple[Path, dict[str, str]]
) -> None:
    answer = client.get("/api/flows", params={"ns": "shop"}, headers=bearer(tokens, "ops"))
    assert [
        (entry["flow"]["source"]["namespace"], entry["flow"]["destination"]["namespace"])
        for entry in answer.json()["flows"]
    ] == [OPS_FLOW]


def test_a_scoped_token_asking_only_for_another_namespace_is_forbidden(
    client: TestClient, tokens: tuple[Path, dict[str, str]]
) -> None:
    edge = "shop/frontend>shop/checkout:8080/TCP"
    answer = client.get("/api/flows", params={"edge": edge}, headers=bearer(tokens, "ops"))
    assert answer.status_code == 403
    assert answer.json()["error"] == (
        "token 'ops-team' sees namespaces ops only, and the request's filters select none of them"
    )
