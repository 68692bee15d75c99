"""Store query latency over 10,000,000 stored flows: the last 20 flows of one pod,
and the service-map edges of the last hour, all and as the web UI's map asks
(replies left out).

Builds the flows by replicating bench/flowgen's realistic flows as Arrow columns
with shifted times and sequences (flowgen is too slow for 10M), inserts them
into embedded chDB, then times each query (median of 5 hot runs, and the
first, cold one).

    bench/run store-query [--flows 10000000] [--base 100000] [--keep DIR]

--keep stores the flows in DIR and, when DIR already holds them, only queries.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import pyarrow  # noqa: E402
from bench_store_ingest import cpu_model, realistic_flows  # noqa: E402

from flowscope.common import schema  # noqa: E402
from flowscope.proto.flow import flow_pb2  # noqa: E402
from flowscope.relay.store import HistoryRequest, Store, StoreConfig  # noqa: E402

SECOND = 1_000_000_000


def shifted(base: pyarrow.Table, nanoseconds: int, sequences: int) -> pyarrow.Table:
    """base with times moved by nanoseconds and sequences by sequences."""
    time_index = base.schema.get_field_index("time")
    sequence_index = base.schema.get_field_index("node_sequence")
    times = pyarrow.compute.add(base.column("time").cast(pyarrow.int64()), nanoseconds)
    table = base.set_column(time_index, "time", times.cast(pyarrow.timestamp("ns", "UTC")))
    return table.set_column(
        sequence_index,
        "node_sequence",
        pyarrow.compute.add(
            base.column("node_sequence"), pyarrow.scalar(sequences, pyarrow.uint64())
        ),
    )


def timed(query: Callable[[], object]) -> tuple[float, float]:
    """(cold, median hot) seconds."""
    runs = []
    for _ in range(6):
        started = time.perf_counter()
        query()
        runs.append(time.perf_counter() - started)
    return runs[0], statistics.median(runs[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=10_000_000)
    parser.add_argument("--base", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="store directory to keep and reuse")
    args = parser.parse_args()
    flows = realistic_flows(args.base)
    base = schema.flows_to_arrow(flows)
    span = (flows[-1].time.ToNanoseconds() - flows[0].time.ToNanoseconds()) + SECOND
    copies = args.flows // args.base
    hours = span * copies / 3.6e12
    print(f"cpu: {cpu_model()}; {copies} copies of {args.base:,} flows over {hours:.1f} h")
    with tempfile.TemporaryDirectory() as scratch:
        directory = args.keep or Path(scratch)
        store = Store(StoreConfig(dsn=f"chdb://{directory}/db", spool_dir=directory / "spool"))
        store.start()
        covered = store.queries.covered()
        if covered is None or covered.flows < copies * args.base:
            started = time.perf_counter()
            for copy in range(copies):
                offset = copy - copies + 1  # the last copy ends now
                store.load(shifted(base, offset * span, copy * args.base))
            print(f"loaded {copies * args.base:,} flows in {time.perf_counter() - started:.1f} s")
            covered = store.queries.covered()
        assert covered is not None
        print(f"stored: {covered.flows:,} flows")
        pod = flows[-1].source
        name = f"{pod.namespace}/{pod.pod_name}"
        last_pod = HistoryRequest(
            number=20,
            whitelist=[
                flow_pb2.FlowFilter(source_pod=[name]),
                flow_pb2.FlowFilter(destination_pod=[name]),
            ],
        )
        history = store.queries.history(last_pod)
        cold, hot = timed(lambda: store.queries.history(last_pod))
        print(
            f"last 20 flows of pod {name}: {len(history.flows)} flows,"
            f" cold {cold * 1e3:.0f} ms, hot {hot * 1e3:.0f} ms"
        )
        until = covered.newest - covered.newest % (60 * SECOND) + 60 * SECOND
        since = until - 3600 * SECOND
        edges = store.queries.edges(since, until)
        cold, hot = timed(lambda: store.queries.edges(since, until))
        print(
            f"service-map edges of the last hour ({edges.table}): {len(edges.rows)} edges,"
            f" cold {cold * 1e3:.0f} ms, hot {hot * 1e3:.0f} ms"
        )
        replies = [flow_pb2.FlowFilter(reply=[True])]
        edges = store.queries.edges(since, until, blacklist=replies)
        cold, hot = timed(lambda: store.queries.edges(since, until, blacklist=replies))
        print(
            f"the web UI's map of the last hour, replies left out ({edges.table}):"
            f" {len(edges.rows)} edges, cold {cold * 1e3:.0f} ms, hot {hot * 1e3:.0f} ms"
        )
        raw_since = since + 1
        cold, hot = timed(lambda: store.queries.edges(raw_since, until))
        print(f"same from the raw table: cold {cold * 1e3:.0f} ms, hot {hot * 1e3:.0f} ms")
        store.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
