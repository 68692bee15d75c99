"""The fields the text formats derive from flows and events."""

from __future__ import annotations

import io
import re

import pytest

from flowscope.cli.printers import PrinterOptions, make_printer
from flowscope.cli.printers.color import Palette, color_enabled
from flowscope.cli.printers.eventtext import (
    agent_event_details,
    join_with_cut_off,
    node_status_line,
)
from flowscope.cli.printers.flowtext import FlowText, flow_type, identity_text
from flowscope.cli.printers.timefmt import TimeFormatter
from flowscope.common.errors import InputError
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2
from flowscope.proto.relay import relay_pb2

PLAIN = FlowText(palette=Palette(False), ip_translation=True, policy_names=True)
NUMERIC = FlowText(palette=Palette(False), ip_translation=False, policy_names=False)
COLOR = FlowText(palette=Palette(True), ip_translation=True, policy_names=False)


@pytest.mark.parametrize(("fields", "expected"), [
    ({"event_type": {"type": 4, "sub_type": 0}}, "to-endpoint"),
    ({"event_type": {"type": 4, "sub_type": 13}}, "to-crypto"),
    ({"event_type": {"type": 4, "sub_type": 123}}, "123"),
    ({"event_type": {"type": 1, "sub_type": 151}}, "Stale or unroutable IP"),
    ({"event_type": {"type": 5}, "policy_match_type": 4,
      "traffic_direction": flow_pb2.EGRESS}, "policy-verdict:all EGRESS"),
    ({"event_type": {"type": 5}, "policy_match_type": 9}, "policy-verdict:unknown "
     "TRAFFIC_DIRECTION_UNKNOWN"),
    ({"event_type": {"type": 3}, "debug_capture_point": flow_pb2.DBG_CAPTURE_SNAT_PRE},
     "DBG_CAPTURE_SNAT_PRE"),
    ({"event_type": {"type": 7},
      "sock_xlate_point": flow_pb2.SOCK_XLATE_POINT_PRE_DIRECTION_REV}, "pre-xlate-rev"),
    ({"event_type": {"type": 7}}, "SOCK_XLATE_POINT_UNKNOWN"),
    ({"event_type": {"type": 129}, "l7": {"type": flow_pb2.REQUEST}}, "l7-request"),
    ({"event_type": {"type": 129}, "l7": {"type": flow_pb2.SAMPLE, "kafka": {}}},
     "kafka-sample"),
    ({"l7": {"type": flow_pb2.RESPONSE, "http": {}}}, "http-response"),
    ({"l7": {"type": flow_pb2.RESPONSE, "dns": {}}}, "dns-response "),
    ({"l7": {"type": flow_pb2.REQUEST, "dns": {"observation_source": "proxy\x1b"}}},
     "dns-request proxy^["),
    ({"event_type": {"type": 130}}, "UNKNOWN"),
    ({}, "UNKNOWN"),
])
def test_flow_type(fields: dict[str, object], expected: str) -> None:
    assert flow_type(flow_pb2.Flow(**fields)) == expected


@pytest.mark.parametrize(("identity", "expected"), [
    (0, "(unknown)"), (1, "(host)"), (2, "(world)"), (6, "(remote-node)"),
    (7, "(kube-apiserver)"), (9, "(world-ipv4)"), (11, "(ID:11)"), (16777217, "(ID:16777217)"),
])
def test_identity_text(identity: int, expected: str) -> None:
    assert identity_text(identity) == expected


V4 = {"source": "10.0.0.1", "destination": "10.0.0.2"}


