"""`flowscope certs create`: a CA and certificates for a small flowscope deployment.

Writes into --dir a CA (ca.crt, ca.key), one certificate per --names entry
(NAME.crt, NAME.key) for the servers (relay, collectors) and a client.crt /
client.key for the CLI and the UI. Server certificates carry the name,
localhost, 127.0.0.1 and ::1 as subject alternative names and serve as client
certificates too, since the relay is a client of the collectors. Keys are EC
P-256, written readable by their owner only. A CA already in --dir signs the
new certificates; existing files are never overwritten.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from flowscope.common.errors import InputError

EXAMPLES: Final = """\
examples:
  flowscope certs create --dir /etc/flowscope/tls
  flowscope certs create --dir tls --names relay,collector-node1,collector-node2 --days 90

then, for instance:
  relay:  --tls-server-cert-file tls/relay.crt --tls-server-key-file tls/relay.key
          --tls-client-ca-files tls/ca.crt
  CLI:    --tls --tls-ca-cert-files tls/ca.crt --tls-client-cert-file tls/client.crt
          --tls-client-key-file tls/client.key
"""
DEFAULT_NAMES: Final = ("relay", "collector")
CLIENT_NAME: Final = "client"
LOCAL_NAMES: Final = ("localhost", "127.0.0.1", "::1")
_DNS_NAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*"
)
# Certificates start a little in the past so clocks slightly behind accept them.
_CLOCK_SKEW: Final = datetime.timedelta(minutes=5)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "certs",
        help="create TLS certificates for a flowscope deployment",
        description="Create a CA and TLS certificates for flowscope's servers and clients.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="certs_command", metavar="COMMAND", required=True)
    create = actions.add_parser(
        "create",
        help="create a CA (unless DIR has one) and certificates signed by it",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    create.add_argument("--dir", required=True, type=Path, help="directory to write into")
    create.add_argument(
        "--names",
        default=",".join(DEFAULT_NAMES),
        help="server names, comma-separated: a certificate each, with the name, localhost "
        f"and 127.0.0.1 in it (default {','.join(DEFAULT_NAMES)})",
    )
    create.add_argument(
        "--days", type=int, default=365, help="days the certificates stay valid (default 365)"
    )
    create.set_defaults(func=_create)


def parse_names(text: str) -> list[str]:
    names = list(dict.fromkeys(part.strip().lower() for part in text.split(",")))
    for name in names:
        if name == CLIENT_NAME or name == "ca":
            raise InputError(f"invalid --names {text!r}: {name!r} is reserved for its own file")
        if not _DNS_NAME.fullmatch(name) and not _is_ip(name):
            raise InputError(f"invalid --names {text!r}: {name!r} is not a DNS name or IP address")
    return names


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise InputError(f"{path} already exists; flowscope never overwrites it") from None
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _subject(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "flowscope"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, days: int
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def create_ca(days: int) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _subject("flowscope CA")
    cert = (
        _builder(name, name, key, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    name: str,
    days: int,
    *,
    server: bool,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A key and a certificate for `name`, signed by the CA.

    A server certificate names `name` and the loopback addresses and may also
    act as a client; a client certificate only proves who connects.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = _builder(_subject(name), ca_cert.subject, key, days)
    if server:
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
        alternatives: list[x509.GeneralName] = [
            x509.IPAddress(ipaddress.ip_address(entry)) if _is_ip(entry) else x509.DNSName(entry)
            for entry in dict.fromkeys([name, *LOCAL_NAMES])
        ]
        builder = builder.add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
    cert = (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _load_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
    key_path, cert_path = directory / "ca.key", directory / "ca.crt"
    if not key_path.exists() and not cert_path.exists():
        return None
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError, TypeError) as err:
        raise InputError(f"cannot use the CA in {directory}: {err}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InputError(f"cannot use the CA in {directory}: ca.key is not an EC key")
    return key, cert


def create(directory: Path, names: Sequence[str], days: int) -> list[Path]:
    """Writes the CA (unless present) and the certificates; the files written."""
    if days < 1:
        raise InputError(f"invalid --days {days}: at least 1")
    targets = [
        directory / f"{name}.{ext}" for name in [*names, CLIENT_NAME] for ext in ("crt", "key")
    ]
    for path in targets:
        if path.exists():
            raise InputError(f"{path} already exists; flowscope never overwrites it")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    authority = _load_ca(directory)
    if authority is None:
        authority = create_ca(days)
        _write_new(directory / "ca.key", _pem_key(authority[0]), 0o600)
        _write_new(directory / "ca.crt", _pem_cert(authority[1]), 0o644)
        written += [directory / "ca.crt", directory / "ca.key"]
    for name in [*names, CLIENT_NAME]:
        key, cert = issue(*authority, name, days, server=name != CLIENT_NAME)
        _write_new(directory / f"{name}.key", _pem_key(key), 0o600)
        _write_new(directory / f"{name}.crt", _pem_cert(cert), 0o644)
        written += [directory / f"{name}.crt", directory / f"{name}.key"]
    return written


def _create(args: argparse.Namespace) -> int:
    for path in create(args.dir, parse_names(args.names), args.days):
        sys.stdout.write(f"{path}\n")
    return 0
