"""Decoding the datapath's policy events (POLICY_VERDICT, POLICY_DROP) into Flows, and how
`flowscope observe` prints them: Hubble's compact lines."""

from __future__ import annotations

import io
import re
import socket
from pathlib import Path

import pytest

from flowscope.cli.printers import PrinterOptions, make_printer
from flowscope.collector import rawevent as raw
from flowscope.collector.decode import Decoder
from flowscope.collector.dropreasons import DropReasons
from flowscope.collector.endpoints import EndpointRegistry, lab_endpoints
from flowscope.collector.identity import IdentityAllocator
from flowscope.collector.labconfig import default_lab, write_state
from flowscope.collector.processes import ProcessTable
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2

FRONTEND, DB = "10.199.1.1", "10.199.1.3"
# Their identities: derived from their labels, the same on every node.
FRONTEND_ID, DB_ID = 57559, 41588
INGRESS, EGRESS = 1, 2
ALLOWING = flow_pb2.Policy(name="allow-frontend", namespace="data", kind="NetworkPolicy",
                           revision=3)
DENYING = flow_pb2.Policy(name="deny-frontend", namespace="data", kind="CiliumNetworkPolicy",
                          revision=4)


@pytest.fixture
def decoder(tmp_path: Path) -> Decoder:
    write_state(default_lab(), tmp_path)
    registry = EndpointRegistry(IdentityAllocator(None))
    registry.replace(lab_endpoints(tmp_path))
    refs = {7: (ALLOWING,), 8: (DENYING,)}
    return Decoder("node-1", registry, DropReasons({}), ProcessTable(), clock_offset_ns=0,
                   ifname=lambda index: f"if{index}",
                   policy_refs=lambda index: refs.get(index, ()))


def policy_event(kind: int, verdict: int, drop: int = 0, match: int = 0, ref: int = 0,
                 direction: int = INGRESS) -> raw.RawEvent:
    event = raw.RawEvent(ts_ns=1_500_000_000, kind=kind, family=4, proto=6, sport=41212,
                         dport=5432, tcp_flags=0x2, is_reply=2, verdict=verdict,
                         drop_reason=drop, match_type=match, policy_ref=ref,
                         policy_direction=direction, ifindex=9, src_identity=FRONTEND_ID,
                         dst_identity=DB_ID)
    for field, address in (("saddr", FRONTEND), ("daddr", DB)):
        getattr(event, field)[:4] = list(socket.inet_aton(address))
    return event


def compact(flow: flow_pb2.Flow, policy_names: bool = False) -> str:
    out = io.StringIO()
    printer = make_printer(PrinterOptions(policy_names=policy_names), out, io.StringIO())
    printer.write_flows_response(observer_pb2.GetFlowsResponse(flow=flow))
    printer.close()
    return out.getvalue().split(": ", 1)[1].rstrip("\n")


def decode(decoder: Decoder, event: raw.RawEvent) -> flow_pb2.Flow:
    flow = decoder.decode(event)
    assert flow is not None
    return flow


@pytest.mark.parametrize(("event", "line", "named"), [
    (policy_event(raw.EVENT_POLICY_VERDICT, 1, match=2, ref=7),
     "shop/frontend:41212 (ID:{}) -> data/db-0:5432 (ID:{}) policy-verdict:L3-L4 INGRESS "
     "ALLOWED (TCP Flags: SYN)",
     "ALLOWED BY allow-frontend (NetworkPolicy)"),
    (policy_event(raw.EVENT_POLICY_VERDICT, 2, drop=133),
     "shop/frontend:41212 (ID:{}) <> data/db-0:5432 (ID:{}) policy-verdict:none INGRESS "
     "DENIED (TCP Flags: SYN)",
     "DENIED (TCP"),
    (policy_event(raw.EVENT_POLICY_VERDICT, 2, drop=181, ref=8),
     "shop/frontend:41212 (ID:{}) <> data/db-0:5432 (ID:{}) policy-verdict:none INGRESS "
     "DENIED (TCP Flags: SYN)",
     "DENIED BY deny-frontend (CiliumNetworkPolicy)"),
    (policy_event(raw.EVENT_POLICY_VERDICT, 4, drop=133, direction=EGRESS),
     "shop/frontend:41212 (ID:{}) -> data/db-0:5432 (ID:{}) policy-verdict:none EGRESS "
     "AUDITED (TCP Flags: SYN)",
     "AUDITED (TCP"),
    (policy_event(raw.EVENT_POLICY_DROP, 2, drop=133),
     "shop/frontend:41212 (ID:{}) <> data/db-0:5432 (ID:{}) Policy denied DROPPED "
     "(TCP Flags: SYN)",
     "Policy denied DROPPED"),
    (policy_event(raw.EVENT_POLICY_DROP, 2, drop=181),
     "shop/frontend:41212 (ID:{}) <> data/db-0:5432 (ID:{}) Policy denied by denylist DROPPED "
     "(TCP Flags: SYN)",
     "Policy denied by denylist DROPPED"),
])
def test_policy_events_print_as_hubble_does(decoder: Decoder, event: raw.RawEvent, line: str,
                                            named: str) -> None:
    flow = decode(decoder, event)
    assert compact(flow) == line.format(FRONTEND_ID, DB_ID)
    assert named in compact(flow, policy_names=True)


