"""JSON lines writing: µs per flow for jsonlines.dumps against json_format, and the export's part.

On bench/flowgen's realistic flows (about 1.5 KB a line) it times, per flow, the compiled
writer (`jsonlines.dumps`) and the json_format path it replaced (MessageToDict, then
json.dumps with compact separators), and `flowscope export`'s per-flow record step
(cli/exporters/records.record_of: ExportEvent conversion, the JSON line and the cursor
fields) with either writer. Each figure is the best of several rounds, on one core.
It also checks that both writers give the same text for every flow.

    bench/run jsonlines [--flows 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar
from unittest import mock

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import flowgen  # noqa: E402
from bench_store_ingest import cpu_model  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from google.protobuf.message import Message  # noqa: E402

from flowscope.cli.exporters import records  # noqa: E402
from flowscope.common import jsonlines  # noqa: E402
from flowscope.proto.observer import observer_pb2  # noqa: E402


def json_format_dumps(message: Message) -> str:
    """The writer jsonlines.dumps replaced."""
    obj = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


Item = TypeVar("Item")


def best_us_per_item(work: Callable[[Item], object], items: Sequence[Item], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for item in items:
            work(item)
        best = min(best, time.perf_counter() - started)
    return best / len(items) * 1e6


Response = observer_pb2.GetFlowsResponse


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    responses: list[Response] = []
    for sequence, response in enumerate(flowgen.flows(args.flows, seed=1), start=1):
        response.flow.node_sequence = sequence
        responses.append(response)
    differing = sum(jsonlines.dumps(r) != json_format_dumps(r) for r in responses)
    size = sum(len(jsonlines.dumps(r)) for r in responses) / len(responses)
    print(
        f"cpu: {cpu_model()}; {len(responses)} flows, {size:.0f} bytes a line; "
        f"lines differing from json_format's: {differing}"
    )
    dumps_before = best_us_per_item(json_format_dumps, responses, args.rounds)
    dumps_after = best_us_per_item(jsonlines.dumps, responses, args.rounds)
    with mock.patch.object(records, "dumps", json_format_dumps):
        record_before = best_us_per_item(records.record_of, responses, args.rounds)
    record_after = best_us_per_item(records.record_of, responses, args.rounds)
    print(f"{'µs per flow':32} {'json_format':>12} {'compiled':>12} {'speed-up':>9}")
    for name, before, after in (
        ("jsonlines.dumps", dumps_before, dumps_after),
        ("export record (record_of)", record_before, record_after),
    ):
        print(f"{name:32} {before:12.1f} {after:12.1f} {before / after:8.1f}x")
    print(f"export per-flow time saved by the writer: {record_before - record_after:.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
