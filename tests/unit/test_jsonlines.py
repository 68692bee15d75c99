"""Reading and writing Hubble's JSON lines."""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    json_format,
    message_factory,
    timestamp_pb2,
)
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from grpc_tools import protoc

from flowscope.common import jsonlines
from flowscope.common.errors import InputError
from flowscope.proto.aggregate import aggregate_pb2
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2
from flowscope.proto.relay import relay_pb2

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import flowgen

FULL_FLOW = flow_pb2.Flow(
    time={"seconds": 1700000000, "nanos": 123456789},
    uuid="c0ffee",
    emitter={"name": "flowscope", "version": "0.1.0"},
    verdict=flow_pb2.DROPPED,
    drop_reason=133,
    auth_type=flow_pb2.SPIRE,
    ethernet={"source": "aa:bb:cc:dd:ee:ff", "destination": "11:22:33:44:55:66"},
    IP={
        "source": "10.0.0.1",
        "destination": "fd00::1",
        "ipVersion": flow_pb2.IPv6,
        "encrypted": True,
        "source_xlated": "192.0.2.1",
    },
    l4={"TCP": {"source_port": 1234, "destination_port": 80, "flags": {"SYN": True, "ACK": True}}},
    tunnel={"protocol": flow_pb2.Tunnel.VXLAN, "vni": 7, "IP": {"source": "1.1.1.1"}},
    source={
        "ID": 12,
        "identity": 4242,
        "cluster_name": "c1",
        "namespace": "default",
        "labels": ["k8s:app=client"],
        "pod_name": "client-1",
        "workloads": [{"name": "client", "kind": "Deployment"}],
        "process": {"pid": 99, "command": "curl"},
    },
    destination={"identity": 2, "labels": ["reserved:world"]},
    Type=flow_pb2.L7,
    node_name="c1/node-a",
    node_labels=["zone=a"],
    source_names=["a.example."],
    destination_names=["b.example."],
    l7={
        "type": flow_pb2.RESPONSE,
        "latency_ns": 2_000_000,
        "http": {
            "code": 200,
            "method": "GET",
            "url": "http://b/x",
            "protocol": "HTTP/1.1",
            "headers": [{"key": "k", "value": "v"}],
        },
    },
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
    egress_allowed_by=[
        {
            "name": "allow-web",
            "namespace": "default",
            "labels": ["a=b"],
            "revision": 3,
            "kind": "NetworkPolicy",
        }
    ],
    ingress_denied_by=[{"name": "deny", "kind": "CiliumNetworkPolicy"}],
    policy_log=["log"],
    aggregate={"ingress_flow_count": 1, "egress_flow_count": 2},
    node_sequence=2**40,
    counters={"packets_forward": 3, "bytes_forward": 180, "packets_reply": 2, "bytes_reply": 120},
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
    response = jsonlines.parse_line(
        '{"time":"2024-01-02T03:04:05Z","verdict":"FORWARDED","node_name":"n1","uuid":"u1"}'
    )
    assert isinstance(response, observer_pb2.GetFlowsResponse)
    assert response.flow.uuid == "u1" and response.node_name == "n1"
    assert response.time.seconds == response.flow.time.seconds


@pytest.mark.parametrize(
    "response",
    [
        observer_pb2.GetFlowsResponse(
            lost_events={
                "source": flow_pb2.HUBBLE_RING_BUFFER,
                "num_events_lost": 7,
                "cpu": {"value": 1},
            },
            node_name="n1",
            time={"seconds": 5},
        ),
        observer_pb2.GetFlowsResponse(
            node_status={
                "state_change": relay_pb2.NODE_UNAVAILABLE,
                "node_names": ["a", "b"],
                "message": "gone",
            },
            node_name="relay",
            time={"seconds": 6},
        ),
    ],
    ids=["lost_events", "node_status"],
)
def test_other_flow_stream_lines_round_trip(response: observer_pb2.GetFlowsResponse) -> None:
    assert jsonlines.parse_line(jsonlines.dumps(response)) == response


def test_agent_and_debug_event_lines() -> None:
    agent = observer_pb2.ExportEvent(
        agent_event={
            "type": flow_pb2.ENDPOINT_CREATED,
            "endpoint_update": {"id": 3, "pod_name": "web-1", "namespace": "default"},
        },
        node_name="n1",
        time={"seconds": 7, "nanos": 1},
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


# --- the compiled writer against json_format --------------------------------


def _reference(message: Message) -> object:
    return json.loads(json_format.MessageToJson(message, preserving_proto_field_name=True))


def _reference_text(message: Message) -> str:
    obj = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


_SIGNED_32 = (-(2**31), 2**31 - 1, -1, 0, 7)
_UNSIGNED_32 = (2**32 - 1, 0, 1)
_SIGNED_64 = (-(2**63), 2**63 - 1, -1, 0, 2**53 + 1)
_UNSIGNED_64 = (2**64 - 1, 0, 2**53 + 1)
_STRINGS = ("", "ünïcødé 😀 日本", '\x00\x1b[31m\x7f\x9b\n\t\r"\\/', "\u2028\u2029", "plain")
_DOUBLES = (1.5, 1e300, float("nan"), float("inf"), float("-inf"), 0.1, -0.0, 1e16)
_TIMES = (
    (0, 0),
    (1_700_000_000, 123_000_000),
    (1_700_000_000, 123_456_000),
    (1_700_000_000, 123_456_789),
    (-1, 5),
    (-62_135_596_800, 0),
    (253_402_300_799, 999_999_999),
    (951_782_400, 1),  # 2000-02-29
)
_SCALARS: dict[int, tuple[object, ...]] = {
    FieldDescriptor.TYPE_INT32: _SIGNED_32,
    FieldDescriptor.TYPE_SINT32: _SIGNED_32,
    FieldDescriptor.TYPE_SFIXED32: _SIGNED_32,
    FieldDescriptor.TYPE_UINT32: _UNSIGNED_32,
    FieldDescriptor.TYPE_FIXED32: _UNSIGNED_32,
    FieldDescriptor.TYPE_INT64: _SIGNED_64,
    FieldDescriptor.TYPE_SINT64: _SIGNED_64,
    FieldDescriptor.TYPE_SFIXED64: _SIGNED_64,
    FieldDescriptor.TYPE_UINT64: _UNSIGNED_64,
    FieldDescriptor.TYPE_FIXED64: _UNSIGNED_64,
    FieldDescriptor.TYPE_BOOL: (True, False),
    FieldDescriptor.TYPE_STRING: _STRINGS,
    FieldDescriptor.TYPE_BYTES: (b"\x00\xff\xfe", b"", b"flow"),
    FieldDescriptor.TYPE_DOUBLE: _DOUBLES,
    FieldDescriptor.TYPE_FLOAT: _DOUBLES,
}
_ROOTS = (observer_pb2.ExportEvent.DESCRIPTOR, observer_pb2.GetFlowsResponse.DESCRIPTOR)


def _reachable(roots: tuple[Descriptor, ...]) -> list[Descriptor]:
    """Every message type found through the fields of `roots`, roots included."""
    seen: dict[str, Descriptor] = {}
    todo = list(roots)
    while todo:
        descriptor = todo.pop()
        if descriptor.full_name in seen:
            continue
        seen[descriptor.full_name] = descriptor
        todo.extend(f.message_type for f in descriptor.fields if f.message_type is not None)
    return sorted(seen.values(), key=lambda d: d.full_name)


def _enum_value(field: Any, variant: int) -> int:
    """Each named number in turn, then numbers the enum does not name."""
    numbers: list[int] = [v.number for v in field.enum_type.values] + [999, -5]
    return numbers[variant % len(numbers)]


def _scalar(field: Any, variant: int) -> object:
    if field.type == FieldDescriptor.TYPE_ENUM:
        return _enum_value(field, variant)
    values = _SCALARS[field.type]
    return values[variant % len(values)]


def _fill(message: Any, variant: int, depth: int = 0) -> None:
    """Sets every field of `message` (one member per oneof, chosen by `variant`)."""
    for field in message.DESCRIPTOR.fields:
        oneof = field.containing_oneof
        # A proto3 optional field is a oneof of its own: always set.
        if oneof is None or oneof.fields[variant % len(oneof.fields)] is field:
            _fill_field(message, field, variant + field.number, depth)


def _fill_field(message: Any, field: Any, variant: int, depth: int) -> None:
    sub = field.message_type
    if sub is not None and sub.GetOptions().map_entry:
        entries = getattr(message, field.name)
        for n, key in enumerate(("", "ünï", "FORWARDED")):
            entries[key] = _scalar(sub.fields_by_name["value"], variant + n)
        return
    if field.is_repeated:
        container = getattr(message, field.name)
        if sub is None:
            container.extend(_scalar(field, variant + n) for n in range(3))
            if field.type == FieldDescriptor.TYPE_STRING:
                container.append("")
        else:
            container.add()  # an empty element, written as {}
            _fill_message(container.add(), variant, depth + 1)
        return
    if sub is None:
        setattr(message, field.name, _scalar(field, variant))
        return
    target = getattr(message, field.name)
    target.SetInParent()
    _fill_message(target, variant, depth + 1)


def _fill_message(message: Any, variant: int, depth: int) -> None:
    name = message.DESCRIPTOR.full_name
    if name == "google.protobuf.Timestamp":
        message.seconds, message.nanos = _TIMES[variant % len(_TIMES)]
    elif name == "google.protobuf.Any":
        packed = flow_pb2.Flow(uuid="packed", verdict=flow_pb2.DROPPED, socket_cookie=2**64 - 1)
        message.Pack(packed)
    elif name.startswith("google.protobuf."):  # wrappers: zero values too, they are written
        message.value = _scalar(message.DESCRIPTOR.fields_by_name["value"], variant)
    elif depth < 8:
        _fill(message, variant, depth)


_MESSAGE_TYPES = _reachable(_ROOTS)
_VARIANTS = range(12)


def test_reachable_types_cover_the_flow_tree() -> None:
    names = {d.full_name for d in _MESSAGE_TYPES}
    assert {
        "flow.Flow",
        "flow.TCPFlags",
        "flow.Layer7",
        "flow.LostEvent",
        "flow.AgentEvent",
        "flow.DebugEvent",
        "relay.NodeStatusEvent",
        "google.protobuf.Timestamp",
        "google.protobuf.Any",
        "google.protobuf.UInt32Value",
    } <= names
    assert len(names) > 40


@pytest.mark.parametrize("descriptor", _MESSAGE_TYPES, ids=lambda d: d.full_name)
def test_writer_matches_json_format_for_every_type(descriptor: Descriptor) -> None:
    message_class = message_factory.GetMessageClass(descriptor)
    for variant in _VARIANTS:
        message = message_class()
        _fill_message(message, variant, 0)
        assert json.loads(jsonlines.dumps(message)) == _reference(message), variant
        assert jsonlines.to_dict(message) == json_format.MessageToDict(
            message, preserving_proto_field_name=True
        )


@pytest.mark.parametrize("variant", _VARIANTS)
def test_writer_matches_json_format_for_full_events(variant: int) -> None:
    for message_class in (observer_pb2.ExportEvent, observer_pb2.GetFlowsResponse):
        message = message_class()
        _fill(message, variant)
        assert json.loads(jsonlines.dumps(message)) == _reference(message)
        assert jsonlines.dumps(message) == _reference_text(message)


def test_writer_matches_for_maps() -> None:
    edge = aggregate_pb2.Edge(source="a", verdicts={"": 0, "DROPPED": 2**64 - 1, "ü": 3})
    assert jsonlines.to_dict(edge)["verdicts"] == {"": "0", "DROPPED": str(2**64 - 1), "ü": "3"}
    response = aggregate_pb2.ServiceMapResponse(edges=[edge, aggregate_pb2.Edge()], table="t")
    assert json.loads(jsonlines.dumps(response)) == _reference(response)


@pytest.mark.parametrize(
    ("seconds", "nanos", "text"),
    [
        (1_700_000_000, 0, "2023-11-14T22:13:20Z"),
        (1_700_000_000, 120_000_000, "2023-11-14T22:13:20.120Z"),
        (1_700_000_000, 120_000, "2023-11-14T22:13:20.000120Z"),
        (1_700_000_000, 120, "2023-11-14T22:13:20.000000120Z"),
        (-1, 999_999_999, "1969-12-31T23:59:59.999999999Z"),
        (-62_135_596_800, 0, "0001-01-01T00:00:00Z"),
        (253_402_300_799, 1_000, "9999-12-31T23:59:59.000001Z"),
    ],
)
def test_timestamp_text(seconds: int, nanos: int, text: str) -> None:
    timestamp = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    assert jsonlines.format_timestamp(timestamp) == text == timestamp.ToJsonString()


@pytest.mark.parametrize(
    ("seconds", "nanos"), [(-62_135_596_801, 0), (253_402_300_800, 0), (0, -1), (0, 10**9)]
)
def test_out_of_range_timestamps_raise(seconds: int, nanos: int) -> None:
    flow = flow_pb2.Flow(time={"seconds": seconds, "nanos": nanos})
    with pytest.raises(ValueError, match="Timestamp"):
        jsonlines.dumps(flow)


def test_control_characters_escaped_as_json_does() -> None:
    flow = flow_pb2.Flow(uuid='a\x1b[2J\n\x7f\x9bé😀"\\')
    line = jsonlines.dumps(flow)
    assert line == '{"uuid":"a\\u001b[2J\\n\x7f\x9bé😀\\"\\\\"}'
    assert line == _reference_text(flow)


def test_unknown_enum_numbers_written_as_numbers() -> None:
    flow = flow_pb2.Flow(verdict=77, Type=flow_pb2.L7, drop_reason_desc=-3)
    assert jsonlines.to_dict(flow) == {"verdict": 77, "Type": "L7", "drop_reason_desc": -3}


def test_writer_matches_json_format_text_on_realistic_flows() -> None:
    for response in flowgen.flows(3000, 7):
        assert jsonlines.dumps(response) == _reference_text(response)
    event = observer_pb2.ExportEvent(flow=response.flow, node_name="n", time=response.time)
    assert jsonlines.dumps(event) == _reference_text(event)


# The flow protos have few floats and maps; this message has every kind of field.
_KINDS_PROTO = """
syntax = "proto3";
package jsonlines_test;
import "google/protobuf/wrappers.proto";
import "google/protobuf/timestamp.proto";
enum Colour { NONE = 0; RED = 1; }
message Kinds {
  double d = 1; float f = 2; repeated double ds = 3; repeated float fs = 4;
  map<bool, string> by_bool = 5; map<int64, float> by_int64 = 6; map<uint32, Kinds> by_uint32 = 7;
  google.protobuf.FloatValue fv = 8; google.protobuf.DoubleValue dv = 9;
  google.protobuf.Int64Value iv = 10; google.protobuf.BytesValue bv = 11;
  bytes b = 12; repeated bytes bs = 13; optional int32 opt = 14; Kinds child = 15;
  repeated google.protobuf.Timestamp times = 16; repeated Colour colours = 17;
  map<string, Colour> by_name = 18; repeated sint64 s64 = 19; sfixed32 sf32 = 20;
  repeated google.protobuf.UInt64Value u64s = 21;
}
"""


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> type[Message]:
    """The Kinds message class, compiled by protoc into a pool of its own."""
    folder = tmp_path_factory.mktemp("proto")
    (folder / "kinds.proto").write_text(_KINDS_PROTO)
    descriptor_set = folder / "kinds.pb"
    includes = str(resources.files("grpc_tools") / "_proto")
    status = protoc.main(
        [
            "protoc",
            f"-I{folder}",
            f"-I{includes}",
            "--include_imports",
            f"--descriptor_set_out={descriptor_set}",
            "kinds.proto",
        ]
    )
    assert status == 0
    pool = descriptor_pool.DescriptorPool()
    for file_proto in descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file:
        pool.Add(file_proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("jsonlines_test.Kinds"))


@pytest.mark.parametrize("value", [*_DOUBLES, 3.0, 1e-7, 16_777_217.0, 3.4e38])
def test_floats_maps_and_wrappers_match_json_format(kinds: type[Any], value: float) -> None:
    child = kinds(d=value, by_bool={True: "yes"})
    message = kinds(
        d=value,
        f=value,
        ds=[value, 0.0, -value],
        fs=[value, 0.1, 0.0],
        by_bool={True: "t", False: ""},
        by_int64={-(2**63): value, 2**63 - 1: 0.0},
        by_uint32={0: kinds(), 2**32 - 1: child},
        fv={"value": value},
        dv={"value": value},
        iv={"value": 0},
        bv={"value": b"\x00\xff"},
        b=b"\xfb\xff",
        bs=[b"", b"\x01"],
        opt=0,
        child={"child": child, "opt": -1},
        times=[{"seconds": -1}, {}, {"nanos": 10}],
        colours=[1, 0, 42, -1],
        by_name={"a": 1, "": 0, "z": 9},
        s64=[-(2**63), 0],
        sf32=-(2**31),
        u64s=[{}, {"value": 2**64 - 1}],
    )
    assert json.loads(jsonlines.dumps(message)) == _reference(message)
    assert jsonlines.to_dict(message) == json_format.MessageToDict(
        message, preserving_proto_field_name=True
    )


def test_unset_optional_and_empty_message(kinds: type[Any]) -> None:
    assert jsonlines.dumps(kinds()) == "{}"
    assert jsonlines.dumps(kinds(opt=0, child={})) == '{"opt":0,"child":{}}'
