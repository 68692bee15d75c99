"""Aggregates: the rollups answer what the raw table answers, the smallest table
that can is chosen, and top talkers and verdicts by policy count right."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_support import config, drop, realistic, running

from flowscope.common import schema
from flowscope.proto.flow import flow_pb2
from flowscope.relay.store import Store

pytestmark = pytest.mark.store

HOUR = 3_600_000_000_000
FLOWS = realistic(3_000, hours_ago=3)
START = FLOWS[0].time.seconds // 3600 * HOUR
END = START + 2 * HOUR


@pytest.fixture(scope="module")
def store(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    for index, flow in enumerate(FLOWS):  # some bytes to sum
        flow.counters.bytes_forward = 100 + index % 7
    settings = config(backend, Path(tmp_path_factory.mktemp("aggregates")))
    with running(settings) as opened:
        opened.write(FLOWS)
        assert opened.drain()
        yield opened
    drop(settings)


MINUTE = 60_000_000_000
# (whitelist, blacklist, the tables answering a range on whole minutes, on whole hours)
FILTERS = [
    ([], [], "map_edges_1m", "edges_1h"),
    (
        [flow_pb2.FlowFilter(source_workload=[flow_pb2.Workload(name="cart")])],
        [],
        "map_edges_1m",
        "edges_1h",
    ),
    (
        [
            flow_pb2.FlowFilter(verdict=[flow_pb2.DROPPED]),
            flow_pb2.FlowFilter(destination_port=["53"]),
        ],
        [],
        "map_edges_1m",
        "edges_1h",
    ),
    # protocol reads the L7 protocol too, which the map rollup leaves out.
    ([], [flow_pb2.FlowFilter(protocol=["udp"])], "edges_1m", "edges_1h"),
    # The web UI's map: replies left out, unknown reply flags kept.
    ([], [flow_pb2.FlowFilter(reply=[True])], "map_edges_1m", "map_edges_1m"),
    ([flow_pb2.FlowFilter(reply=[False])], [], "map_edges_1m", "map_edges_1m"),
    ([flow_pb2.FlowFilter(traffic_direction=[flow_pb2.INGRESS])], [], "edges_1m", "edges_1h"),
    ([flow_pb2.FlowFilter(node_name=["prod/worker-a"])], [], "edges_1m", "edges_1h"),
]


@pytest.mark.parametrize("grouping", ["workload", "namespace"])
@pytest.mark.parametrize(("whitelist", "blacklist", "minute_table", "hour_table"), FILTERS)
def test_rollup_edges_equal_raw_edges(
    store: Store,
    grouping: str,
    whitelist: list[flow_pb2.FlowFilter],
    blacklist: list[flow_pb2.FlowFilter],
    minute_table: str,
    hour_table: str,
) -> None:
    # Raw answers from START + 1 ns equal those from START: no flow falls on START.
    assert all(flow.time.ToNanoseconds() != START for flow in FLOWS)
    minutes = store.queries.edges(START, END - MINUTE, whitelist, blacklist, grouping)
    raw_minutes = store.queries.edges(START + 1, END - MINUTE, whitelist, blacklist, grouping)
    assert minutes.table.endswith(f".{minute_table}")
    assert raw_minutes.table.endswith(".flows")
    assert minutes.rows == raw_minutes.rows
    assert minutes.rows
    hourly = store.queries.edges(START, END, whitelist, blacklist, grouping)
    raw = store.queries.edges(START + 1, END, whitelist, blacklist, grouping)
    assert hourly.table.endswith(f".{hour_table}")
    assert hourly.rows == raw.rows
    assert sum(edge.flows for edge in hourly.rows) <= len(FLOWS)


def test_raw_table_serves_what_the_rollups_lack(store: Store) -> None:
    labels = [flow_pb2.FlowFilter(source_label=["k8s:app=cart"])]
    assert store.queries.edges(START, END, labels).table.endswith(".flows")
    pods = [flow_pb2.FlowFilter(source_pod=["shop/"])]
    assert store.queries.edges(START, END, pods).table.endswith(".flows")
    assert store.queries.edges(START, END, grouping="pod").table.endswith(".flows")
    assert store.queries.top_talkers(START, END, grouping="pod").table.endswith(".flows")


def test_edges_count_every_flow_by_verdict(store: Store) -> None:
    edges = store.queries.edges(START, END, grouping="namespace").rows
    verdicts: Counter[str] = Counter()
    for edge in edges:
        verdicts.update(edge.verdicts)
    assert dict(verdicts) == dict(Counter(flow_pb2.Verdict.Name(f.verdict) for f in FLOWS))
    assert sum(edge.bytes for edge in edges) == sum(f.counters.bytes_forward for f in FLOWS)


@pytest.mark.parametrize("by", ["flows", "bytes"])
def test_top_talkers_by_namespace(store: Store, by: str) -> None:
    talkers = store.queries.top_talkers(START, END, grouping="namespace", by=by, limit=3).rows
    flows: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for flow in FLOWS:
        name = flow.source.namespace or f"identity:{flow.source.identity}"
        flows[name] += 1
        sizes[name] += flow.counters.bytes_forward
    ranking = flows if by == "flows" else sizes
    expected = sorted(ranking, key=lambda name: (-ranking[name], name))[:3]
    assert [(t.name, t.flows, t.bytes) for t in talkers] == [
        (name, flows[name], sizes[name]) for name in expected
    ]


def test_verdicts_by_policy(store: Store) -> None:
    counts = store.queries.verdicts_by_policy(START, END).rows
    expected: Counter[tuple[str, str]] = Counter()
    for flow in FLOWS:
        policies = [
            f"{p.namespace}/{p.name}"
            for field in (
                "egress_allowed_by",
                "ingress_allowed_by",
                "egress_denied_by",
                "ingress_denied_by",
            )
            for p in getattr(flow, field)
        ] or [""]
        for policy in policies:
            expected[(flow_pb2.Verdict.Name(flow.verdict), policy)] += 1
    assert {(c.verdict, c.policy): c.flows for c in counts} == dict(expected)


def test_bad_grouping_is_refused(store: Store) -> None:
    with pytest.raises(
        Exception, match="group by 'node': expected one of pod, workload, namespace"
    ):
        store.queries.edges(START, END, grouping="node")


def test_edges_survive_merges(store: Store) -> None:
    before = store.queries.edges(START, END).rows
    store.optimize()  # SummingMergeTree folds rows of the same edge together
    assert store.queries.edges(START, END).rows == before


def test_load_inserts_past_the_writer(store: Store) -> None:
    extra = realistic(10, hours_ago=6)
    for flow in extra:
        flow.node_name = "bulk/node"
    store.load(schema.flows_to_arrow(extra))
    (row,) = store.select(
        f"SELECT count() FROM {store.layout.name('flows')} WHERE node_name = 'bulk/node'", {}
    )
    assert row[0] == 10


def test_namespaces_since(store: Store) -> None:
    expected = sorted(
        {
            (endpoint.cluster_name, endpoint.namespace)
            for flow in FLOWS
            for endpoint in (flow.source, flow.destination)
            if endpoint.namespace
        }
    )
    assert store.queries.namespaces(START) == expected
    assert store.queries.namespaces(END + HOUR) == []
