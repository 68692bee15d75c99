"""Column layout identical to Go's text/tabwriter (minwidth 2, padding 3)."""

from __future__ import annotations

import io

import pytest

from flowscope.cli.printers.tabwriter import TabWriter


def layout(*writes: str) -> str:
    out = io.StringIO()
    writer = TabWriter(out, minwidth=2, padding=3)
    for text in writes:
        writer.write(text)
    writer.flush()
    return out.getvalue()


@pytest.mark.parametrize(("text", "expected"), [
    # Widest cell plus padding; the last cell of a line is never padded.
    ("a\tbb\tc\nccc\td\te\n",
     "a     bb   c\n"
     "ccc   d    e\n"),
    # Minimum width 2 for empty columns: 0 + 3 padding wins.
    ("\tx\n\ty\n",
     "   x\n"
     "   y\n"),
    # A column block ends at a line without a cell in it; the next block
    # is sized on its own.
    ("aaaaaa\tb\tc\nx\ty\nzz\tw\tv\n",
     "aaaaaa   b   c\n"
     "x        y\n"
     "zz       w   v\n"),
    # Trailing tabs make empty cells that still take their column width.
    ("a\t\t\tend\nlonger\tb\t\t\n",
     "a               end\n"
     "longer   b      \n"),
])
def test_layout(text: str, expected: str) -> None:
    assert layout(text) == expected


def test_line_without_tab_restarts_alignment() -> None:
    assert layout("a\tb\n", "no tabs here\n", "cccccc\td\n") == (
        "a   b\n"
        "no tabs here\n"
        "cccccc   d\n")


def test_text_split_across_writes() -> None:
    assert layout("ab", "c\td", "\n", "e\tf\n") == "abc   d\ne     f\n"


def test_nothing_is_written_before_flush() -> None:
    out = io.StringIO()
    writer = TabWriter(out, minwidth=2, padding=3)
    writer.write("a\tb\n")
    assert out.getvalue() == ""
    writer.flush()
    writer.flush()
    assert out.getvalue() == "a   b\n"
