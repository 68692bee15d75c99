"""`flowscope export`: the relay's flows as ExportEvent JSON lines, to stdout, to a file
rotated by size, or to syslog over TCP (TLS optional), resuming where it stopped.

The export follows the relay with per-node resume cursors saved in --state-dir after every
delivered batch. The file sink delivers each flow exactly once: on start it also reads what
the file holds, so a crash between a write and the cursor's save repeats nothing. stdout and
syslog deliver at least once; every record carries its flow's uuid, so a receiver can drop
repeats. Allow and deny lists and field masks work as in Hubble's exporter; the mask always
keeps node_name, node_sequence and uuid, which the cursor and the receivers need.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any, Final

from google.protobuf.field_mask_pb2 import FieldMask

from flowscope.cli import config
from flowscope.cli.client import ServerOptions, add_server_flags, connect
from flowscope.cli.exporters import Sink
from flowscope.cli.exporters.records import CURSOR_PATHS
from flowscope.cli.exporters.rotating import MEGABYTE, FileSink, RotatingFile
from flowscope.cli.exporters.state import StateFile
from flowscope.cli.exporters.stdout import StdoutSink
from flowscope.cli.exporters.stream import Exporter
from flowscope.cli.exporters.syslog import FACILITIES, SyslogConfig, SyslogSink
from flowscope.cli.observe.raw_filters import parse_raw_filters
from flowscope.cli.stack import stop_on_signals
from flowscope.common.errors import FilterError, InputError
from flowscope.common.fieldmask import FlowMask
from flowscope.common.filters import compile_predicate
from flowscope.common.timeparse import parse_time
from flowscope.proto.observer import observer_pb2

SINKS: Final = ("stdout", "file", "syslog")
SYSLOG_FLAGS: Final = (
    "syslog_address",
    "syslog_tls",
    "syslog_ca",
    "syslog_cert",
    "syslog_key",
    "syslog_server_name",
)
FILE_FLAGS: Final = ("file", "compress")

EXAMPLES = """examples:
  flowscope export --server relay:4245 --sink file --file /var/log/flowscope/flows.log
  flowscope export --sink syslog --syslog-address siem:6514 --syslog-tls --syslog-ca ca.crt
  flowscope export --allowlist '{"verdict":["DROPPED"]}' --field-mask time,source,destination
