"""What `flowscope observe`, `observe agent-events` and `observe debug-events` do.

Each checks its flags, builds the Observer request, then streams the responses
of the observer (a server, or `--input-file`) to the printer. Ctrl-C ends a
stream as its normal end.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TextIO

from flowscope.cli import config
from flowscope.cli.client import GrpcObserver, ServerOptions
from flowscope.cli.observe import flags, selectors
from flowscope.cli.observe.filter_flags import FLAGS_BY_NAME
from flowscope.cli.observe.filters import compile_flags
from flowscope.cli.observe.observer import Observer, Request
from flowscope.cli.observe.raw_filters import parse_raw_filters, raw_filters_document
from flowscope.cli.observe.replay import FileObserver
from flowscope.cli.printers import Printer, PrinterOptions, make_printer
from flowscope.common.errors import FilterError, InputError
from flowscope.common.filters import compile_predicate
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2

Stream = Callable[[Observer, Printer], None]


def run_flows(args: argparse.Namespace) -> int:
    compiled = compile_flags(args.filter_flags, FLAGS_BY_NAME)
    options = flags.printer_options(args, stdout=sys.stdout)
    mask = flags.field_mask(args, options.output, server=args.input_file is None)
    settings = config.resolve(args)
    allowlist = parse_raw_filters("--allowlist", settings.texts("allowlist"))
    denylist = parse_raw_filters("--denylist", settings.texts("denylist"))
    request = observer_pb2.GetFlowsRequest(
        whitelist=compiled.whitelist + allowlist, blacklist=compiled.blacklist + denylist
    )
    selectors.selection(args, from_file=args.input_file is not None).apply(request)
    if mask is not None:
        request.field_mask.CopyFrom(mask)
    if args.print_raw_filters:
        document = raw_filters_document(request.whitelist, request.blacklist)
        sys.stdout.write(config.dump_yaml(document))
        return 0
    try:
        if args.input_file is None:
            # The server evaluates CEL; everything else is checked here, naming the flag.
            compile_predicate(_without_cel(request.whitelist), _without_cel(request.blacklist))
        return _serve(
            args,
            settings,
            options,
            lambda observer, printer: observer.get_flows(request, printer.write_flows_response),
        )
    except FilterError as err:
        raise compiled.name_flag(err) from None


def run_agent_events(args: argparse.Namespace) -> int:
    request = observer_pb2.GetAgentEventsRequest()
    return _run_events(
        args,
        request,
        lambda observer, printer: observer.get_agent_events(
            request, printer.write_agent_events_response
        ),
    )


def run_debug_events(args: argparse.Namespace) -> int:
    request = observer_pb2.GetDebugEventsRequest()
    return _run_events(
        args,
        request,
        lambda observer, printer: observer.get_debug_events(
            request, printer.write_debug_events_response
        ),
    )


def _run_events(args: argparse.Namespace, request: Request, stream: Stream) -> int:
    if args.filter_flags:  # given before the subcommand's name
        raise InputError(f"observe {args.observe_command} takes no filter flags")
    options = flags.printer_options(args, stdout=sys.stdout)
    settings = config.resolve(args)
    selectors.selection(args, from_file=args.input_file is not None).apply(request)
    return _serve(args, settings, options, stream)


def _serve(
    args: argparse.Namespace, settings: config.Settings, options: PrinterOptions, stream: Stream
) -> int:
    try:
        with _observer(args, settings) as observer, _printer(args, options) as printer:
            stream(observer, printer)
    except KeyboardInterrupt:
        pass
    return 0


def _without_cel(filters: Iterable[flow_pb2.FlowFilter]) -> list[flow_pb2.FlowFilter]:
    checked = []
    for flow_filter in filters:
        copy = flow_pb2.FlowFilter()
        copy.CopyFrom(flow_filter)
        copy.ClearField("experimental")
        checked.append(copy)
    return checked


@contextmanager
def _observer(args: argparse.Namespace, settings: config.Settings) -> Iterator[Observer]:
    observer: Observer
    if args.input_file is not None:
        observer = FileObserver.open(args.input_file, None if args.silent_errors else _warn)
    else:
        observer = GrpcObserver(ServerOptions.from_settings(settings, args))
    try:
        yield observer
    finally:
        observer.close()


@contextmanager
def _printer(args: argparse.Namespace, options: PrinterOptions) -> Iterator[Printer]:
    errors: TextIO = _Discard() if args.silent_errors else sys.stderr
    printer = make_printer(options, sys.stdout, errors)
    try:
        yield printer
    finally:
        printer.close()


def _warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


class _Discard(io.StringIO):
    """A text stream that keeps nothing: the printer's errors under --silent-errors."""

    def write(self, text: str) -> int:
        return len(text)
