"""History from the store: every field comes back; number/first/since/until and
every filter dimension select what the in-memory predicate selects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from filter_flows import FLOWS
from google.protobuf import json_format
from store_support import config, drop, realistic, running
from test_filter_conformance import CASES, Filters
from test_schema_roundtrip import _full_flows

from flowscope.common.filters import compile_predicate
from flowscope.proto.flow import flow_pb2
from flowscope.relay.store import HistoryRequest, Store

pytestmark = pytest.mark.store

FULL = _full_flows()
REALISTIC = realistic(500)
ORDERED = sorted(FLOWS, key=lambda flow: flow.time.ToNanoseconds())


@pytest.fixture(scope="module")
def store(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    settings = config(backend, Path(tmp_path_factory.mktemp("history")))
    with running(settings) as opened:
        opened.write(FLOWS)
        opened.write(FULL)
        opened.write(REALISTIC)
        assert opened.drain()
        yield opened
    drop(settings)


def _filters(documents: Filters) -> list[flow_pb2.FlowFilter]:
    return [json_format.ParseDict(document, flow_pb2.FlowFilter()) for document in documents]


def _only(flows: list[flow_pb2.Flow] | tuple[flow_pb2.Flow, ...]) -> list[flow_pb2.FlowFilter]:
    return [flow_pb2.FlowFilter(uuid=[flow.uuid for flow in flows])]


def _conformance_only() -> list[flow_pb2.FlowFilter]:
    return _only(FLOWS)


def test_every_field_round_trips(store: Store) -> None:
    history = store.queries.history(HistoryRequest(whitelist=_only(FULL)))
    assert history.flows == sorted(FULL, key=lambda flow: flow.time.ToNanoseconds())


def test_realistic_flows_round_trip_with_derived_uuids(store: Store) -> None:
    history = store.queries.history(HistoryRequest(whitelist=_only(REALISTIC)))
    assert history.flows == sorted(REALISTIC, key=lambda flow: flow.time.ToNanoseconds())
    stored = store.select(
        f"SELECT stored_uuid, uuid FROM {store.layout.name('flows')}"
        " WHERE node_name = {node:String} ORDER BY node_sequence LIMIT 2",
        {"node": REALISTIC[0].node_name},
    )
    first = sorted(
        (flow for flow in REALISTIC if flow.node_name == REALISTIC[0].node_name),
        key=lambda flow: flow.node_sequence,
    )
    assert [tuple(row) for row in stored] == [("", flow.uuid) for flow in first[:2]]


@pytest.mark.parametrize(
    ("whitelist", "blacklist", "expected"),
    [pytest.param(w, b, e, id=description) for description, w, b, e in CASES],
)
def test_filters_select_what_the_predicate_selects(
    store: Store, whitelist: Filters, blacklist: Filters, expected: set[str]
) -> None:
    request = HistoryRequest(
        whitelist=[_and_conformance(ff) for ff in _filters(whitelist)] or _conformance_only(),
        blacklist=_filters(blacklist),
    )
    matches = compile_predicate(_filters(whitelist), _filters(blacklist))
    history = store.queries.history(request)
    assert [flow.uuid for flow in history.flows] == [flow.uuid for flow in ORDERED if matches(flow)]
    assert {flow.uuid for flow in history.flows} == expected


def _and_conformance(ff: flow_pb2.FlowFilter) -> flow_pb2.FlowFilter:
    """ff restricted to the conformance flows (the store holds others too)."""
    restricted = flow_pb2.FlowFilter()
    restricted.CopyFrom(ff)
    if not restricted.uuid:
        restricted.uuid.extend(flow.uuid for flow in FLOWS)
    return restricted


def test_number_first_since_until(store: Store) -> None:
    only = _conformance_only()

    def uuids(**fields: object) -> list[str]:
        history = store.queries.history(HistoryRequest(whitelist=only, **fields))  # type: ignore[arg-type]
        return [flow.uuid for flow in history.flows]

    times = [flow.time.ToNanoseconds() for flow in ORDERED]
    everything = [flow.uuid for flow in ORDERED]
    assert uuids() == everything
    assert uuids(number=3) == everything[-3:]
    assert uuids(number=3, first=True) == everything[:3]
    assert uuids(since=times[5]) == everything[5:]
    assert uuids(until=times[5]) == everything[:6]
    assert uuids(since=times[2], until=times[4]) == everything[2:5]
    assert uuids(number=2, since=times[2], until=times[9]) == everything[8:10]
    assert uuids(number=2, first=True, since=times[2]) == everything[2:4]


def test_history_reports_cursors_and_coverage(store: Store) -> None:
    history = store.queries.history(HistoryRequest(number=len(REALISTIC) + 10_000))
    last: dict[str, int] = {}
    for flow in history.flows:
        last[flow.node_name] = max(last.get(flow.node_name, 0), flow.node_sequence)
    assert history.cursors == last
    assert history.reaches_before  # asked for more than the store holds
    assert history.covered is not None
    every = [*FLOWS, *FULL, *REALISTIC]
    assert history.covered.flows == len(every)
    assert history.covered.oldest == min(flow.time.ToNanoseconds() for flow in every)
    assert history.covered.newest == max(flow.time.ToNanoseconds() for flow in every)
    before = store.queries.history(HistoryRequest(since=history.covered.oldest - 1, number=1))
    assert before.reaches_before
    inside = store.queries.history(HistoryRequest(since=history.covered.oldest, number=1))
    assert not inside.reaches_before
    assert store.cursors() == store.queries.cursors()


def test_bad_number_is_refused(store: Store) -> None:
    with pytest.raises(Exception, match="number -1: expected 0 or more"):
        store.queries.history(HistoryRequest(number=-1))


@pytest.mark.parametrize("number", [1, 5, 400])
def test_last_flows_across_windows(store: Store, number: int) -> None:
    """The last N come from widening windows back from the newest flow."""
    every = sorted(
        [*FLOWS, *FULL, *REALISTIC],
        key=lambda flow: (flow.time.ToNanoseconds(), flow.node_name, flow.node_sequence),
    )
    history = store.queries.history(HistoryRequest(number=number))
    assert history.flows == every[-number:]
    assert not history.reaches_before
