"""Which records `flowscope observe` asks for: --last, --first, --all, --follow, --since, --until.

As in `hubble observe`: without --first, --all, --since or --until, and when not
following, a server is asked for the last 20 records; a file (`--input-file`)
has no such default. `--all` asks for the largest number there is, `--until` is
dropped when following.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Final

from google.protobuf.timestamp_pb2 import Timestamp

from flowscope.cli.observe.observer import Request
from flowscope.common.errors import InputError
from flowscope.common.timeparse import FORMATS_HELP, parse_time

DEFAULT_COUNT: Final = 20
ALL: Final = 2**64 - 1  # --all: the largest number a request holds


@dataclass(frozen=True)
class Selection:
    """The selector fields of an Observer request."""

    number: int = 0
    first: bool = False
    follow: bool = False
    since: Timestamp | None = None
    until: Timestamp | None = None

    def apply(self, request: Request) -> None:
        request.number = self.number
        request.first = self.first
        request.follow = self.follow
        if self.since is not None:
            request.since.CopyFrom(self.since)
        if self.until is not None:
            request.until.CopyFrom(self.until)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(text)


def add_selector_flags(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "--last",
        type=_count,
        default=0,
        metavar="N",
        help=f"the last N records (default {DEFAULT_COUNT} from a server; "
        "through a relay, N per node)",
    )
    parser.add_argument(
        "--first",
        type=_count,
        default=0,
        metavar="N",
        help="the first N records (through a relay, N per node)",
    )
    parser.add_argument(
        "--all", action="store_true", help="every stored record; best used with filters"
    )
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing new records as they come (a file ends at its end)",
    )
    parser.add_argument("--since", metavar="TIME", help=f"records from TIME on: {FORMATS_HELP}")
    parser.add_argument(
        "--until", metavar="TIME", help="records up to TIME (same formats as --since)"
    )


def selection(args: argparse.Namespace, *, from_file: bool) -> Selection:
    """The selection the flags ask for; conflicting flags are an error."""
    first, last = args.first > 0, args.last > 0
    for conflict, other in (
        (first and last, "--last"),
        (first and args.all, "--all"),
        (first and args.follow, "--follow"),
    ):
        if conflict:
            raise InputError(f"cannot set both --first and {other}")
    if last and args.all:
        raise InputError("cannot set both --last and --all")
    since = _time("--since", args.since)
    until = None if args.follow else _time("--until", args.until)
    number = args.first if first else args.last
    if since is None and until is None and not first:
        if args.all:
            number = ALL
        elif not last and not args.follow and not from_file:
            number = DEFAULT_COUNT
    return Selection(number=number, first=first, follow=args.follow, since=since, until=until)


def _time(flag: str, text: str | None) -> Timestamp | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except InputError as err:
        raise InputError(f"invalid {flag}: {err}") from None
