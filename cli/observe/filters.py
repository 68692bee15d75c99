"""Filter flags to FlowFilter allowlist and denylist, as `hubble observe` compiles them.

Flags apply in command-line order; `--not` sends the next filter flag, and only
that one, to the denylist. Each list is built as two FlowFilters, left and right:

* an either-direction flag (--ip, --pod, --namespace, --label, --fqdn, --service,
  --port, --identity, --workload, --cluster) puts its value in the source field on
  the left and in the destination field on the right, so `--ip X --label L` wants
  X and L on the same endpoint;
* every other flag (--from-*, --to-*, --verdict, --protocol, ...) goes to both.

A list is then [left, right], or [left] when both are equal. Namespace flags are
applied last, to the pod and service names of each side; a pod or service name
without a namespace means namespace `default`.

The flags themselves are listed in filter_flags, their values with a fixed
vocabulary (verdicts, event types, identities, TCP flags) are checked by
filter_values. Values the filter compiler checks (IPs, CIDRs, ports, regular
expressions, selectors) are remembered with the flag that gave them, so that
`CompiledFilters.name_flag` can name the flag in the compiler's error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from flowscope.cli.observe.filter_values import Convert
from flowscope.common.errors import FilterError, InputError
from flowscope.proto.flow import flow_pb2

# (flag name, value) in command-line order; value is None for switches.
FlagEvent = tuple[str, str | None]
# Which flag gave a (FlowFilter field, value) pair, e.g. ("source_port", "80") -> "--port".
Origins = dict[tuple[str, str], str]

DEFAULT_NAMESPACE: Final = "default"

# Flags that cannot be used together in one list (allowlist or denylist).
CONFLICTS: Final[tuple[tuple[str, ...], ...]] = (
    (
        "from-fqdn",
        "from-ip",
        "ip",
        "fqdn",
        "from-namespace",
        "namespace",
        "from-all-namespaces",
        "all-namespaces",
    ),
    ("from-fqdn", "from-ip", "ip", "fqdn", "from-pod", "pod"),
    (
        "to-fqdn",
        "to-ip",
        "ip",
        "fqdn",
        "to-namespace",
        "namespace",
        "to-all-namespaces",
        "all-namespaces",
    ),
    ("to-fqdn", "to-ip", "ip", "fqdn", "to-pod", "pod"),
    ("to-pod", "namespace", "all-namespaces"),
    ("from-pod", "namespace", "all-namespaces"),
    ("to-service", "namespace", "all-namespaces"),
    ("from-service", "namespace", "all-namespaces"),
    ("label", "from-label"),
    ("label", "to-label"),
    ("service", "from-service"),
    ("service", "to-service"),
    ("port", "to-port"),
    ("port", "from-port"),
    ("identity", "to-identity"),
    ("identity", "from-identity"),
    ("workload", "to-workload"),
    ("workload", "from-workload"),
    ("encrypted", "unencrypted"),
)


@dataclass
class _Namespaces:
    """The namespaces one kind of namespace flag gave ("" for all), and that flag."""

    values: list[str] = field(default_factory=list)
    flag: str = ""

    def __bool__(self) -> bool:
        return bool(self.values)


class _Tracker:
    """One list (allowlist or denylist) being built from flags."""

    def __init__(self, origins: Origins) -> None:
        self.left: flow_pb2.FlowFilter | None = None
        self.right: flow_pb2.FlowFilter | None = None
        self.namespaces = _Namespaces()
        self.source_namespaces = _Namespaces()
        self.destination_namespaces = _Namespaces()
        self.changed: list[str] = []
        self._origins = origins

    def add_left(self, flag: str, path: str, value: object) -> None:
        if self.left is None:
            self.left = flow_pb2.FlowFilter()
        self._add(self.left, flag, path, value)

    def add_right(self, flag: str, path: str, value: object) -> None:
        if self.right is None:
            self.right = flow_pb2.FlowFilter()
        self._add(self.right, flag, path, value)

    def add_both(self, flag: str, path: str, value: object) -> None:
        self.add_left(flag, path, value)
        self.add_right(flag, path, value)

    def _add(self, flow_filter: flow_pb2.FlowFilter, flag: str, path: str, value: object) -> None:
        target: Any = flow_filter
        for name in path.split("."):
            target = getattr(target, name)
        target.append(value)
        if isinstance(value, str):
            self._origins[(path, value)] = f"--{flag}"

    def set(self, spec: FilterFlag, value: str | None) -> None:
        if spec.name not in self.changed:
            self.changed.append(spec.name)
        self._check_conflicts()
        try:
            spec.apply(self, spec.name, value)
        except ValueError as err:
            raise FilterError(f"--{spec.name}", value, str(err)) from None
        for flow_filter in (self.left, self.right):
            if flow_filter is not None:
                self._check_namespaces(flow_filter)

    def _check_conflicts(self) -> None:
        for group in CONFLICTS:
            used = [name for name in group if name in self.changed]
            if len(used) > 1:
                raise InputError(f"filters --{used[0]} and --{used[1]} cannot be combined")

    def _check_namespaces(self, ff: flow_pb2.FlowFilter) -> None:
        checks = (
            (self.namespaces, ff.source_pod),
            (self.namespaces, ff.source_service),
            (self.namespaces, ff.destination_pod),
            (self.namespaces, ff.destination_service),
            (self.source_namespaces, ff.source_pod),
            (self.source_namespaces, ff.source_service),
            (self.destination_namespaces, ff.destination_pod),
            (self.destination_namespaces, ff.destination_service),
        )
        for namespaces, names in checks:
            for namespace in namespaces.values:
                for name in names:
                    named = _namespace_of(name)
                    # "" is --all-namespaces, which holds every namespace.
                    if namespace and named and named != namespace:
                        raise InputError(
                            f'namespace conflict: "{namespace}" does not contain "{name}"'
                        )
        for pods, services in (
            (ff.source_pod, ff.source_service),
            (ff.destination_pod, ff.destination_service),
        ):
            for pod in pods:
                pod_namespace = _namespace_of(pod)
                for service in services:
                    if pod_namespace and _namespace_of(service) != pod_namespace:
                        raise InputError(
                            f'namespace conflict: service "{service}" is not in the '
                            f'namespace of pod "{pod}"'
                        )

    def filters(self) -> list[flow_pb2.FlowFilter]:
        namespaced = self.namespaces or self.source_namespaces or self.destination_namespaces
        if self.left is None and self.right is None and not namespaced:
            return []
        left = self.left or flow_pb2.FlowFilter()
        right = self.right or flow_pb2.FlowFilter()
        for flow_filter, sides in (
            (
                left,
                (
                    ("destination", self.destination_namespaces),
                    ("source", self.source_namespaces),
                    ("source", self.namespaces),
                ),
            ),
            (
                right,
                (
                    ("destination", self.destination_namespaces),
                    ("source", self.source_namespaces),
                    ("destination", self.namespaces),
                ),
            ),
        ):
            for side, namespaces in sides:
                if namespaces:
                    self._apply_namespaces(flow_filter, side, namespaces)
            for side in ("source", "destination"):
                for kind in ("pod", "service"):
                    self._qualify(flow_filter, f"{side}_{kind}", _with_default_namespace)
        return [left] if left == right else [left, right]

    def _apply_namespaces(
        self, ff: flow_pb2.FlowFilter, side: str, namespaces: _Namespaces
    ) -> None:
        """Puts the side's pods and services in these namespaces ("" is any namespace)."""
        pods = getattr(ff, f"{side}_pod")
        if not pods and not getattr(ff, f"{side}_service"):
            pods.append("")  # the whole namespace
            self._origins[(f"{side}_pod", "")] = f"--{namespaces.flag}"

        def in_namespaces(name: str) -> list[str]:
            return [name] if "/" in name else [f"{ns}/{name}" for ns in namespaces.values]

        for kind in ("pod", "service"):
            self._qualify(ff, f"{side}_{kind}", in_namespaces)

    def _qualify(
        self,
        ff: flow_pb2.FlowFilter,
        path: str,
        qualify: Callable[[str], list[str]],
    ) -> None:
        """Replaces each name by its qualified names, which come from the same flag."""
        names = getattr(ff, path)
        qualified = []
        for name in names:
            for new in qualify(name):
                origin = self._origins.get((path, name))
                if origin is not None:
                    self._origins.setdefault((path, new), origin)
                qualified.append(new)
        names[:] = qualified


