"""Queries over the store, with bound parameters only: history for GetFlows
(number, first, since, until, filters) and the aggregates the UI and
`flowscope top` show (service-map edges, top talkers, verdicts by policy).
Aggregates read the smallest table that can answer: the per-hour rollup, the
per-minute map rollup or the per-minute rollup when the time range falls on its
buckets and every filter and name reads only columns the rollup keeps; the raw
table otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Literal, Protocol, TypeVar

from flowscope.common import schema
from flowscope.common.errors import InputError
from flowscope.common.filters import compile_sql
from flowscope.proto.flow import flow_pb2
from flowscope.relay.store import ddl

Filters = Sequence[flow_pb2.FlowFilter]
Grouping = Literal["pod", "workload", "namespace"]
GROUPINGS: Final = ("pod", "workload", "namespace")
NANOSECONDS: Final = 1_000_000_000


class Runner(Protocol):
    """Runs one SELECT with bound parameters and gives its rows."""

    def __call__(
        self, sql: str, parameters: dict[str, object], formats: dict[str, str] | None = None, /
    ) -> Sequence[Sequence[Any]]: ...


@dataclass(frozen=True, slots=True)
class TimeRange:
    """The times of the oldest and newest stored flow (ns since the epoch), and the count."""

    oldest: int
    newest: int
    flows: int


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """GetFlows' history part. number: how many flows (0: all that match);
    first: the first ones rather than the last; since/until: ns since the
    epoch, inclusive."""

    number: int = 0
    first: bool = False
    since: int | None = None
    until: int | None = None
    whitelist: Filters = ()
    blacklist: Filters = ()


@dataclass(frozen=True, slots=True)
class History:
    """Flows in time order; per node the last sequence returned (where a live
    follow continues); what the store covers; and whether the request reached
    before it (since older than the oldest flow, or fewer than number last flows)."""

    flows: list[flow_pb2.Flow]
    cursors: dict[str, int]
    covered: TimeRange | None
    reaches_before: bool


@dataclass(frozen=True, slots=True)
class Edge:
    """Traffic from source to destination on one port and protocol."""

    source: str
    destination: str
    destination_port: int
    protocol: str
    verdicts: dict[str, int]
    flows: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Talker:
    name: str
    flows: int
    bytes: int


@dataclass(frozen=True, slots=True)
class VerdictCount:
    """Flows by verdict and policy ("namespace/name"; "" when the flow names none)."""

    verdict: str
    policy: str
    flows: int


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Aggregate(Generic[T]):
    """An aggregate's rows and the table that answered."""

    rows: list[T]
    table: str = field(default="")


def _servable(dimensions: Sequence[str]) -> frozenset[str]:
    """The FlowFilter fields whose every column a rollup of dimensions keeps."""
    return frozenset(
        field
        for field in {name for column in schema.COLUMNS for name in column.filters}
        if all(column.name in dimensions for column in schema.COLUMNS if field in column.filters)
    )


# The rollups from smallest to largest: a whole-hour range is fewer rows in the
# per-hour rollup than in any per-minute one; the map rollup keeps fewer
# dimensions than the per-minute rollup, and so fewer rows.
_SMALLEST_FIRST: Final = (ddl.HOUR, ddl.MAP_MINUTE, ddl.MINUTE)
_SERVABLE: Final = {rollup.name: _servable(rollup.dimensions) for rollup in _SMALLEST_FIRST}
_FLOW_VALUES: Final = dict(ddl.FLOW_VALUES)
# Each edge's flows by verdict, as columns: the store sums them in one pass.
_VERDICTS: Final = tuple(flow_pb2.Verdict.keys())
# The last N flows are first looked for in the newest minute, then in windows
# this many times wider.
_FIRST_WINDOW: Final = 60 * NANOSECONDS
_WINDOW_GROWTH: Final = 16


# How each grouping names one end of a flow ({side} is source or destination),
# and the columns it reads. Ends without a name at that level (reserved
# identities, pods without workload) are named by their identity number.
_GROUPINGS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "pod": (
        "if({side}_pod_name = '', '', concat({side}_namespace, '/', {side}_pod_name))",
        ("{side}_namespace", "{side}_pod_name", "{side}_identity"),
    ),
    "workload": (
        "if(empty({side}_workload_names), '',"
        " concat({side}_namespace, '/', {side}_workload_names[1]))",
        ("{side}_namespace", "{side}_workload_names", "{side}_identity"),
    ),
    "namespace": ("{side}_namespace", ("{side}_namespace", "{side}_identity")),
}


