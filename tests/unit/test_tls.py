"""TLS flags and credentials: what they accept, and the errors that name flag and path."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization

from flowscope.cli import certs
from flowscope.common.errors import InputError
from flowscope.common.tls import (
    SERVER_NAME_OPTION,
    ClientTLS,
    ServerTLS,
    add_client_tls_flags,
    add_server_tls_flags,
    check_listen_address,
    client_tls_from_args,
    server_tls_from_args,
    split_host_port,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    certs.create(directory, ["relay"], days=1)
    return directory


def _server_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_server_tls_flags(parser)
    return parser.parse_args(argv)


def _client_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_client_tls_flags(parser)
    return parser.parse_args(argv)


def test_server_flags() -> None:
    assert server_tls_from_args(_server_args()) is None
    tls = server_tls_from_args(
        _server_args(
            "--tls-server-cert-file", "s.crt", "--tls-server-key-file", "s.key",
            "--tls-client-ca-files", "a.crt", "b.crt",
        )
    )  # fmt: skip
    assert tls == ServerTLS(Path("s.crt"), Path("s.key"), (Path("a.crt"), Path("b.crt")))
    assert tls.mutual


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tls-server-cert-file", "s.crt"], "--tls-server-cert-file needs --tls-server-key-file"),
        (["--tls-server-key-file", "s.key"], "--tls-server-key-file needs --tls-server-cert-file"),
        (
            ["--tls-client-ca-files", "ca.crt"],
            "--tls-client-ca-files needs --tls-server-cert-file and --tls-server-key-file",
        ),
    ],
)
def test_server_flags_incomplete(argv: list[str], message: str) -> None:
    with pytest.raises(InputError) as caught:
        server_tls_from_args(_server_args(*argv))
    assert str(caught.value) == message


def test_server_credentials_built(pki: Path) -> None:
    plain = ServerTLS(pki / "relay.crt", pki / "relay.key")
    mutual = ServerTLS(pki / "relay.crt", pki / "relay.key", (pki / "ca.crt",))
    assert isinstance(plain.credentials(), grpc.ServerCredentials)
    assert isinstance(mutual.credentials(), grpc.ServerCredentials)


def _bad_files(pki: Path, tmp: Path) -> dict[str, Path]:
    (tmp / "empty.pem").write_text("not a certificate\n")
    (tmp / "broken.crt").write_text(
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    key = serialization.load_pem_private_key((pki / "relay.key").read_bytes(), password=None)
    (tmp / "locked.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    return {
        "missing": tmp / "missing.crt",
        "directory": tmp,
        "empty": tmp / "empty.pem",
        "broken": tmp / "broken.crt",
        "locked": tmp / "locked.key",
    }


@pytest.mark.parametrize(
    ("cert", "key", "cas", "message"),
    [
        ("missing", "relay.key", (), "--tls-server-cert-file {missing}: no such file"),
        ("directory", "relay.key", (), "--tls-server-cert-file {directory}: is a directory"),
        ("empty", "relay.key", (), "--tls-server-cert-file {empty}: no PEM certificate"),
        ("broken", "relay.key", (), "--tls-server-cert-file {broken}: not a valid PEM"),
        ("relay.crt", "missing", (), "--tls-server-key-file {missing}: no such file"),
        ("relay.crt", "empty", (), "--tls-server-key-file {empty}: not a PEM private key"),
        ("relay.crt", "locked", (), "--tls-server-key-file {locked}: the key is encrypted"),
        (
            "relay.crt",
            "client.key",
            (),
            "--tls-server-key-file {pki}/client.key does not belong to the certificate in "
            "--tls-server-cert-file {pki}/relay.crt",
        ),
        ("relay.crt", "relay.key", ("empty",), "--tls-client-ca-files {empty}: no PEM"),
    ],
)
def test_server_credentials_errors(
    pki: Path, tmp_path: Path, cert: str, key: str, cas: tuple[str, ...], message: str
) -> None:
    bad = _bad_files(pki, tmp_path)

    def path(name: str) -> Path:
        return bad.get(name, pki / name)

    tls = ServerTLS(path(cert), path(key), tuple(path(ca) for ca in cas))
    with pytest.raises(InputError) as caught:
        tls.credentials()
    expected = message.format(pki=pki, **bad)
    assert str(caught.value).startswith(expected)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(pki: Path, tmp_path: Path) -> None:
    locked = tmp_path / "relay.key"
    locked.write_bytes((pki / "relay.key").read_bytes())
    locked.chmod(0)
    with pytest.raises(InputError) as caught:
        ServerTLS(pki / "relay.crt", locked).credentials()
    assert str(caught.value) == f"--tls-server-key-file {locked}: cannot read: Permission denied"


@pytest.mark.parametrize(
    ("argv", "server", "expected"),
    [
        ([], "localhost:4245", None),
        (["--tls"], "localhost:4245", ClientTLS()),
        ([], "tls://relay:4245", ClientTLS()),
        (
            ["--tls-ca-cert-files", "ca.crt", "--tls-server-name", "relay.example"],
            "tls://relay:4245",
            ClientTLS(ca_files=(Path("ca.crt"),), server_name="relay.example"),
        ),
        (
            ["--tls", "--tls-client-cert-file", "c.crt", "--tls-client-key-file", "c.key"],
            "relay:4245",
            ClientTLS(cert_file=Path("c.crt"), key_file=Path("c.key")),
        ),
    ],
)
def test_client_flags(argv: list[str], server: str, expected: ClientTLS | None) -> None:
    assert client_tls_from_args(_client_args(*argv), server) == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--tls-ca-cert-files", "ca.crt"],
            "TLS options were given but not TLS: add --tls or use a tls:// server address",
        ),
        (
            ["--tls", "--tls-client-cert-file", "c"],
            "--tls-client-cert-file needs --tls-client-key-file",
        ),
        (
            ["--tls", "--tls-client-key-file", "c"],
            "--tls-client-key-file needs --tls-client-cert-file",
        ),
    ],
)
def test_client_flags_errors(argv: list[str], message: str) -> None:
    with pytest.raises(InputError) as caught:
        client_tls_from_args(_client_args(*argv), "relay:4245")
    assert str(caught.value) == message


def test_client_credentials_and_server_name(pki: Path) -> None:
    tls = ClientTLS(
        ca_files=(pki / "ca.crt",),
        cert_file=pki / "client.crt",
        key_file=pki / "client.key",
        server_name="relay",
    )
    assert isinstance(tls.credentials(), grpc.ChannelCredentials)
    assert tls.channel_options() == [(SERVER_NAME_OPTION, "relay")]
    assert ClientTLS().channel_options() == []
    with pytest.raises(InputError, match=r"^--tls-client-key-file .* does not belong"):
        ClientTLS(cert_file=pki / "client.crt", key_file=pki / "relay.key").credentials()


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("localhost:4245", ("localhost", 4245)),
        (":9965", ("", 9965)),
        ("[::1]:4244", ("::1", 4244)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
    ],
)
def test_split_host_port(address: str, expected: tuple[str, int]) -> None:
    assert split_host_port(address) == expected


@pytest.mark.parametrize("address", ["localhost", "host:port", "host:70000", ""])
def test_split_host_port_errors(address: str) -> None:
    with pytest.raises(InputError) as caught:
        split_host_port(address)
    assert str(caught.value) == f"invalid address {address!r}: expected HOST:PORT"


@pytest.mark.parametrize(
    ("address", "tls", "allowed"),
    [
        ("localhost:4245", False, True),
        ("127.0.0.1:4245", False, True),
        ("127.0.0.2:4245", False, True),
        ("[::1]:4245", False, True),
        ("0.0.0.0:4245", False, False),
        (":4245", False, False),
        ("relay.example:4245", False, False),
        ("10.0.0.1:4245", False, False),
        ("0.0.0.0:4245", True, True),
        (":4245", True, True),
    ],
)
def test_check_listen_address(address: str, tls: bool, allowed: bool) -> None:
    if allowed:
        check_listen_address(address, tls=tls)
        return
    with pytest.raises(InputError) as caught:
        check_listen_address(address, tls=tls)
    assert str(caught.value) == (
        f"refusing to listen on {address} without TLS: give --tls-server-cert-file and "
        "--tls-server-key-file, or listen on localhost"
    )
