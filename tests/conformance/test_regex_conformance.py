"""Regular expressions that filters accept mean the same in Python and in RE2.

Each pattern is searched in each text by the in-memory half (Python re, as
the filters compile it) and by ClickHouse's match() (RE2); the answers must
be equal.
"""

from __future__ import annotations

import pytest
from clickhouse_store import Store

from flowscope.common.filters import regex

pytestmark = pytest.mark.store

PATTERNS = [
    r"^/api/v[0-9]+/items$",
    r"\d{2,4}",
    r"\w+\.example\.com\.?$",
    r"\bcom\b",
    r"\s",
    r"(?i)GET|post",
    r"(?i:EXAMPLE)\.",
    r"^[^/]*$",
    r"[]a]+",
    r"[^]a]",
    r"a.c",
    r"(?s)a.c",
    r"^(?P<version>v\d)/",
    r"colou?r",
    r"x{2}y{0,1}z{1,}",
    r"[:[]",
    r"\.\*\+\?",
    r"é",
    r"",
    r"$",
    r"e$",
    r"(?m)^b$",
    r"(?m)a$",
]
TEXTS = [
    "/api/v1/items",
    "/api/v12/items?x=1",
    "api.example.com.",
    "WWW.EXAMPLE.COM",
    "a\nc",
    "abc",
    "v2/orders",
    "color colour",
    "xxz xxyz",
    "[:",
    ".*+?",
    "café",
    "٣٤٥",  # Arabic-Indic digits: not \d in RE2
    "naïve_word",
    "",
    "]",
    "tab\there",
    "line\n",
    "a\nb",
]


def test_python_and_re2_agree(store: Store) -> None:
    compiled = [regex.search("http_url", pattern) for pattern in PATTERNS]
    result = store.client.query(
        "SELECT arrayMap(p -> arrayMap(t -> match(t, p), {texts:Array(String)}),"
        " {patterns:Array(String)})",
        parameters={"texts": TEXTS, "patterns": [pattern.re2 for pattern in compiled]},
    )
    in_store = [[bool(found) for found in row] for row in result.result_rows[0][0]]
    in_memory = [[pattern.test(text) is not None for text in TEXTS] for pattern in compiled]
    assert in_memory == in_store
