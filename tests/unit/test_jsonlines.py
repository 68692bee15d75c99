"""Reading and writing Hubble's JSON lines."""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format

from flowscope.common import jsonlines
from flowscope.common.errors import InputError
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2
from flowscope.proto.relay import relay_pb2

FULL_FLOW = flow_pb2.Flow(
    time={"seconds": 1700000000, "nanos": 123456789},
    uuid="c0ffee",
    emitter={"name": "flowscope", "version": "0.1.0"},
    verdict=flow_pb2.DROPPED,
    drop_reason=133,
    auth_type=flow_pb2.SPIRE,
    ethernet={"source": "aa:bb:cc:dd:ee:ff", "destination": "11:22:33:44:55:66"},
    IP={"source": "10.0.0.1", "destination": "fd00::1", "ipVersion": flow_pb2.IPv6,
        "encrypted": True, "source_xlated": "192.0.2.1"},
    l4={"TCP": {"source_port": 1234, "destination_port": 80, "flags": {"SYN": True, "ACK": True}}},
    tunnel={"protocol": flow_pb2.Tunnel.VXLAN, "vni": 7, "IP": {"source": "1.1.1.1"}},
    source={"ID": 12, "identity": 4242, "cluster_name": "c1", "namespace": "default",
            "labels": ["k8s:app=client"], "pod_name": "client-1",
            "workloads": [{"name": "client", "kind": "Deployment"}],
            "process": {"pid": 99, "command": "curl"}},
    destination={"identity": 2, "labels": ["reserved:world"]},
    Type=flow_pb2.L7,
    node_name="c1/node-a",
    node_labels=["zone=a"],
    source_names=["a.example."],
    destination_names=["b.example."],
    l7={"type": flow_pb2.RESPONSE, "latency_ns": 2_000_000,
        "http": {"code": 200, "method": "GET", "url": "http://b/x", "protocol": "HTTP/1.1",
                 "headers": [{"key": "k", "value": "v"}]}},
    reply=True,
    event_type={"type": 129, "sub_type": 0},
    source_service={"name": "client", "namespace": "default"},
    destination_service={"name": "web", "namespace": "default"},
    traffic_direction=flow_pb2.EGRESS,
    policy_match_type=2,
    trace_observation_point=flow_pb2.TO_ENDPOINT,
    trace_reason=flow_pb2.ESTABLISHED,
    file={"name": "bpf_lxc.c", "line": 10},
    ip_trace_id={"trace_id": 18446744073709551615, "ip_option_type": 136},
    drop_reason_desc=flow_pb2.POLICY_DENIED,
    is_reply={"value": False},
    debug_capture_point=flow_pb2.DBG_CAPTURE_DELIVERY,
    interface={"index": 5, "name": "eth0"},
    proxy_port=15001,
    trace_context={"parent": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}},
    sock_xlate_point=flow_pb2.SOCK_XLATE_POINT_POST_DIRECTION_FWD,
    socket_cookie=2**63 + 5,
    cgroup_id=77,
    Summary="HTTP/1.1 200 2ms (GET http://b/x)",
    egress_allowed_by=[{"name": "allow-web", "namespace": "default", "labels": ["a=b"],
                        "revision": 3, "kind": "NetworkPolicy"}],
    ingress_denied_by=[{"name": "deny", "kind": "CiliumNetworkPolicy"}],
    policy_log=["log"],
    aggregate={"ingress_flow_count": 1, "egress_flow_count": 2},
    node_sequence=2**40,
    counters={"packets_forward": 3, "bytes_forward": 180, "packets_reply": 2,
              "bytes_reply": 120},
    retransmits=1,
    kernel_drop_reason="NO_SOCKET",
)


def _response(flow: flow_pb2.Flow) -> observer_pb2.GetFlowsResponse:
    return observer_pb2.GetFlowsResponse(flow=flow, node_name=flow.node_name, time=flow.time)


def test_full_flow_round_trips() -> None:
    response = _response(FULL_FLOW)
    line = jsonlines.dumps(response)
    assert "\n" not in line and ", " not in line.split('"Summary"')[0]
    assert jsonlines.parse_line(line) == response
    assert jsonlines.parse_line(line.encode()) == response


def test_reader_agrees_with_protobuf_json_parser() -> None:
    line = jsonlines.dumps(_response(FULL_FLOW))
    reference = observer_pb2.GetFlowsResponse()
    json_format.Parse(line, reference)
    assert jsonlines.parse_line(line) == reference


def test_writes_hubble_conventions() -> None:
    obj = json.loads(jsonlines.dumps(_response(FULL_FLOW)))
    flow = obj["flow"]
    assert flow["verdict"] == "DROPPED"
    assert flow["IP"]["ipVersion"] == "IPv6"
    assert flow["l4"]["TCP"]["flags"] == {"SYN": True, "ACK": True}
    assert flow["socket_cookie"] == str(2**63 + 5)
    assert flow["time"] == "2023-11-14T22:13:20.123456789Z"
    assert flow["is_reply"] is False
    assert obj["node_name"] == "c1/node-a"


