"""The relay's gRPC server: Hubble's observer.Observer over the store and the live stream.

One port (default localhost:4245) serves

* GetFlows: history from the store (number, first, since, until, filters compiled to
  SQL), then, with `follow`, the live stream from the cut where history ended, so a
  client sees each flow once; field masks are applied to both. With resume cursors (the
  flowscope extension `resume_after`) a client continues after the last flow it got from
  each node, and a follow stream with cursors or `since` that reads too slowly continues
  from the store rather than losing flows. Node status events
  come in the stream: NODE_CONNECTED and NODE_UNAVAILABLE for the nodes at the start,
  then every change. A query reaching before what the store holds gets a notice
  (a node status event from the relay) naming the range the store covers;
* ServerStatus (flows stored, flows seen and their rate, connected and unavailable
  nodes; the stored time range in the trailing metadata `flowscope-store-oldest-ns`
  and `flowscope-store-newest-ns`), GetNodes, GetNamespaces (namespaces with flows
  in the last hour); GetAgentEvents and GetDebugEvents are UNIMPLEMENTED, as on a
  Hubble relay;
* flowscope.aggregate.Aggregates (service-map edges, top talkers, verdicts by policy)
  from the store's rollups (aggregate_server.py);
* flowscope.identity.Identities: cluster-wide identities for the collectors'
  label sets, kept in the store (identities.py);
* `grpc.health.v1.Health` with service "hubble.server.Observer";
* the collectors' announcements (peers.py).

Every call gets the `hubble-relay-version` header. Each client is bounded (ServerConfig):
streams open at once (RESOURCE_EXHAUSTED beyond, per client and in total), request size
(RESOURCE_EXHAUSTED from gRPC), and the time range and `number` of a query
(INVALID_ARGUMENT); refusals are counted in flowscope_limit_refusals_total. With
`ServerConfig.tls` the port serves TLS (mutual TLS with client CAs); without, it listens on
the loopback interface only. With `ServerConfig.token_file` every call but the health checks
needs a bearer token, and a token scoped to namespaces sees only their flows: GetFlows and
the aggregates narrow the request's whitelist with scope_whitelist, GetNamespaces lists only
those namespaces.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from google.protobuf.wrappers_pb2 import UInt32Value
from grpc_health.v1 import health, health_pb2_grpc

from flowscope.common.auth import (
    HEALTH_METHODS,
    ScopeError,
    TokenAuthInterceptor,
    TokenFile,
    TokenVerifier,
    current_principal,
    scope_whitelist,
)
from flowscope.common.errors import FilterError, InputError, StorageError
from flowscope.common.fieldmask import FlowMask
from flowscope.common.filters import compile_predicate
from flowscope.common.grpcserve import VersionHeader, start_serving
from flowscope.common.limits import Refusal, StreamLimiter, client_address
from flowscope.common.metrics import Metrics
from flowscope.common.tls import ClientTLS, ServerTLS, check_listen_address, dial
from flowscope.proto.aggregate import aggregate_pb2
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2, observer_pb2_grpc
from flowscope.proto.relay import relay_pb2
from flowscope.relay.aggregate_server import add_aggregates_service
from flowscope.relay.fanout import LiveHub, Subscription, is_overflow
from flowscope.relay.identities import ClusterIdentities, add_identities_service
from flowscope.relay.peers import PeerSet, add_announce_service
from flowscope.relay.storage import FlowStore
from flowscope.relay.store import HistoryRequest, TimeRange

VERSION_HEADER: Final = "hubble-relay-version"
STORE_OLDEST_KEY: Final = "flowscope-store-oldest-ns"
STORE_NEWEST_KEY: Final = "flowscope-store-newest-ns"
NAMESPACE_WINDOW_NS: Final = 3600 * 1_000_000_000
UNAVAILABLE_REPORTED: Final = 10
# How long a follower waits for live entries before it checks that its client is there.
LIVE_POLL: Final = 0.2
NODE_STATUS_TIMEOUT: Final = 1.0
NO_CUT: Final = 1 << 64
# Threads beyond the streams' for unary calls and for refusing streams over the limit.
UNARY_WORKERS: Final = 8
# Calls that may wait for a thread; gRPC refuses more with RESOURCE_EXHAUSTED.
QUEUED_CALLS: Final = 16
# The streams that count toward the stream limits, and the services whose queries are bounded.
STREAMED_SERVICE: Final = "/observer.Observer/"
AGGREGATES_SERVICE: Final = "/flowscope.aggregate.Aggregates/"
# What the refusals counter counts, as its `limit` label.
LIMITS: Final = ("streams", "client_streams", "query_range", "query_flows")
NANOS_PER_SECOND: Final = 1_000_000_000

Response = observer_pb2.GetFlowsResponse


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A followed node as the relay sees it."""

    name: str
    address: str
    state: relay_pb2.NodeState.ValueType


