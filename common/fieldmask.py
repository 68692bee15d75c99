"""Field masks over Flow: send only the paths a client asked for.

GetFlowsRequest.field_mask names Flow paths ("source.pod_name", "l4.TCP", "IP"); the node
server, the relay and file replay copy only those into the flows they send, as Hubble does.

    mask = FlowMask.compile(request.field_mask)   # InputError naming a path Flow lacks
    if mask is not None:
        flow = mask.apply(flow)                   # a new Flow with the masked paths only

Paths are checked once, when the mask is compiled, against Flow's descriptor: every step but
the last must be a singular message field. A path that names a message keeps all of it; a
path under it ("source" with "source.labels") adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from flowscope.common.errors import InputError
from flowscope.proto.flow import flow_pb2

# Fields of a masked message: name -> the masked fields below it, or None to copy it whole.
_Tree = dict[str, "_Node"]


@dataclass(frozen=True, slots=True)
class _Node:
    field: FieldDescriptor
    children: _Tree | None


_FLOW: Final = flow_pb2.Flow.DESCRIPTOR


class FlowMask:
    """A field mask checked against Flow, ready to apply to any number of flows."""

    def __init__(self, tree: _Tree) -> None:
        self._tree = tree

    @classmethod
    def compile(cls, mask: FieldMask, where: str = "field_mask") -> FlowMask | None:
        """The mask's paths as a FlowMask; None when it has none (the whole flow is sent).

        `where` names the mask in the error for a path Flow does not have.
        """
        if not mask.paths:
            return None
        tree: _Tree = {}
        for path in sorted(mask.paths, key=len):  # a shorter path covers the longer under it
            _add(tree, _FLOW, path, where)
        return cls(tree)

    def apply(self, flow: flow_pb2.Flow) -> flow_pb2.Flow:
        """A new Flow holding the masked paths of `flow` that are set."""
        masked = flow_pb2.Flow()
        _copy(self._tree, flow, masked)
        return masked


def _add(tree: _Tree, message: Descriptor, path: str, where: str) -> None:
    fields = _resolve(message, path, where)
    for depth, field in enumerate(fields):
        node = tree.get(field.name)
        if node is not None and node.children is None:
            return  # already copied whole
        if depth == len(fields) - 1:
            tree[field.name] = _Node(field, None)
            return
        if node is None:
            node = tree[field.name] = _Node(field, {})
        assert node.children is not None
        tree = node.children


def _resolve(message: Descriptor, path: str, where: str) -> list[FieldDescriptor]:
    """The fields along `path`; InputError naming the first step that does not exist."""
    fields: list[FieldDescriptor] = []
    for name in path.split("."):
        if fields:
            parent = fields[-1]
            if parent.message_type is None or parent.is_repeated:
                raise InputError(
                    f"invalid {where} path {path!r}: {message.name}.{parent.name} is not a "
                    "message whose fields can be selected"
                )
            message = parent.message_type
        field = message.fields_by_name.get(name)
        if field is None:
            raise InputError(f"invalid {where} path {path!r}: {message.name} has no field {name!r}")
        fields.append(field)
    return fields


def _copy(tree: _Tree, source: Message, target: Message) -> None:
    for name, node in tree.items():
        field = node.field
        if field.is_repeated:
            getattr(target, name).extend(getattr(source, name))
        elif field.message_type is None and not field.has_presence:
            setattr(target, name, getattr(source, name))
        elif not source.HasField(name):
            continue
        elif node.children is not None:
            _copy(node.children, getattr(source, name), getattr(target, name))
        elif field.message_type is not None:
            getattr(target, name).CopyFrom(getattr(source, name))
        else:
            setattr(target, name, getattr(source, name))