@pytest.mark.parametrize(("fields", "plain", "numeric"), [
    ({"IP": V4}, ("10.0.0.1", "10.0.0.2"), ("10.0.0.1", "10.0.0.2")),
    ({"IP": V4, "l4": {"SCTP": {"source_port": 5000, "destination_port": 36412}}},
     ("10.0.0.1:5000", "10.0.0.2:36412"), ("10.0.0.1:5000", "10.0.0.2:36412")),
    ({"IP": V4, "l4": {"TCP": {"source_port": 0, "destination_port": 80}}},
     ("10.0.0.1", "10.0.0.2:80"), ("10.0.0.1", "10.0.0.2:80")),
    ({"IP": V4, "l4": {"ICMPv4": {"type": 8}}, "source": {"pod_name": "bare"}},
     ("bare", "10.0.0.2"), ("10.0.0.1", "10.0.0.2")),
    # The service's namespace wins, also over a pod name.
    ({"IP": V4, "source": {"namespace": "a", "pod_name": "p"},
      "source_service": {"namespace": "b", "name": "svc"},
      "destination_service": {"namespace": "c", "name": "svc2"}},
     ("b/p", "c/svc2"), ("10.0.0.1", "10.0.0.2")),
    ({"IP": V4, "source_names": ["a.example", "b.example"], "destination_service": {}},
     ("a.example,b.example", "10.0.0.2"), ("10.0.0.1", "10.0.0.2")),
    ({"IP": {"source": "fd00::1", "destination": "fd00::2"},
      "l4": {"UDP": {"source_port": 546, "destination_port": 547}}},
     ("[fd00::1]:546", "[fd00::2]:547"), ("[fd00::1]:546", "[fd00::2]:547")),
    ({"ethernet": {"source": "aa:bb:cc:dd:ee:ff", "destination": "ff:ff:ff:ff:ff:ff"},
      "l4": {"TCP": {"source_port": 1, "destination_port": 2}}},
     ("aa:bb:cc:dd:ee:ff", "ff:ff:ff:ff:ff:ff"), ("aa:bb:cc:dd:ee:ff", "ff:ff:ff:ff:ff:ff")),
    ({}, ("", ""), ("", "")),
])
def test_hosts(
    fields: dict[str, object], plain: tuple[str, str], numeric: tuple[str, str]
) -> None:
    flow = flow_pb2.Flow(**fields)
    assert PLAIN.hosts(flow) == plain
    assert NUMERIC.hosts(flow) == numeric


def test_colored_hosts() -> None:
    flow = flow_pb2.Flow(IP={"source": "fd00::1", "destination": "10.0.0.2"},
                         l4={"TCP": {"source_port": 443, "destination_port": 0}})
    assert COLOR.hosts(flow) == (
        "\x1b[36m[fd00::1]:\x1b[33m443\x1b[0m\x1b[0m", "\x1b[36m10.0.0.2\x1b[0m")
    assert COLOR.hosts(flow_pb2.Flow()) == ("", "")


@pytest.mark.parametrize(("verdict", "event", "plain", "colored"), [
    (flow_pb2.FORWARDED, 4, "FORWARDED", "\x1b[32mFORWARDED\x1b[0m"),
    (flow_pb2.REDIRECTED, 5, "ALLOWED", "\x1b[32mALLOWED\x1b[0m"),
    (flow_pb2.ERROR, 5, "DENIED", "\x1b[31mDENIED\x1b[0m"),
    (flow_pb2.ERROR, 4, "ERROR", "\x1b[31mERROR\x1b[0m"),
    (flow_pb2.AUDIT, 4, "AUDIT", "\x1b[33mAUDIT\x1b[0m"),
    (flow_pb2.TRACED, 7, "TRACED", "\x1b[33mTRACED\x1b[0m"),
    (flow_pb2.VERDICT_UNKNOWN, 5, "VERDICT_UNKNOWN", "VERDICT_UNKNOWN"),
    (42, 4, "42", "42"),
])
def test_verdict(verdict: int, event: int, plain: str, colored: str) -> None:
    flow = flow_pb2.Flow(verdict=verdict, event_type={"type": event})
    assert PLAIN.verdict(flow) == plain
    assert COLOR.verdict(flow) == colored


