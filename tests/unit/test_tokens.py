"""Tokens: the file, verification, request credentials, namespace scoping, and the CLI."""

from __future__ import annotations

import argparse
import base64
import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from flowscope.cli import token as token_cmd
from flowscope.common.auth import (
    AuthError,
    ClientAuth,
    Principal,
    ScopeError,
    TokenFile,
    TokenRecord,
    TokenVerifier,
    add_client_auth_flags,
    authorized_channel,
    client_credentials,
    parse_namespaces,
    parse_ttl,
    scope_whitelist,
    token_from_metadata,
)
from flowscope.common.errors import InputError
from flowscope.common.filters import compile_predicate
from flowscope.proto.flow import flow_pb2

T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
DAY_NS = 86400 * 10**9


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now.timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def token_file(tmp_path: Path) -> TokenFile:
    return TokenFile(tmp_path / "state" / "tokens.json")


def test_file_keeps_hashes_only(token_file: TokenFile) -> None:
    token, record = token_file.create("ci", ["shop", "db"], 30 * DAY_NS, now=T0)
    assert token.startswith(f"fst_{record.id}_")
    text = token_file.path.read_text()
    assert token.split("_")[2] not in text
    assert json.loads(text) == {
        "tokens": [
            {
                "id": record.id,
                "name": "ci",
                "sha256": record.sha256,
                "namespaces": ["shop", "db"],
                "created": "2026-11-01T12:00:00Z",
                "expires": "2026-12-01T12:00:00Z",
                "revoked": None,
            }
        ]
    }
    assert stat.S_IMODE(token_file.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.path.parent.stat().st_mode) == 0o700
    assert token_file.read() == [record]


def test_verify_active_revoked_expired(token_file: TokenFile) -> None:
    clock = Clock(T0)
    everything, all_record = token_file.create("admin", None, None, now=T0)
    scoped, scoped_record = token_file.create("shop", ["shop"], DAY_NS, now=T0)
    verifier = TokenVerifier(token_file, clock=clock)
    assert verifier.verify(everything) == Principal(all_record.id, "admin", None)
    assert verifier.verify(scoped) == Principal(scoped_record.id, "shop", frozenset({"shop"}))

    clock.now += 86400
    with pytest.raises(AuthError) as caught:
        verifier.verify(scoped)
    assert str(caught.value) == f"token {scoped_record.id} expired at 2026-11-02T12:00:00Z"

    token_file.revoke(all_record.id, now=T0)  # the verifier sees the file change
    with pytest.raises(AuthError) as caught:
        verifier.verify(everything)
    assert str(caught.value) == f"token {all_record.id} was revoked at 2026-11-01T12:00:00Z"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid token: not a flowscope token"),
        ("fst_0123456789abcdef_short", "invalid token: not a flowscope token"),
        ("fst_0123456789abcdef_" + "A" * 43, "unknown token fst_0123456789abcdef_…"),
    ],
)
def test_verify_unknown(token_file: TokenFile, text: str, message: str) -> None:
    token_file.create("x", None, None)
    with pytest.raises(AuthError) as caught:
        TokenVerifier(token_file).verify(text)
    assert str(caught.value) == message


def test_verify_wrong_secret_for_known_id(token_file: TokenFile) -> None:
    token, record = token_file.create("x", None, None)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(AuthError) as caught:
        TokenVerifier(token_file).verify(forged)
    assert str(caught.value) == f"unknown token fst_{record.id}_…"


