"""Field masks over Flow: which paths are copied, and which paths are refused."""

from __future__ import annotations

import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from flowscope.common.errors import InputError
from flowscope.common.fieldmask import FlowMask
from flowscope.proto.flow import flow_pb2

FLOW = flow_pb2.Flow(
    uuid="u-1",
    verdict=flow_pb2.DROPPED,
    IP=flow_pb2.IP(source="10.0.0.1", destination="10.0.0.2", ipVersion=flow_pb2.IPv4),
    l4=flow_pb2.Layer4(TCP=flow_pb2.TCP(source_port=4000, destination_port=80)),
    source=flow_pb2.Endpoint(
        identity=1234, namespace="shop", pod_name="cart-1", labels=["k8s:app=cart"]
    ),
    destination=flow_pb2.Endpoint(identity=2, labels=["reserved:world"]),
    node_labels=["zone=a", "rack=b"],
    Summary="TCP Flags: SYN",
    node_sequence=77,
)
FLOW.time.FromNanoseconds(1_764_374_400_123_456_789)
FLOW.is_reply.value = False


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["uuid"], flow_pb2.Flow(uuid="u-1")),
        (
            ["source.pod_name", "source.labels"],
            flow_pb2.Flow(source=flow_pb2.Endpoint(pod_name="cart-1", labels=["k8s:app=cart"])),
        ),
        # a message path keeps the whole message; a path under it adds nothing
        (["source", "source.pod_name"], flow_pb2.Flow(source=FLOW.source)),
        (["source.pod_name", "source"], flow_pb2.Flow(source=FLOW.source)),
        (
            ["l4.TCP.destination_port"],
            flow_pb2.Flow(l4=flow_pb2.Layer4(TCP=flow_pb2.TCP(destination_port=80))),
        ),
        # an unset oneof member stays unset
        (["l4.UDP"], flow_pb2.Flow()),
        (
            ["IP", "verdict", "node_labels"],
            flow_pb2.Flow(IP=FLOW.IP, verdict=flow_pb2.DROPPED, node_labels=["zone=a", "rack=b"]),
        ),
        # presence: is_reply=false is kept as set; an absent message stays absent
        (["is_reply", "l7"], flow_pb2.Flow(is_reply={"value": False})),
        (["time.seconds"], flow_pb2.Flow(time={"seconds": 1_764_374_400})),
        (["node_sequence", "Summary"], flow_pb2.Flow(node_sequence=77, Summary="TCP Flags: SYN")),
    ],
)
def test_apply_copies_the_masked_paths(paths: list[str], expected: flow_pb2.Flow) -> None:
    mask = FlowMask.compile(FieldMask(paths=paths))
    assert mask is not None
    masked = mask.apply(FLOW)
    assert masked == expected
    assert masked.HasField("is_reply") == expected.HasField("is_reply")
    assert masked.HasField("l7") is False


def test_apply_leaves_the_flow_alone() -> None:
    before = flow_pb2.Flow()
    before.CopyFrom(FLOW)
    mask = FlowMask.compile(FieldMask(paths=["source.labels"]))
    assert mask is not None
    mask.apply(FLOW).source.labels.append("x")
    assert before == FLOW


def test_an_empty_mask_is_no_mask() -> None:
    assert FlowMask.compile(FieldMask()) is None


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("nope", "invalid field_mask path 'nope': Flow has no field 'nope'"),
        ("source.pod", "invalid field_mask path 'source.pod': Endpoint has no field 'pod'"),
        ("", "invalid field_mask path '': Flow has no field ''"),
        ("source.", "invalid field_mask path 'source.': Endpoint has no field ''"),
        ("ip", "invalid field_mask path 'ip': Flow has no field 'ip'"),
        (
            "uuid.x",
            "invalid field_mask path 'uuid.x': Flow.uuid is not a message whose fields can be "
            "selected",
        ),
        (
            "source.workloads.name",
            "invalid field_mask path 'source.workloads.name': Endpoint.workloads is not a "
            "message whose fields can be selected",
        ),
    ],
)
def test_unknown_paths_are_refused_by_name(path: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        FlowMask.compile(FieldMask(paths=["uuid", path]))
    assert str(caught.value) == message


def test_the_error_names_where_the_mask_came_from() -> None:
    with pytest.raises(InputError, match=r"^invalid --field-mask path 'x': Flow has no field"):
        FlowMask.compile(FieldMask(paths=["x"]), where="--field-mask")