def test_allowed_verdict_fields(decoder: Decoder) -> None:
    flow = decode(decoder, policy_event(raw.EVENT_POLICY_VERDICT, 1, match=2, ref=7))
    assert (flow.event_type.type, flow.event_type.sub_type) == (5, 0)
    assert flow.verdict == flow_pb2.FORWARDED
    assert flow.traffic_direction == flow_pb2.INGRESS
    assert flow.policy_match_type == 2
    assert list(flow.ingress_allowed_by) == [ALLOWING]
    assert not flow.egress_allowed_by and not flow.ingress_denied_by
    assert flow.HasField("is_reply") and flow.is_reply.value is False
    assert flow.drop_reason_desc == flow_pb2.DROP_REASON_UNKNOWN


def test_denied_verdict_fields(decoder: Decoder) -> None:
    explicit = decode(decoder, policy_event(raw.EVENT_POLICY_VERDICT, 2, drop=181, ref=8,
                                            direction=EGRESS))
    assert list(explicit.egress_denied_by) == [DENYING]
    assert explicit.drop_reason_desc == flow_pb2.POLICY_DENY
    assert not explicit.HasField("is_reply")
    default = decode(decoder, policy_event(raw.EVENT_POLICY_VERDICT, 2, drop=133))
    assert not default.ingress_denied_by and not default.ingress_allowed_by
    assert default.drop_reason_desc == flow_pb2.POLICY_DENIED


def test_policy_drop_fields(decoder: Decoder) -> None:
    flow = decode(decoder, policy_event(raw.EVENT_POLICY_DROP, 2, drop=181, direction=EGRESS))
    assert (flow.event_type.type, flow.event_type.sub_type) == (1, 181)
    assert (flow.drop_reason, flow.drop_reason_desc) == (181, flow_pb2.POLICY_DENY)
    assert flow.traffic_direction == flow_pb2.EGRESS
    assert (flow.interface.index, flow.interface.name) == (9, "if9")
    assert flow.kernel_drop_reason == ""


def test_header_constants_match_what_the_decoder_reads() -> None:
    header = Path(__file__).parents[2] / "bpf" / "flowscope.h"
    defines = {name: int(value) for name, value in
               re.findall(r"^#define (FS_\w+) (\d+)", header.read_text(), re.MULTILINE)}
    assert {name: defines[name] for name in (
        "FS_EVENT_POLICY_VERDICT", "FS_EVENT_POLICY_DROP", "FS_VERDICT_FORWARDED",
        "FS_VERDICT_DROPPED", "FS_VERDICT_AUDIT", "FS_DROP_POLICY_DENIED",
        "FS_DROP_POLICY_DENY")} == {
        "FS_EVENT_POLICY_VERDICT": raw.EVENT_POLICY_VERDICT,
        "FS_EVENT_POLICY_DROP": raw.EVENT_POLICY_DROP,
        "FS_VERDICT_FORWARDED": flow_pb2.FORWARDED,
        "FS_VERDICT_DROPPED": flow_pb2.DROPPED,
        "FS_VERDICT_AUDIT": flow_pb2.AUDIT,
        "FS_DROP_POLICY_DENIED": flow_pb2.POLICY_DENIED,
        "FS_DROP_POLICY_DENY": flow_pb2.POLICY_DENY,
    }
