"""Hubble's JSON lines: one GetFlowsResponse or ExportEvent object per line.

Writing follows protojson with proto field names: enum names, RFC 3339
times, 64-bit integers as strings, unset fields left out, compact
separators. Reading accepts what Hubble's `observe -o jsonpb` and its flow
exporter write: `{"flow": {...}, "node_name": "...", "time": "..."}` lines,
their lost_events, node_status, agent_event and debug_event variants, and
bare Flow objects (older `-o json` output).

The reader does not go through json_format.Parse, which costs about 170 µs
per flow: it decodes with orjson and hands the message constructors plain
keyword arguments, converted by a table compiled once per message type from
the descriptors (times, 64-bit integers, wrappers and bytes need converting;
strings, booleans, enum names and most numbers pass through as they are).

The writer does not go through json_format.MessageToDict either (about
75 µs per flow): a writer compiled once per message type walks the set
fields (ListFields) into a dict that orjson encodes. It yields the JSON of
MessageToDict(preserving_proto_field_name=True) with its key order; Any,
FieldMask and the other rare well-known types still go through json_format.
"""

from __future__ import annotations

import base64
import calendar
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.internal import type_checkers
from google.protobuf.message import Message

from flowscope.common.errors import InputError
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2

Response = (
    observer_pb2.GetFlowsResponse
    | observer_pb2.GetAgentEventsResponse
    | observer_pb2.GetDebugEventsResponse
)


def to_dict(message: Message) -> dict[str, object]:
    """The message as Hubble's JSON object (proto field names)."""
    descriptor = cast(Descriptor, message.DESCRIPTOR)
    writer = _generic_json if _is_well_known(descriptor) else _object_writer(descriptor)
    return cast(dict[str, object], writer(message))


def dumps(message: Message) -> str:
    """One JSON line (without the newline), compact as Hubble writes it.

    Non-ASCII stays as it is and only the C0 controls are escaped, as
    json.dumps(ensure_ascii=False) does; the json printer escapes DEL and
    the C1 controls itself.
    """
    return orjson.dumps(to_dict(message)).decode()


# --- reading ---------------------------------------------------------------

Converter = Callable[[Any], Any]

_INT64_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
_FLOAT_TYPES = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})
_WRAPPERS = frozenset(
    {
        "google.protobuf.BoolValue",
        "google.protobuf.Int32Value",
        "google.protobuf.UInt32Value",
        "google.protobuf.Int64Value",
        "google.protobuf.UInt64Value",
        "google.protobuf.StringValue",
        "google.protobuf.DoubleValue",
        "google.protobuf.FloatValue",
        "google.protobuf.BytesValue",
    }
)

_last_second: tuple[str, int] = ("", 0)


def parse_timestamp(text: str) -> dict[str, int]:
    """RFC 3339 text -> Timestamp keyword arguments, nanoseconds kept.

    Consecutive flows mostly share their second, so the conversion of the
    "YYYY-MM-DDTHH:MM:SS" part is remembered for the next call.
    """
    global _last_second
    if not isinstance(text, str) or len(text) < 20 or text[10] not in "Tt ":
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    head = text[:19]
    rest = text[19:]
    nanos = 0
    if rest[0] == ".":
        end = 1
        while end < len(rest) and rest[end].isdigit():
            end += 1
        digits = rest[1:end]
        if not digits or len(digits) > 9:
            raise ValueError(f"bad fraction of a second in {text!r}")
        nanos = int(digits.ljust(9, "0"))
        rest = rest[end:]
    if rest in ("Z", "z"):
        if _last_second[0] == head:
            seconds = _last_second[1]
        else:
            seconds = calendar.timegm(datetime.fromisoformat(head).timetuple())
            _last_second = (head, seconds)
    else:
        aware = datetime.fromisoformat(head + rest)
        if aware.tzinfo is None:
            raise ValueError(f"time without a zone: {text!r}")
        seconds = int(aware.timestamp())
    return {"seconds": seconds, "nanos": nanos}


def _sub_message(field: FieldDescriptor) -> Descriptor | None:
    """The field's message type; None for scalar fields."""
    if field.type != FieldDescriptor.TYPE_MESSAGE:
        return None
    message_type: Descriptor | None = field.message_type
    return message_type


def _is_well_known(descriptor: Descriptor) -> bool:
    return descriptor.full_name.startswith("google.protobuf.")


def _field_converter(field: FieldDescriptor) -> Converter | None:
    """How one field's JSON value becomes a constructor argument; None: as is."""
    scalar: Converter | None = None
    sub = _sub_message(field)
    if sub is not None:
        if sub.full_name == "google.protobuf.Timestamp":
            scalar = parse_timestamp
        elif sub.full_name in _WRAPPERS:
            inner = _field_converter(sub.fields_by_name["value"])
            scalar = _wrap_value if inner is None else _wrap_converted(inner)
        elif _is_well_known(sub):
            scalar = _parse_generic(sub)
        else:
            scalar = _message_converter(sub)
    elif field.type in _INT64_TYPES:
        scalar = int
    elif field.type in _FLOAT_TYPES:
        scalar = float
    elif field.type == FieldDescriptor.TYPE_BYTES:
        scalar = base64.b64decode
    if scalar is None or not field.is_repeated:
        return scalar
    return _each(scalar)


