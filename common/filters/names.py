"""source_pod, destination_pod, source_service, destination_service: namespaced names.

A value is "[namespace/]name-prefix": "ns/web" matches names starting with
"web" in namespace ns, "ns/" the whole namespace, "web" the namespace
"default", "/web" names starting with "web" in any namespace, and "/" any
endpoint with a namespace or name (what --all-namespaces asks for). Pods are
the endpoint's namespace and pod_name; services the flow's source_service or
destination_service. An end with neither namespace nor name never matches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Final

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

DEFAULT_NAMESPACE: Final = "default"

# field -> (namespace column, name column, flow -> (namespace, name))
_Field = tuple[str, str, Callable[[flow_pb2.Flow], tuple[str, str]]]
_POD_FIELDS: Final[dict[str, _Field]] = {
    f"{side}_pod": (
        column(f"{side}_namespace"),
        column(f"{side}_pod_name"),
        attrgetter(f"{side}.namespace", f"{side}.pod_name"),
    )
    for side in ("source", "destination")
}
_SERVICE_FIELDS: Final[dict[str, _Field]] = {
    f"{side}_service": (
        column(f"{side}_service_namespace"),
        column(f"{side}_service_name"),
        attrgetter(f"{side}_service.namespace", f"{side}_service.name"),
    )
    for side in ("source", "destination")
}


def parse(field: str, text: str) -> tuple[str | None, str]:
    """(namespace or None for any, name prefix) of a "[namespace/]name-prefix" value."""
    namespace, slash, prefix = text.partition("/")
    if not slash:
        if not text:
            raise FilterError(field, text, "empty; expected [namespace/]name-prefix")
        return DEFAULT_NAMESPACE, text
    if "/" in prefix:
        raise FilterError(field, text, "more than one '/'; expected [namespace/]name-prefix")
    return namespace or None, prefix


def _clause(field: str, values: Sequence[str], spec: _Field, sql: SqlParams) -> Clause:
    namespace_column, name_column, names_of = spec
    by_namespace: dict[str, list[str]] = {}
    any_namespace: list[str] = []
    for namespace, prefix in (parse(field, text) for text in values):
        if namespace is None:
            any_namespace.append(prefix)
        else:
            by_namespace.setdefault(namespace, []).append(prefix)
    prefixes = {namespace: tuple(found) for namespace, found in by_namespace.items()}
    anywhere = tuple(any_namespace)

    def match(flow: flow_pb2.Flow) -> bool:
        namespace, name = names_of(flow)
        if not namespace and not name:
            return False
        in_namespace = prefixes.get(namespace)
        return (in_namespace is not None and name.startswith(in_namespace)) or (
            name.startswith(anywhere)
        )

    parts = []
    for namespace, found in sorted(prefixes.items()):
        in_namespace = f"{namespace_column} = {sql.bind(namespace, 'String')}"
        if "" in found:  # the whole namespace
            parts.append(in_namespace)
            continue
        starts = sql_any([f"startsWith({name_column}, {sql.bind(p, 'String')})" for p in found])
        parts.append(f"{in_namespace} AND ({starts})")
    parts.extend(f"startsWith({name_column}, {sql.bind(p, 'String')})" for p in anywhere)
    present = f"NOT (empty({namespace_column}) AND empty({name_column}))"
    return Clause(match, f"{present} AND ({sql_any(parts)})")


def _dimension(name: str, fields: dict[str, _Field]) -> Dimension:
    def build(ff: flow_pb2.FlowFilter, sql: SqlParams) -> list[Clause]:
        return [
            _clause(field, values, fields[field], sql) for field, values in set_fields(ff, fields)
        ]

    return Dimension(name, tuple(fields), build)


POD = _dimension("pod", _POD_FIELDS)
SERVICE = _dimension("service", _SERVICE_FIELDS)