class RelayView(Protocol):
    """What the server asks of the relay besides the store and the live hub."""

    name: str
    version: str
    started_ns: int
    # How the relay dials its nodes (None: plain text).
    peer_tls: ClientTLS | None

    def nodes(self) -> list[NodeInfo]: ...
    def seen_flows(self) -> int: ...
    def flows_rate(self) -> float: ...


def _time_ns(stamp: Timestamp) -> int:
    return stamp.seconds * 1_000_000_000 + stamp.nanos


def _status(
    state: relay_pb2.NodeState.ValueType, names: Sequence[str], message: str, relay: str
) -> Response:
    response = Response(
        node_status=relay_pb2.NodeStatusEvent(
            state_change=state, node_names=names, message=message
        ),
        node_name=relay,
    )
    response.time.GetCurrentTime()
    return response


def _format_ns(nanos: int) -> str:
    seconds, fraction = divmod(nanos, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{fraction:09d}Z"


class ObserverServicer(observer_pb2_grpc.ObserverServicer):
    """observer.Observer over the store and the live hub."""

    def __init__(
        self, relay: RelayView, store: FlowStore, hub: LiveHub, stopping: threading.Event
    ) -> None:
        self._relay = relay
        self._store = store
        self._hub = hub
        self._stopping = stopping

    def GetFlows(
        self, request: observer_pb2.GetFlowsRequest, context: grpc.ServicerContext
    ) -> Iterator[Response]:
        if request.first and request.follow:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "first cannot be specified with follow")
        try:
            whitelist = scope_whitelist(request.whitelist, current_principal())
        except ScopeError as err:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, str(err))
        try:
            keep = compile_predicate(whitelist, request.blacklist)
            mask = FlowMask.compile(request.field_mask)
        except (FilterError, InputError) as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        since = _time_ns(request.since) if request.HasField("since") else None
        until = _time_ns(request.until) if request.HasField("until") else None
        yield from self._node_states()

        def respond(response: Response) -> Response:
            if mask is None or not response.HasField("flow"):
                return response
            return Response(
                flow=mask.apply(response.flow), node_name=response.node_name, time=response.time
            )

        # Per node, the highest sequence this stream has passed (the client's resume cursors
        # at first): nothing at or below it is sent again.
        after = {cursor.node_name: cursor.sequence for cursor in request.resume_after}
        # A follow stream with cursors or a start time loses nothing to a slow read: when its
        # live queue overflows, it continues from the store after what it passed.
        recoverable = request.follow and (bool(after) or since is not None)
        history: HistoryRequest | None = None
        if request.first or request.number or since is not None or after:
            history = HistoryRequest(
                number=request.number,
                first=request.first,
                since=since,
                until=until,
                whitelist=whitelist,
                blacklist=request.blacklist,
            )
        complete = bool(after)
        while True:
            subscription, cut = self._hub.subscribe() if request.follow else (None, {})
            try:
                if history is not None:
                    yield from self._history(history, cut, after, complete, context, respond)
                if subscription is None:
                    return
                overflowed = yield from self._live(
                    subscription, keep, since, until, after, recoverable, context, respond
                )
            finally:
                if subscription is not None:
                    self._hub.unsubscribe(subscription)
            if not overflowed:
                break
            history = HistoryRequest(
                since=since, until=until, whitelist=whitelist, blacklist=request.blacklist
            )
            complete = True
        if self._stopping.is_set():
            context.abort(grpc.StatusCode.UNAVAILABLE, "the relay is shutting down")

    def _live(
        self,
        subscription: Subscription,
        keep: Callable[[flow_pb2.Flow], bool],
        since: int | None,
        until: int | None,
        after: dict[str, int],
        recoverable: bool,
        context: grpc.ServicerContext,
        respond: Callable[[Response], Response],
    ) -> Generator[Response, None, bool]:
        """The live stream until the client leaves or `until` passes; True when a recoverable
        stream's queue overflowed (it then continues from the store)."""
        while context.is_active() and not self._stopping.is_set():
            for response in subscription.take(LIVE_POLL):
                if recoverable and is_overflow(response):
                    return True
                if response.HasField("flow"):
                    flow = response.flow
                    when = _time_ns(response.time)
                    if until is not None and when > until:
                        return False
                    if flow.node_sequence <= after.get(flow.node_name, -1):
                        continue
                    if flow.node_sequence:
                        after[flow.node_name] = flow.node_sequence
                    if (since is not None and when < since) or not keep(flow):
                        continue
                yield respond(response)
        return False

    def _node_states(self) -> Iterator[Response]:
        nodes = self._relay.nodes()
        connected = [node.name for node in nodes if node.state == relay_pb2.NODE_CONNECTED]
        unavailable = [node.name for node in nodes if node.state != relay_pb2.NODE_CONNECTED]
        for state, names in (
            (relay_pb2.NODE_CONNECTED, connected),
            (relay_pb2.NODE_UNAVAILABLE, unavailable),
        ):
            if names:
                yield _status(state, names, "", self._relay.name)

    def _history(
        self,
        request: HistoryRequest,
        cut: dict[str, int],
        after: dict[str, int],
        complete: bool,
        context: grpc.ServicerContext,
        respond: Callable[[Response], Response],
    ) -> Iterator[Response]:
        """The stored flows the request selects, above each node's cursor in `after` (which
        advances with them) and below its cut (where live takes over). `complete`: refuse
        while the store holds flows that queries cannot see yet (spooled), which a resumed
        stream would otherwise skip for good."""
        try:
            self._store.flush()
            if complete and (unwritten := self._store.unwritten()):
                raise StorageError(
                    f"the store is catching up ({unwritten} batches spooled); resume later"
                )
            # The store's history has no per-node lower bound: the cursors are applied here.
            history = self._store.history(request)
        except (FilterError, InputError) as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        except StorageError as err:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(err))
        if history.reaches_before:
            yield self._coverage_notice(request, history.covered)
        for flow in history.flows:
            node, sequence = flow.node_name, flow.node_sequence
            if after.get(node, -1) < sequence < cut.get(node, NO_CUT):
                if sequence:
                    after[node] = sequence
                yield respond(Response(flow=flow, node_name=node, time=flow.time))

    def _coverage_notice(self, request: HistoryRequest, covered: TimeRange | None) -> Response:
        asked = (
            f"flows since {_format_ns(request.since)}"
            if request.since is not None
            else f"the last {request.number} flows"
        )
        held = (
            "no flows"
            if covered is None
            else f"{covered.flows} flows from {_format_ns(covered.oldest)} "
            f"to {_format_ns(covered.newest)}"
        )
        return _status(
            relay_pb2.UNKNOWN_NODE_STATE,
            [self._relay.name],
            f"the history reaches before the store: asked for {asked}, the store holds {held}",
            self._relay.name,
        )

    def GetAgentEvents(
        self, request: observer_pb2.GetAgentEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[observer_pb2.GetAgentEventsResponse]:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "GetAgentEvents is answered by the nodes")

    def GetDebugEvents(
        self, request: observer_pb2.GetDebugEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[observer_pb2.GetDebugEventsResponse]:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "GetDebugEvents is answered by the nodes")

    def ServerStatus(
        self, request: observer_pb2.ServerStatusRequest, context: grpc.ServicerContext
    ) -> observer_pb2.ServerStatusResponse:
        try:
            covered = self._store.covered()
        except StorageError as err:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(err))
        nodes = self._relay.nodes()
        unavailable = [node.name for node in nodes if node.state != relay_pb2.NODE_CONNECTED]
        if covered is not None:
            context.set_trailing_metadata(
                ((STORE_OLDEST_KEY, str(covered.oldest)), (STORE_NEWEST_KEY, str(covered.newest)))
            )
        return observer_pb2.ServerStatusResponse(
            num_flows=covered.flows if covered is not None else 0,
            seen_flows=self._relay.seen_flows(),
            uptime_ns=max(0, time.time_ns() - self._relay.started_ns),
            num_connected_nodes=UInt32Value(value=len(nodes) - len(unavailable)),
            num_unavailable_nodes=UInt32Value(value=len(unavailable)),
            unavailable_nodes=unavailable[:UNAVAILABLE_REPORTED],
            version=self._relay.version,
            flows_rate=self._relay.flows_rate(),
        )

    def GetNodes(
        self, request: observer_pb2.GetNodesRequest, context: grpc.ServicerContext
    ) -> observer_pb2.GetNodesResponse:
        nodes = self._relay.nodes()
        tls = self._relay.peer_tls
        channels = {node.address: dial(node.address, tls) for node in nodes}
        try:
            calls = {
                node.address: observer_pb2_grpc.ObserverStub(
                    channels[node.address]
                ).ServerStatus.future(
                    observer_pb2.ServerStatusRequest(), timeout=NODE_STATUS_TIMEOUT
                )
                for node in nodes
                if node.state == relay_pb2.NODE_CONNECTED
            }
            return observer_pb2.GetNodesResponse(
                nodes=[self._node(node, calls.get(node.address), tls) for node in nodes]
            )
        finally:
            for channel in channels.values():
                channel.close()

    @staticmethod
    def _node(
        node: NodeInfo,
        call: grpc.Future | None,  # type: ignore[type-arg]
        tls: ClientTLS | None,
    ) -> observer_pb2.Node:
        answer = observer_pb2.Node(
            name=node.name,
            address=node.address,
            state=node.state,
            tls=observer_pb2.TLS(
                enabled=tls is not None,
                server_name=(tls.server_name or "") if tls is not None else "",
            ),
        )
        if call is None:
            return answer
        try:
            status: observer_pb2.ServerStatusResponse = call.result()
        except grpc.RpcError:
            answer.state = relay_pb2.NODE_ERROR
            return answer
        answer.version = status.version
        answer.uptime_ns = status.uptime_ns
        answer.num_flows = status.num_flows
        answer.max_flows = status.max_flows
        answer.seen_flows = status.seen_flows
        return answer

    def GetNamespaces(
        self, request: observer_pb2.GetNamespacesRequest, context: grpc.ServicerContext
    ) -> observer_pb2.GetNamespacesResponse:
        try:
            pairs = self._store.namespaces(time.time_ns() - NAMESPACE_WINDOW_NS)
        except StorageError as err:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(err))
        principal = current_principal()
        return observer_pb2.GetNamespacesResponse(
            namespaces=[
                observer_pb2.Namespace(cluster=c, namespace=n)
                for c, n in pairs
                if principal is None or principal.sees_namespace(n)
            ]
        )


