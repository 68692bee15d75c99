"""The flags of `flowscope observe` other than selectors, and what they turn into.

Filter flags all record (flag, value) in one list in command-line order, since
`--not` and the left/right pairing depend on that order; `filters.compile_flags`
makes FlowFilters from the list. Formatting flags become PrinterOptions.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, Final, TextIO

from google.protobuf.field_mask_pb2 import FieldMask

from flowscope.cli import config
from flowscope.cli.observe.filter_flags import FILTER_FLAGS
from flowscope.cli.observe.filters import NOT_FLAG, FlagEvent
from flowscope.cli.printers import DEFAULT_FIELD_MASK, OUTPUT_FORMATS, PrinterOptions
from flowscope.cli.printers.color import color_enabled
from flowscope.cli.printers.timefmt import TIME_FORMATS
from flowscope.common.errors import InputError
from flowscope.proto.flow import flow_pb2

FILTER_DEST: Final = "filter_flags"
JSON_OUTPUTS: Final = ("json", "jsonpb")


class _FilterFlagAction(argparse.Action):
    """Appends (flag name, value) to the ordered list of filter flags."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        self.flag = option_strings[-1].removeprefix("--")
        super().__init__(option_strings, FILTER_DEST, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        events: list[FlagEvent] = list(getattr(namespace, FILTER_DEST, None) or [])
        events.append((self.flag, values if isinstance(values, str) else None))
        setattr(namespace, FILTER_DEST, events)


def add_filter_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "filters",
        "Values of one flag: any may match; different flags: all must match.\n"
        "--not puts the next filter flag in the denylist.",
    )
    # The list starts empty; actions copy it before adding to it.
    group.add_argument(
        f"--{NOT_FLAG}",
        action=_FilterFlagAction,
        nargs=0,
        default=[],
        help="leave out the flows that the next filter flag matches",
    )
    for spec in FILTER_FLAGS:
        names = [f"--{spec.name}"] if spec.short is None else [spec.short, f"--{spec.name}"]
        if spec.metavar is None:
            group.add_argument(*names, action=_FilterFlagAction, nargs=0, help=spec.help)
        else:
            group.add_argument(
                *names, action=_FilterFlagAction, metavar=spec.metavar, help=spec.help
            )
    raw = parser.add_argument_group("raw filters")
    config.add_flag(raw, "allowlist")
    config.add_flag(raw, "denylist")
    raw.add_argument(
        "--print-raw-filters",
        action="store_true",
        help="print the allowlist and denylist the flags make, in YAML for --config, and exit",
    )


def add_formatting_flags(parser: argparse.ArgumentParser, *, flows: bool) -> None:
    group = parser.add_argument_group("formatting")
    group.add_argument(
        "-o",
        "--output",
        default="compact",
        metavar="FORMAT",
        help="compact (default), dict, json or jsonpb (one JSON response a line), table",
    )
    group.add_argument(
        "--time-format",
        default="StampMilli",
        metavar="FORMAT",
        help=f"how times print: {', '.join(TIME_FORMATS)}",
    )
    group.add_argument(
        "--print-node-name",
        action="store_true",
        help="print the name of the node that saw each record",
    )
    group.add_argument(
        "--print-policy-names",
        action="store_true",
        help="print the names of the policies that allowed or denied a flow",
    )
    if flows:
        group.add_argument(
            "--color",
            choices=("auto", "always", "never"),
            default="auto",
            help="color compact and dict output: auto (when printing to a "
            "terminal), always or never",
        )
        group.add_argument(
            "--numeric", action="store_true", help="print IP addresses and numbers, not names"
        )
        group.add_argument(
            "--ip-translation",
            type=_boolean,
            nargs="?",
            const=True,
            default=True,
            metavar="BOOL",
            help="print pod, service or DNS names instead of IP addresses "
            "(default true; --ip-translation=false to turn off)",
        )
        group.add_argument(
            "--use-default-field-masks",
            type=_boolean,
            nargs="?",
            const=True,
            default=True,
            metavar="BOOL",
            help="ask a server only for the fields compact, dict and table output print "
            "(default true)",
        )
        group.add_argument(
            "--field-mask",
            action="append",
            default=[],
            metavar="PATHS",
            help="only these Flow fields, comma-separated (source.pod_name,l4); "
            "json and jsonpb output only",
        )


def add_other_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("input")
    group.add_argument(
        "--input-file",
        metavar="FILE",
        help="read records from this JSON-lines file (- for standard input) instead of a server",
    )
    group.add_argument(
        "-s", "--silent-errors", action="store_true", help="do not print warnings and node errors"
    )
    group.add_argument(
        "-D",
        "--debug",
        action="store_true",
        help="also print informational node status (nodes connected)",
    )


def _boolean(text: str) -> bool:
    value = {"true": True, "1": True, "t": True, "false": False, "0": False, "f": False}.get(
        text.lower()
    )
    if value is None:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value


def printer_options(args: argparse.Namespace, *, stdout: TextIO) -> PrinterOptions:
    """The printer's options from the formatting flags; bad combinations are an error."""
    output = args.output.lower()
    if output not in OUTPUT_FORMATS:
        raise InputError(
            f"invalid --output {args.output!r}: expected one of {', '.join(OUTPUT_FORMATS)}"
        )
    output = "table" if output == "tab" else output
    if output == "table" and args.follow:
        raise InputError("table output format is not compatible with follow mode")
    ip_translation = getattr(args, "ip_translation", True) and not getattr(args, "numeric", False)
    return PrinterOptions(
        output=output,
        time_format=args.time_format,
        node_name=args.print_node_name,
        policy_names=args.print_policy_names,
        color=color_enabled(getattr(args, "color", "auto"), stdout),
        ip_translation=ip_translation,
        debug=args.debug,
    )


def field_mask(args: argparse.Namespace, output: str, *, server: bool) -> FieldMask | None:
    """The Flow fields to ask for: --field-mask, else, from a server, the printers'
    default mask for compact, dict and table output (--use-default-field-masks, which
    saves the server work and bandwidth); None for all fields."""
    paths = [path.strip() for value in args.field_mask for path in value.split(",")]
    paths = [path for path in paths if path]
    if not paths:
        if server and args.use_default_field_masks and output not in JSON_OUTPUTS:
            return FieldMask(paths=DEFAULT_FIELD_MASK)
        return None
    if output not in JSON_OUTPUTS:
        raise InputError(f"{output} output format is not compatible with custom field mask")
    mask = FieldMask(paths=paths)
    for path in paths:
        if not FieldMask(paths=[path]).IsValidForDescriptor(flow_pb2.Flow.DESCRIPTOR):
            raise InputError(f"invalid --field-mask {path!r}: Flow has no such field")
    return mask
