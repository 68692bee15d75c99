"""The node's gRPC server: Hubble's observer.Observer, health, and the batched relay stream.

One port (default localhost:4244) serves

* `observer.Observer` over the node's ring: GetFlows, GetAgentEvents, ServerStatus and
  GetNamespaces as a Hubble node answers them (selection rules in ringquery.py; agent
  events are timed, bounded and stamped by when the ring took them); GetNodes
  and GetDebugEvents are UNIMPLEMENTED, as GetNodes is on a Hubble node (the relay answers
  it) and because a collector records no debug events;
* `grpc.health.v1.Health`, with service "hubble.server.Observer" SERVING while it runs;
* `flowscope.stream.FlowStream`, the batched stream a relay follows (stream.py).

With `Config.tls` it serves TLS (mutual TLS when the TLS settings name client CAs, so only
relays holding a certificate from those CAs follow it); without, it listens on the loopback
interface only.

Every call gets the `hubble-server-version` header. Streams (GetFlows, GetAgentEvents,
Follow) hold a thread each: at most `max_streams` run at once, and one more is refused with
RESOURCE_EXHAUSTED. Followers wake on new entries, notice a cancelled call within
ringquery.CANCEL_POLL seconds, and end with UNAVAILABLE when the server stops.

The collector command runs it beside its Collector, once the collector has started:

    collector.start()
    status = NodeStatus(node_name=collector.config.node_name,
                        started_ns=collector.started_ns,
                        seen_flows=lambda: collector.stats().flows)
    server = NodeServer(Config(listen_address=args.listen_address), collector.ring, status)
    server.start()      # binds now: raises FlowscopeError naming an address it cannot bind
    ...
    server.stop()       # stops taking calls, ends the streams, waits up to `grace` seconds
    collector.stop()
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, Final

import grpc
from grpc_health.v1 import health, health_pb2_grpc

import flowscope
from flowscope.collector import ringquery, stream
from flowscope.collector.ring import FlowRing
from flowscope.common.errors import FilterError, InputError
from flowscope.common.fieldmask import FlowMask
from flowscope.common.filters import compile_predicate
from flowscope.common.grpcserve import VersionHeader, start_serving
from flowscope.common.limits import Refusal, StreamLimiter
from flowscope.common.tls import ServerTLS, check_listen_address
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2, observer_pb2_grpc

VERSION_HEADER: Final = "hubble-server-version"
NAMESPACE_WINDOW_NS: Final = 3600 * 1_000_000_000
RATE_WINDOW_NS: Final = 60 * 1_000_000_000
# Threads beyond the streams' for unary calls and for refusing streams over the limit.
UNARY_WORKERS: Final = 4
# Calls that may wait for a thread; gRPC refuses more with RESOURCE_EXHAUSTED.
QUEUED_CALLS: Final = 16
# The streams that count toward max_streams: every streaming method of these services.
LIMITED_SERVICES: Final = ("/observer.Observer/", f"/{stream.SERVICE}/")


@dataclass(frozen=True)
class NodeStatus:
    """What ServerStatus reports besides the ring: who this node is and what it has seen."""

    node_name: str
    started_ns: int
    seen_flows: Callable[[], int]
    version: str = flowscope.__version__


@dataclass(frozen=True)
class Config:
    listen_address: str = "localhost:4244"
    # None serves plain text, on the loopback interface only.
    tls: ServerTLS | None = None
    max_streams: int = 64
    lost_event_interval: float = 1.0
    grace: float = 2.0
    batch: stream.BatchConfig = field(default_factory=stream.BatchConfig)


class ObserverServicer(observer_pb2_grpc.ObserverServicer):
    """observer.Observer over a FlowRing."""

    def __init__(
        self, ring: FlowRing, status: NodeStatus, config: Config, stopping: threading.Event
    ) -> None:
        self._ring = ring
        self._status = status
        self._lost_interval = config.lost_event_interval
        self._stopping = stopping

    def GetFlows(
        self, request: observer_pb2.GetFlowsRequest, context: grpc.ServicerContext
    ) -> Iterator[observer_pb2.GetFlowsResponse]:
        query = _query(request, context)
        try:
            keep = compile_predicate(request.whitelist, request.blacklist)
            mask = FlowMask.compile(request.field_mask)
        except (FilterError, InputError) as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        node = self._status.node_name
        events = self._select(query, ringquery.flow_interest(keep), context)
        for _, event in events:
            if isinstance(event, flow_pb2.Flow):
                flow = event if mask is None else mask.apply(event)
                yield observer_pb2.GetFlowsResponse(flow=flow, node_name=node, time=event.time)
            else:
                assert isinstance(event, flow_pb2.LostEvent)
                response = observer_pb2.GetFlowsResponse(lost_events=event, node_name=node)
                if event.HasField("last"):
                    response.time.CopyFrom(event.last)
                yield response
        self._end(query, context)

    def GetAgentEvents(
        self, request: observer_pb2.GetAgentEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[observer_pb2.GetAgentEventsResponse]:
        query = _query(request, context)
        node = self._status.node_name
        for appended_ns, event in self._select(query, ringquery.AGENT_EVENTS, context):
            assert isinstance(event, flow_pb2.AgentEvent)
            response = observer_pb2.GetAgentEventsResponse(agent_event=event, node_name=node)
            response.time.FromNanoseconds(appended_ns)
            yield response
        self._end(query, context)

    def GetDebugEvents(
        self, request: observer_pb2.GetDebugEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[observer_pb2.GetDebugEventsResponse]:
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "GetDebugEvents: flowscope collectors record no debug events",
        )

    def GetNodes(
        self, request: observer_pb2.GetNodesRequest, context: grpc.ServicerContext
    ) -> observer_pb2.GetNodesResponse:
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED, "GetNodes is answered by the relay, not by a node"
        )

    def GetNamespaces(
        self, request: observer_pb2.GetNamespacesRequest, context: grpc.ServicerContext
    ) -> observer_pb2.GetNamespacesResponse:
        pairs = ringquery.namespaces(self._ring, time.time_ns() - NAMESPACE_WINDOW_NS)
        return observer_pb2.GetNamespacesResponse(
            namespaces=[observer_pb2.Namespace(cluster=c, namespace=n) for c, n in pairs]
        )

    def ServerStatus(
        self, request: observer_pb2.ServerStatusRequest, context: grpc.ServicerContext
    ) -> observer_pb2.ServerStatusResponse:
        now = time.time_ns()
        uptime = max(0, now - self._status.started_ns)
        window = min(RATE_WINDOW_NS, uptime) or RATE_WINDOW_NS
        return observer_pb2.ServerStatusResponse(
            num_flows=len(self._ring),
            max_flows=self._ring.capacity,
            seen_flows=self._status.seen_flows(),
            uptime_ns=uptime,
            version=self._status.version,
            flows_rate=ringquery.flows_rate(self._ring, now, window),
        )

    def _select(
        self, query: ringquery.Query, interest: ringquery.Interest, context: grpc.ServicerContext
    ) -> Iterator[ringquery.Timed]:
        def active() -> bool:
            return context.is_active() and not self._stopping.is_set()

        return ringquery.select(self._ring, query, interest, active, self._lost_interval)

    def _end(self, query: ringquery.Query, context: grpc.ServicerContext) -> None:
        if query.follow and self._stopping.is_set():
            context.abort(grpc.StatusCode.UNAVAILABLE, "the node's server is shutting down")


def _query(
    request: observer_pb2.GetFlowsRequest | observer_pb2.GetAgentEventsRequest,
    context: grpc.ServicerContext,
) -> ringquery.Query:
    if request.first and request.follow:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "first cannot be specified with follow")
    since = request.since if request.HasField("since") else None
    until = request.until if request.HasField("until") else None
    return ringquery.Query(
        number=request.number,
        first=request.first,
        follow=request.follow,
        since_ns=None if since is None else ringquery.timestamp_ns(since),
        until_ns=None if until is None else ringquery.timestamp_ns(until),
    )


class _StreamCap(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Bounds the streams running at once (GetFlows, GetAgentEvents, Follow)."""

    def __init__(self, max_streams: int) -> None:
        self.streams = StreamLimiter(max_streams)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],  # type: ignore[type-arg]
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:  # type: ignore[type-arg]
        handler = continuation(details)
        if handler is None:
            return None
        if handler.unary_stream is not None and details.method.startswith(LIMITED_SERVICES):
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream),
                handler.request_deserializer,
                handler.response_serializer,
            )
        return handler

    def _stream(
        self, behaviour: Callable[[Any, grpc.ServicerContext], Iterator[Any]]
    ) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
        def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            # One cap for all clients: a node's streams come from its relays and a few CLIs.
            with self.streams.admitted("", context, _describe_refusal):
                yield from behaviour(request, context)

        return call


