"""The text of a flow's fields, as the compact, dict and table outputs print it.

Hosts (pod, service or DNS names, or addresses, with the port), identities,
the event type, the verdict and the summary are derived here once, so the
three text formats cannot disagree. Every string taken from the flow passes
through `escape`; colours come from the palette afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from google.protobuf.descriptor import EnumDescriptor

from flowscope.cli.printers.color import CYAN, GREEN, MAGENTA, RED, RESET, YELLOW, Palette
from flowscope.cli.printers.escape import escape
from flowscope.cli.printers.options import PrinterOptions
from flowscope.cli.printers.timefmt import TimeFormatter
from flowscope.common import vocab
from flowscope.common.accessors import ports
from flowscope.common.dropreasons import drop_reason_text
from flowscope.proto.flow import flow_pb2

_TRACE_POINTS: Final = {sub: name for name, sub in vocab.TRACE_SUBTYPES.items()}
_SOCK_XLATE_POINTS: Final = {
    flow_pb2.SOCK_XLATE_POINT_PRE_DIRECTION_FWD: "pre-xlate-fwd",
    flow_pb2.SOCK_XLATE_POINT_POST_DIRECTION_FWD: "post-xlate-fwd",
    flow_pb2.SOCK_XLATE_POINT_PRE_DIRECTION_REV: "pre-xlate-rev",
    flow_pb2.SOCK_XLATE_POINT_POST_DIRECTION_REV: "post-xlate-rev",
}
_L7_PROTOCOLS: Final = {"http": "http", "dns": "dns", "kafka": "kafka", None: "l7"}
_ALLOWED: Final = frozenset({flow_pb2.FORWARDED, flow_pb2.REDIRECTED})
_DENIED: Final = frozenset({flow_pb2.DROPPED, flow_pb2.ERROR})


def enum_name(enum: EnumDescriptor, value: int) -> str:
    """The enum value's name; its number for a value the enum lacks."""
    named = enum.values_by_number.get(value)
    return str(value) if named is None else named.name


def flow_time(flow: flow_pb2.Flow, times: TimeFormatter) -> str:
    """The flow's time in the chosen layout, "N/A" when it has none."""
    return times.timestamp(flow.time if flow.HasField("time") else None)


def identity_text(identity: int) -> str:
    """"(world)" for a reserved identity, "(ID:1234)" for any other."""
    name = vocab.RESERVED_IDENTITIES.get(identity)
    if name is None:
        return f"(ID:{identity})"
    return f"({name})"


def flow_type(flow: flow_pb2.Flow) -> str:
    """The TYPE column: "to-endpoint", "Policy denied", "http-request", ..."""
    if flow.HasField("l7"):
        l7 = flow.l7
        record = l7.WhichOneof("record")
        kind = enum_name(flow_pb2.L7FlowType.DESCRIPTOR, l7.type).lower()
        if record == "dns":
            kind += " " + escape(l7.dns.observation_source)
        return f"{_L7_PROTOCOLS[record]}-{kind}"
    event = flow.event_type
    if event.type == vocab.EVENT_TYPE_TRACE:
        point = event.sub_type & 0xFF
        return _TRACE_POINTS.get(point) or str(point)
    if event.type == vocab.EVENT_TYPE_DROP:
        return drop_reason_text(event.sub_type)
    if event.type == vocab.EVENT_TYPE_POLICY_VERDICT:
        match = vocab.POLICY_MATCH_TYPES.get(flow.policy_match_type, "unknown")
        direction = enum_name(flow_pb2.TrafficDirection.DESCRIPTOR, flow.traffic_direction)
        return f"policy-verdict:{match} {direction}"
    if event.type == vocab.EVENT_TYPE_CAPTURE:
        return enum_name(flow_pb2.DebugCapturePoint.DESCRIPTOR, flow.debug_capture_point)
    if event.type == vocab.EVENT_TYPE_TRACE_SOCK:
        point = flow.sock_xlate_point
        named = _SOCK_XLATE_POINTS.get(point)
        return named or enum_name(flow_pb2.SocketTranslationPoint.DESCRIPTOR, point)
    return "UNKNOWN"