def _namespace_of(name: str) -> str:
    namespace, sep, _ = name.partition("/")
    return namespace if sep else ""


def _with_default_namespace(name: str) -> list[str]:
    # An empty name is left for the filter compiler to reject.
    return [name if "/" in name or not name else f"{DEFAULT_NAMESPACE}/{name}"]


Apply = Callable[[_Tracker, str, "str | None"], None]


def _same(value: str | None) -> object:
    return value


def to_both(path: str, convert: Convert = _same) -> Apply:
    """A flag that sets one field on both sides (directional and non-directional flags)."""

    def apply(tracker: _Tracker, flag: str, value: str | None) -> None:
        tracker.add_both(flag, path, convert(value))

    return apply


def to_sides(suffix: str, convert: Convert = _same) -> Apply:
    """An either-direction flag: source_<suffix> on the left, destination_<suffix> on the right."""

    def apply(tracker: _Tracker, flag: str, value: str | None) -> None:
        converted = convert(value)
        tracker.add_left(flag, f"source_{suffix}", converted)
        tracker.add_right(flag, f"destination_{suffix}", converted)

    return apply


def to_namespaces(which: str, *, every: bool = False) -> Apply:
    """A namespace flag; every=True for the --all-namespaces switches."""

    def apply(tracker: _Tracker, flag: str, value: str | None) -> None:
        namespaces: _Namespaces = getattr(tracker, which)
        namespaces.values.append("" if every else value or "")
        namespaces.flag = flag

    return apply


