"""Raw filters: FlowFilters written in JSON, read and printed as `hubble observe` does.

They come from --allowlist, --denylist and the config file's allowlist and
denylist; --print-raw-filters prints the lists the flags make in that form.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor

from flowscope.common.errors import FilterError
from flowscope.proto.flow import flow_pb2


def parse_raw_filters(flag: str, texts: Iterable[str]) -> list[flow_pb2.FlowFilter]:
    """FlowFilters written in JSON; one text may hold several objects one after another."""
    decoder = json.JSONDecoder()
    filters = []
    for text in texts:
        position = 0
        while True:
            while position < len(text) and text[position] in " \t\r\n,":
                position += 1
            if position == len(text):
                break
            try:
                obj, position = decoder.raw_decode(text, position)
            except json.JSONDecodeError as err:
                raise FilterError(flag, text, f"not valid JSON: {err}") from None
            if not isinstance(obj, dict):
                raise FilterError(flag, text, "expected a JSON object (a FlowFilter)")
            flow_filter = flow_pb2.FlowFilter()
            try:
                json_format.ParseDict(obj, flow_filter)
            except json_format.ParseError as err:
                problem = str(err).splitlines()[0]  # the rest lists every field
                raise FilterError(flag, text, f"not a FlowFilter: {problem}") from None
            filters.append(flow_filter)
    return filters


def filter_json(flow_filter: flow_pb2.FlowFilter) -> str:
    """A FlowFilter as `hubble observe --print-raw-filters` writes it.

    That is protojson with proto field names, fields in declaration order,
    compact, with HTML characters escaped as Go's encoding/json does.
    """
    as_dict = json_format.MessageToDict(flow_filter, preserving_proto_field_name=True)
    text = json.dumps(
        _declaration_order(flow_filter.DESCRIPTOR, as_dict),
        separators=(",", ":"),
        ensure_ascii=False,
    )
    for char, escape in _GO_JSON_ESCAPES:
        text = text.replace(char, escape)
    return text


_GO_JSON_ESCAPES: Final = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def _declaration_order(descriptor: Descriptor, obj: dict[str, Any]) -> dict[str, Any]:
    ordered: dict[str, Any] = {}
    for field_descriptor in descriptor.fields:
        if field_descriptor.name not in obj:
            continue
        value = obj[field_descriptor.name]
        message_type = field_descriptor.message_type
        if message_type is not None:
            if field_descriptor.is_repeated:
                value = [_declaration_order(message_type, item) for item in value]
            else:
                value = _declaration_order(message_type, value)
        ordered[field_descriptor.name] = value
    return ordered


def raw_filters_document(
    whitelist: Sequence[flow_pb2.FlowFilter], blacklist: Sequence[flow_pb2.FlowFilter]
) -> dict[str, list[str]]:
    """The allowlist and denylist as --print-raw-filters shows them (empty lists left out)."""
    document: dict[str, list[str]] = {}
    for key, filters in (("allowlist", whitelist), ("denylist", blacklist)):
        if filters:
            document[key] = [filter_json(f) for f in filters]
    return document
