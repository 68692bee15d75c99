"""Raw datapath records -> flow.Flow, enriched with endpoints, identities and processes.

Two kinds of input: events (struct fs_event, from the ring or perf buffer) and connection
records (struct fs_conn_key / fs_conn, from the periodic sweep of the connection map). Both are
read through the ctypes mirrors in rawevent.py. Socket events (CONNECT, LISTEN) produce no flow:
they feed the process table that later flows are attributed from. Policy verdict events name
the policies that decided by a reference index, which `policy_refs` resolves.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flowscope import __version__
from flowscope.collector import rawevent as raw
from flowscope.collector.dropreasons import DropReasons
from flowscope.collector.endpoints import EndpointRegistry
from flowscope.collector.policy.bpfmaps import FS_POLICY_INGRESS
from flowscope.collector.processes import ProcessTable
from flowscope.collector.summary import summary
from flowscope.common.vocab import (
    EVENT_TYPE_DROP,
    EVENT_TYPE_POLICY_VERDICT,
    EVENT_TYPE_TRACE,
    IDENTITY_HOST,
    IDENTITY_WORLD,
    RESERVED_IDENTITIES,
    TRACE_SUBTYPE_TO_POINT,
)
from flowscope.proto.flow import flow_pb2

_TCP, _UDP, _ICMP, _ICMPV6 = 6, 17, 1, 58
_TCP_FLAG_BITS = (("FIN", 0x1), ("SYN", 0x2), ("RST", 0x4), ("PSH", 0x8), ("ACK", 0x10),
                  ("URG", 0x20), ("ECE", 0x40), ("CWR", 0x80), ("NS", 0x100))

# A policy reference index of the datapath -> the policies it stands for.
PolicyRefs = Callable[[int], Sequence[flow_pb2.Policy]]


@dataclass(frozen=True)
class Wire:
    """One direction of a packet or connection: addresses, ports and protocol."""

    family: int
    proto: int
    src: str
    dst: str
    sport: int
    dport: int


def address(family: int, data: bytes) -> str:
    if family == 4:
        return socket.inet_ntop(socket.AF_INET, data[:4])
    return socket.inet_ntop(socket.AF_INET6, data)


def monotonic_to_wall_offset() -> int:
    """Add to a CLOCK_MONOTONIC time (the BPF clock) to get nanoseconds since the epoch."""
    return time.time_ns() - time.monotonic_ns()


class Decoder:
    """Builds Flows for one node; thread-safe as long as its lookups are."""

    def __init__(self, node_name: str, endpoints: EndpointRegistry, drop_reasons: DropReasons,
                 processes: ProcessTable, clock_offset_ns: int,
                 ifname: Callable[[int], str] | None = None,
                 policy_refs: PolicyRefs | None = None) -> None:
        self._node_name = node_name
        self._endpoints = endpoints
        self._drop_reasons = drop_reasons
        self._processes = processes
        self._clock_offset_ns = clock_offset_ns
        self._ifname = ifname or _if_indextoname
        self._policy_refs = policy_refs or (lambda _index: ())
        self._ifnames: dict[int, str] = {}
        self._emitter = flow_pb2.Emitter(name="flowscope", version=__version__)
        # Endpoint messages built once per registered endpoint (IDs are never reused).
        self._templates: dict[int, flow_pb2.Endpoint] = {}

    def forget_interfaces(self) -> None:
        """Drop cached interface names (after interfaces came or went)."""
        self._ifnames.clear()

    def decode(self, event: raw.RawEvent) -> flow_pb2.Flow | None:
        """The Flow of a TRACE or DROP event; None for socket events (recorded, not flows)."""
        family = event.family
        wire = Wire(family, event.proto, address(family, bytes(event.saddr)),
                    address(family, bytes(event.daddr)), event.sport, event.dport)
        if event.kind == raw.EVENT_CONNECT:
            self._processes.connected(wire.src, wire.sport, wire.dst, wire.dport, event.pid,
                                      _command(event))
            return None
        if event.kind == raw.EVENT_LISTEN:
            self._processes.listening(wire.sport, event.pid, _command(event))
            return None
        flow = self._base(wire, event.ts_ns, event.src_identity, event.dst_identity)
        _set_l4(flow, wire, event.tcp_flags, event.icmp_type, event.icmp_code)
        if event.kind == raw.EVENT_TRACE:
            self._trace(flow, event)
        elif event.kind == raw.EVENT_DROP:
            self._drop(flow, event)
        elif event.kind == raw.EVENT_POLICY_VERDICT:
            self._policy_verdict(flow, event)
        elif event.kind == raw.EVENT_POLICY_DROP:
            self._policy_drop(flow, event)
        else:
            raise ValueError(f"unknown datapath event kind {event.kind}")
        flow.Summary = summary(flow)
        return flow

    def _trace(self, flow: flow_pb2.Flow, event: raw.RawEvent) -> None:
        flow.verdict = flow_pb2.FORWARDED
        flow.event_type.type = EVENT_TYPE_TRACE
        flow.event_type.sub_type = event.obs_point
        flow.trace_observation_point = TRACE_SUBTYPE_TO_POINT[event.obs_point]  # type: ignore[assignment]
        flow.ethernet.source = _mac(bytes(event.smac))
        flow.ethernet.destination = _mac(bytes(event.dmac))
        flow.interface.index = event.ifindex
        flow.interface.name = self._interface_name(event.ifindex)
        reply = bool(event.is_reply)
        flow.is_reply.value = reply
        flow.reply = reply
        # The direction of the connection as the endpoint sees it: what the endpoint sends
        # at from-endpoint is egress traffic, unless it is the reply of an ingress connection.
        leaving = event.obs_point == raw.FROM_ENDPOINT
        flow.traffic_direction = (flow_pb2.EGRESS if leaving != reply else flow_pb2.INGRESS)

    def _interface_name(self, ifindex: int) -> str:
        name = self._ifnames.get(ifindex)
        if name is None:
            name = self._ifnames[ifindex] = self._ifname(ifindex)
        return name

    def _drop(self, flow: flow_pb2.Flow, event: raw.RawEvent) -> None:
        name, hubble_reason = self._drop_reasons.describe(event.drop_reason)
        flow.verdict = flow_pb2.DROPPED
        flow.event_type.type = EVENT_TYPE_DROP
        flow.event_type.sub_type = hubble_reason
        flow.drop_reason = hubble_reason
        flow.drop_reason_desc = hubble_reason  # type: ignore[assignment]
        flow.kernel_drop_reason = name
        dst_local = flow.destination.ID != 0
        flow.traffic_direction = flow_pb2.INGRESS if dst_local else flow_pb2.EGRESS

    def _policy_verdict(self, flow: flow_pb2.Flow, event: raw.RawEvent) -> None:
        flow.event_type.type = EVENT_TYPE_POLICY_VERDICT
        flow.verdict = event.verdict
        flow.policy_match_type = event.match_type
        ingress = event.policy_direction == FS_POLICY_INGRESS
        flow.traffic_direction = flow_pb2.INGRESS if ingress else flow_pb2.EGRESS
        if event.verdict != flow_pb2.DROPPED:
            # A verdict that lets the packet pass is about a connection's first packet (or
            # its forward direction): not a reply. Of a denied packet that is left unknown.
            flow.is_reply.value = False
        if event.drop_reason:
            flow.drop_reason_desc = event.drop_reason
        policies = self._policy_refs(event.policy_ref)
        if event.drop_reason == flow_pb2.POLICY_DENY:
            target = flow.ingress_denied_by if ingress else flow.egress_denied_by
        elif not event.drop_reason:
            target = flow.ingress_allowed_by if ingress else flow.egress_allowed_by
        else:
            return  # denied by default: no policy to name
        target.extend(policies)

    def _policy_drop(self, flow: flow_pb2.Flow, event: raw.RawEvent) -> None:
        flow.verdict = flow_pb2.DROPPED
        flow.event_type.type = EVENT_TYPE_DROP
        flow.event_type.sub_type = event.drop_reason
        flow.drop_reason = event.drop_reason
        flow.drop_reason_desc = event.drop_reason
        ingress = event.policy_direction == FS_POLICY_INGRESS
        flow.traffic_direction = flow_pb2.INGRESS if ingress else flow_pb2.EGRESS
        flow.interface.index = event.ifindex
        flow.interface.name = self._interface_name(event.ifindex)

    def connection_record(self, key: raw.ConnKey, conn: raw.Conn, packets: tuple[int, int],
                          byte_counts: tuple[int, int], retransmits: int,
                          now_ns: int) -> flow_pb2.Flow:
        """The periodic record of one connection: counters since its previous record.

        `packets` and `byte_counts` are (a -> b, b -> a) deltas; the record is oriented from
        the side that opened the connection, and an ICMP record has the type and code of the
        connection's first packet.
        """
        fwd = conn.opener
        sides = [(bytes(key.addr_a), key.port_a), (bytes(key.addr_b), key.port_b)]
        (src, sport), (dst, dport) = sides[fwd], sides[1 - fwd]
        family = key.family
        wire = Wire(family, key.proto, address(family, src), address(family, dst), sport, dport)
        src_id = self._identity(wire.src)
        dst_id = self._identity(wire.dst)
        flow = self._base(wire, now_ns, src_id, dst_id)
        flags = 0
        for seen in conn.seen:
            flags |= seen
        _set_l4(flow, wire, flags & 0x1FF, conn.icmp_type, conn.icmp_code)
        flow.verdict = flow_pb2.FORWARDED
        flow.event_type.type = EVENT_TYPE_TRACE
        flow.is_reply.value = False
        flow.counters.packets_forward = packets[fwd]
        flow.counters.bytes_forward = byte_counts[fwd]
        flow.counters.packets_reply = packets[1 - fwd]
        flow.counters.bytes_reply = byte_counts[1 - fwd]
        flow.retransmits = retransmits
        flow.Summary = summary(flow)
        return flow

    def _identity(self, addr: str) -> int:
        registered = self._endpoints.by_ip(addr)
        return registered.identity if registered else IDENTITY_WORLD

    def _base(self, wire: Wire, ts_ns: int, src_identity: int,
              dst_identity: int) -> flow_pb2.Flow:
        # The ring gives the flow its sequence number and the uuid derived from it.
        flow = flow_pb2.Flow(node_name=self._node_name, Type=flow_pb2.L3_L4)
        flow.time.FromNanoseconds(ts_ns + self._clock_offset_ns)
        flow.emitter.CopyFrom(self._emitter)
        flow.IP.source = wire.src
        flow.IP.destination = wire.dst
        flow.IP.ipVersion = flow_pb2.IPv4 if wire.family == 4 else flow_pb2.IPv6
        self._endpoint(flow.source, wire.src, wire.sport, wire.dst, wire.dport, src_identity,
                       wire.proto)
        self._endpoint(flow.destination, wire.dst, wire.dport, wire.src, wire.sport,
                       dst_identity, wire.proto)
        return flow

    def _endpoint(self, message: flow_pb2.Endpoint, addr: str, port: int, peer: str,
                  peer_port: int, identity: int, proto: int) -> None:
        message.identity = identity
        registered = self._endpoints.by_ip(addr)
        if registered is None:
            name = RESERVED_IDENTITIES.get(identity)
            if identity in (IDENTITY_HOST, IDENTITY_WORLD) and name:
                message.labels.append(f"reserved:{name}")
            return
        template = self._templates.get(registered.id)
        if template is None:
            ep = registered.endpoint
            template = flow_pb2.Endpoint(
                ID=registered.id, identity=registered.identity, namespace=ep.namespace,
                pod_name=ep.pod_name, labels=ep.labels,
                workloads=[flow_pb2.Workload(name=w.name, kind=w.kind) for w in ep.workloads])
            self._templates[registered.id] = template
        message.CopyFrom(template)
        message.identity = identity
        if proto == _TCP:
            process = self._processes.owner(addr, port, peer, peer_port, registered.netns_inode)
            if process is not None:
                message.process.CopyFrom(process)


def _set_l4(flow: flow_pb2.Flow, wire: Wire, tcp_flags: int, icmp_type: int,
            icmp_code: int) -> None:
    if wire.proto == _TCP:
        flow.l4.TCP.source_port = wire.sport
        flow.l4.TCP.destination_port = wire.dport
        flags = flow.l4.TCP.flags
        for name, bit in _TCP_FLAG_BITS:
            if tcp_flags & bit:
                setattr(flags, name, True)
    elif wire.proto == _UDP:
        flow.l4.UDP.source_port = wire.sport
        flow.l4.UDP.destination_port = wire.dport
    elif wire.proto == _ICMP:
        flow.l4.ICMPv4.type = icmp_type
        flow.l4.ICMPv4.code = icmp_code
    elif wire.proto == _ICMPV6:
        flow.l4.ICMPv6.type = icmp_type
        flow.l4.ICMPv6.code = icmp_code


def _mac(data: bytes) -> str:
    return data.hex(":")


def _command(event: raw.RawEvent) -> str:
    return bytes(event.comm).split(b"\0", 1)[0].decode(errors="replace")


def _if_indextoname(index: int) -> str:
    try:
        return socket.if_indextoname(index)
    except OSError:
        return ""
