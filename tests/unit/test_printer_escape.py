"""Control characters in flow data cannot reach the terminal."""

from __future__ import annotations

import json

import pytest

from flowscope.cli.printers.escape import escape, escape_json, quote


@pytest.mark.parametrize(("raw", "printed"), [
    ("default/nginx", "default/nginx"),
    ("", ""),
    ("pod\x1b[31mred", "pod^[[31mred"),
    ("line\rover", "line\\rover"),
    ("two\nlines", "two\\nlines"),
    ("tab\tbed", "tab\\tbed"),
    ("bell\x07", "bell^G"),
    ("nul\x00", "nul^@"),
    ("unit\x1f", "unit^_"),
    ("del\x7f", "del^?"),
    ("csi\x9b2J", "csi^[[2J"),
    ("osc\x9d0;t\x9c", "osc^[]0;t^[\\"),
    ("nbsp\u00a0and\u2028", "nbsp\u00a0and\u2028"),
    ("snowman \u2603 ok", "snowman \u2603 ok"),
])
def test_escape(raw: str, printed: str) -> None:
    assert escape(raw) == printed


def test_escape_leaves_no_control_character() -> None:
    every = "".join(chr(code) for code in range(0x100))
    escaped = escape(every)
    assert not [c for c in escaped if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0]


@pytest.mark.parametrize(("raw", "quoted"), [
    ("connection refused", '"connection refused"'),
    ("", '""'),
    ('say "hi"\\', '"say \\"hi\\"\\\\"'),
    ("a\nb\tc\rd\x07\x08\x0c\x0b", '"a\\nb\\tc\\rd\\a\\b\\f\\v"'),
    ("esc\x1b[0m", '"esc\\x1b[0m"'),
    ("del\x7f", '"del\\x7f"'),
    ("c1\x85", '"c1\\u0085"'),
    ("caf\u00e9 \u2603", '"caf\u00e9 \u2603"'),
    ("sep\u2028", '"sep\\u2028"'),
    ("\U000e0001", '"\\U000e0001"'),
])
def test_quote(raw: str, quoted: str) -> None:
    assert quote(raw) == quoted


@pytest.mark.parametrize(("line", "escaped"), [
    ('{"a":"plain"}', '{"a":"plain"}'),
    ('{"a":"caf\u00e9"}', '{"a":"caf\u00e9"}'),
    ('{"a":"x\x9b2J\x7f"}', '{"a":"x\\u009b2J\\u007f"}'),
])
def test_escape_json(line: str, escaped: str) -> None:
    assert escape_json(line) == escaped
    assert json.loads(escape_json(line)) == json.loads(line)
