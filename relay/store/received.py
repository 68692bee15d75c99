"""Flows as the store's landing table receives them: rows of ReceivedFlow
(received.proto) in ClickHouse's length-delimited Protobuf format, which the
engine decodes into the flow table's columns with the view that
ddl.received_tables() creates.

The relay has each flow serialized as its node sent it; row() adds, in one
parse that leaves nested messages as bytes, what SQL cannot compute exactly
(common/schema.split()): the remainder and the HTTP path. ClickHouse reads
received.proto, the project's flow.proto it imports and protobuf's well-known
types from one directory, which format_schema() lays out with links.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Final, NamedTuple

from flowscope.common import schema
from flowscope.proto.flow import flow_pb2

MESSAGE: Final = "ReceivedFlow"
_VARINT_TABLE_SIZE: Final = 1 << 14


class Row(NamedTuple):
    """One flow to insert: its node, sequence and serialized bytes, and the landing
    row's wire around them (head + flow + tail). A tuple: there is one per flow."""

    node_name: str
    node_sequence: int
    flow: bytes
    head: bytes
    tail: bytes


# Lengths of most flows and remainders are small: their varints, ready.
_VARINTS: Final = tuple(schema.varint(value) for value in range(_VARINT_TABLE_SIZE))


def _length(value: int) -> bytes:
    return _VARINTS[value] if value < _VARINT_TABLE_SIZE else schema.varint(value)


def row(flow: bytes) -> Row:
    """The landing row of one serialized flow."""
    node_name, node_sequence, remainder, http_path = schema.split(flow)
    flow_length = _length(len(flow))
    # Field 2 (remainder), then 3 (http_path) when there is one.
    tail = b"\x12" + _length(len(remainder)) + remainder
    if http_path is not None:
        path = http_path.encode()
        tail += b"\x1a" + _length(len(path)) + path
    size = 1 + len(flow_length) + len(flow) + len(tail)
    # The row's length, then field 1 (received): the flow.
    return Row(node_name, node_sequence, flow, _length(size) + b"\x0a" + flow_length, tail)


def wire(rows: Iterable[Row]) -> bytes:
    """rows as one insert's data: length-delimited ReceivedFlow messages."""
    return b"".join([part for item in rows for part in (item.head, item.flow, item.tail)])


def format_schema(directory: Path) -> str:
    """Lay out received.proto with what it imports under directory (links to the
    project's files); the format_schema setting that names its message."""
    flow_proto = Path(flow_pb2.__file__).with_name("flow.proto")
    well_known = resources.files("grpc_tools") / "_proto" / "google"
    links = {
        directory / "received.proto": Path(__file__).with_name("received.proto"),
        directory / "flowscope" / "proto" / "flow" / "flow.proto": flow_proto,
        directory / "google": Path(str(well_known)),
    }
    for link, target in links.items():
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(target.resolve())
    return f"{directory / 'received.proto'}:{MESSAGE}"