def test_reads_hubble_exporter_line() -> None:
    line = (
        '{"flow":{"time":"2023-08-21T12:12:18.510175415Z","verdict":"DROPPED",'
        '"IP":{"source":"10.244.1.60","destination":"10.244.1.5","ipVersion":"IPv4"},'
        '"l4":{"TCP":{"source_port":44916,"destination_port":80,"flags":{"SYN":true}}},'
        '"source":{"namespace":"default","pod_name":"xwing"},'
        '"destination":{"namespace":"default","pod_name":"deathstar-7848d6c4d5-th9v2"},'
        '"node_name":"kind-kind/kind-worker","drop_reason_desc":"POLICY_DENIED"},'
        '"node_name":"kind-kind/kind-worker","time":"2023-08-21T12:12:18.510175415Z"}'
    )
    response = jsonlines.parse_line(line)
    assert isinstance(response, observer_pb2.GetFlowsResponse)
    flow = response.flow
    assert flow.time.seconds == 1692619938 and flow.time.nanos == 510175415
    assert flow.drop_reason_desc == flow_pb2.POLICY_DENIED
    assert flow.l4.TCP.flags.SYN and flow.l4.TCP.destination_port == 80
    assert response.node_name == "kind-kind/kind-worker"


def test_reads_camel_case_names_and_numeric_enums() -> None:
    response = jsonlines.parse_line(
        '{"flow":{"verdict":2,"nodeName":"n1","isReply":true,"dropReasonDesc":133}}'
    )
    assert isinstance(response, observer_pb2.GetFlowsResponse)
    assert response.flow.verdict == flow_pb2.DROPPED
    assert response.flow.node_name == "n1"
    assert response.flow.is_reply.value is True
    assert response.flow.drop_reason_desc == flow_pb2.POLICY_DENIED


def test_reads_bare_flow_objects() -> None:
    response = jsonlines.parse_line('{"time":"2024-01-02T03:04:05Z","verdict":"FORWARDED",'
                                    '"node_name":"n1","uuid":"u1"}')
    assert isinstance(response, observer_pb2.GetFlowsResponse)
    assert response.flow.uuid == "u1" and response.node_name == "n1"
    assert response.time.seconds == response.flow.time.seconds


@pytest.mark.parametrize(
    "response",
    [
        observer_pb2.GetFlowsResponse(
            lost_events={"source": flow_pb2.HUBBLE_RING_BUFFER, "num_events_lost": 7,
                         "cpu": {"value": 1}},
            node_name="n1", time={"seconds": 5},
        ),
        observer_pb2.GetFlowsResponse(
            node_status={"state_change": relay_pb2.NODE_UNAVAILABLE, "node_names": ["a", "b"],
                         "message": "gone"},
            node_name="relay", time={"seconds": 6},
        ),
    ],
    ids=["lost_events", "node_status"],
)
def test_other_flow_stream_lines_round_trip(response: observer_pb2.GetFlowsResponse) -> None:
    assert jsonlines.parse_line(jsonlines.dumps(response)) == response


def test_agent_and_debug_event_lines() -> None:
    agent = observer_pb2.ExportEvent(
        agent_event={"type": flow_pb2.ENDPOINT_CREATED,
                     "endpoint_update": {"id": 3, "pod_name": "web-1", "namespace": "default"}},
        node_name="n1", time={"seconds": 7, "nanos": 1},
    )
    parsed = jsonlines.parse_line(jsonlines.dumps(agent))
    assert isinstance(parsed, observer_pb2.GetAgentEventsResponse)
    assert parsed.agent_event == agent.agent_event
    assert parsed.node_name == "n1" and parsed.time == agent.time

    debug = observer_pb2.ExportEvent(
        debug_event={"type": flow_pb2.DBG_CT_MATCH, "message": "m", "cpu": {"value": 0}},
        node_name="n2",
    )
    parsed_debug = jsonlines.parse_line(jsonlines.dumps(debug))
    assert isinstance(parsed_debug, observer_pb2.GetDebugEventsResponse)
    assert parsed_debug.debug_event == debug.debug_event


@pytest.mark.parametrize(
    ("text", "seconds", "nanos"),
    [
        ("2023-08-21T12:12:18Z", 1692619938, 0),
        ("2023-08-21T12:12:18.5Z", 1692619938, 500_000_000),
        ("2023-08-21T12:12:18.000000001Z", 1692619938, 1),
        ("2023-08-21T14:12:18.25+02:00", 1692619938, 250_000_000),
    ],
)
def test_timestamps(text: str, seconds: int, nanos: int) -> None:
    assert jsonlines.parse_timestamp(text) == {"seconds": seconds, "nanos": nanos}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1,2]", "not a JSON object"),
        ('{"flow":{"verdict":"NOPE"}}', "not a flow record"),
        ('{"flow":{"time":"yesterday"}}', "not a flow record"),
        ('{"flow":{"time":"2023-08-21T12:12:18"}}', "not a flow record"),
        ('{"flow":{"source":"x"}}', "not a flow record"),
        ('{"flow":{"socket_cookie":"abc"}}', "not a flow record"),
    ],
)
def test_malformed_lines_raise_input_error(line: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        jsonlines.parse_line(line)
