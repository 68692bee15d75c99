"""Replay of a JSON-lines flow file through a filter and the compact printer.

Generates (once, cached under bench/data/) a file of realistic flows about
1.6 KB a line, then times `flowscope observe --input-file FILE` printing
compact lines with colors off, to /dev/null, without a filter and with a
verdict filter and a namespace filter, on one core. Prints flows per second.

    bench/run replay [--flows 1000000]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import flowgen  # noqa: E402

CASES = {
    "no filter": [],
    "--verdict FORWARDED": ["--verdict", "FORWARDED"],
    "--namespace shop --protocol tcp": ["--namespace", "shop", "--protocol", "tcp"],
}


def flow_file(count: int) -> Path:
    path = HERE / "data" / f"flows-{count}-seed1.jsonl"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        partial = path.with_suffix(".partial")
        with partial.open("w") as out:
            for response in flowgen.flows(count, seed=1):
                out.write(flowgen.jsonlines.dumps(response))
                out.write("\n")
        partial.rename(path)
    return path


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=1_000_000)
    args = parser.parse_args()
    path = flow_file(args.flows)
    size = path.stat().st_size
    print(f"file: {path.name}, {args.flows:,} flows, {size / args.flows:,.0f} bytes a line")
    print(f"cpu: {cpu_model()}, pinned to one core")
    flowscope = Path(sys.executable).parent / "flowscope"
    for label, flags in CASES.items():
        command = ["taskset", "-c", "0", str(flowscope), "observe", "--input-file", str(path),
                   "-o", "compact", "--color", "never", *flags]
        start = time.perf_counter()
        with open(os.devnull, "w") as sink:
            done = subprocess.run(command, stdout=sink, stderr=subprocess.PIPE, check=False)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            print(f"{label}: failed: {done.stderr.decode().strip()}")
            return 1
        print(f"replay {label:<34} {elapsed:7.2f} s  {args.flows / elapsed:9,.0f} flows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