def test_verifier_needs_the_file_and_fails_closed(token_file: TokenFile) -> None:
    with pytest.raises(InputError) as caught:
        TokenVerifier(token_file)
    assert str(caught.value) == (
        f"token file {token_file.path} does not exist; create a token with `flowscope token create`"
    )
    token, _ = token_file.create("x", None, None)
    verifier = TokenVerifier(token_file)
    token_file.path.write_text("{not json")
    with pytest.raises(
        AuthError, match=f"^cannot check tokens: token file {token_file.path} is not valid JSON"
    ):
        verifier.verify(token)
    token_file.path.unlink()
    with pytest.raises(AuthError, match=r"^unknown token"):
        verifier.verify(token)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("[]", 'expected {"tokens": [...]}'),
        ('{"tokens": [1]}', "tokens[0]: expected an object"),
        ('{"tokens": [{"id": "a"}]}', "tokens[0]: missing 'name'"),
        (
            '{"tokens": [{"id": "a", "name": "", "sha256": "", "namespaces": "shop", '
            '"created": "2026-11-01T00:00:00Z"}]}',
            "tokens[0].namespaces: expected a list of strings or null",
        ),
        (
            '{"tokens": [{"id": "a", "name": "", "sha256": "", "namespaces": null, '
            '"created": "yesterday"}]}',
            "tokens[0].created: expected an RFC 3339 time or null, got 'yesterday'",
        ),
    ],
)
def test_file_errors(token_file: TokenFile, document: str, message: str) -> None:
    token_file.path.parent.mkdir()
    token_file.path.write_text(document)
    with pytest.raises(InputError) as caught:
        token_file.read()
    assert str(caught.value) == f"token file {token_file.path}: {message}"


def test_revoke_unknown(token_file: TokenFile) -> None:
    token_file.create("x", None, None)
    with pytest.raises(InputError) as caught:
        token_file.revoke("nope")
    assert str(caught.value) == f"no token with id 'nope' in {token_file.path}"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ([("authorization", "Bearer fst_abc")], "fst_abc"),
        ([("x-other", "1"), ("Authorization", "bearer  fst_abc ")], "fst_abc"),
        ([("authorization", _basic("me", "fst_abc"))], "fst_abc"),
        ([("authorization", _basic("me", "pa:ss"))], "pa:ss"),
        ([("authorization", b"Bearer fst_abc")], "fst_abc"),
    ],
)
def test_token_from_metadata(metadata: list[tuple[str, str | bytes]], expected: str) -> None:
    assert token_from_metadata(metadata) == expected


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ([], "missing credentials: send authorization: Bearer <token>"),
        ([("authorization", "Dig x")], "unsupported authorization scheme 'Dig': "
         "use Bearer or Basic"),
        ([("authorization", "Basic !!!")], "invalid basic authorization: not base64 of user:pass"),
    ],
)  # fmt: skip
def test_token_from_metadata_errors(metadata: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(AuthError) as caught:
        token_from_metadata(metadata)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", 30 * DAY_NS), ("12h", DAY_NS // 2), ("1d12h", 3 * DAY_NS // 2), ("never", None)],
)
def test_parse_ttl(text: str, expected: int | None) -> None:
    assert parse_ttl(text) == expected