"""


def default_state_dir(env: os._Environ[str] | dict[str, str] = os.environ) -> Path:
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "flowscope" / "export"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "export",
        help="stream the relay's flows as JSON lines to stdout, a file or syslog, resumably",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sink", choices=SINKS, default="stdout", help="where the records go (default stdout)"
    )
    files = parser.add_argument_group("file sink")
    files.add_argument("--file", type=Path, metavar="PATH", help="the file to write")
    files.add_argument(
        "--max-size-mb",
        type=float,
        default=10.0,
        metavar="MB",
        help="rotate the file at this size (default 10)",
    )
    files.add_argument(
        "--max-backups",
        type=int,
        default=5,
        metavar="N",
        help="rotated files kept, 0 for all (default 5)",
    )
    files.add_argument("--compress", action="store_true", help="gzip the rotated files")
    syslog = parser.add_argument_group("syslog sink")
    syslog.add_argument("--syslog-address", metavar="HOST:PORT", help="the syslog receiver")
    syslog.add_argument("--syslog-tls", action="store_true", help="speak TLS to the receiver")
    syslog.add_argument(
        "--syslog-ca",
        type=Path,
        metavar="FILE",
        help="CA certificates for the receiver (default the system's)",
    )
    syslog.add_argument(
        "--syslog-cert",
        type=Path,
        metavar="FILE",
        help="client certificate, for receivers that ask for one",
    )
    syslog.add_argument("--syslog-key", type=Path, metavar="FILE", help="its private key")
    syslog.add_argument(
        "--syslog-server-name",
        metavar="NAME",
        help="the name the receiver's certificate must carry (default HOST)",
    )
    syslog.add_argument(
        "--syslog-facility",
        choices=tuple(FACILITIES),
        default="local0",
        help="syslog facility (default local0)",
    )
    parser.add_argument(
        "--allowlist",
        action="append",
        default=[],
        metavar="JSON",
        help="export only flows matching one of these FlowFilters (repeatable)",
    )
    parser.add_argument(
        "--denylist",
        action="append",
        default=[],
        metavar="JSON",
        help="leave out flows matching one of these FlowFilters (repeatable)",
    )
    parser.add_argument(
        "--field-mask",
        action="append",
        default=[],
        metavar="PATHS",
        help="export only these Flow fields, comma or space separated",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where the resume point is kept (default $XDG_STATE_HOME/flowscope/export)",
    )
    parser.add_argument(
        "--since",
        default=None,
        metavar="TIME",
        help="on the first start only, begin at this time or this long ago "
        "(default now); later starts resume where the export stopped",
    )
    config.add_config_flag(parser, in_subcommand=True)
    add_server_flags(parser)
    parser.set_defaults(func=run)


def build_request(
    allowlist: list[str], denylist: list[str], field_mask: list[str]
) -> observer_pb2.GetFlowsRequest:
    """The filters and the mask of the export's GetFlows request; FilterError or InputError
    naming the flag of a bad one."""
    whitelist = parse_raw_filters("--allowlist", allowlist)
    blacklist = parse_raw_filters("--denylist", denylist)
    for flag, filters in (("--allowlist", whitelist), ("--denylist", blacklist)):
        try:
            compile_predicate(filters, ())
        except FilterError as err:
            raise FilterError(flag, err.value, f"{err.field}: {err.problem}") from None
    paths = [path for text in field_mask for path in text.replace(",", " ").split()]
    mask = FieldMask(paths=paths + [p for p in CURSOR_PATHS if p not in paths] if paths else [])
    FlowMask.compile(mask, "--field-mask")
    return observer_pb2.GetFlowsRequest(whitelist=whitelist, blacklist=blacklist, field_mask=mask)


def build_sink(args: argparse.Namespace) -> Sink:
    """The sink the flags name; InputError for flags that do not fit it."""
    for flags, sink in ((SYSLOG_FLAGS, "syslog"), (FILE_FLAGS, "file")):
        given = [f"--{flag.replace('_', '-')}" for flag in flags if getattr(args, flag)]
        if given and args.sink != sink:
            verb = "needs" if len(given) == 1 else "need"
            raise InputError(f"{', '.join(given)} {verb} --sink {sink}")
    if args.sink == "file":
        if args.file is None:
            raise InputError("--sink file needs --file PATH")
        return FileSink(
            RotatingFile(
                args.file, int(args.max_size_mb * MEGABYTE), args.max_backups, args.compress
            )
        )
    if args.sink == "syslog":
        if not args.syslog_address:
            raise InputError("--sink syslog needs --syslog-address HOST:PORT")
        tls_files = [flag for flag in SYSLOG_FLAGS[2:] if getattr(args, flag)]
        if tls_files and not args.syslog_tls:
            raise InputError(f"--{tls_files[0].replace('_', '-')} needs --syslog-tls")
        return SyslogSink(
            SyslogConfig(
                address=args.syslog_address,
                facility=args.syslog_facility,
                tls=args.syslog_tls,
                ca_file=args.syslog_ca,
                server_name=args.syslog_server_name,
                cert_file=args.syslog_cert,
                key_file=args.syslog_key,
            )
        )
    return StdoutSink()


def run(args: argparse.Namespace) -> int:
    request = build_request(args.allowlist, args.denylist, args.field_mask)
    start_ns = time.time_ns() if args.since is None else parse_time(args.since).ToNanoseconds()
    options = ServerOptions.from_settings(config.resolve(args), args)
    state = StateFile(args.state_dir or default_state_dir())
    sink = build_sink(args)
    try:
        exporter = Exporter(
            lambda: connect(options), request, sink, state, start_ns, stop=stop_on_signals()
        )
        exporter.run()
    finally:
        sink.close()
    return 0
