"""source_ip, destination_ip, source_ip_xlated: an exact address or a CIDR.

IPv4 values match IPv4 addresses and IPv6 values IPv6 addresses; IPv4-mapped
IPv6 values and addresses count as IPv4 (accessors.ip_address). The store
keeps addresses as IPv6 with IPv4 mapped, so an IPv6 range that spans the
mapped block leaves that block out explicitly.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from operator import attrgetter
from typing import Final

from flowscope.common import accessors
from flowscope.common.errors import FilterError
from flowscope.common.filters.base import (
    Clause,
    Dimension,
    SqlParams,
    column,
    set_fields,
    sql_any,
)
from flowscope.proto.flow import flow_pb2

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_FIELDS: Final = {
    "source_ip": (column("source_ip"), attrgetter("IP.source")),
    "destination_ip": (column("destination_ip"), attrgetter("IP.destination")),
    "source_ip_xlated": (column("source_ip_xlated"), attrgetter("IP.source_xlated")),
}
_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")


def _stored(address: Address) -> str:
    """An address as the store holds it (IPv6, IPv4 mapped)."""
    return f"::ffff:{address}" if address.version == 4 else str(address)


def _parse(field: str, text: str) -> Address | Network:
    if "/" not in text:
        address = accessors.ip_address(text)
        if address is None:
            raise FilterError(field, text, "not an IP address or CIDR")
        return address
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as error:
        raise FilterError(field, text, f"not an IP address or CIDR: {error}") from None
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
        mapped = network.network_address.ipv4_mapped
        return ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}")
    return network


def _range_sql(sql_name: str, network: Network, sql: SqlParams) -> str:
    low = sql.bind(_stored(network.network_address), "IPv6")
    high = sql.bind(_stored(network.broadcast_address), "IPv6")
    between = f"{sql_name} BETWEEN {low} AND {high}"
    if isinstance(network, ipaddress.IPv6Network) and network.supernet_of(_MAPPED):
        mapped = _range_sql(sql_name, ipaddress.IPv4Network("0.0.0.0/0"), sql)
        return f"{between} AND NOT ({mapped})"
    return between


def _clause(field: str, values: Sequence[str], sql: SqlParams) -> Clause:
    sql_name, address_of = _FIELDS[field]
    addresses: set[Address] = set()
    networks: list[Network] = []
    for text in values:
        parsed = _parse(field, text)
        if isinstance(parsed, ipaddress.IPv4Network | ipaddress.IPv6Network):
            networks.append(parsed)
        else:
            addresses.add(parsed)
    exact = frozenset(addresses)
    ranges = tuple(networks)

    def match(flow: flow_pb2.Flow) -> bool:
        address = accessors.ip_address(address_of(flow))
        if address is None:
            return False
        return address in exact or any(address in network for network in ranges)

    parts = [_range_sql(sql_name, network, sql) for network in ranges]
    if exact:
        stored = sql.bind(sorted(_stored(address) for address in exact), "Array(IPv6)")
        parts.append(f"has({stored}, {sql_name})")
    # The column is NULL for flows without an address; keep the clause 0 there.
    return Clause(match, f"{sql_name} IS NOT NULL AND ({sql_any(parts)})")


def _build(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
    return [_clause(field, values, sql) for field, values in set_fields(ff, _FIELDS)]


IP = Dimension("ip", tuple(_FIELDS), _build)
