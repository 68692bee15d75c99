"""The `flowscope` command: its parser, its subcommands and how it reports errors.

A subcommand is a module with `register(subparsers)`, which adds its parser and
sets `func(args) -> int` as the parser's default; adding a command is adding its
module to COMMANDS. Errors print their message alone on stderr (no usage text),
nothing on stdout, and exit with code 1, as `hubble` does.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import flowscope
from flowscope.cli import (
    certs,
    collector_cmd,
    config,
    demo,
    export,
    lab,
    list_cmd,
    observe,
    policy,
    relay_cmd,
    status,
    token,
    top,
    ui_cmd,
    up,
)
from flowscope.common.errors import FlowscopeError

EXAMPLES = """\
examples:
  flowscope observe --last 20                    recent flows from the server
  flowscope observe --input-file flows.json -f   flows from a file of JSON lines
  flowscope config set server relay.example:4245
  flowscope observe --help                       every observe flag

Settings come from flags, FLOWSCOPE_* environment variables (FLOWSCOPE_SERVER),
then the config file; see `flowscope config --help`.
"""


class UsageError(FlowscopeError):
    """A command line that does not parse."""


class _Parser(argparse.ArgumentParser):
    """Takes whole option names only, and reports a bad command line without usage text."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _register_version(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser("version", help="print flowscope's version")
    parser.set_defaults(func=_version)


def _version(args: argparse.Namespace) -> int:
    sys.stdout.write(f"flowscope {flowscope.__version__}\n")
    return 0


COMMANDS: tuple[Callable[[argparse._SubParsersAction[Any]], None], ...] = (
    observe.register,
    up.register,
    status.register,
    list_cmd.register,
    top.register,
    export.register,
    relay_cmd.register,
    collector_cmd.register,
    lab.register,
    policy.register,
    demo.register,
    ui_cmd.register,
    certs.register,
    token.register,
    config.register,
    _register_version,
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="flowscope",
        description="Network flow observability: flows and events from eBPF collectors.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config.add_config_flag(parser, in_subcommand=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in COMMANDS:
        register(subparsers)
    return parser


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every parser under `parser`, subcommands of subcommands included."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in dict.fromkeys(action.choices.values()):
                found.append(subparser)
                found.extend(_parsers(subparser))
    return found


def _unknown_options(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """The options in argv that no parser knows."""
    known = {name for p in (parser, *_parsers(parser)) for name in p._option_string_actions}
    unknown = []
    for argument in argv:
        if argument == "--":
            break
        name = argument.partition("=")[0]
        short = len(name) == 2 and name[0] == "-" and not name[1].isdigit()
        if (name.startswith("--") or short) and name not in known:
            unknown.append(argument)
    return unknown


def main(argv: list[str] | None = None) -> int:
    """Runs flowscope with these arguments (sys.argv[1:] by default); the exit code."""
    arguments = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
        code: int = args.func(args)
    except SystemExit as done:  # --help
        return done.code if isinstance(done.code, int) else 0
    except UsageError as err:
        # After an unknown option, argparse takes the option's value for a
        # subcommand's name; the unknown option is the error to report.
        unknown = _unknown_options(parser, arguments)
        if unknown and str(err).startswith("argument COMMAND: invalid choice"):
            err = UsageError(f"unrecognized arguments: {' '.join(unknown)}")
        sys.stderr.write(f"{err}\n")
        return 1
    except FlowscopeError as err:
        sys.stderr.write(f"{err}\n")
        return 1
    except BrokenPipeError:
        # The reader left (`| head`): stop quietly, and keep Python from
        # reporting the failed flush of stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