def test_policy_names_only_on_allowing_or_denying_policy_verdicts() -> None:
    policies = {"egress_allowed_by": [{"name": "e", "kind": "NetworkPolicy"}],
                "ingress_allowed_by": [{"name": "i", "kind": "CiliumNetworkPolicy"}],
                "ingress_denied_by": [{"name": "d", "kind": "CiliumNetworkPolicy"}]}
    allowed = flow_pb2.Flow(verdict=flow_pb2.FORWARDED, event_type={"type": 5}, **policies)
    denied = flow_pb2.Flow(verdict=flow_pb2.DROPPED, event_type={"type": 5}, **policies)
    audited = flow_pb2.Flow(verdict=flow_pb2.AUDIT, event_type={"type": 5}, **policies)
    traced = flow_pb2.Flow(verdict=flow_pb2.FORWARDED, event_type={"type": 4}, **policies)
    assert PLAIN.verdict(allowed) == "ALLOWED BY e (NetworkPolicy), i (CiliumNetworkPolicy)"
    assert PLAIN.verdict(denied) == "DENIED BY d (CiliumNetworkPolicy)"
    assert PLAIN.verdict(audited) == "AUDITED"
    assert PLAIN.verdict(traced) == "FORWARDED"
    assert NUMERIC.verdict(allowed) == "ALLOWED"


@pytest.mark.parametrize(("fields", "expected"), [
    ({"Summary": "UDP"}, "UDP"),
    ({"Summary": "UDP", "ip_trace_id": {"trace_id": 0, "ip_option_type": 136}}, "UDP"),
    ({"Summary": "UDP", "ip_trace_id": {"trace_id": 7}}, "IP Trace ID: 7; UDP"),
    ({"Summary": "x", "auth_type": flow_pb2.SPIRE}, "x; Auth: SPIRE"),
    ({"auth_type": 9}, "; Auth: 9"),
    ({"Summary": "a\rb"}, "a\\rb"),
])
def test_summary(fields: dict[str, object], expected: str) -> None:
    assert PLAIN.summary(flow_pb2.Flow(**fields)) == expected


@pytest.mark.parametrize(("names", "expected"), [
    ([], ""),
    (["a" * 60], "a" * 60),
    (["a" * 60, "b"], "a" * 60 + " (and 1 more)"),
    (["n1", "n2", "n3"], "n1, n2, n3"),
    (["x" * 23, "y" * 23, "z"], "x" * 23 + ", " + "y" * 23 + " (and 1 more)"),
    (["x" * 21, "y" * 21, "z"], "x" * 21 + ", " + "y" * 21 + ", z"),
    # Lengths are counted in bytes: each "é" is two.
    (["é" * 12, "y" * 22, "z"], "é" * 12 + ", " + "y" * 22 + " (and 1 more)"),
])
def test_join_with_cut_off(names: list[str], expected: str) -> None:
    assert join_with_cut_off(names, ", ", 50) == expected


def test_node_status_states() -> None:
    times = TimeFormatter("RFC3339")

    def line(state: int, message: str = "") -> str:
        response = observer_pb2.GetFlowsResponse(
            node_status={"state_change": state, "node_names": ["n\x1b1", "n2"],
                         "message": message},
            node_name="relay")
        return node_status_line(response, times)

    assert line(relay_pb2.NODE_GONE) == "N/A [relay]: 2 nodes removed from cluster: n^[1, n2"
    assert line(relay_pb2.NODE_ERROR, "bad\n") == 'N/A [relay]: Error "bad\\n" on 2 nodes: n^[1, n2'
    assert line(relay_pb2.UNKNOWN_NODE_STATE, "m") == (
        'N/A [relay]: unknown node status event: state_change: UNKNOWN_NODE_STATE, '
        'node_names: [n^[1, n2], message: "m"')


