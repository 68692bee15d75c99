"""Kubernetes label selectors (matchLabels, matchExpressions) as flowscope label selectors.

A policy's selector is validated against Kubernetes' label syntax, then written in the
selector syntax of flowscope.common.labels and parsed there, so endpoints are matched by the
one selector implementation the filters use too. Endpoint labels carry a source ("k8s:app=web");
a policy's plain key "app" means the source k8s, and Cilium's "k8s:app" or "any:app" keep theirs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from flowscope.collector.endpoints import NAMESPACE_LABEL, NAMESPACE_LABELS_PREFIX
from flowscope.collector.policy.yamlnodes import Value
from flowscope.common.errors import FilterError
from flowscope.common.labels import Selector, parse_selector

# Kubernetes: a name of at most 63 characters, alphanumeric at both ends, with "-_." inside;
# a key may have a DNS subdomain prefix and "/"; a value is a name or empty.
_NAME: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")
_DNS_SUBDOMAIN: Final = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?")
_SOURCES: Final = ("k8s", "any")
# Every Kubernetes namespace carries this label with its own name.
_NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"
_OPERATORS: Final = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass(frozen=True)
class EndpointSelector:
    """Which endpoints a policy part means; no selector at all means every endpoint."""

    selector: Selector | None

    @property
    def text(self) -> str:
        return self.selector.text if self.selector is not None else ""

    def matches(self, labels: Sequence[str]) -> bool:
        return self.selector is None or self.selector.matches(labels)


def combine(parts: Sequence[str], where: Value) -> EndpointSelector:
    """One endpoint selector requiring every part (texts from requirements()); none: all."""
    text = ",".join(part for part in parts if part)
    if not text:
        return EndpointSelector(None)
    try:
        return EndpointSelector(parse_selector(text, where.path))
    except FilterError as exc:
        raise where.error(exc.problem) from exc


def namespace_requirement(namespace: str) -> str:
    """The selector text that confines a selector to one namespace."""
    return f"k8s:{NAMESPACE_LABEL}={namespace}"


def requirements(value: Value, *, sources: bool, namespace_labels: bool = False) -> list[str]:
    """The selector texts of a LabelSelector mapping, one per requirement.

    sources: keys may carry a Cilium label source ("k8s:app"). namespace_labels: the selector
    is a namespaceSelector, whose keys are the namespace's labels.
    """
    fields = value.fields({"matchLabels", "matchExpressions"})
    texts: list[str] = []
    if "matchLabels" in fields:
        match_labels = fields["matchLabels"]
        entries = {} if match_labels.is_null else match_labels.entries()
        for key, label_value in entries.items():
            label_key = _key(key, label_value, sources, namespace_labels)
            texts.append(f"{label_key}={_value(label_value.string(), label_value)}")
    if "matchExpressions" in fields:
        for expression in fields["matchExpressions"].items():
            texts.append(_expression(expression, sources, namespace_labels))
    return texts


def _expression(expression: Value, sources: bool, namespace_labels: bool) -> str:
    parts = expression.fields({"key", "operator", "values"})
    for required in ("key", "operator"):
        if required not in parts:
            raise expression.error(f"missing field {required!r}")
    key = _key(parts["key"].string(), parts["key"], sources, namespace_labels)
    operator = parts["operator"].string()
    if operator not in _OPERATORS:
        raise parts["operator"].error(
            f"unknown operator {operator!r} (expected one of: {', '.join(_OPERATORS)})")
    values_field = parts.get("values")
    values = [(v.string(), v) for v in values_field.items()] if values_field else []
    if operator in ("Exists", "DoesNotExist"):
        if values:
            raise expression.error(f"operator {operator} takes no values")
        return key if operator == "Exists" else f"!{key}"
    if not values:
        raise expression.error(f"operator {operator} needs at least one value")
    for text, where in values:
        if not text:
            raise where.error(f"an empty value in {operator} is not supported")
    listed = ",".join(_value(text, where) for text, where in values)
    return f"{key} {'in' if operator == 'In' else 'notin'} ({listed})"


def _key(key: str, where: Value, sources: bool, namespace_labels: bool) -> str:
    source, colon, name = key.partition(":")
    if not colon:
        source, name = "k8s", key
    elif not sources:
        raise where.error(f"invalid label key {key!r}: ':' is not allowed in a key")
    elif source not in _SOURCES:
        raise where.error(f"unsupported label source {source!r} in {key!r} "
                          f"(expected one of: {', '.join(_SOURCES)})")
    prefix, slash, short = name.rpartition("/")
    if not _NAME.fullmatch(short) or (slash and not _DNS_SUBDOMAIN.fullmatch(prefix)):
        raise where.error(f"invalid label key {key!r}: expected [prefix/]name, where name has "
                          "at most 63 characters [A-Za-z0-9_.-] and starts and ends "
                          "alphanumeric, and prefix is a DNS subdomain")
    if namespace_labels:
        name = NAMESPACE_LABEL if name == _NAMESPACE_NAME_LABEL else NAMESPACE_LABELS_PREFIX + name
    return f"{source}:{name}"


def _value(value: str, where: Value) -> str:
    if value and not _NAME.fullmatch(value):
        raise where.error(f"invalid label value {value!r}: expected at most 63 characters "
                          "[A-Za-z0-9_.-], starting and ending alphanumeric")
    return value