@pytest.mark.parametrize("text", ["", "0d", "d", "30", "-1h", "3w", "1d-1h"])
def test_parse_ttl_errors(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_ttl(text)
    assert str(caught.value) == (
        f"invalid --ttl {text!r}: expected a duration such as 30d, 12h, or never"
    )


def test_parse_namespaces() -> None:
    assert parse_namespaces("shop, db,shop") == ("shop", "db")
    with pytest.raises(InputError) as caught:
        parse_namespaces("shop,Kube_System")
    assert str(caught.value) == (
        "invalid --namespaces 'shop,Kube_System': 'Kube_System' is not a namespace name "
        "(lower-case letters, digits and '-', at most 63)"
    )


def _flow(
    name: str, src: str, dst: str, src_pod: str = "pod", dst_pod: str = "pod"
) -> flow_pb2.Flow:
    return flow_pb2.Flow(
        uuid=name,
        source=flow_pb2.Endpoint(namespace=src, pod_name=src_pod),
        destination=flow_pb2.Endpoint(namespace=dst, pod_name=dst_pod),
    )


FLOWS = [
    _flow("a>a", "a", "a"),
    _flow("a>x", "a", "x", src_pod="web-1"),
    _flow("x>b", "x", "b", dst_pod="web-2"),
    _flow("x>x", "x", "x", src_pod="web-3"),
    _flow("b>y", "b", "y", src_pod="api-1"),
    _flow("world>a", "", "a"),
    _flow("world>world", "", ""),
]
SCOPE = Principal("id", "team", frozenset({"a", "b"}))
FF = flow_pb2.FlowFilter


@pytest.mark.parametrize(
    ("whitelist", "blacklist", "expected"),
    [
        ([], [], ["a>a", "a>x", "x>b", "b>y", "world>a"]),
        ([FF(source_pod=["x/"])], [], ["x>b"]),
        ([FF(source_pod=["/web"])], [], ["a>x"]),
        ([FF(source_pod=["web"])], [], []),  # namespace "default" is out of scope...
        ([FF(source_pod=["/"])], [], ["a>a", "a>x", "x>b", "b>y", "world>a"]),
        ([FF(destination_pod=["b/web"])], [], ["x>b"]),
        ([FF(source_pod=["a/", "x/"], destination_pod=["x/"])], [], ["a>x"]),
        ([FF(uuid=["x>x", "b>y"])], [], ["b>y"]),
        ([FF(uuid=["x>x"]), FF(source_pod=["b/api"])], [], ["b>y"]),
        ([], [FF(source_pod=["a/"])], ["x>b", "b>y", "world>a"]),
    ],
)
def test_scope_whitelist(
    whitelist: list[flow_pb2.FlowFilter],
    blacklist: list[flow_pb2.FlowFilter],
    expected: list[str],
) -> None:
    unscoped = compile_predicate(whitelist, blacklist)
    try:
        scoped = compile_predicate(scope_whitelist(whitelist, SCOPE), blacklist)
    except ScopeError:
        assert expected == []
        return
    assert [flow.uuid for flow in FLOWS if scoped(flow)] == expected
    # Scoping only ever removes flows: exactly those outside the namespaces.
    in_scope = [
        f.uuid
        for f in FLOWS
        if unscoped(f) and {f.source.namespace, f.destination.namespace} & {"a", "b"}
    ]
    assert in_scope == expected


def test_scope_whitelist_entries() -> None:
    scoped = scope_whitelist([FF(source_pod=["/web", "x/"], verdict=[flow_pb2.DROPPED])], SCOPE)
    assert scoped == [
        FF(source_pod=["a/web", "b/web"], verdict=[flow_pb2.DROPPED]),
        FF(source_pod=["/web", "x/"], destination_pod=["a/", "b/"], verdict=[flow_pb2.DROPPED]),
    ]
    whitelist = [FF(source_pod=["x/"])]
    assert scope_whitelist(whitelist, None) == whitelist
    assert scope_whitelist(whitelist, Principal("id", "admin", None)) == whitelist


def test_scope_whitelist_nothing_visible() -> None:
    with pytest.raises(ScopeError) as caught:
        scope_whitelist([FF(source_pod=["x/"], destination_pod=["y/", "web"])], SCOPE)
    assert str(caught.value) == (
        "token 'team' sees namespaces a, b only, and the request's filters select none of them"
    )


def _client_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_client_auth_flags(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        ([], {}, None),
        ([], {"FLOWSCOPE_TOKEN": "fst_env"}, ClientAuth("Bearer fst_env")),
        (["--token", "fst_flag"], {"FLOWSCOPE_TOKEN": "fst_env"}, ClientAuth("Bearer fst_flag")),
        (
            ["--basic-auth-username", "me", "--basic-auth-password", "fst_pw"],
            {"FLOWSCOPE_TOKEN": "fst_env"},
            ClientAuth("Basic bWU6ZnN0X3B3"),
        ),
        (["--basic-auth-password", "fst_pw"], {}, ClientAuth("Basic OmZzdF9wdw==")),
    ],
)
def test_client_credentials(
    argv: list[str], env: dict[str, str], expected: ClientAuth | None
) -> None:
    assert client_credentials(_client_args(*argv), env) == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--token", "t", "--basic-auth-password", "p"],
         "--token and --basic-auth-* are alternatives: give one of them"),
        (["--basic-auth-username", "me"], "--basic-auth-username needs --basic-auth-password"),
    ],
)  # fmt: skip
def test_client_credentials_errors(argv: list[str], message: str) -> None:
    with pytest.raises(InputError) as caught:
        client_credentials(_client_args(*argv), {})
    assert str(caught.value) == message


