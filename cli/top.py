"""`flowscope top`: who sends the most flows or bytes, from the relay's store.

The relay counts (its Aggregates service, over the store's rollups where they can answer);
nothing streams raw flows here. Filter flags are observe's, with the same meaning.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Final, TextIO

from flowscope.cli import config
from flowscope.cli.client import add_server_flags
from flowscope.cli.observe.filter_flags import FLAGS_BY_NAME
from flowscope.cli.observe.filters import compile_flags
from flowscope.cli.observe.flags import add_filter_flags
from flowscope.cli.printers.tabwriter import TabWriter
from flowscope.cli.status import add_output_flag, server
from flowscope.common.errors import FilterError
from flowscope.common.filters import compile_predicate
from flowscope.common.jsonlines import dumps
from flowscope.common.timeparse import parse_time
from flowscope.proto.aggregate import aggregate_pb2, aggregate_pb2_grpc

GROUPINGS: Final = {
    "workload": aggregate_pb2.WORKLOAD,
    "pod": aggregate_pb2.POD,
    "namespace": aggregate_pb2.NAMESPACE,
}

EXAMPLES = """examples:
  flowscope top                                  # busiest workloads of the last hour, by flows
  flowscope top --by bytes --group namespace --since 24h
  flowscope top --group pod --verdict DROPPED --limit 20
"""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "top",
        help="the sources sending the most flows or bytes, from the relay's history",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--by", choices=("flows", "bytes"), default="flows",
                        help="rank by flows or bytes (default flows)")
    parser.add_argument("--group", choices=tuple(GROUPINGS), default="workload",
                        help="name sources by workload, pod or namespace (default workload)")
    parser.add_argument("--since", default="1h", metavar="TIME",
                        help="from this time or this long ago (default 1h)")
    parser.add_argument("--until", metavar="TIME", help="up to this time (default now)")
    parser.add_argument("--limit", type=int, default=10, help="how many (default 10)")
    add_output_flag(parser, ("table", "json"), "table")
    config.add_config_flag(parser, in_subcommand=True)
    add_server_flags(parser)
    add_filter_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise FilterError("--limit", args.limit, "expected a positive number")
    compiled = compile_flags(args.filter_flags, FLAGS_BY_NAME)
    try:
        compile_predicate(compiled.whitelist, compiled.blacklist)  # bad values, named here
    except FilterError as err:
        raise compiled.name_flag(err) from None
    now_ns = time.time_ns()
    since = parse_time(args.since, now_ns=now_ns)
    until = None if args.until is None else parse_time(args.until, now_ns=now_ns)
    until_ns = now_ns if until is None else until.ToNanoseconds()
    request = aggregate_pb2.TopTalkersRequest(
        range=aggregate_pb2.AggregateRequest(
            since_ns=since.ToNanoseconds(),
            until_ns=until_ns,
            whitelist=compiled.whitelist,
            blacklist=compiled.blacklist,
            grouping=GROUPINGS[args.group],
        ),
        by=args.by,
        limit=args.limit,
    )
    with server(args) as connected:
        answer, _ = connected.call(
            aggregate_pb2_grpc.AggregatesStub(connected.channel).TopTalkers, request
        )
    write_talkers(sys.stdout, args.output, answer)
    return 0


def write_talkers(out: TextIO, output: str, answer: aggregate_pb2.TopTalkersResponse) -> None:
    if output == "json":
        out.write(dumps(answer) + "\n")
        return
    table = TabWriter(out, minwidth=2, padding=3)
    table.write("SOURCE\tFLOWS\tBYTES\n")
    for talker in answer.talkers:
        table.write(f"{talker.name}\t{talker.flows:,}\t{talker.bytes:,}\n")
    table.flush()
