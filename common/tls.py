"""TLS for flowscope's gRPC hops: the flags, the checked files, the gRPC credentials.

Servers (collector node API, relay) take `--tls-server-cert-file` and
`--tls-server-key-file`, and `--tls-client-ca-files` to require client
certificates signed by those CAs (mutual TLS). Clients take the flags of
Hubble's CLI: `--tls` (or a `tls://` server address), `--tls-ca-cert-files`,
`--tls-client-cert-file`, `--tls-client-key-file`, `--tls-server-name`.

Every file is read and checked when the credentials are built, so a missing,
unreadable or mismatched file is reported once, naming its flag and path,
rather than as a failed handshake later. `check_listen_address` keeps a server
without TLS on the loopback interface.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from flowscope.common.errors import InputError

TLS_PREFIX: Final = "tls://"
# The gRPC channel option that makes the client check the server's certificate
# against this name instead of the host it dials.
SERVER_NAME_OPTION: Final = "grpc.ssl_target_name_override"

_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)


def _read(flag: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{flag} {path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{flag} {path}: is a directory, expected a PEM file") from None
    except OSError as err:
        raise InputError(f"{flag} {path}: cannot read: {err.strerror}") from None


def _certificates(flag: str, path: Path) -> tuple[bytes, list[x509.Certificate]]:
    """The file's bytes and the PEM certificates in it (at least one)."""
    data = _read(flag, path)
    blocks = _PEM_CERTIFICATE.findall(data)
    if not blocks:
        raise InputError(f"{flag} {path}: no PEM certificate in the file")
    try:
        return data, [x509.load_pem_x509_certificate(block) for block in blocks]
    except ValueError as err:
        raise InputError(f"{flag} {path}: not a valid PEM certificate: {err}") from None


def _ca_bundle(flag: str, paths: Sequence[Path]) -> bytes:
    """The CA certificates of every file, concatenated as gRPC takes them."""
    return b"".join(_certificates(flag, path)[0].rstrip(b"\n") + b"\n" for path in paths)


def _key_pair(
    cert_flag: str, cert_path: Path, key_flag: str, key_path: Path
) -> tuple[bytes, bytes]:
    """(private key, certificate chain) PEM bytes, checked to belong together."""
    chain, certificates = _certificates(cert_flag, cert_path)
    key_data = _read(key_flag, key_path)
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except TypeError:
        raise InputError(
            f"{key_flag} {key_path}: the key is encrypted; flowscope needs an unencrypted key "
            "(readable by its owner only)"
        ) from None
    except ValueError:
        raise InputError(f"{key_flag} {key_path}: not a PEM private key") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    if key.public_key().public_bytes(encoding, public) != certificates[0].public_key().public_bytes(
        encoding, public
    ):
        raise InputError(
            f"{key_flag} {key_path} does not belong to the certificate in {cert_flag} {cert_path}"
        )
    return key_data, chain


@dataclass(frozen=True)
class ServerTLS:
    """A server's certificate and key, and the CAs its clients' certificates must come from."""

    cert_file: Path
    key_file: Path
    client_ca_files: tuple[Path, ...] = ()

    @property
    def mutual(self) -> bool:
        return bool(self.client_ca_files)

    def credentials(self) -> grpc.ServerCredentials:
        """gRPC server credentials; InputError naming the flag and path of a bad file."""
        key, chain = _key_pair(
            "--tls-server-cert-file", self.cert_file, "--tls-server-key-file", self.key_file
        )
        if not self.mutual:
            return grpc.ssl_server_credentials([(key, chain)])
        roots = _ca_bundle("--tls-client-ca-files", self.client_ca_files)
        return grpc.ssl_server_credentials(
            [(key, chain)], root_certificates=roots, require_client_auth=True
        )


def add_server_tls_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("TLS")
    group.add_argument(
        "--tls-server-cert-file",
        type=Path,
        metavar="FILE",
        help="serve TLS with this PEM certificate (chain); needs --tls-server-key-file",
    )
    group.add_argument(
        "--tls-server-key-file",
        type=Path,
        metavar="FILE",
        help="the PEM private key of --tls-server-cert-file",
    )
    group.add_argument(
        "--tls-client-ca-files",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="require client certificates signed by these PEM CAs (mutual TLS)",
    )


def server_tls_from_args(args: argparse.Namespace) -> ServerTLS | None:
    """The server's TLS settings from its flags; None when it serves plain text."""
    cert: Path | None = args.tls_server_cert_file
    key: Path | None = args.tls_server_key_file
    client_cas: list[Path] | None = args.tls_client_ca_files
    if cert is None and key is None:
        if client_cas:
            raise InputError(
                "--tls-client-ca-files needs --tls-server-cert-file and --tls-server-key-file"
            )
        return None
    if cert is None or key is None:
        given, missing = (
            ("--tls-server-key-file", "--tls-server-cert-file")
            if cert is None
            else ("--tls-server-cert-file", "--tls-server-key-file")
        )
        raise InputError(f"{given} needs {missing}")
    return ServerTLS(cert, key, tuple(client_cas or ()))


