"""The label selector parser (common/labels.py): what selectors mean on label
sets, the patterns they compile to, and how bad selectors fail."""

from __future__ import annotations

import pytest

from flowscope.common.errors import FilterError
from flowscope.common.labels import Operator, parse_selector

POD = ["k8s:app=web", "k8s:io.kubernetes.pod.namespace=default", "container:tier=3"]
WORLD = ["reserved:world"]
NODE = ["kubernetes.io/os=linux", "node-role.kubernetes.io/control-plane=", "cores=16"]

# (selector, labels, selected)
MATCHES = [
    ("app=web", POD, True),
    ("app==web", POD, True),
    ("k8s:app=web", POD, True),
    ("any:app=web", POD, True),
    ("container:app=web", POD, False),
    ("app=db", POD, False),
    ("app", POD, True),
    ("k8s:tier", POD, False),
    ("tier", POD, True),
    ("!app", POD, False),
    ("!owner", POD, True),
    ("app!=db", POD, True),
    ("app!=web", POD, False),
    ("owner!=x", POD, True),
    ("app in (db, web)", POD, True),
    ("app in (db)", POD, False),
    ("app notin (db)", POD, True),
    ("app notin (db,web)", POD, False),
    ("tier>2", POD, True),
    ("tier>3", POD, False),
    ("tier<4", POD, True),
    ("tier<-1", POD, False),
    ("app>1", POD, False),
    ("io.kubernetes.pod.namespace=default", POD, True),
    ("app=web, tier>2, !owner", POD, True),
    ("app=web,tier>5", POD, False),
    ("reserved:world", WORLD, True),
    ("world", WORLD, True),
    ("world=", WORLD, True),
    ("reserved:host", WORLD, False),
    ("app", WORLD, False),
    ("!app", [], True),
    ("app!=web", [], True),
    ("node-role.kubernetes.io/control-plane", NODE, True),
    ("node-role.kubernetes.io/control-plane=", NODE, True),
    ("kubernetes.io/os=", NODE, False),
    ("cores>8", NODE, True),
]


@pytest.mark.parametrize(("selector", "labels", "selected"), MATCHES)
def test_selector_matches(selector: str, labels: list[str], selected: bool) -> None:
    assert parse_selector(selector, "source_label").matches(labels) is selected


# (selector, [(operator, pattern, bound)])
PARSED = [
    ("k8s:app=web", [(Operator.IN, "k8s:app=(?:web)", 0)]),
    ("app", [(Operator.EXISTS, "(?:[^:=]*:)?app(?:=.*)?", 0)]),
    ("!k8s:app", [(Operator.NOT_EXISTS, "k8s:app(?:=.*)?", 0)]),
    ("a.b/c!=x-y", [(Operator.NOT_IN, r"(?:[^:=]*:)?a\.b/c=(?:x\-y)", 0)]),
    ("k notin (a, b)", [(Operator.NOT_IN, "(?:[^:=]*:)?k=(?:a|b)", 0)]),
    ("k=", [(Operator.IN, "(?:[^:=]*:)?k=?", 0)]),
    (
        "k>-5, j<7",
        [
            (Operator.GREATER, "(?:[^:=]*:)?k=(-?[0-9]{1,18})", -5),
            (Operator.LESS, "(?:[^:=]*:)?j=(-?[0-9]{1,18})", 7),
        ],
    ),
]


@pytest.mark.parametrize(("selector", "expected"), PARSED)
def test_parsed_requirements(selector: str, expected: list[tuple[Operator, str, int]]) -> None:
    parsed = parse_selector(selector, "node_labels")
    assert parsed.text == selector
    assert [(r.operator, r.pattern, r.bound) for r in parsed.requirements] == expected


def test_anchored_pattern_for_re2() -> None:
    requirement = parse_selector("k8s:app=web", "source_label").requirements[0]
    assert requirement.anchored_pattern == "^(?:k8s:app=(?:web))$"


# (selector, problem)
ERRORS = [
    ("", "empty selector"),
    ("   ", "empty selector"),
    ("a b", "unexpected 'b' after a key"),
    ("a=b c", "expected ',' but found 'c'"),
    ("a=b,", "expected a label key"),
    (",a", "expected a label key"),
    ("a in ()", "expected a label value"),
    ("a in (b", "expected ')' but found the end"),
    ("a in b", "expected '(' but found 'b'"),
    ("k in (a,)", "expected a label value"),
    ("a>x", "'x' is not an integer of at most 18 digits"),
    ("a>1234567890123456789", "'1234567890123456789' is not an integer of at most 18 digits"),
    ("!", "expected a label key"),
    ("!a=b", "expected ',' but found '='"),
    ("a@b", "unexpected '@' at position 1"),
    ("x:y:z=1", "invalid label source 'x:y'"),
    (":a", "invalid label source ''"),
    ("a:", "invalid label key ''"),
    ("=a", "expected a label key"),
    ("a=(b)", "expected a label value"),
    ('a="b"', "unexpected '\"' at position 2"),
]


@pytest.mark.parametrize(("selector", "problem"), ERRORS)
def test_bad_selector(selector: str, problem: str) -> None:
    with pytest.raises(FilterError) as raised:
        parse_selector(selector, "destination_label")
    assert (raised.value.field, raised.value.value, raised.value.problem) == (
        "destination_label",
        selector,
        problem,
    )
