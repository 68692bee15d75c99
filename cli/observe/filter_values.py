"""The values of filter flags that flowscope checks itself: enums, identities, TCP flags, ...

Each converter turns a flag's text into the FlowFilter field's value, or raises
ValueError saying what is wrong; the caller adds the flag and the value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, Protocol

from flowscope.common import vocab
from flowscope.proto.flow import flow_pb2

Convert = Callable[[str | None], object]


class _Enum(Protocol):
    def keys(self) -> list[str]: ...
    def Value(self, name: str) -> int: ...  # protobuf's name


def enum_value(enum: _Enum, *, choices: Sequence[str] | None = None) -> Convert:
    names = list(choices or enum.keys())

    def convert(value: str | None) -> object:
        name = (value or "").upper()
        if not name:
            raise ValueError("empty value")
        if name not in names:
            raise ValueError(f"expected one of {', '.join(names)}")
        return enum.Value(name)

    return convert


def identity(value: str | None) -> object:
    return vocab.parse_identity(value or "")


def workload(value: str | None) -> object:
    kind, sep, name = (value or "").partition("/")
    return flow_pb2.Workload(kind=kind, name=name) if sep else flow_pb2.Workload(name=kind)


def tcp_flags(value: str | None) -> object:
    flags = flow_pb2.TCPFlags()
    for name in (value or "").split(","):
        if name.upper() not in vocab.TCP_FLAG_ORDER:
            raise ValueError(
                f"unknown TCP flag {name!r}: expected one of {', '.join(vocab.TCP_FLAG_ORDER)}"
            )
        setattr(flags, name.upper(), True)
    return flags


_IP_VERSIONS: Final[dict[str, int]] = {
    **dict.fromkeys(("none", "0"), flow_pb2.IP_NOT_USED),
    **dict.fromkeys(("4", "v4", "ipv4", "ip4"), flow_pb2.IPv4),
    **dict.fromkeys(("6", "v6", "ipv6", "ip6"), flow_pb2.IPv6),
}


def ip_version(value: str | None) -> object:
    version = _IP_VERSIONS.get((value or "").lower())
    if version is None:
        raise ValueError("expected none, v4 or v6")
    return version


def event_type(value: str | None) -> object:
    name, sep, subtype = (value or "").partition(":")
    type_number = vocab.EVENT_TYPES.get(name)
    if type_number is None:
        if not name.isdigit():
            types = ", ".join(vocab.EVENT_TYPES)
            raise ValueError(f"unknown event type {name!r}: expected a number or one of {types}")
        type_number = int(name)
    event_type = flow_pb2.EventTypeFilter(type=type_number)
    if sep:
        names: dict[str, int] = {}
        if type_number == vocab.EVENT_TYPE_TRACE:
            names = vocab.TRACE_SUBTYPES
        elif type_number == vocab.EVENT_TYPES["agent"]:
            names = vocab.AGENT_SUBTYPES
        if subtype in names:
            number = names[subtype]
        elif subtype.isdigit():
            number = int(subtype)
        else:
            known = f" or one of {', '.join(names)}" if names else ""
            raise ValueError(f"unknown event subtype {subtype!r}: expected a number{known}")
        event_type.match_sub_type = True
        event_type.sub_type = number
    return event_type


def ip_trace_id(value: str | None) -> object:
    text = value or ""
    if not text.isdigit() or not 0 < int(text) < 2**64:
        raise ValueError("expected a number greater than 0")
    return int(text)


def http_header(value: str | None) -> object:
    key, sep, header_value = (value or "").partition(":")
    if not sep:
        raise ValueError("expected name:value")
    return flow_pb2.HTTPHeader(key=key, value=header_value)


def interface(value: str | None) -> object:
    return flow_pb2.NetworkInterface(name=value or "")


def _constant(constant: object) -> Convert:
    return lambda _value: constant
