"""`flowscope ui`: serve the web UI (service map, flows, policy verdicts) for a relay.

The UI is unprivileged, binds to localhost unless told otherwise, and reaches the
data only through the relay's gRPC API (--server).
"""

from __future__ import annotations

import argparse
from typing import Any, Final

from flowscope.common.errors import InputError

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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from flowscope.ui.app import create_app

    host, port = listen_address(args.listen_address)
    app = create_app(args.server)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
