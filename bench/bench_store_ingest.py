"""Store ingest: flows/s through the store writer into embedded chDB.

Pre-builds collector-sized batches of bench/flowgen's realistic flows (numbered
per node, with uuids derived from node and sequence as collectors make them,
dated now), serialized as collectors send them, then times
Store.write_serialized() of every batch until the writer has inserted them all
(--objects: Store.write() of Flow messages, which serializes them first), and
reports flows/s, the process's CPU seconds per second, and the Python share per
flow (received.row alone: remainder and landing row; the rest is the engine's).

    bench/run store-ingest [--flows 200000] [--batch 50000] [--objects]
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
from flowscope.relay.store import Store, StoreConfig, received  # noqa: E402


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def realistic_flows(count: int, seed: int = 1) -> list[flow_pb2.Flow]:
    """count flowgen flows, numbered per node with derived uuids, ending about now."""
    flows = [response.flow for response in flowgen.flows(count, seed)]
    shift = int(time.time()) - flows[-1].time.seconds - 1
    sequences: dict[str, int] = {}
    for flow in flows:
        sequence = sequences.get(flow.node_name, 0) + 1
        sequences[flow.node_name] = sequence
        flow.node_sequence = sequence
        flow.uuid = schema.derived_uuid(flow.node_name, sequence)
        flow.time.seconds += shift
    return flows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--objects", action="store_true", help="write Flow messages")
    args = parser.parse_args()
    flows = realistic_flows(args.flows)
    serialized = [flow.SerializeToString() for flow in flows]
    source = flows if args.objects else serialized
    batches = [source[i : i + 1000] for i in range(0, len(source), 1000)]  # collector-sized
    print(f"cpu: {cpu_model()}, {os.cpu_count()} cores; {len(flows)} flows")

    sample = serialized[:50_000]
    started = time.process_time()
    for flow in sample:
        received.row(flow)
    convert = (time.process_time() - started) / len(sample)
    print(f"Python per flow (received.row): {convert * 1e6:.1f} µs CPU ({1 / convert:,.0f}/s)")

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
        write = store.write if args.objects else store.write_serialized
        for batch in batches:
            write(batch)  # type: ignore[arg-type]
        store.drain(600)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        counters = store.counters()
        store.stop()
    print(
        f"ingest: {counters.writer.stored:,} flows in {wall:.2f} s = "
        f"{counters.writer.stored / wall:,.0f} flows/s, {counters.writer.inserts} inserts,"
        f" CPU {cpu:.2f} s ({cpu / wall:.2f} cores)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