@dataclass(frozen=True)
class ClientTLS:
    """How a client checks the server (CAs, name) and proves itself (certificate, key)."""

    ca_files: tuple[Path, ...] = ()
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        """gRPC channel credentials; the system's CAs when no CA file is given."""
        roots = _ca_bundle("--tls-ca-cert-files", self.ca_files) if self.ca_files else None
        if self.cert_file is None or self.key_file is None:
            return grpc.ssl_channel_credentials(root_certificates=roots)
        key, chain = _key_pair(
            "--tls-client-cert-file", self.cert_file, "--tls-client-key-file", self.key_file
        )
        return grpc.ssl_channel_credentials(
            root_certificates=roots, private_key=key, certificate_chain=chain
        )

    def channel_options(self) -> list[tuple[str, str]]:
        return [(SERVER_NAME_OPTION, self.server_name)] if self.server_name else []


def add_client_tls_flags(parser: argparse._ActionsContainer, prefix: str = "") -> None:
    """The client TLS flags; with a prefix ("peer-") the same flags for another hop
    (--peer-tls, --peer-tls-ca-cert-files, ...), read back with the same prefix."""
    what = f"the {prefix.rstrip('-')} server" if prefix else "the server"
    parser.add_argument(
        f"--{prefix}tls",
        action="store_true",
        default=None,
        help=f"connect to {what} with TLS"
        + ("" if prefix else " (also implied by a tls:// server address)"),
    )
    parser.add_argument(
        f"--{prefix}tls-ca-cert-files",
        type=Path,
        nargs="+",
        metavar="FILE",
        help=f"PEM CAs to check the certificate of {what} with (default: the system's)",
    )
    parser.add_argument(
        f"--{prefix}tls-client-cert-file",
        type=Path,
        metavar="FILE",
        help=f"PEM certificate to present to {what} (mutual TLS)",
    )
    parser.add_argument(
        f"--{prefix}tls-client-key-file",
        type=Path,
        metavar="FILE",
        help=f"the PEM private key of --{prefix}tls-client-cert-file",
    )
    parser.add_argument(
        f"--{prefix}tls-server-name",
        metavar="NAME",
        help=f"name the certificate of {what} must carry, when it differs from the address",
    )


def split_server_address(address: str) -> tuple[str, bool]:
    """(HOST:PORT, whether a tls:// prefix asked for TLS)."""
    if address.startswith(TLS_PREFIX):
        return address.removeprefix(TLS_PREFIX), True
    return address, False


def client_tls_from_args(
    args: argparse.Namespace, server: str = "", prefix: str = ""
) -> ClientTLS | None:
    """The client's TLS settings from its flags (see add_client_tls_flags) and server
    address; None for plain text."""
    _, prefixed = split_server_address(server)
    attribute = prefix.replace("-", "_")
    options = ClientTLS(
        ca_files=tuple(getattr(args, f"{attribute}tls_ca_cert_files") or ()),
        cert_file=getattr(args, f"{attribute}tls_client_cert_file"),
        key_file=getattr(args, f"{attribute}tls_client_key_file"),
        server_name=getattr(args, f"{attribute}tls_server_name"),
    )
    cert_flag, key_flag = f"--{prefix}tls-client-cert-file", f"--{prefix}tls-client-key-file"
    if (options.cert_file is None) != (options.key_file is None):
        given, other = (cert_flag, key_flag) if options.key_file is None else (key_flag, cert_flag)
        raise InputError(f"{given} needs {other}")
    if getattr(args, f"{attribute}tls") or prefixed:
        return options
    if options != ClientTLS():
        also = "" if prefix else f" or use a {TLS_PREFIX} server address"
        raise InputError(f"TLS options were given but not TLS: add --{prefix}tls{also}")
    return None


def dial(address: str, tls: ClientTLS | None) -> grpc.Channel:
    """A channel to HOST:PORT: TLS when `tls` is given, else plain text; not yet connected."""
    return grpc.insecure_channel(address) if tls is None else secure_channel(address, tls)


def secure_channel(server: str, tls: ClientTLS) -> grpc.Channel:
    """A TLS channel to HOST:PORT (a tls:// prefix is allowed); not yet connected."""
    address, _ = split_server_address(server)
    return grpc.secure_channel(address, tls.credentials(), options=tls.channel_options())


def split_host_port(address: str) -> tuple[str, int]:
    """("host", port) of "host:port", "[v6]:port" or ":port" (empty host: every interface)."""
    host, colon, port_text = address.rpartition(":")
    if not colon or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise InputError(f"invalid address {address!r}: expected HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen_address(address: str, *, tls: bool) -> None:
    """Refuses to serve plain text beyond the loopback interface.

    A server without TLS would hand flows (and bearer tokens) to anyone on the
    network, so it may listen on localhost only; with TLS any address goes.
    """
    host, _ = split_host_port(address)
    if tls or is_loopback(host):
        return
    raise InputError(
        f"refusing to listen on {address} without TLS: give --tls-server-cert-file and "
        "--tls-server-key-file, or listen on localhost"
    )
