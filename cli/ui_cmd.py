"""`flowscope ui`: serve the web UI (service map, flows, policy verdicts) for a relay.

The UI is unprivileged, binds to localhost unless told otherwise, and reaches the
data only through the relay's gRPC API (--server), over TLS with --tls-* and with its
own token with --token. With --token-file every request needs a token from that file
(bearer, or basic auth with the token as the password), and a token scoped to
namespaces sees only their flows.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Final

from flowscope.common.auth import (
    TokenFile,
    TokenVerifier,
    add_client_auth_flags,
    client_credentials,
)
from flowscope.common.errors import InputError
from flowscope.common.tls import add_client_tls_flags, client_tls_from_args

DEFAULT_LISTEN: Final = "127.0.0.1:12000"
DEFAULT_SERVER: Final = "localhost:4245"
EXAMPLES: Final = """examples:
  flowscope ui                                   # http://127.0.0.1:12000 for the local relay
  flowscope ui --server relay.example:4245
  flowscope ui --listen-address 0.0.0.0:12000    # reachable from other machines
"""


def listen_address(text: str) -> tuple[str, int]:
    """(host, port) of "HOST:PORT" or "[IPv6]:PORT"; InputError naming the flag."""
    host, colon, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"invalid --listen-address {text!r}: expected HOST:PORT")
    return host, int(port)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the `ui` command to the CLI."""
    parser = subparsers.add_parser(
        "ui",
        help="serve the web UI: service map, flows, policy verdicts",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--listen-address",
        default=DEFAULT_LISTEN,
        help=f"where the UI serves HTTP (default {DEFAULT_LISTEN})",
    )
    parser.add_argument(
        "--server",
        default=DEFAULT_SERVER,
        help=f"the relay's gRPC address (default {DEFAULT_SERVER})",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="require a token from this file (`flowscope token create`) on every request",
    )
    add_client_tls_flags(parser.add_argument_group("TLS to the relay"))
    add_client_auth_flags(parser.add_argument_group("the UI's credentials for the relay"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from flowscope.ui.app import create_app

    host, port = listen_address(args.listen_address)
    verifier = None if args.token_file is None else TokenVerifier(TokenFile(args.token_file))
    app = create_app(
        args.server,
        verifier=verifier,
        relay_tls=client_tls_from_args(args, args.server),
        relay_auth=client_credentials(args),
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
