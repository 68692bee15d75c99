"""Store ingest: flows/s through the store writer into embedded chDB.

Pre-builds collector-sized batches of bench/flowgen's realistic flows, one node's flows in
sequence order each (numbered per node, with uuids derived from node and sequence as
collectors make them, dated as a cluster sending --rate flows/s in all would date them,
ending now), in FlowBatch wire as the relay receives them; then times Store.write_batch()
of every batch until the writer has inserted them all (--objects: Store.write() of the Flow
messages, which serializes them first), and reports flows/s and the process's CPU.
bench/run relay-ingest measures the whole relay.

    bench/run store-ingest [--flows 600000] [--batch 100000] [--rate 100000] [--objects]
    (--rate 0: flowgen's own spacing, a few hundred flows a second: 20 minutes in one go)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import flowgen  # noqa: E402

from flowscope.common import schema  # noqa: E402
from flowscope.proto.flow import flow_pb2  # noqa: E402
from flowscope.proto.stream import stream_pb2  # noqa: E402
from flowscope.relay.store import Store, StoreConfig  # noqa: E402
from flowscope.relay.store.received import Batch  # noqa: E402

COLLECTOR_BATCH = 1000


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def realistic_flows(count: int, rate: int | None = None, seed: int = 1) -> list[flow_pb2.Flow]:
    """count flowgen flows, numbered per node with derived uuids, ending about now:
    dated `rate` a second, or as flowgen spaces them (a few hundred a second)."""
    flows = [response.flow for response in flowgen.flows(count, seed)]
    shift = int(time.time()) - flows[-1].time.seconds - 1
    spacing = 1_000_000_000 // rate if rate else 0
    start = time.time_ns() - count * spacing
    sequences: dict[str, int] = {}
    for index, flow in enumerate(flows):
        sequence = sequences.get(flow.node_name, 0) + 1
        sequences[flow.node_name] = sequence
        flow.node_sequence = sequence
        flow.uuid = schema.derived_uuid(flow.node_name, sequence)
        if rate:
            flow.time.FromNanoseconds(start + index * spacing)
        else:
            flow.time.seconds += shift
    return flows


def collector_batches(flows: list[flow_pb2.Flow]) -> list[Batch]:
    """flows as their nodes would send them: per node, in batches of COLLECTOR_BATCH."""
    by_node: dict[str, list[flow_pb2.Flow]] = {}
    for flow in flows:
        by_node.setdefault(flow.node_name, []).append(flow)
    batches = []
    for node, own in by_node.items():
        for start in range(0, len(own), COLLECTOR_BATCH):
            chunk = own[start : start + COLLECTOR_BATCH]
            message = stream_pb2.EncodedFlowBatch(
                node_name=node,
                first_sequence=chunk[0].node_sequence,
                next_sequence=chunk[-1].node_sequence + 1,
                flows=[flow.SerializeToString() for flow in chunk],
            )
            batches.append(
                Batch(
                    message.SerializeToString(),
                    len(chunk),
                    node,
                    chunk[0].node_sequence,
                    chunk[-1].node_sequence,
                )
            )
    return sorted(batches, key=lambda batch: batch.first)  # the nodes interleaved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=600_000)
    parser.add_argument("--batch", type=int, default=100_000, help="the store's insert size")
    parser.add_argument(
        "--rate", type=int, default=100_000, help="flows/s the times imply; 0: flowgen's spacing"
    )
    parser.add_argument("--objects", action="store_true", help="write Flow messages")
    args = parser.parse_args()
    flows = realistic_flows(args.flows, args.rate)
    batches = collector_batches(flows)
    dated = f"{args.rate:,} flows/s" if args.rate else "flowgen's spacing"
    print(
        f"cpu: {cpu_model()}, {os.cpu_count()} cores; {len(flows):,} flows dated at {dated},"
        f" inserts of {args.batch:,}"
    )
    with tempfile.TemporaryDirectory() as directory:
        config = StoreConfig(
            dsn=f"chdb://{directory}/db",
            spool_dir=Path(directory) / "spool",
            batch_max_rows=args.batch,
            queue_max_batches=len(batches) + 1,
        )
        store = Store(config)
        store.start()
        cpu, wall = time.process_time(), time.perf_counter()
        if args.objects:
            for start in range(0, len(flows), COLLECTOR_BATCH):
                store.write(flows[start : start + COLLECTOR_BATCH])
        else:
            for batch in batches:
                store.write_batch(batch)
        store.drain(600)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        counters = store.counters()
        store.stop()
    stored = counters.writer.stored
    print(
        f"ingest: {stored:,} flows in {wall:.2f} s = {stored / wall:,.0f} flows/s,"
        f" {counters.writer.inserts} inserts, CPU {cpu:.2f} s ({cpu / wall:.2f} cores,"
        f" {cpu / max(stored, 1) * 1e6:.1f} µs a flow)"
    )
    return 0 if stored == len(flows) else 1


if __name__ == "__main__":
    sys.exit(main())