def _span(nanos: int) -> str:
    """A duration as days, hours, minutes and whole seconds: 7d, 1d12h, 90m -> 1h30m."""
    seconds = nanos // NANOS_PER_SECOND
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


@dataclass(frozen=True)
class ServerConfig:
    """The relay's port and its bounds per client.

    max_streams / max_streams_per_client: observer.Observer streams open at once, over all
    clients and per client (its token's id with token auth, else its address; 0: no
    per-client cap). max_request_bytes: the largest request gRPC accepts. max_query_range_ns:
    the longest since..until (since..now without until) of a GetFlows or aggregate request;
    max_flows_per_query: the largest GetFlows `number` (None: no limit for either).
    """

    listen_address: str = "localhost:4245"
    # None serves plain text, on the loopback interface only.
    tls: ServerTLS | None = None
    # None serves without authentication.
    token_file: Path | None = None
    max_streams: int = 64
    max_streams_per_client: int = 16
    max_request_bytes: int = 4 << 20
    max_query_range_ns: int | None = None
    max_flows_per_query: int | None = None
    grace: float = 2.0

    def __post_init__(self) -> None:
        if self.max_streams < 1:
            raise InputError(f"--max-streams {self.max_streams}: expected at least 1")
        if not 0 <= self.max_streams_per_client <= self.max_streams:
            raise InputError(
                f"--max-streams-per-client {self.max_streams_per_client}: expected 0 (no cap)"
                f" to --max-streams ({self.max_streams})"
            )
        if self.max_request_bytes < 1024:
            raise InputError(
                f"--max-request-size {self.max_request_bytes}: expected at least 1024 bytes"
            )
        if self.max_query_range_ns is not None and self.max_query_range_ns <= 0:
            raise InputError(f"--max-query-range {self.max_query_range_ns} ns: expected > 0")
        if self.max_flows_per_query is not None and self.max_flows_per_query < 1:
            raise InputError(
                f"--max-flows-per-query {self.max_flows_per_query}: expected at least 1"
            )