def constant(value: object) -> Convert:
    """A converter for switches: the flag always sets this value."""
    return lambda _text: value


@dataclass(frozen=True)
class FilterFlag:
    """One filter flag: its name, help, how it takes a value and what it sets."""

    name: str
    help: str
    apply: Apply
    metavar: str | None = "VALUE"  # None: a switch without a value
    short: str | None = None


NOT_FLAG: Final = "not"


@dataclass(frozen=True)
class CompiledFilters:
    """The allowlist and denylist the flags make, and which flag gave which value."""

    whitelist: list[flow_pb2.FlowFilter]
    blacklist: list[flow_pb2.FlowFilter]
    origins: Origins = field(default_factory=dict)

    def name_flag(self, error: FilterError) -> FilterError:
        """The filter compiler's error, naming the flag that gave the bad value if known."""
        flag = self.origins.get((error.field, str(error.value)))
        if flag is None:
            return error
        return FilterError(flag, error.value, error.problem)


def compile_flags(events: Iterable[FlagEvent], flags: Mapping[str, FilterFlag]) -> CompiledFilters:
    """The FlowFilters of these filter flags (named in `flags`), in command-line order."""
    origins: Origins = {}
    allow, deny = _Tracker(origins), _Tracker(origins)
    negate = False
    for name, value in events:
        if name == NOT_FLAG:
            if negate:
                raise InputError("consecutive --not flags: --not applies to the next filter flag")
            negate = True
            continue
        (deny if negate else allow).set(flags[name], value)
        negate = False
    if negate:
        raise InputError("trailing --not found in the arguments")
    return CompiledFilters(allow.filters(), deny.filters(), origins)
