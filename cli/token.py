"""`flowscope token create|list|revoke`: the bearer tokens of the relay API and the UI.

`create` prints a new token once, on stdout; the token file keeps only its
hash. `list` shows every token without secrets; `revoke ID` refuses a token
from then on (servers reread the file when it changes). The token file is
--token-file, else $FLOWSCOPE_TOKEN_FILE, else /var/lib/flowscope/tokens.json.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from flowscope.common.auth import (
    DEFAULT_TOKEN_FILE,
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    TokenFile,
    TokenRecord,
    parse_namespaces,
    parse_ttl,
)

EXAMPLES: Final = f"""\
examples:
  flowscope token create --name grafana                    all namespaces, 30 days
  flowscope token create --name shop-team --namespaces shop,payments --ttl 90d
  flowscope token list
  flowscope token revoke 4f1c2a9e0b7d3c55

Clients send a token with --token or {TOKEN_ENV}, or as the password of
--basic-auth-username/--basic-auth-password (any user name).
"""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "token",
        help="create, list and revoke API tokens",
        description="Create, list and revoke the bearer tokens of the relay API and the UI.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="token_command", metavar="COMMAND", required=True)
    create = actions.add_parser("create", help="create a token and print it (once)")
    create.add_argument("--name", default="", help="what the token is for, shown by `list`")
    create.add_argument(
        "--namespaces",
        help="comma-separated namespaces the token sees flows of (default: all)",
    )
    create.add_argument(
        "--ttl", default="30d", help="time to live: 30d, 12h, 1d12h or never (default 30d)"
    )
    create.set_defaults(func=_create)
    listing = actions.add_parser("list", help="list the tokens (never their secrets)")
    listing.set_defaults(func=_list)
    revoke = actions.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("id", help="the token's id, as `list` shows it")
    revoke.set_defaults(func=_revoke)
    for action in (create, listing, revoke):
        action.add_argument(
            "--token-file",
            type=Path,
            metavar="FILE",
            help=f"token file (default {DEFAULT_TOKEN_FILE}; env {TOKEN_FILE_ENV})",
        )


def _create(args: argparse.Namespace) -> int:
    namespaces = parse_namespaces(args.namespaces) if args.namespaces is not None else None
    ttl = parse_ttl(args.ttl)
    token_file = TokenFile.from_args(args)
    token, record = token_file.create(args.name, namespaces, ttl)
    sys.stdout.write(f"{token}\n")
    sys.stderr.write(
        f"created token {record.id} in {token_file.path}; this is the only time it is shown\n"
    )
    return 0


def _when(moment: datetime | None, never: str) -> str:
    return never if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_records(records: list[TokenRecord], now: datetime) -> str:
    """The tokens as a table, one line each."""
    header = ("ID", "NAME", "NAMESPACES", "CREATED", "EXPIRES", "STATUS")
    rows = [header] + [
        (
            record.id,
            record.name or "-",
            "all" if record.namespaces is None else ",".join(record.namespaces),
            _when(record.created, "-"),
            _when(record.expires, "never"),
            record.status(now),
        )
        for record in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        + "\n"
        for row in rows
    )


def _list(args: argparse.Namespace) -> int:
    records = TokenFile.from_args(args).read()
    sys.stdout.write(format_records(records, datetime.now(UTC)))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    record = TokenFile.from_args(args).revoke(args.id)
    sys.stderr.write(f"token {record.id} is revoked\n")
    return 0