def test_no_credentials_in_plain_text_to_other_hosts() -> None:
    auth = ClientAuth.bearer("fst_x")
    with grpc.insecure_channel("localhost:1") as channel:
        assert authorized_channel(channel, None, server="relay:4245", tls=False) is channel
        authorized_channel(channel, auth, server="localhost:4245", tls=False)
        authorized_channel(channel, auth, server="tls://relay:4245", tls=True)
        with pytest.raises(InputError) as caught:
            authorized_channel(channel, auth, server="relay:4245", tls=False)
    assert str(caught.value) == (
        "refusing to send credentials to relay:4245 without TLS: "
        "add --tls (or use a tls:// address)"
    )


def _token_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    token_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["token", *argv])
    code: int = args.func(args)
    return code


def test_token_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tokens.json"
    monkeypatch.setenv("FLOWSCOPE_TOKEN_FILE", str(path))
    assert (
        _token_cli("create", "--name", "shop-team", "--namespaces", "shop,db", "--ttl", "1d") == 0
    )
    out, err = capsys.readouterr()
    token = out.strip()
    ident = token.split("_")[1]
    assert err == f"created token {ident} in {path}; this is the only time it is shown\n"
    assert TokenVerifier(TokenFile(path)).verify(token).namespaces == frozenset({"shop", "db"})

    other = tmp_path / "other.json"
    assert _token_cli("create", "--ttl", "never", "--token-file", str(other)) == 0
    capsys.readouterr()
    assert [r.name for r in TokenFile(other).read()] == [""]

    assert _token_cli("revoke", ident) == 0
    assert capsys.readouterr().err == f"token {ident} is revoked\n"
    assert _token_cli("list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "NAMESPACES", "CREATED", "EXPIRES", "STATUS"]
    fields = lines[1].split()
    assert [fields[0], fields[1], fields[2], fields[5]] == [
        ident,
        "shop-team",
        "shop,db",
        "revoked",
    ]
    assert token not in "\n".join(lines)


def test_format_records() -> None:
    records = [
        TokenRecord("0123456789abcdef", "ci", "h", None, T0, None),
        TokenRecord("fedcba9876543210", "", "h", ("shop",), T0, datetime(2026, 11, 2, tzinfo=UTC)),
    ]
    assert token_cmd.format_records(records, datetime(2026, 11, 3, tzinfo=UTC)) == (
        "ID                NAME  NAMESPACES  CREATED               EXPIRES               STATUS\n"
        "0123456789abcdef  ci    all         2026-11-01T12:00:00Z  never                 active\n"
        "fedcba9876543210  -     shop        2026-11-01T12:00:00Z  2026-11-02T00:00:00Z  expired\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["create", "--namespaces", "Shop"], "invalid --namespaces 'Shop'"),
        (["create", "--ttl", "soon"], "invalid --ttl 'soon'"),
        (["revoke", "nope"], "does not exist"),
    ],
)
def test_token_command_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str
) -> None:
    monkeypatch.setenv("FLOWSCOPE_TOKEN_FILE", str(tmp_path / "tokens.json"))
    with pytest.raises(InputError, match=message):
        _token_cli(*argv)
