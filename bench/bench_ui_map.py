"""Web UI service map: /api/map latency over the last hour of 10,000,000 stored flows,
and in headless Chromium the first render and the full layout of a map of 1,000
workloads and 10,000 edges.

The API part loads bench/flowgen's realistic flows, replicated as Arrow columns and
spread over the last hour, into embedded chDB, serves them through a relay (with its
Aggregates service) and the UI, and times GET /api/map (first, cold call and the
median of 5 more) for the whole hour (answered by the map rollup), by pod, and
with a label filter (both answered by the raw table). The browser part, in a second
process (one chDB per process), stores one flow per edge of a generated cluster and
times the page: the API call, the first render (namespaces collapsed), and the
layout of every workload once all namespaces are opened, then the same after a
reload, when the page has kept the layout (a screenshot goes to test-artifacts/).

    bench/run ui-map [--flows 10000000] [--base 100000] [--workloads 1000] [--edges 10000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "ui"))

import grpc  # noqa: E402
import httpx  # noqa: E402
import pyarrow  # noqa: E402
import pyarrow.compute  # noqa: E402
from bench_store_ingest import cpu_model, realistic_flows  # noqa: E402
from relay_process import open_store, start_relay  # noqa: E402
from servers import UiServer  # noqa: E402

from flowscope.common import schema  # noqa: E402
from flowscope.proto.aggregate import aggregate_pb2, aggregate_pb2_grpc  # noqa: E402
from flowscope.proto.flow import flow_pb2  # noqa: E402
from flowscope.relay.store import Store, ddl  # noqa: E402

SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 3600 * SECOND
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = HERE.parent / "test-artifacts"


def spread(base: pyarrow.Table, start_ns: int, window_ns: int, sequences: int) -> pyarrow.Table:
    """base with its times scaled into [start_ns, start_ns + window_ns) and its
    sequences moved by `sequences`."""
    times = base.column("time").cast(pyarrow.int64())
    first = pyarrow.compute.min(times).as_py()
    span = max(1, pyarrow.compute.max(times).as_py() - first + 1)
    offsets = pyarrow.compute.subtract(times, first).cast(pyarrow.float64())
    scaled = pyarrow.compute.floor(pyarrow.compute.multiply(offsets, window_ns / span))
    scaled = scaled.cast(pyarrow.int64())
    moved = pyarrow.compute.add(scaled, start_ns).cast(pyarrow.timestamp("ns", "UTC"))
    table = base.set_column(base.schema.get_field_index("time"), "time", moved)
    return table.set_column(
        base.schema.get_field_index("node_sequence"),
        "node_sequence",
        pyarrow.compute.add(
            base.column("node_sequence"), pyarrow.scalar(sequences, pyarrow.uint64())
        ),
    )


def timed_get(url: str, params: dict[str, str]) -> tuple[float, float, dict[str, object]]:
    """(cold, median of 5 hot) seconds of GET url, and the last answer."""
    runs = []
    answer: dict[str, object] = {}
    for _ in range(6):
        started = time.perf_counter()
        response = httpx.get(url, params=params, timeout=120)
        runs.append(time.perf_counter() - started)
        answer = response.json()
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} {params}: {response.status_code} {answer}")
    return runs[0], statistics.median(runs[1:]), answer


def rollup_latency(port: int) -> None:
    """The relay's ServiceMap over the last hour without the UI's reply filter: what the
    map rollup answers alone, without the UI."""
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = aggregate_pb2_grpc.AggregatesStub(channel)
    until = time.time_ns() // MINUTE * MINUTE + MINUTE
    request = aggregate_pb2.AggregateRequest(since_ns=until - HOUR, until_ns=until)
    runs = []
    answer = aggregate_pb2.ServiceMapResponse()
    for _ in range(6):
        started = time.perf_counter()
        answer = stub.ServiceMap(request, timeout=120)
        runs.append(time.perf_counter() - started)
    channel.close()
    print(
        f"relay ServiceMap last hour, replies included ({answer.table}): {len(answer.edges)}"
        f" edges, cold {runs[0] * 1e3:.0f} ms, hot {statistics.median(runs[1:]) * 1e3:.0f} ms"
    )


def load_hour(store: Store, total: int, base_count: int) -> None:
    flows = realistic_flows(base_count)
    base = schema.flows_to_arrow(flows)
    copies = total // base_count
    window = HOUR // copies
    now = time.time_ns()
    started = time.perf_counter()
    for copy in range(copies):
        start = now - HOUR + copy * window
        store._client.insert_arrow(
            store.layout.name(ddl.RAW), spread(base, start, window, copy * base_count)
        )
    print(
        f"loaded {copies * base_count:,} flows over the last hour"
        f" in {time.perf_counter() - started:.1f} s"
    )


def api_latency(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as directory:
        store = open_store(Path(directory))
        relay = None
        ui = None
        try:
            load_hour(store, args.flows, args.base)
            relay = start_relay(store, ())
            ui = UiServer(f"127.0.0.1:{relay.port}")
            cases = (
                ("last hour, workloads", {"range": "1h"}),
                ("last hour, pods", {"range": "1h", "group": "pod"}),
                ("last hour, label filter", {"range": "1h", "q": "label=k8s:app=frontend"}),
            )
            for name, params in cases:
                try:
                    cold, hot, answer = timed_get(ui.url + "/api/map", params)
                except RuntimeError as error:
                    print(error)
                    continue
                edges = answer["edges"]
                assert isinstance(edges, list)
                print(
                    f"GET /api/map {name} ({answer['table']}): {len(edges)} edges,"
                    f" cold {cold * 1e3:.0f} ms, hot {hot * 1e3:.0f} ms"
                )
            rollup_latency(relay.port)
        finally:
            if ui is not None:
                ui.stop()
            if relay is not None:
                relay.stop()
            store.stop()


def cluster_flows(workloads: int, edges: int, namespaces: int) -> list[flow_pb2.Flow]:
    """One flow per edge between `workloads` workloads spread over `namespaces`
    namespaces; one edge in 20 is dropped."""
    per_namespace = workloads // namespaces
    now = time.time_ns()
    flows = []
    for index in range(edges):
        source = index % workloads
        destination = (source * 7 + 13 + index // workloads * 31) % workloads
        ends = []
        for number in (source, destination):
            namespace = f"ns-{number // per_namespace:02d}"
            name = f"app-{number:04d}"
            ends.append(
                flow_pb2.Endpoint(
                    namespace=namespace,
                    pod_name=f"{name}-abcde",
                    identity=1000 + number,
                    workloads=[flow_pb2.Workload(name=name, kind="Deployment")],
                )
            )
        flow = flow_pb2.Flow(
            uuid=f"bench-{index}",
            node_name="bench-node",
            node_sequence=index + 1,
            verdict=flow_pb2.DROPPED if index % 20 == 0 else flow_pb2.FORWARDED,
            source=ends[0],
            destination=ends[1],
            IP=flow_pb2.IP(source="10.1.0.1", destination="10.1.0.2", ipVersion=flow_pb2.IPv4),
            l4=flow_pb2.Layer4(
                TCP=flow_pb2.TCP(source_port=40000, destination_port=8000 + index // workloads)
            ),
        )
        flow.time.FromNanoseconds(now - 600 * SECOND + index * 1000)
        flows.append(flow)
    return flows


def page_render(args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        store = open_store(Path(directory))
        store.write(cluster_flows(args.workloads, args.edges, args.namespaces))
        store.drain()
        relay = start_relay(store, ())
        ui = UiServer(f"127.0.0.1:{relay.port}")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                started = time.perf_counter()
                page.goto(ui.url + "/?range=1h")
                page.wait_for_selector("body[data-loaded]", timeout=120_000)
                loaded = time.perf_counter() - started
                timings = page.evaluate("window.flowscope.timings")
                graph = page.evaluate("window.flowscope.graph.timings")
                shown = page.evaluate("window.flowscope.graph.nodeIds().length")
                print(
                    f"map of {args.workloads} workloads, {args.edges} edges:"
                    f" page loaded in {loaded * 1e3:.0f} ms; API {timings['map_fetch_ms']:.0f} ms,"
                    f" first render {timings['map_render_ms']:.0f} ms"
                    f" ({shown} nodes: namespaces collapsed; layout {graph['layout_ms']:.0f} ms)"
                )
                page.screenshot(path=str(ARTIFACTS / "bench-ui-map-collapsed.png"))
                started = time.perf_counter()
                page.evaluate("window.flowscope.graph.expandAll()")
                expanded = time.perf_counter() - started
                graph = page.evaluate("window.flowscope.graph.timings")
                shown = page.evaluate("window.flowscope.graph.nodeIds().length")
                print(
                    f"all namespaces opened ({shown} nodes): layout {graph['layout_ms']:.0f} ms,"
                    f" drawing {graph['elements_ms']:.0f} ms, total {expanded * 1e3:.0f} ms"
                )
                page.reload()
                page.wait_for_selector("body[data-loaded]", timeout=120_000)
                timings = page.evaluate("window.flowscope.timings")
                page.evaluate("window.flowscope.graph.expandAll()")
                graph = page.evaluate("window.flowscope.graph.timings")
                print(
                    f"reloaded, layout kept: first render {timings['map_render_ms']:.0f} ms,"
                    f" all namespaces opened: layout {graph['layout_ms']:.0f} ms"
                )
                page.screenshot(path=str(ARTIFACTS / "bench-ui-map.png"))
                browser.close()
        finally:
            ui.stop()
            relay.stop()
            store.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=10_000_000)
    parser.add_argument("--base", type=int, default=100_000)
    parser.add_argument("--workloads", type=int, default=1000)
    parser.add_argument("--edges", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--part", choices=("all", "api", "page"), default="all")
    args = parser.parse_args()
    if args.part != "page":
        print(f"cpu: {cpu_model()}")
    if args.part in ("all", "api"):
        api_latency(args)
    if args.part == "all":
        # The page part opens its own store: chDB holds one engine per process.
        command = [sys.executable, __file__, "--part", "page"]
        for name in ("workloads", "edges", "namespaces"):
            command += [f"--{name}", str(getattr(args, name))]
        return subprocess.run(command, check=False).returncode
    if args.part == "page":
        page_render(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