def _describe_refusal(refusal: Refusal) -> str:
    return (
        f"this node already serves {refusal.maximum} streams, its limit (max streams); "
        "try again later"
    )


class NodeServer:
    """The node's gRPC server on one port; inert until start()."""

    def __init__(self, config: Config, ring: FlowRing, status: NodeStatus) -> None:
        self.config = config
        self._ring = ring
        self._status = status
        self._stopping = threading.Event()
        self._policy = _StreamCap(config.max_streams)
        self._health = health.HealthServicer()
        self._server: grpc.Server | None = None
        self.port = 0

    def start(self) -> None:
        """Binds the listen address and starts serving; FlowscopeError if it cannot bind,
        InputError for a plain-text address beyond loopback or a bad TLS file."""
        config = self.config
        check_listen_address(config.listen_address, tls=config.tls is not None)
        credentials = None if config.tls is None else config.tls.credentials()
        server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=config.max_streams + UNARY_WORKERS, thread_name_prefix="flowscope-grpc"
            ),
            # The header last, so refused streams get none.
            interceptors=[self._policy, VersionHeader(VERSION_HEADER, self._status.version)],
            maximum_concurrent_rpcs=config.max_streams + UNARY_WORKERS + QUEUED_CALLS,
        )
        observer_pb2_grpc.add_ObserverServicer_to_server(
            ObserverServicer(self._ring, self._status, config, self._stopping), server
        )
        stream.add_to_server(
            stream.FlowStreamServicer(
                self._ring, self._status.node_name, config.batch, self._stopping
            ),
            server,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        self.port = start_serving(server, config.listen_address, credentials, self._health)
        self._server = server

    def active_streams(self) -> int:
        """Streams running now (GetFlows, GetAgentEvents, Follow)."""
        return self._policy.streams.open

    def stop(self) -> None:
        """Refuses new calls, ends the streams, and waits up to `grace` for calls to finish."""
        if self._server is None:
            return
        self._health.enter_graceful_shutdown()
        self._stopping.set()
        self._server.stop(self.config.grace).wait()
        self._server = None