def _join_path(namespace: str, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


def _host_name(
    address: str,
    endpoint: flow_pb2.Endpoint,
    service: flow_pb2.Service | None,
    names: Sequence[str],
) -> str:
    """Pod, else service, else DNS names, else the address."""
    # A service's namespace wins over the pod's, as in Hubble.
    namespace = endpoint.namespace if service is None else service.namespace
    pod = endpoint.pod_name
    if pod:
        return _join_path(namespace, pod)
    if service is not None and service.name:
        return _join_path(namespace, service.name)
    if names:
        return ",".join(names)
    return address


class FlowText:
    """Derives the printed fields of flows for one set of printer options."""

    def __init__(self, *, palette: Palette, ip_translation: bool, policy_names: bool) -> None:
        self._palette = palette
        self._color = palette.enabled
        self._ip_translation = ip_translation
        self._policy_names = policy_names
        self._identities: dict[int, str] = {}
        self._verdicts: dict[tuple[int, bool], str] = {}

    @classmethod
    def for_options(cls, options: PrinterOptions, *, color: bool | None = None) -> FlowText:
        """The texts `options` ask for; `color` overrides options.color (tables never color)."""
        return cls(
            palette=Palette(options.color if color is None else color),
            ip_translation=options.ip_translation,
            policy_names=options.policy_names,
        )

    def hosts(self, flow: flow_pb2.Flow) -> tuple[str, str]:
        """SOURCE and DESTINATION: host, then ":port" for TCP, UDP and SCTP."""
        if not flow.HasField("IP"):
            if flow.HasField("ethernet"):
                ethernet = flow.ethernet
                return (self._palette.paint(CYAN, escape(ethernet.source)),
                        self._palette.paint(CYAN, escape(ethernet.destination)))
            return "", ""
        ip = flow.IP
        if self._ip_translation:
            source = _host_name(
                ip.source, flow.source,
                flow.source_service if flow.HasField("source_service") else None,
                flow.source_names)
            destination = _host_name(
                ip.destination, flow.destination,
                flow.destination_service if flow.HasField("destination_service") else None,
                flow.destination_names)
        else:
            source, destination = ip.source, ip.destination
        source_port, destination_port = ports(flow)
        return (self._host(escape(source), source_port),
                self._host(escape(destination), destination_port))

    def _host(self, host: str, port: int) -> str:
        """The host with its port, coloured."""
        if port:
            if ":" in host:
                host = f"[{host}]"
            if self._color:
                return f"{CYAN}{host}:{YELLOW}{port}{RESET}{RESET}"
            return f"{host}:{port}"
        return self._palette.paint(CYAN, host)

    def identity(self, identity: int) -> str:
        """The identity in parentheses, coloured."""
        text = self._identities.get(identity)
        if text is None:
            text = self._palette.paint(MAGENTA, identity_text(identity))
            self._identities[identity] = text
        return text

    def verdict(self, flow: flow_pb2.Flow) -> str:
        """VERDICT; policy-verdict events say ALLOWED, DENIED or AUDITED.

        With policy names on, an allowing or denying policy-verdict event
        also names the policies: " BY name (kind), ...".
        """
        verdict = flow.verdict
        policy_verdict = flow.event_type.type == vocab.EVENT_TYPE_POLICY_VERDICT
        text = self._verdicts.get((verdict, policy_verdict))
        if text is None:
            text = self._verdict_text(verdict, policy_verdict)
            self._verdicts[(verdict, policy_verdict)] = text
        if self._policy_names and policy_verdict:
            return text + self._policies(flow, verdict)
        return text

    def _verdict_text(self, verdict: int, policy_verdict: bool) -> str:
        name = enum_name(flow_pb2.Verdict.DESCRIPTOR, verdict)
        if verdict in _ALLOWED:
            return self._palette.paint(GREEN, "ALLOWED" if policy_verdict else name)
        if verdict in _DENIED:
            return self._palette.paint(RED, "DENIED" if policy_verdict else name)
        if verdict == flow_pb2.AUDIT:
            return self._palette.paint(YELLOW, "AUDITED" if policy_verdict else name)
        if verdict in (flow_pb2.TRACED, flow_pb2.TRANSLATED):
            return self._palette.paint(YELLOW, name)
        return name

    @staticmethod
    def _policies(flow: flow_pb2.Flow, verdict: int) -> str:
        if verdict in _ALLOWED:
            policies = [*flow.egress_allowed_by, *flow.ingress_allowed_by]
        elif verdict in _DENIED:
            policies = [*flow.egress_denied_by, *flow.ingress_denied_by]
        else:
            return ""
        if not policies:
            return ""
        return " BY " + ", ".join(
            f"{escape(policy.name)} ({escape(policy.kind)})" for policy in policies)

    def summary(self, flow: flow_pb2.Flow) -> str:
        """SUMMARY: "IP Trace ID: n; " prefix, Summary, "; Auth: X" suffix."""
        text = escape(flow.Summary)
        # An absent IPTraceID reads as trace id 0, which is not printed either.
        trace_id = flow.ip_trace_id.trace_id
        if trace_id > 0:
            text = f"IP Trace ID: {trace_id}; {text}"
        auth = flow.auth_type
        if auth != flow_pb2.DISABLED:
            color = RED if auth == flow_pb2.TEST_ALWAYS_FAIL else GREEN
            name = enum_name(flow_pb2.AuthType.DESCRIPTOR, auth)
            text += "; Auth: " + self._palette.paint(color, name)
        return text