def _wrap_value(value: Any) -> dict[str, Any]:
    return {"value": value}


def _wrap_converted(inner: Converter) -> Converter:
    return lambda value: {"value": inner(value)}


def _parse_generic(descriptor: Descriptor) -> Converter:
    """Well-known types other than times and wrappers (Any, FieldMask): rare."""
    from google.protobuf import symbol_database

    cls = symbol_database.Default().GetSymbol(descriptor.full_name)

    def parse(value: Any) -> Message:
        message: Message = cls()
        json_format.ParseDict(value, message, ignore_unknown_fields=True)
        return message

    return parse


_MESSAGE_CONVERTERS: dict[str, Converter] = {}


def _message_converter(descriptor: Descriptor) -> Converter:
    """A function from a JSON object to the message's constructor arguments.

    It maps JSON names to field names, converts the values that need it and
    leaves out unknown fields, as protojson's DiscardUnknown does.
    """
    known = _MESSAGE_CONVERTERS.get(descriptor.full_name)
    if known is not None:
        return known
    table: dict[str, tuple[str, Converter | None]] = {}

    def convert(obj: Any) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise ValueError(f"{descriptor.name}: expected an object, got {obj!r:.40}")
        kwargs: dict[str, Any] = {}
        for key, value in obj.items():
            entry = table.get(key)
            if entry is None or value is None:
                continue
            name, conv = entry
            kwargs[name] = value if conv is None else conv(value)
        return kwargs

    # Registered before the fields are compiled, so recursive types terminate.
    _MESSAGE_CONVERTERS[descriptor.full_name] = convert
    for field in descriptor.fields:
        entry = (field.name, _field_converter(field))
        table[field.name] = entry
        table[field.json_name] = entry
    return convert


_FAST_CONVERTERS: dict[str, Converter | None] = {}


def _fast_converter(descriptor: Descriptor) -> Converter | None:
    """A cheaper converter for the common case; None when the object passes as is.

    Message constructors take nested dicts, lists, strings, booleans, numbers
    and enum names directly, so only the fields whose JSON form differs
    (times, 64-bit integers as strings, wrappers, bytes) are converted, and
    sub-messages without such fields pass untouched. It assumes proto field
    names and no unknown fields: when that is wrong the constructor raises,
    and the caller retries with _message_converter.
    """
    name = descriptor.full_name
    if name in _FAST_CONVERTERS:
        return _FAST_CONVERTERS[name]
    _FAST_CONVERTERS[name] = None  # recursion guard; flow messages are not recursive
    converting: list[tuple[str, Converter]] = []
    for field in descriptor.fields:
        conv: Converter | None
        sub = _sub_message(field)
        if sub is not None and not _is_well_known(sub):
            inner = _fast_converter(sub)
            conv = None if inner is None else _each(inner) if field.is_repeated else inner
        else:
            conv = _field_converter(field)
        if conv is not None:
            converting.append((field.name, conv))
    if not converting:
        return None
    fields = tuple(converting)

    def convert(obj: Any) -> Any:
        kwargs = dict(obj)
        for key, conv in fields:
            value = kwargs.get(key)
            if value is not None:
                kwargs[key] = conv(value)
        return kwargs

    _FAST_CONVERTERS[name] = convert
    return convert


def _each(item: Converter) -> Converter:
    return lambda values: [item(v) for v in values]


_ENVELOPE_KEYS = frozenset(
    {"flow", "node_status", "lost_events", "agent_event", "debug_event", "node_name", "time"}
)


def _builder(message_type: type[Message]) -> Callable[[Any], Any]:
    """Builds message_type from a JSON object: the fast path, then the general one."""
    descriptor = cast(Descriptor, message_type.DESCRIPTOR)
    fast = _fast_converter(descriptor) or (lambda obj: obj)
    full = _message_converter(descriptor)

    def build(obj: Any) -> Any:
        try:
            return message_type(**fast(obj))
        except (ValueError, TypeError, AttributeError):
            return message_type(**full(obj))

    return build


_build_flow = _builder(flow_pb2.Flow)
_build_flows_response = _builder(observer_pb2.GetFlowsResponse)
_build_export_event = _builder(observer_pb2.ExportEvent)


