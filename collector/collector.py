"""The node collector: datapath, endpoints, decoding and the node's ring of events.

    collector = Collector(Config(node_name="node-1"))   # inert: nothing loaded yet
    collector.start()        # remove leftovers, load BPF, attach, start reading (root)
    ring = collector.ring    # FlowRing: flows, lost events and agent events, by sequence
    ...
    collector.stop()         # detach everything and unload

The ring is the seam for the node's servers (gRPC Observer on :4244, the batched relay RPC):
they read it by sequence number and wait on it for new entries (see ring.py). Everything
else a server needs is here too: `stats()` for ServerStatus and metrics, `endpoints` for
GetNamespaces, and `started_ns` for the uptime.

Network policy: `policies` (a PolicyEnforcer) applies and deletes policies and keeps them
compiled for the current endpoints; the control socket (Config.control_socket) and a watched
policy directory (Config.policy_dir) drive it.

Identities: allocated on this node (identity.py), or cluster-wide by the relay at
Config.relay (relay_identities.py), whose numbers re-label endpoints that waited for them.

Threads: one reads the event buffer and decodes; one runs the periodic work (counter sweep,
endpoint refresh, identity updates, loss accounting). Losses anywhere in the kernel (ring
reserve or perf output failures, rate limiting) reach the ring as LostEvents (source
PERF_EVENT_RING_BUFFER), one per CPU and interval, and are counted in `stats()`.

Metrics: every event goes to the ring through `record`, which also counts flows and lost
events in `metrics` (Hubble's hubble_* families); `flowscope collector` serves them on
--metrics-address (localhost:9965).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from flowscope.collector import rawevent as raw
from flowscope.collector import tc
from flowscope.collector.control import ControlServer
from flowscope.collector.decode import Decoder, monotonic_to_wall_offset
from flowscope.collector.endpoints import (
    Endpoint,
    EndpointRegistry,
    agent_events,
    file_endpoints,
    host_addresses,
    host_cidr,
    identity_events,
    lab_endpoints,
)
from flowscope.collector.enforcement import PolicyEnforcer
from flowscope.collector.events import EventReader
from flowscope.collector.identity import Identities, IdentityAllocator
from flowscope.collector.labconfig import LAB_STATE_DIR
from flowscope.collector.loader import PIN_DIR, Datapath, DatapathConfig
from flowscope.collector.policy import CompilerConfig, PolicyStore
from flowscope.collector.policydir import PolicyDirectory
from flowscope.collector.processes import ProcessTable
from flowscope.collector.relay_identities import IdentityClient, RelayIdentities
from flowscope.collector.ring import Event, FlowRing
from flowscope.collector.sweep import TableSweep
from flowscope.common.auth import ClientAuth
from flowscope.common.metrics import Metrics
from flowscope.common.tls import ClientTLS
from flowscope.common.vocab import IDENTITY_HOST
from flowscope.proto.flow import flow_pb2

log = logging.getLogger(__name__)

DEFAULT_IDENTITY_STATE = Path("/var/lib/flowscope/identities.json")


@dataclass(frozen=True)
class Config:
    node_name: str = field(default_factory=socket.gethostname)
    ring_capacity: int = 65535
    sweep_interval: float = 5.0
    idle_timeout: float = 60.0
    # For TCP connections that saw no FIN or RST (connection tracking's established timeout).
    tcp_idle_timeout: float = 21600.0
    endpoint_refresh_interval: float = 2.0
    lost_event_interval: float = 1.0
    # Endpoint sources: the labs on this machine, and a static endpoints file.
    lab_state_dir: Path | None = LAB_STATE_DIR
    endpoints_file: Path | None = None
    identity_state: Path | None = DEFAULT_IDENTITY_STATE
    # A relay (HOST:PORT) that allocates identities cluster-wide ("": allocate them here),
    # and how long a new label set waits for the relay's number before it gets `init`.
    relay: str = ""
    relay_tls: ClientTLS | None = None
    relay_auth: ClientAuth | None = None
    identity_wait: float = 2.0
    datapath: DatapathConfig = field(default_factory=DatapathConfig)
    policy: CompilerConfig = field(default_factory=CompilerConfig)
    # Keep the policies of this directory in force (polled every policy_poll_interval).
    policy_dir: Path | None = None
    policy_poll_interval: float = 1.0
    # Serve policy apply/delete/list/get on this unix socket (collector/control.py).
    control_socket: Path | None = None


@dataclass
class Stats:
    events_received: int = 0
    flows: int = 0
    decode_errors: int = 0  # records too short or of an unknown kind
    lost_transport_full: int = 0
    lost_rate_limited: int = 0
    perf_lost_reported: int = 0
    connections_expired: int = 0


class Collector:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.ring = FlowRing(config.ring_capacity, node_name=config.node_name)
        self.metrics = Metrics()
        ring_entries = self.metrics.gauge("ring_entries").labels(ring="node")
        ring_entries.set_function(lambda: len(self.ring))
        self.metrics.gauge("ring_capacity").labels(ring="node").set(config.ring_capacity)
        self.started_ns = 0
        self._datapath = Datapath(config.datapath)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._stats = Stats()
        self._lost_seen: list[list[int]] = []
        self._lost_checked_ns = 0
        self._registry: EndpointRegistry | None = None
        self._decoder: Decoder | None = None
        self._reader: EventReader | None = None
        self._sweep: TableSweep | None = None
        self._enforcer: PolicyEnforcer | None = None
        self._host_addresses: set[str] = set()
        self._control: ControlServer | None = None
        self._policy_dir: PolicyDirectory | None = None
        self._relay_identities: RelayIdentities | None = None
        self._lock = threading.Lock()

    def record(self, event: Event) -> None:
        """Appends an event to the ring and counts it in the metrics."""
        self.ring.append(event)
        if isinstance(event, flow_pb2.Flow):
            self.metrics.flows.observe_flow(event)
        elif isinstance(event, flow_pb2.LostEvent):
            self.metrics.flows.observe_lost(event)

    @property
    def datapath(self) -> Datapath:
        return self._datapath

    @property
    def endpoints(self) -> EndpointRegistry:
        if self._registry is None:
            raise RuntimeError("the collector is not started")
        return self._registry

    @property
    def policies(self) -> PolicyEnforcer:
        if self._enforcer is None:
            raise RuntimeError("the collector is not started")
        return self._enforcer

    def start(self) -> None:
        """Load the datapath, remove what a crashed earlier run left, attach and start reading.

        Raises NotSupportedError naming what the machine lacks (root, BTF, BCC, ...).
        """
        self._datapath.load()
        try:
            cleaned = tc.remove_leftovers(PIN_DIR)
            if cleaned:
                log.info("removed filters left by an earlier run from %s", ", ".join(cleaned))
            self._setup()
        except BaseException:
            if self._control is not None:
                self._control.stop()
            if self._relay_identities is not None:
                self._relay_identities.stop()
            self._datapath.close()
            raise
        for target, name in ((self._read_loop, "flowscope-reader"),
                             (self._periodic_loop, "flowscope-periodic")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _setup(self) -> None:
        assert self._datapath.drop_reasons is not None
        self.started_ns = time.time_ns()
        identities: Identities
        if self.config.relay:
            self._relay_identities = RelayIdentities(
                IdentityClient(self.config.relay, self.config.node_name,
                               self.config.relay_tls, self.config.relay_auth),
                self.config.identity_state, wait=self.config.identity_wait)
            self._relay_identities.start()
            identities = self._relay_identities
        else:
            identities = IdentityAllocator(self.config.identity_state)
        self._registry = EndpointRegistry(identities)
        self._enforcer = PolicyEnforcer(PolicyStore(self.config.policy), self._datapath,
                                        self.record)
        self._decoder = Decoder(self.config.node_name, self._registry,
                                self._datapath.drop_reasons, ProcessTable(),
                                monotonic_to_wall_offset(),
                                policy_refs=self._enforcer.policies_of)
        self._sweep = TableSweep(self._datapath, self._decoder,
                                 int(self.config.idle_timeout * 1e9),
                                 int(self.config.tcp_idle_timeout * 1e9))
        self._refresh_host_addresses()
        self._lost_seen = self._datapath.counters()
        self._lost_checked_ns = time.time_ns()
        self.record(flow_pb2.AgentEvent(
            type=flow_pb2.AGENT_STARTED,
            agent_start=flow_pb2.TimeNotification(time=_timestamp(self.started_ns))))
        if self.config.policy_dir is not None:
            # Before the endpoints are attached: their traffic meets the policies at once.
            enforcer = self._enforcer
            self._policy_dir = PolicyDirectory(
                self.config.policy_dir, enforcer.apply,
                lambda name: enforcer.delete(str(name), name.kind))
            self._policy_dir.poll()
        self.refresh_endpoints()
        self._reader = EventReader(self._datapath, self._on_event)
        self._reader.open()
        if self.config.control_socket is not None:
            self._control = ControlServer(self.config.control_socket, self._enforcer)
            self._control.start()

    def stop(self) -> None:
        """Stop reading, report the last losses, detach from every interface and unload."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        if self._control is not None:
            self._control.stop()
        if self._relay_identities is not None:
            self._relay_identities.stop()
        if self._reader is not None:
            self._reader.poll(0)
            self._report_losses()
        self._datapath.close()

    def stats(self) -> Stats:
        with self._lock:
            stats = Stats(**vars(self._stats))
        if self._reader is not None:
            stats.events_received = self._reader.received
            stats.perf_lost_reported = self._reader.perf_lost
            stats.decode_errors += self._reader.short_records
        if self._sweep is not None:
            stats.connections_expired = self._sweep.expired
        return stats

    def refresh_endpoints(self) -> None:
        """Read the endpoint sources; update ipcache, policy, tc attachments and agent events.

        A new endpoint's identity and policy are in the maps before its traffic is seen."""
        assert self._registry is not None and self._enforcer is not None
        found: list[Endpoint] = []
        if self.config.lab_state_dir is not None:
            found += lab_endpoints(self.config.lab_state_dir)
        if self.config.endpoints_file is not None:
            found += file_endpoints(self.config.endpoints_file)
        changes = self._registry.replace(found)
        if not (changes.added or changes.removed):
            return
        for gone in changes.removed:
            if gone.endpoint.interface in self._datapath.attached_interfaces:
                self._datapath.detach(gone.endpoint.interface)
            for ip in gone.endpoint.ips:
                self._datapath.delete_ipcache(ip)
        for new in changes.added:
            for ip in new.endpoint.ips:
                self._datapath.set_ipcache(host_cidr(ip), new.identity,
                                           raw.IPCACHE_LOCAL_ENDPOINT)
        # New endpoints often come with new host addresses (a lab's bridge).
        self._refresh_host_addresses()
        self._enforcer.set_endpoints(self._registry.all())
        for new in changes.added:
            if Path("/sys/class/net", new.endpoint.interface).exists():
                self._datapath.attach(new.endpoint.interface)
            else:
                log.warning("endpoint %s: interface %s does not exist; not observed",
                            new.endpoint.ref, new.endpoint.interface)
        assert self._decoder is not None
        self._decoder.forget_interfaces()
        for event in agent_events(changes):
            self.record(event)

    def apply_identity_updates(self) -> None:
        """Re-label the endpoints whose label set got its number from the relay since the
        last call: ipcache, policies, and an IPCACHE_UPSERTED agent event per address."""
        assert self._registry is not None and self._enforcer is not None
        if self._relay_identities is None:
            return
        updates = self._relay_identities.take_updates()
        relabelled = self._registry.relabel(updates) if updates else []
        if not relabelled:
            return
        for change in relabelled:
            endpoint = change.registered.endpoint
            for ip in endpoint.ips:
                self._datapath.set_ipcache(host_cidr(ip), change.registered.identity,
                                           raw.IPCACHE_LOCAL_ENDPOINT)
            log.info("endpoint %s: identity %d replaces %d (from the relay)", endpoint.ref,
                     change.registered.identity, change.old_identity)
        self._enforcer.set_endpoints(self._registry.all())
        for event in identity_events(relabelled):
            self.record(event)

    def _refresh_host_addresses(self) -> None:
        """The node's own addresses in the ipcache, as identity host."""
        found = set(host_addresses())
        for gone in self._host_addresses - found:
            self._datapath.delete_ipcache(gone)
        for new in found - self._host_addresses:
            self._datapath.set_ipcache(new, IDENTITY_HOST, 0)
        self._host_addresses = found

    def _on_event(self, event: raw.RawEvent) -> None:
        assert self._decoder is not None
        try:
            flow = self._decoder.decode(event)
        except (ValueError, KeyError) as exc:
            with self._lock:
                self._stats.decode_errors += 1
            log.debug("undecodable datapath event: %s", exc)
            return
        if flow is not None:
            self.record(flow)
            with self._lock:
                self._stats.flows += 1

    def _read_loop(self) -> None:
        assert self._reader is not None
        while not self._stop.is_set():
            self._reader.poll(100)

    def _periodic_loop(self) -> None:
        c = self.config
        next_sweep = time.monotonic() + c.sweep_interval
        next_refresh = time.monotonic() + c.endpoint_refresh_interval
        next_policy_poll = time.monotonic() + c.policy_poll_interval
        while not self._stop.wait(min(c.lost_event_interval, c.policy_poll_interval, 0.5)):
            self._report_losses()
            now = time.monotonic()
            if self._policy_dir is not None and now >= next_policy_poll:
                next_policy_poll = now + c.policy_poll_interval
                self._guarded(self._policy_dir.poll, "policy directory poll")
            if now >= next_refresh:
                next_refresh = now + c.endpoint_refresh_interval
                self._guarded(self.refresh_endpoints, "endpoint refresh")
            self._guarded(self.apply_identity_updates, "identity update")
            if now >= next_sweep:
                next_sweep = now + c.sweep_interval
                self._guarded(self.sweep, "counter sweep")

    def _guarded(self, work: Callable[[], object], what: str) -> None:
        try:
            work()
        except Exception:
            log.exception("%s failed; retrying at the next interval", what)

    def sweep(self) -> None:
        """Append one record per connection that changed since the previous sweep."""
        assert self._sweep is not None
        for flow in self._sweep.sweep(time.monotonic_ns()):
            self.record(flow)
            with self._lock:
                self._stats.flows += 1

    def _report_losses(self) -> None:
        now_ns = time.time_ns()
        current = self._datapath.counters()
        for cpu, (before, after) in enumerate(zip(self._lost_seen, current, strict=True)):
            full = after[raw.COUNTER_TRANSPORT_FULL] - before[raw.COUNTER_TRANSPORT_FULL]
            limited = after[raw.COUNTER_RATE_LIMITED] - before[raw.COUNTER_RATE_LIMITED]
            if full + limited == 0:
                continue
            with self._lock:
                self._stats.lost_transport_full += full
                self._stats.lost_rate_limited += limited
            lost = flow_pb2.LostEvent(source=flow_pb2.PERF_EVENT_RING_BUFFER,
                                      num_events_lost=full + limited)
            lost.cpu.value = cpu
            lost.first.CopyFrom(_timestamp(self._lost_checked_ns))
            lost.last.CopyFrom(_timestamp(now_ns))
            self.record(lost)
        self._lost_seen = current
        self._lost_checked_ns = now_ns


def _timestamp(ns: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(ns)
    return stamp