class _Limits(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Bounds each client: its observer.Observer streams, and its queries' time range and
    number of flows; every refusal is counted in flowscope_limit_refusals_total."""

    def __init__(self, config: ServerConfig, metrics: Metrics) -> None:
        self._config = config
        refusals = metrics.counter("limit_refusals_total")
        # Every limit's child made now, so each is scraped from 0.
        self._refusals = {limit: refusals.labels(limit=limit) for limit in LIMITS}
        self._streams = StreamLimiter(
            config.max_streams,
            config.max_streams_per_client,
            on_refused=lambda refusal: self._refused(refusal.limit),
        )

    def _refused(self, limit: str) -> None:
        self._refusals[limit].inc()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],  # type: ignore[type-arg]
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:  # type: ignore[type-arg]
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method
        if handler.unary_stream is not None and method.startswith(STREAMED_SERVICE):
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.unary_unary is not None and method.startswith(AGGREGATES_SERVICE):
            return grpc.unary_unary_rpc_method_handler(
                self._aggregate(handler.unary_unary),
                handler.request_deserializer,
                handler.response_serializer,
            )
        return handler

    def _stream(
        self, behaviour: Callable[[Any, grpc.ServicerContext], Iterator[Any]]
    ) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
        def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            if isinstance(request, observer_pb2.GetFlowsRequest):
                since = _time_ns(request.since) if request.HasField("since") else None
                until = _time_ns(request.until) if request.HasField("until") else None
                self._check_query(context, since, until, request.number)
            principal = current_principal()
            client = (
                f"token {principal.token_id}"
                if principal is not None
                else client_address(context.peer())
            )
            with self._streams.admitted(client, context, _describe_refusal):
                yield from behaviour(request, context)

        return call

    def _aggregate(
        self, behaviour: Callable[[Any, grpc.ServicerContext], Any]
    ) -> Callable[[Any, grpc.ServicerContext], Any]:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            bounds = (
                request.range if isinstance(request, aggregate_pb2.TopTalkersRequest) else request
            )
            if isinstance(bounds, aggregate_pb2.AggregateRequest):
                self._check_query(context, bounds.since_ns, bounds.until_ns, 0)
            return behaviour(request, context)

        return call

    def _check_query(
        self, context: grpc.ServicerContext, since: int | None, until: int | None, number: int
    ) -> None:
        """INVALID_ARGUMENT, counted, for a query over the time range or flow count limits."""
        max_range = self._config.max_query_range_ns
        if max_range is not None and since is not None:
            span = (until if until is not None else time.time_ns()) - since
            if span > max_range:
                self._refused("query_range")
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"the query's time range since..{'until' if until is not None else 'now'}"
                    f" spans {_span(span)}, more than the relay's limit of {_span(max_range)}"
                    " (max query range); ask for a shorter range",
                )
        max_flows = self._config.max_flows_per_query
        if max_flows is not None and number > max_flows:
            self._refused("query_flows")
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"number {number}: more than the relay's limit of {max_flows} flows per query"
                " (max flows per query)",
            )


def _describe_refusal(refusal: Refusal) -> str:
    if refusal.limit == "streams":
        return (
            f"too many concurrent streams: {refusal.open} open, limit {refusal.maximum}"
            " (max streams); try again later"
        )
    return (
        f"too many concurrent streams for {refusal.client}: {refusal.open} open,"
        f" limit {refusal.maximum} (max streams per client); close one or try again later"
    )


class RelayServer:
    """The relay's gRPC server; inert until start()."""

    def __init__(
        self,
        config: ServerConfig,
        relay: RelayView,
        store: FlowStore,
        hub: LiveHub,
        peers: PeerSet,
        metrics: Metrics,
    ) -> None:
        self.config = config
        self._limits = _Limits(config, metrics)
        self._stopping = threading.Event()
        self._servicer = ObserverServicer(relay, store, hub, self._stopping)
        self._aggregates = store.aggregates()
        self._identities = ClusterIdentities(store.identities())
        self._version = relay.version
        self._peers = peers
        self._health = health.HealthServicer()
        self._server: grpc.Server | None = None
        self.port = 0

    def start(self) -> None:
        """Binds the listen address and serves; FlowscopeError naming an address it cannot bind,
        StorageError when the store's identities cannot be read."""
        config = self.config
        check_listen_address(config.listen_address, tls=config.tls is not None)
        credentials = None if config.tls is None else config.tls.credentials()
        interceptors: list[grpc.ServerInterceptor] = []  # type: ignore[type-arg]
        if config.token_file is not None:
            verifier = TokenVerifier(TokenFile(config.token_file))
            interceptors.append(TokenAuthInterceptor(verifier, open_methods=HEALTH_METHODS))
        # After the token check, which names the client the stream limits count by.
        interceptors.append(self._limits)
        interceptors.append(VersionHeader(VERSION_HEADER, self._version))
        self._identities.load()
        server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=config.max_streams + UNARY_WORKERS, thread_name_prefix="relay"
            ),
            interceptors=interceptors,
            options=[("grpc.max_receive_message_length", config.max_request_bytes)],
            maximum_concurrent_rpcs=config.max_streams + UNARY_WORKERS + QUEUED_CALLS,
        )
        observer_pb2_grpc.add_ObserverServicer_to_server(self._servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        add_announce_service(server, self._peers)
        add_aggregates_service(server, self._aggregates)
        add_identities_service(server, self._identities)
        self.port = start_serving(server, config.listen_address, credentials, self._health)
        self._server = server

    def stop(self) -> None:
        if self._server is None:
            return
        self._health.enter_graceful_shutdown()
        self._stopping.set()
        self._server.stop(self.config.grace).wait()
        self._server = None
