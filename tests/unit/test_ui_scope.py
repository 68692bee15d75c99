"""The UI's narrowing of filters (namespaces, a clicked node or edge) and time ranges."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict

from flowscope.common.errors import InputError
from flowscope.proto.flow import flow_pb2
from flowscope.ui import scope

NOW = 1_800_000_000 * scope.NANOS + 123


def _dicts(filters: list[flow_pb2.FlowFilter]) -> list[dict[str, Any]]:
    return [MessageToDict(ff, preserving_proto_field_name=True) for ff in filters]


def ff(**fields: Any) -> flow_pb2.FlowFilter:
    return flow_pb2.FlowFilter(**fields)


JOINS: list[tuple[list[flow_pb2.FlowFilter], list[flow_pb2.FlowFilter], list[dict[str, Any]]]] = [
    ([], [], []),
    ([ff(verdict=[flow_pb2.DROPPED])], [], [{"verdict": ["DROPPED"]}]),
    ([], [ff(source_pod=["shop/"])], [{"source_pod": ["shop/"]}]),
    # A product of the two lists.
    (
        [ff(source_ip=["10.0.0.1"]), ff(destination_ip=["10.0.0.1"])],
        scope.namespace_filters(["shop"]),
        [
            {"source_ip": ["10.0.0.1"], "source_pod": ["shop/"]},
            {"source_ip": ["10.0.0.1"], "destination_pod": ["shop/"]},
            {"destination_ip": ["10.0.0.1"], "source_pod": ["shop/"]},
            {"destination_ip": ["10.0.0.1"], "destination_pod": ["shop/"]},
        ],
    ),
    # The same field on both sides: what both accept.
    ([ff(source_pod=["shop/web"])], [ff(source_pod=["shop/"])], [{"source_pod": ["shop/web"]}]),
    ([ff(source_pod=["/web"])], [ff(source_pod=["shop/"])], [{"source_pod": ["shop/web"]}]),
    ([ff(source_pod=["web"])], [ff(source_pod=["default/"])], [{"source_pod": ["default/web"]}]),
    ([ff(source_pod=["ops/web"])], [ff(source_pod=["shop/"])], [{"uuid": ["no flow"]}]),
    (
        [ff(verdict=[flow_pb2.DROPPED, flow_pb2.FORWARDED])],
        [ff(verdict=[flow_pb2.DROPPED, flow_pb2.AUDIT])],
        [{"verdict": ["DROPPED"]}],
    ),
    (
        [ff(source_workload=[flow_pb2.Workload(kind="Deployment")])],
        [ff(source_workload=[flow_pb2.Workload(name="web")])],
        [{"source_workload": [{"name": "web", "kind": "Deployment"}]}],
    ),
    ([ff(source_identity=[1, 2])], [ff(source_identity=[2])], [{"source_identity": [2]}]),
]


@pytest.mark.parametrize(("filters", "narrowing", "expected"), JOINS)
def test_join_takes_what_both_lists_accept(
    filters: list[flow_pb2.FlowFilter],
    narrowing: list[flow_pb2.FlowFilter],
    expected: list[dict[str, Any]],
) -> None:
    assert _dicts(scope.join(filters, narrowing)) == expected


def test_join_refuses_to_narrow_fields_it_cannot_intersect() -> None:
    with pytest.raises(InputError, match="cannot narrow FlowFilter field source_ip"):
        scope.join([ff(source_ip=["10.0.0.1"])], [ff(source_ip=["10.0.0.2"])])


NODES: list[tuple[str, str, list[dict[str, Any]]]] = [
    (
        "shop/web",
        "workload",
        [
            {"source_pod": ["shop/"], "source_workload": [{"name": "web"}]},
            {"destination_pod": ["shop/"], "destination_workload": [{"name": "web"}]},
        ],
    ),
    (
        "shop/web-0",
        "pod",
        [{"source_pod": ["shop/web-0"]}, {"destination_pod": ["shop/web-0"]}],
    ),
    ("shop", "namespace", [{"source_pod": ["shop/"]}, {"destination_pod": ["shop/"]}]),
    ("identity:2", "workload", [{"source_identity": [2]}, {"destination_identity": [2]}]),
]


@pytest.mark.parametrize(("endpoint", "level", "expected"), NODES)
def test_node_filters_match_either_side(
    endpoint: str, level: str, expected: list[dict[str, Any]]
) -> None:
    assert _dicts(scope.node_filters(endpoint, level)) == expected


def test_edge_filters_name_both_ends_port_and_protocol() -> None:
    assert _dicts(scope.edge_filters("identity:1", "shop/web", 8080, "TCP", "workload")) == [
        {
            "source_identity": [1],
            "destination_pod": ["shop/"],
            "destination_workload": [{"name": "web"}],
            "destination_port": ["8080"],
            "protocol": ["tcp"],
        }
    ]


def test_bad_identity_endpoint_is_refused() -> None:
    with pytest.raises(InputError, match="endpoint 'identity:x': expected identity:<number>"):
        scope.node_filters("identity:x", "workload")


RANGES: list[tuple[str, str, str, tuple[int, int]]] = [
    ("5m", "", "", (NOW - 300 * scope.NANOS, NOW)),
    ("1h", "", "", (NOW - 3600 * scope.NANOS, NOW)),
    ("1d", "", "", (NOW - 86400 * scope.NANOS, NOW)),
    ("custom", "30m", "", (NOW - 1800 * scope.NANOS, NOW)),
    (
        "custom",
        "2027-01-15T08:00:00Z",
        "2027-01-15T09:00:00Z",
        (1_800_000_000 * scope.NANOS, 1_800_003_600 * scope.NANOS),
    ),
]


@pytest.mark.parametrize(("preset", "since", "until", "expected"), RANGES)
def test_time_ranges(preset: str, since: str, until: str, expected: tuple[int, int]) -> None:
    chosen = scope.time_range(preset, since, until, now_ns=NOW)
    assert (chosen.since_ns, chosen.until_ns) == expected


@pytest.mark.parametrize(
    ("preset", "since", "until", "message"),
    [
        ("2h", "", "", "range '2h': expected one of 5m, 1h, 1d or custom"),
        ("custom", "", "", "range custom: needs since"),
        ("custom", "5m", "10m", "range since '5m' until '10m': until must be later"),
    ],
)
def test_bad_time_ranges(preset: str, since: str, until: str, message: str) -> None:
    with pytest.raises(InputError) as raised:
        scope.time_range(preset, since, until, now_ns=NOW)
    assert str(raised.value) == message


def test_map_ranges_widen_to_whole_minutes() -> None:
    widened = scope.TimeRange(61 * scope.NANOS + 5, 119 * scope.NANOS).to_minutes()
    assert (widened.since_ns, widened.until_ns) == (60 * scope.NANOS, 120 * scope.NANOS)
    exact = scope.TimeRange(60 * scope.NANOS, 120 * scope.NANOS).to_minutes()
    assert (exact.since_ns, exact.until_ns) == (60 * scope.NANOS, 120 * scope.NANOS)


def test_endpoint_labels() -> None:
    names = ("identity:2", "identity:1", "identity:4242", "shop/web", "shop")
    assert [scope.endpoint_label(name) for name in names] == [
        "world",
        "host",
        "identity:4242",
        "web",
        "shop",
    ]