def _endpoint_name(side: str, grouping: Grouping) -> str:
    """SQL naming one end of a flow at the grouping's level."""
    name = _GROUPINGS[grouping][0].format(side=side)
    return f"if({name} = '', concat('identity:', toString({side}_identity)), {name})"


def _grouping_columns(grouping: Grouping, sides: Sequence[str]) -> set[str]:
    return {column.format(side=side) for column in _GROUPINGS[grouping][1] for side in sides}


def _check_grouping(grouping: str) -> Grouping:
    if grouping not in GROUPINGS:
        raise InputError(f"group by {grouping!r}: expected one of {', '.join(GROUPINGS)}")
    return grouping  # type: ignore[return-value]


class Queries:
    """The store's queries, run through runner on layout's tables."""

    def __init__(self, runner: Runner, layout: ddl.Layout) -> None:
        self._run = runner
        self._layout = layout

    def covered(self) -> TimeRange | None:
        """What the store holds; None when it holds nothing."""
        (row,) = self._run(
            "SELECT toUnixTimestamp64Nano(min(time)), toUnixTimestamp64Nano(max(time)), count()"
            f" FROM {self._layout.name(ddl.RAW)}",
            {},
        )
        return TimeRange(int(row[0]), int(row[1]), int(row[2])) if row[2] else None

    def cursors(self) -> dict[str, int]:
        """The highest stored node_sequence per node."""
        rows = self._run(
            f"SELECT node_name, max(node_sequence) FROM {self._layout.name(ddl.CURSORS)}"
            " GROUP BY node_name",
            {},
        )
        return {str(node): int(sequence) for node, sequence in rows}

    def namespaces(self, since: int) -> list[tuple[str, str]]:
        """(cluster, namespace) of either end of the flows since then (ns), sorted."""
        table = self._layout.name(ddl.RAW)
        sides = " UNION ALL ".join(
            f"SELECT {side}_cluster_name AS cluster, {side}_namespace AS namespace FROM {table}"
            f" WHERE time >= fromUnixTimestamp64Nano({{since:Int64}}, 'UTC')"
            f" AND {side}_namespace != ''"
            for side in ("source", "destination")
        )
        rows = self._run(
            f"SELECT DISTINCT cluster, namespace FROM ({sides}) ORDER BY cluster, namespace",
            {"since": since},
        )
        return [(str(cluster), str(namespace)) for cluster, namespace in rows]

    def history(self, request: HistoryRequest) -> History:
        if request.number < 0:
            raise InputError(f"number {request.number}: expected 0 or more")
        covered = self.covered()
        rows = self._history_rows(request, covered) if covered is not None else []
        last = request.number and not request.first
        flows = schema.rows_to_flows(reversed(rows) if last else rows)
        cursors: dict[str, int] = {}
        for flow in flows:
            cursors[flow.node_name] = max(cursors.get(flow.node_name, 0), flow.node_sequence)
        before = covered is None or (request.since is not None and request.since < covered.oldest)
        if last and request.since is None:
            before = before or len(flows) < request.number
        return History(flows, cursors, covered, before)

    def _history_rows(self, request: HistoryRequest, covered: TimeRange) -> Sequence[Sequence[Any]]:
        """The rows of a history request. The last N flows are looked for in a
        window back from the newest, widened until it holds N or reaches since
        (or the oldest flow): the time-bucketed sort key then reads little."""
        condition = compile_sql(request.whitelist, request.blacklist)
        order = "DESC" if request.number and not request.first else "ASC"
        limit = " LIMIT {number:UInt64}" if request.number else ""
        bounded = {"number": request.number} if request.number else {}
        oldest = covered.oldest if request.since is None else max(request.since, covered.oldest)
        newest = covered.newest if request.until is None else min(request.until, covered.newest)
        window = _FIRST_WINDOW if order == "DESC" else None
        while True:
            since = oldest if window is None else max(oldest, newest - window)
            where, parameters = self._time_condition(since, newest)
            sql = (
                f"SELECT {', '.join(schema.READ_SQL)} FROM {self._layout.name(ddl.RAW)}"
                f" WHERE ({condition.sql}) AND {where}"
                f" ORDER BY time {order}, node_name {order}, node_sequence {order}{limit}"
            )
            rows = self._run(sql, parameters | condition.params | bounded, schema.READ_FORMATS)
            if window is None or len(rows) >= request.number or since <= oldest:
                return rows
            window *= _WINDOW_GROWTH

    def edges(
        self,
        since: int,
        until: int,
        whitelist: Filters = (),
        blacklist: Filters = (),
        grouping: str = "workload",
    ) -> Aggregate[Edge]:
        """Service-map edges over [since, until) (ns), busiest first."""
        level = _check_grouping(grouping)
        columns = _grouping_columns(level, ("source", "destination"))
        table, flows, bytes_ = self._table(since, until, whitelist, blacklist, columns)
        condition = compile_sql(whitelist, blacklist)
        where, parameters = self._time_condition(since, until - 1)
        by_verdict = ", ".join(f"sumIf({flows}, verdict = '{name}')" for name in _VERDICTS)
        rows = self._run(
            f"SELECT {_endpoint_name('source', level)} AS s,"
            f" {_endpoint_name('destination', level)} AS d, destination_port,"
            f" toString(l4_protocol), sum({bytes_}), sum({flows}) AS n, {by_verdict}"
            f" FROM {table} WHERE ({condition.sql}) AND {where}"
            " GROUP BY s, d, destination_port, l4_protocol"
            " ORDER BY n DESC, s, d, destination_port, l4_protocol",
            parameters | condition.params,
        )
        return Aggregate(
            [
                Edge(
                    row[0],
                    row[1],
                    int(row[2]),
                    row[3],
                    {
                        name: int(count)
                        for name, count in zip(_VERDICTS, row[6:], strict=True)
                        if count
                    },
                    int(row[5]),
                    int(row[4]),
                )
                for row in rows
            ],
            table,
        )

    def top_talkers(
        self,
        since: int,
        until: int,
        whitelist: Filters = (),
        blacklist: Filters = (),
        grouping: str = "workload",
        by: str = "flows",
        limit: int = 10,
    ) -> Aggregate[Talker]:
        """The sources sending the most flows or bytes over [since, until)."""
        level = _check_grouping(grouping)
        if by not in ("flows", "bytes"):
            raise InputError(f"top talkers by {by!r}: expected flows or bytes")
        columns = _grouping_columns(level, ("source",))
        table, flows, bytes_ = self._table(since, until, whitelist, blacklist, columns)
        condition = compile_sql(whitelist, blacklist)
        where, parameters = self._time_condition(since, until - 1)
        rows = self._run(
            f"SELECT {_endpoint_name('source', level)} AS talker, sum({flows}) AS flows,"
            f" sum({bytes_}) AS bytes FROM {table} WHERE ({condition.sql}) AND {where}"
            f" GROUP BY talker ORDER BY {by} DESC, talker LIMIT {{limit:UInt32}}",
            parameters | condition.params | {"limit": limit},
        )
        return Aggregate([Talker(str(n), int(f), int(b)) for n, f, b in rows], table)

    def verdicts_by_policy(
        self, since: int, until: int, whitelist: Filters = (), blacklist: Filters = ()
    ) -> Aggregate[VerdictCount]:
        """Flow counts by verdict and by the policy each flow names, over [since, until)."""
        condition = compile_sql(whitelist, blacklist)
        where, parameters = self._time_condition(since, until - 1)
        table = self._layout.name(ddl.RAW)
        rows = self._run(
            "SELECT toString(verdict) AS v, arrayJoin(if(empty(policy_names), [''],"
            f" policy_names)) AS policy, count() AS flows FROM {table}"
            f" WHERE ({condition.sql}) AND {where}"
            " GROUP BY v, policy ORDER BY flows DESC, v, policy",
            parameters | condition.params,
        )
        return Aggregate([VerdictCount(str(v), str(p), int(n)) for v, p, n in rows], table)

    def _table(
        self, since: int, until: int, whitelist: Filters, blacklist: Filters, columns: set[str]
    ) -> tuple[str, str, str]:
        """The smallest table answering an aggregate that reads columns, and what
        each of its rows adds to the flow and byte sums."""
        fields = {f.name for ff in (*whitelist, *blacklist) for f, _ in ff.ListFields()}
        for rollup in _SMALLEST_FIRST:
            step = int(rollup.interval.total_seconds()) * NANOSECONDS
            if (
                since % step == 0
                and until % step == 0
                and fields <= _SERVABLE[rollup.name]
                and columns <= set(rollup.dimensions)
            ):
                return self._layout.name(rollup.name), "flows", "bytes"
        return self._layout.name(ddl.RAW), _FLOW_VALUES["flows"], _FLOW_VALUES["bytes"]

    @staticmethod
    def _time_condition(since: int | None, until: int | None) -> tuple[str, dict[str, object]]:
        parts = []
        parameters: dict[str, object] = {}
        if since is not None:
            parts.append("time >= fromUnixTimestamp64Nano({since:Int64}, 'UTC')")
            parameters["since"] = since
        if until is not None:
            parts.append("time <= fromUnixTimestamp64Nano({until:Int64}, 'UTC')")
            parameters["until"] = until
        return (" AND ".join(parts) or "1"), parameters