@pytest.mark.parametrize(("fields", "expected"), [
    ({"type": flow_pb2.AGENT_EVENT_UNKNOWN, "unknown": {"type": "t", "notification": "n"}},
     "type: t, notification: n"),
    ({"type": flow_pb2.AGENT_STARTED, "agent_start": {}}, "start time: N/A"),
    ({"type": flow_pb2.POLICY_DELETED, "policy_update": {"revision": 42, "rule_count": 1}},
     "labels: [], revision: 42, count: 1"),
    ({"type": flow_pb2.ENDPOINT_REGENERATE_SUCCESS,
      "endpoint_regenerate": {"id": 42, "labels": ["a=b", "c=d"]}}, "id: 42, labels: [a=b,c=d]"),
    ({"type": flow_pb2.ENDPOINT_DELETED, "endpoint_update": {"id": 9}}, "id: 9"),
    ({"type": flow_pb2.IPCACHE_DELETED,
      "ipcache_update": {"cidr": "10.0.1.2/32", "identity": 42, "old_host_ip": "192.0.2.1"}},
     "cidr: 10.0.1.2/32, identity: 42, old host ip: 192.0.2.1, encrypt key: 0"),
    ({"type": flow_pb2.SERVICE_DELETED, "service_delete": {"id": 42}}, "id: 42"),
    ({"type": flow_pb2.SERVICE_UPSERTED, "service_upsert": {"id": 1}}, "id: 1"),
    # A notice that does not match the type says nothing.
    ({"type": flow_pb2.SERVICE_DELETED, "service_upsert": {"id": 1}}, "UNKNOWN"),
    ({"type": flow_pb2.IPCACHE_UPSERTED}, "UNKNOWN"),
])
def test_agent_event_details(fields: dict[str, object], expected: str) -> None:
    event = flow_pb2.AgentEvent(**fields)
    assert agent_event_details(event, TimeFormatter("RFC3339")) == expected


def test_unknown_output_format() -> None:
    with pytest.raises(InputError, match=r"invalid --output 'yaml': want one of compact, dict"):
        make_printer(PrinterOptions(output="yaml"), io.StringIO(), io.StringIO())


@pytest.mark.parametrize("output", ["compact", "dict", "table", "json"])
def test_events_responses_without_event_are_errors(output: str) -> None:
    printer = make_printer(PrinterOptions(output=output), io.StringIO(), io.StringIO())
    with pytest.raises(InputError, match="agent events response carries no agent_event"):
        printer.write_agent_events_response(observer_pb2.GetAgentEventsResponse())
    with pytest.raises(InputError, match="debug events response carries no debug_event"):
        printer.write_debug_events_response(observer_pb2.GetDebugEventsResponse())


def test_empty_flows_response_prints_nothing() -> None:
    for output in ("compact", "dict", "table", "json"):
        out, err = io.StringIO(), io.StringIO()
        printer = make_printer(PrinterOptions(output=output), out, err)
        printer.write_flows_response(observer_pb2.GetFlowsResponse(node_name="x"))
        printer.close()
        assert (out.getvalue(), err.getvalue()) == ("", "")


def test_flow_without_time() -> None:
    out = io.StringIO()
    make_printer(PrinterOptions(), out, io.StringIO()).write_flows_response(
        observer_pb2.GetFlowsResponse(flow={"IP": V4}))
    assert out.getvalue() == (
        "N/A: 10.0.0.1 (unknown) <> 10.0.0.2 (unknown) UNKNOWN VERDICT_UNKNOWN ()\n")


def test_only_own_colour_codes_reach_the_terminal() -> None:
    out = io.StringIO()
    printer = make_printer(PrinterOptions(color=True, node_name=True), out, io.StringIO())
    printer.write_flows_response(observer_pb2.GetFlowsResponse(flow={
        "IP": V4, "node_name": "\x1b[2J", "source": {"pod_name": "\x1b[31m\x9b0m"},
        "verdict": flow_pb2.DROPPED, "Summary": "\x1b]8;;http://x\x07"}))
    without_own_codes = re.sub(r"\x1b\[(3[1-6]|0)m", "", out.getvalue())
    assert "\x1b" not in without_own_codes
    assert "\x9b" not in without_own_codes


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("mode", "tty", "env", "expected"), [
    ("always", False, {}, True),
    ("never", True, {}, False),
    ("auto", True, {}, True),
    ("auto", False, {}, False),
    ("auto", True, {"TERM": "dumb"}, False),
    ("auto", True, {"NO_COLOR": "1"}, False),
    ("auto", True, {"NO_COLOR": ""}, True),
    ("always", True, {"NO_COLOR": "1"}, True),
])
def test_color_enabled(
    monkeypatch: pytest.MonkeyPatch, mode: str, tty: bool, env: dict[str, str], expected: bool
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    stream = Terminal() if tty else io.StringIO()
    assert color_enabled(mode, stream) is expected


def test_color_mode_must_be_known() -> None:
    with pytest.raises(InputError, match=r"invalid --color 'sometimes'"):
        color_enabled("sometimes", io.StringIO())