def parse_line(line: bytes | str) -> Response:
    """One JSON line as the response it holds; InputError when it is malformed."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as err:
        raise InputError(f"not valid JSON: {err}") from None
    if not isinstance(obj, dict):
        raise InputError("not a JSON object")
    try:
        if not obj.keys() <= _ENVELOPE_KEYS:
            flow = _build_flow(obj)
            return observer_pb2.GetFlowsResponse(
                flow=flow, node_name=flow.node_name, time=flow.time
            )
        if "agent_event" in obj or "debug_event" in obj:
            event = _build_export_event(obj)
            envelope = {"node_name": event.node_name, "time": event.time}
            if event.HasField("agent_event"):
                return observer_pb2.GetAgentEventsResponse(
                    agent_event=event.agent_event, **envelope
                )
            return observer_pb2.GetDebugEventsResponse(debug_event=event.debug_event, **envelope)
        response: observer_pb2.GetFlowsResponse = _build_flows_response(obj)
        return response
    except (ValueError, TypeError, AttributeError, json_format.ParseError) as err:
        raise InputError(f"not a flow record: {err}") from None


# --- writing ---------------------------------------------------------------

_TIMESTAMP = "google.protobuf.Timestamp"
_FIRST_SECOND = -62_135_596_800  # 0001-01-01T00:00:00Z, protojson's range
_LAST_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z
_EPOCH = datetime(1970, 1, 1)

_last_written_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def format_timestamp(timestamp: Any) -> str:
    """A Timestamp as protojson's RFC 3339 text: UTC, 0, 3, 6 or 9 digits of fraction.

    Out-of-range values go to the Timestamp's own ToJsonString, which raises
    ValueError naming the problem. Consecutive flows mostly share their
    second, so its date and time text is remembered for the next call.
    """
    global _last_written_second
    seconds: int = timestamp.seconds
    nanos: int = timestamp.nanos
    if not (_FIRST_SECOND <= seconds <= _LAST_SECOND and 0 <= nanos < 1_000_000_000):
        text: str = timestamp.ToJsonString()
        return text
    if _last_written_second[0] == seconds:
        head = _last_written_second[1]
    else:
        head = (_EPOCH + timedelta(seconds=seconds)).isoformat()
        _last_written_second = (seconds, head)
    if nanos == 0:
        return head + "Z"
    if nanos % 1_000_000 == 0:
        return f"{head}.{nanos // 1_000_000:03d}Z"
    if nanos % 1_000 == 0:
        return f"{head}.{nanos // 1_000:06d}Z"
    return f"{head}.{nanos:09d}Z"


def _generic_json(message: Any) -> Any:
    """Well-known types other than times and wrappers (Any, FieldMask): rare."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _double_json(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _float_json(value: float) -> float | str:
    """A 32-bit float as its shortest decimal form, as json_format writes it."""
    if math.isfinite(value):
        return type_checkers.ToShortestFloat(value)
    return _double_json(value)


def _bytes_json(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _map_key_json(key: object) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _enum_json(field: FieldDescriptor) -> Converter:
    """Enum numbers to names; numbers without a name stay numbers."""
    enum = cast(EnumDescriptor, field.enum_type)
    names = {value.number: value.name for value in enum.values}
    return lambda number: names.get(number, number)


def _value_writer(field: FieldDescriptor) -> Converter | None:
    """How one value of the field becomes its JSON value; None: as it is."""
    sub = _sub_message(field)
    if sub is not None:
        if sub.full_name == _TIMESTAMP:
            return format_timestamp
        if sub.full_name in _WRAPPERS:
            inner = _value_writer(sub.fields_by_name["value"])
            if inner is None:
                return lambda wrapper: wrapper.value
            return lambda wrapper: inner(wrapper.value)
        if _is_well_known(sub):
            return _generic_json
        return _object_writer(sub)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return _enum_json(field)
    if field.type in _INT64_TYPES:
        return str
    if field.type == FieldDescriptor.TYPE_DOUBLE:
        return _double_json
    if field.type == FieldDescriptor.TYPE_FLOAT:
        return _float_json
    if field.type == FieldDescriptor.TYPE_BYTES:
        return _bytes_json
    return None


def _is_map(field: FieldDescriptor) -> bool:
    sub = _sub_message(field)
    return sub is not None and sub.GetOptions().map_entry


def _field_writer(field: FieldDescriptor) -> Converter | None:
    """How the field's value (a list or map when repeated) becomes JSON; None: as is."""
    if _is_map(field):
        entry = cast(Descriptor, field.message_type)
        value_of = _value_writer(entry.fields_by_name["value"])
        if value_of is None:
            return lambda entries: {_map_key_json(k): v for k, v in entries.items()}
        return lambda entries: {_map_key_json(k): value_of(v) for k, v in entries.items()}
    one = _value_writer(field)
    if not field.is_repeated:
        return one
    if one is None:
        return list
    return _each(one)


# Keyed by descriptor, not name: a message type of another descriptor pool may share a name.
_OBJECT_WRITERS: dict[Descriptor, Converter] = {}


def _object_writer(descriptor: Descriptor) -> Converter:
    """A function from a message of this type to its JSON object (set fields only)."""
    known = _OBJECT_WRITERS.get(descriptor)
    if known is not None:
        return known
    table: dict[FieldDescriptor, tuple[str, Converter | None]] = {}

    def write(message: Any) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for field, value in message.ListFields():
            name, conv = table[field]
            obj[name] = value if conv is None else conv(value)
        return obj

    # Registered before the fields are compiled, so recursive types terminate.
    _OBJECT_WRITERS[descriptor] = write
    for field in descriptor.fields:
        table[field] = (field.name, _field_writer(field))
    return write
