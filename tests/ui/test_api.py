"""The UI's JSON API against a relay and store holding the scenario's flows
(tests/ui/scenario.py): every endpoint, with exact answers."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from typing import Any

import httpx
import pytest
import scenario

from flowscope.common import jsonlines

MAP_NODES = [
    {"id": "identity:1", "label": "host", "namespace": "", "kind": "host"},
    {"id": "identity:2", "label": "world", "namespace": "", "kind": "world"},
    {"id": "ops/monitor", "label": "monitor", "namespace": "ops", "kind": "workload"},
    {"id": "shop/checkout", "label": "checkout", "namespace": "shop", "kind": "workload"},
    {"id": "shop/db", "label": "db", "namespace": "shop", "kind": "workload"},
    {"id": "shop/frontend", "label": "frontend", "namespace": "shop", "kind": "workload"},
]


def edge(source: str, destination: str, port: int, verdicts: dict[str, int]) -> dict[str, Any]:
    flows = sum(verdicts.values())
    classes = {"FORWARDED": "forwarded", "DROPPED": "dropped", "AUDIT": "audit"}
    return {
        "id": f"{source}>{destination}:{port}/TCP",
        "source": source,
        "destination": destination,
        "port": port,
        "protocol": "TCP",
        "flows": flows,
        "bytes": 2000 * flows,
        "verdicts": verdicts,
        "verdict": classes[next(iter(verdicts))] if len(verdicts) == 1 else "mixed",
    }


MAP_EDGES = [
    edge("shop/frontend", "shop/checkout", 8080, {"FORWARDED": 3}),
    edge("shop/checkout", "shop/db", 5432, {"FORWARDED": 2}),
    edge("shop/frontend", "shop/db", 5432, {"DROPPED": 2}),
    edge("identity:1", "shop/frontend", 8080, {"FORWARDED": 1}),
    edge("ops/monitor", "shop/frontend", 9090, {"AUDIT": 1}),
    edge("shop/frontend", "identity:2", 443, {"FORWARDED": 1}),
]


def get(ui: str, path: str, **params: str) -> httpx.Response:
    return httpx.get(ui + path, params=params, timeout=30)


def ok(ui: str, path: str, **params: str) -> Any:
    response = get(ui, path, **params)
    assert response.status_code == 200, response.text
    return response.json()


def test_map_has_every_endpoint_and_edge_with_counts_and_verdicts(ui: str) -> None:
    answer = ok(ui, "/api/map")
    assert answer["namespaces"] == ["ops", "shop"]
    assert answer["nodes"] == MAP_NODES
    assert answer["edges"] == MAP_EDGES
    # Replies are left out; the range is whole minutes: the map rollup answers.
    assert answer["table"] == "flowscope.map_edges_1m"
    assert answer["since_ns"] % 60_000_000_000 == 0
    assert answer["until_ns"] - answer["since_ns"] in (3_600_000_000_000, 3_660_000_000_000)


def test_map_by_namespace_merges_verdicts(ui: str) -> None:
    answer = ok(ui, "/api/map", group="namespace")
    assert [node["id"] for node in answer["nodes"]] == ["identity:1", "identity:2", "ops", "shop"]
    assert answer["edges"] == [
        edge("shop", "shop", 5432, {"FORWARDED": 2, "DROPPED": 2}),
        edge("shop", "shop", 8080, {"FORWARDED": 3}),
        edge("identity:1", "shop", 8080, {"FORWARDED": 1}),
        edge("ops", "shop", 9090, {"AUDIT": 1}),
        edge("shop", "identity:2", 443, {"FORWARDED": 1}),
    ]


def test_map_by_pod_names_pods(ui: str) -> None:
    answer = ok(ui, "/api/map", group="pod", q="verdict=dropped")
    assert answer["edges"] == [
        edge("shop/frontend-7d9f-abcde", "shop/db-0", 5432, {"DROPPED": 2}),
    ]


@pytest.mark.parametrize(
    ("params", "edge_ids"),
    [
        ({"q": "to:pod=shop/db"}, [MAP_EDGES[1]["id"], MAP_EDGES[2]["id"]]),
        ({"q": "verdict=dropped"}, [MAP_EDGES[2]["id"]]),
        ({"q": "!verdict=forwarded"}, [MAP_EDGES[2]["id"], MAP_EDGES[4]["id"]]),
        ({"q": "from:identity=host"}, [MAP_EDGES[3]["id"]]),
        ({"q": "to:port=443"}, [MAP_EDGES[5]["id"]]),
        ({"q": "label=k8s:app=monitor"}, [MAP_EDGES[4]["id"]]),
        ({"q": "to:dns=*.example.com"}, [MAP_EDGES[5]["id"]]),
        ({"ns": "ops"}, [MAP_EDGES[4]["id"]]),
        ({"ns": "ops", "q": "verdict=forwarded"}, []),
    ],
)
def test_filters_and_namespaces_narrow_the_map(
    ui: str, params: dict[str, str], edge_ids: list[str]
) -> None:
    answer = ok(ui, "/api/map", **params)
    assert [item["id"] for item in answer["edges"]] == edge_ids


def _rows_without_time(entries: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{k: v for k, v in entry["row"].items() if k != "time"} for entry in entries]


DROPPED_ROW = {
    "source_pod": "shop/frontend-7d9f-abcde",
    "source_ip": "10.10.0.11",
    "source_identity": "1001",
    "destination_pod": "shop/db-0",
    "destination_ip": "10.10.0.13",
    "destination_identity": "1003",
    "destination_port": "5432/TCP",
    "l7": "",
    "direction": "egress",
    "verdict": "dropped",
    "tcp_flags": "SYN",
    "auth": "",
}


def test_flows_are_the_last_of_the_range_oldest_first(ui: str) -> None:
    answer = ok(ui, "/api/flows")
    flows = answer["flows"]
    assert len(flows) == 11
    times = [entry["row"]["time"] for entry in flows]
    assert times == sorted(times)
    assert [entry["flow"]["node_name"] for entry in flows] == [scenario.HISTORY_NODE] * 11
    # The table has replies; the map leaves them out.
    reply = flows[-1]["row"]
    assert (reply["source_pod"], reply["destination_port"], reply["tcp_flags"]) == (
        "shop/checkout-5c8b-fghij",
        "40080/TCP",
        "SYN, ACK",
    )
    assert answer["columns"][0] == ["time", "Timestamp"]
    assert [key for key, _ in answer["columns"]] == ["time", *DROPPED_ROW]
    assert ok(ui, "/api/flows", number="3")["flows"] == flows[-3:]


def test_clicking_an_edge_lists_its_flows(ui: str) -> None:
    answer = ok(ui, "/api/flows", edge="shop/frontend>shop/db:5432/TCP")
    assert _rows_without_time(answer["flows"]) == [DROPPED_ROW, DROPPED_ROW]
    flow = answer["flows"][0]["flow"]
    assert flow["verdict"] == "DROPPED"
    assert flow["ingress_denied_by"] == [
        {"namespace": "shop", "name": "db-ingress", "kind": "NetworkPolicy"}
    ]


def test_clicking_a_node_lists_flows_from_and_to_it(ui: str) -> None:
    answer = ok(ui, "/api/flows", node="identity:2")
    assert [entry["row"]["destination_pod"] for entry in answer["flows"]] == ["world"]
    answer = ok(ui, "/api/flows", node="shop/db")
    assert [entry["row"]["verdict"] for entry in answer["flows"]] == [
        "forwarded",
        "forwarded",
        "dropped",
        "dropped",
    ]
    # The filter box narrows the node's flows further.
    answer = ok(ui, "/api/flows", node="shop/db", q="from:pod=shop/checkout")
    assert [entry["row"]["source_pod"] for entry in answer["flows"]] == [
        "shop/checkout-5c8b-fghij"
    ] * 2


def test_an_edge_of_the_namespace_map(ui: str) -> None:
    answer = ok(ui, "/api/flows", edge="ops>shop:9090/TCP", group="namespace")
    assert [entry["row"]["verdict"] for entry in answer["flows"]] == ["audit"]


def test_export_csv_has_the_table_columns(ui: str) -> None:
    response = get(ui, "/api/flows/export", format="csv", q="verdict=dropped")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="flows.csv"'
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == [
        "Timestamp",
        "Source Pod",
        "Source IP",
        "Source Identity",
        "Destination Pod",
        "Destination IP",
        "Destination Identity",
        "Destination Port",
        "L7 info",
        "Traffic Direction",
        "Verdict",
        "TCP Flags",
        "Authentication",
    ]
    assert [row[1:] for row in rows[1:]] == [list(DROPPED_ROW.values())] * 2


def test_export_json_lines_read_back_as_flows(ui: str) -> None:
    response = get(ui, "/api/flows/export", format="jsonl")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="flows.jsonl"'
    lines = response.text.splitlines()
    read = [jsonlines.parse_line(line) for line in lines]
    history = ok(ui, "/api/flows")["flows"]
    assert [r.flow.uuid for r in read] == [entry["flow"]["uuid"] for entry in history]  # type: ignore[union-attr]
    assert {r.node_name for r in read} == {scenario.HISTORY_NODE}


def test_policy_view_groups_denied_and_audited_flows(ui: str) -> None:
    answer = ok(ui, "/api/policy")
    assert answer["policies"] == [
        {"verdict": "DROPPED", "policy": "shop/db-ingress", "flows": 2},
        {"verdict": "AUDIT", "policy": "ops/audit-scrape", "flows": 1},
    ]
    assert answer["endpoints"] == [MAP_EDGES[2], MAP_EDGES[4]]
    # The filter box applies too; a verdict outside dropped/audit leaves nothing.
    assert ok(ui, "/api/policy", q="verdict=audit")["policies"] == [
        {"verdict": "AUDIT", "policy": "ops/audit-scrape", "flows": 1}
    ]
    assert ok(ui, "/api/policy", q="verdict=forwarded")["policies"] == []


def test_status_reports_nodes_rate_lost_events_and_store_range(ui: str) -> None:
    answer = ok(ui, "/api/status")
    assert answer["nodes_connected"] == 1
    assert answer["nodes_unavailable"] == 0
    assert answer["stored_flows"] == 11
    assert answer["store_newest_ns"] - answer["store_oldest_ns"] == 10_000_000_000
    assert answer["lost_events"] == 0
    assert answer["lost_events_by_source"] == {}
    assert answer["flows_rate"] == 0.0


def test_nodes_and_namespaces(ui: str) -> None:
    nodes = ok(ui, "/api/nodes")["nodes"]
    assert [(node["name"], node["state"]) for node in nodes] == [
        (scenario.LIVE_NODE, "NODE_CONNECTED")
    ]
    assert ok(ui, "/api/namespaces")["namespaces"] == [
        {"cluster": "", "namespace": "ops"},
        {"cluster": "", "namespace": "shop"},
    ]


def test_filters_show_what_the_view_compiles_to(ui: str) -> None:
    answer = ok(ui, "/api/filters", q="to:port=53 !identity=host", ns="shop")
    assert answer["whitelist"] == [
        {"destination_port": ["53"], "source_pod": ["shop/"]},
        {"destination_port": ["53"], "destination_pod": ["shop/"]},
    ]
    assert answer["blacklist"] == [{"source_identity": [1]}, {"destination_identity": [1]}]
    assert answer["until_ns"] - answer["since_ns"] == 3_600_000_000_000


@pytest.mark.parametrize(
    ("path", "params", "status", "body"),
    [
        (
            "/api/map",
            {"q": "verdict=dropped to:ip=10.0.0.x"},
            400,
            {
                "error": "invalid filter term at column 17 'to:ip=10.0.0.x': not an IP address"
                " or CIDR",
                "field": "filter term at column 17",
                "value": "to:ip=10.0.0.x",
                "problem": "not an IP address or CIDR",
                "term": "to:ip=10.0.0.x",
                "offset": 16,
            },
        ),
        (
            "/api/flows",
            {"range": "2h"},
            400,
            {"error": "range '2h': expected one of 5m, 1h, 1d or custom"},
        ),
        (
            "/api/map",
            {"group": "cluster"},
            400,
            {"error": "group 'cluster': expected one of workload, pod, namespace"},
        ),
        (
            "/api/flows",
            {"edge": "a-b"},
            400,
            {"error": "edge 'a-b': expected source>destination:port/protocol"},
        ),
        (
            "/api/policy",
            {"range": "custom", "since": "yesterday"},
            400,
            {
                "error": "cannot read 'yesterday' as a time: expected a duration before now"
                " (3s, 4m, 1h43m) or a time: 2006-01-02, 2006-01-02T15Z, 2006-01-02T15:04Z,"
                " RFC 3339 (2006-01-02T15:04:05.999999999Z07:00), RFC 1123Z (Mon, 02 Jan 2006"
                " 15:04:05 -0700) or StampMilli (Jan _2 15:04:05.000)"
            },
        ),
    ],
)
def test_bad_requests_say_what_and_where(
    ui: str, path: str, params: dict[str, str], status: int, body: dict[str, Any]
) -> None:
    response = get(ui, path, **params)
    assert (response.status_code, response.json()) == (status, body)


def test_custom_range_before_the_store_is_empty_with_a_notice(ui: str) -> None:
    answer = ok(
        ui, "/api/flows", range="custom", since="2020-01-01T00:00Z", until="2020-01-02T00:00Z"
    )
    assert answer["flows"] == []
    assert len(answer["notices"]) == 1
    assert answer["notices"][0].startswith(
        "the history reaches before the store: asked for flows since 2020-01-01T00:00:00"
    )
    assert (
        ok(ui, "/api/map", range="custom", since="2020-01-01T00:00Z", until="2020-01-02T00:00Z")[
            "edges"
        ]
        == []
    )


def test_the_api_has_its_openapi_schema(ui: str) -> None:
    schema = ok(ui, "/openapi.json")
    assert sorted(schema["paths"]) == [
        "/api/filters",
        "/api/flows",
        "/api/flows/export",
        "/api/flows/live",
        "/api/map",
        "/api/namespaces",
        "/api/nodes",
        "/api/policy",
        "/api/status",
    ]
    parameters = {p["name"] for p in schema["paths"]["/api/map"]["get"]["parameters"]}
    assert parameters == {"q", "ns", "range", "since", "until", "group", "node", "edge"}


def test_the_page_and_its_libraries_come_from_the_ui(ui: str) -> None:
    page = get(ui, "/")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/vendor/cytoscape.min.js" defer></script>' in page.text
    assert "http://" not in page.text and "https://" not in page.text
    for path in (
        "/vendor/layout-base.js",
        "/vendor/cose-base.js",
        "/vendor/cytoscape.min.js",
        "/vendor/cytoscape-fcose.js",
        "/assets/app.js",
        "/assets/graph.js",
        "/assets/style.css",
    ):
        assert get(ui, path).status_code == 200, path
    assert get(ui, "/vendor/../package.json").status_code == 404
    assert get(ui, "/assets/index.html").status_code == 404


def test_live_flows_arrive_as_server_sent_events(live_ui: str, live_relay: Any) -> None:
    received: list[dict[str, Any]] = []
    done = threading.Event()

    def connect() -> None:
        # Until the stream has one: the relay may subscribe after the first appends.
        while not done.wait(0.5):
            live_relay.append(scenario.live_flow(time.time_ns()))

    with (
        httpx.Client(timeout=30) as client,
        client.stream("GET", live_ui + "/api/flows/live", params={"q": "to:port=6379"}) as stream,
    ):
        lines = stream.iter_lines()
        assert next(lines) == ": connected"
        appender = threading.Thread(target=connect)
        appender.start()
        event = ""
        try:
            for line in lines:
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "flow":
                    received.append(json.loads(line.removeprefix("data: ")))
                    break
        finally:
            done.set()
            appender.join()
    (entry,) = received
    assert entry["row"]["source_pod"] == "shop/cache-1a2b-pqrst"
    assert entry["row"]["destination_port"] == "6379/TCP"
    assert entry["row"]["verdict"] == "forwarded"
    assert entry["flow"]["node_name"] == scenario.LIVE_NODE
