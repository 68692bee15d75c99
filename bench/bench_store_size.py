"""Store size: bytes on disk per flow in the raw table (with its indexes) after
merges, on bench/flowgen's realistic flows; rollups and the largest columns
reported separately.

    bench/run store-size [--flows 300000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_store_ingest import collector_batches, cpu_model, realistic_flows  # noqa: E402

from flowscope.relay.store import Store, StoreConfig  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=300_000)
    args = parser.parse_args()
    flows = realistic_flows(args.flows)
    print(f"cpu: {cpu_model()}; {len(flows):,} flows")
    with tempfile.TemporaryDirectory() as directory:
        config = StoreConfig(
            dsn=f"chdb://{directory}/db",
            spool_dir=Path(directory) / "s",
            queue_max_batches=len(flows) // 1000 + 1,
        )
        store = Store(config)
        store.start()
        for batch in collector_batches(flows):  # through the writer, as the relay ingests
            store.write_batch(batch)
        store.drain(600)
        store.optimize()
        parts = store.select(
            "SELECT table, sum(rows), sum(bytes_on_disk), sum(secondary_indices_compressed_bytes)"
            " FROM system.parts WHERE database = 'flowscope' AND active GROUP BY table"
            " ORDER BY table",
            {},
        )
        for table, rows, size, indexes in parts:
            print(
                f"{table:14s} {rows:>10,} rows {size:>12,} bytes"
                f" = {size / len(flows):6.2f} bytes/flow (skip indexes {indexes / len(flows):.2f})"
            )
        columns = store.select(
            "SELECT name, sum(data_compressed_bytes) AS size FROM system.columns"
            " WHERE database = 'flowscope' AND table = 'flows' GROUP BY name"
            " ORDER BY size DESC LIMIT 12",
            {},
        )
        print("largest raw columns (bytes/flow):")
        print("  " + ", ".join(f"{name} {size / len(flows):.2f}" for name, size in columns))
        store.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
