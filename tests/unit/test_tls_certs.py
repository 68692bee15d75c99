"""`flowscope certs create`: files, permissions, names, usages, and the CA that signs them."""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from flowscope.cli import certs
from flowscope.common.errors import InputError


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    certs.register(parser.add_subparsers())
    args = parser.parse_args(["certs", "create", *argv])
    code: int = args.func(args)
    return code


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _extension(cert: x509.Certificate, kind: type[Any]) -> Any:
    return cert.extensions.get_extension_for_class(kind).value


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert cert.signature_hash_algorithm is not None
    public.verify(
        cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
    )
    return cert.issuer == ca.subject


def test_create_writes_ca_servers_and_client(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("--dir", str(tmp_path), "--names", "relay,Collector-Node1,10.0.0.5") == 0
    names = ["ca", "relay", "collector-node1", "10.0.0.5", "client"]
    expected = [tmp_path / f"{name}.{ext}" for name in names for ext in ("crt", "key")]
    assert capsys.readouterr().out == "".join(f"{path}\n" for path in expected)
    for path in expected:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o600 if path.suffix == ".key" else 0o644), path

    ca = _cert(tmp_path / "ca.crt")
    assert _extension(ca, x509.BasicConstraints).ca
    relay = _cert(tmp_path / "relay.crt")
    assert _signed_by(relay, ca)
    assert relay.subject.rfc4514_string() == "CN=relay,O=flowscope"
    sans = _extension(relay, x509.SubjectAlternativeName)
    assert sans.get_values_for_type(x509.DNSName) == ["relay", "localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert list(_extension(relay, x509.ExtendedKeyUsage)) == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    ]
    by_ip = _extension(_cert(tmp_path / "10.0.0.5.crt"), x509.SubjectAlternativeName)
    assert by_ip.get_values_for_type(x509.IPAddress)[0] == ipaddress.ip_address("10.0.0.5")

    client = _cert(tmp_path / "client.crt")
    assert _signed_by(client, ca)
    assert list(_extension(client, x509.ExtendedKeyUsage)) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(x509.ExtensionNotFound):
        client.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_days(tmp_path: Path) -> None:
    _run("--dir", str(tmp_path), "--names", "relay", "--days", "7")
    relay = _cert(tmp_path / "relay.crt")
    lifetime = relay.not_valid_after - relay.not_valid_before
    assert lifetime == datetime.timedelta(days=7, minutes=5)


def test_existing_ca_signs_new_certificates(tmp_path: Path) -> None:
    _run("--dir", str(tmp_path), "--names", "relay")
    ca_before = (tmp_path / "ca.crt").read_bytes()
    (tmp_path / "client.crt").unlink()
    (tmp_path / "client.key").unlink()
    _run("--dir", str(tmp_path), "--names", "collector-node2")
    assert (tmp_path / "ca.crt").read_bytes() == ca_before
    assert _signed_by(_cert(tmp_path / "collector-node2.crt"), _cert(tmp_path / "ca.crt"))


def test_never_overwrites(tmp_path: Path) -> None:
    _run("--dir", str(tmp_path), "--names", "relay")
    before = (tmp_path / "relay.key").read_bytes()
    with pytest.raises(InputError) as caught:
        _run("--dir", str(tmp_path), "--names", "relay")
    assert (
        str(caught.value) == f"{tmp_path}/relay.crt already exists; flowscope never overwrites it"
    )
    assert (tmp_path / "relay.key").read_bytes() == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--names", "a,b_c"], "invalid --names 'a,b_c': 'b_c' is not a DNS name or IP address"),
        (["--names", "client"], "invalid --names 'client': 'client' is reserved for its own file"),
        (["--names", "relay,"], "invalid --names 'relay,': '' is not a DNS name or IP address"),
        (["--days", "0"], "invalid --days 0: at least 1"),
    ],
)  # fmt: skip
def test_bad_arguments(tmp_path: Path, argv: list[str], message: str) -> None:
    with pytest.raises(InputError) as caught:
        _run("--dir", str(tmp_path / "out"), *argv)
    assert str(caught.value) == message
    assert not (tmp_path / "out").exists()


def test_broken_ca_reported(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("junk")
    with pytest.raises(InputError, match=f"^cannot use the CA in {tmp_path}: "):
        _run("--dir", str(tmp_path), "--names", "relay")
