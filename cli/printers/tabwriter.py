"""Aligned columns the way Go's text/tabwriter lays them out.

`flowscope observe -o table` must pad exactly as Hubble's table does, and
Hubble writes it through Go's tabwriter with minwidth 2, tabwidth 0,
padding 3, padchar ' ' and no flags. The rules carried over:

- a line is cut into cells at tabs; a cell ended by a tab belongs to a
  column, the text after the line's last tab does not (it is never padded);
- a column block is a run of consecutive lines that all have a cell in
  that column; its width is the widest such cell plus the padding, at
  least minwidth, and is computed per block, left to right;
- width is counted in characters;
- a line without any tab ends the lines that align together: what was
  buffered up to it is written, and later lines align afresh.
"""

from __future__ import annotations

from typing import TextIO


class TabWriter:
    """Buffers tab-separated lines and writes them aligned on `flush`."""

    def __init__(self, out: TextIO, *, minwidth: int, padding: int) -> None:
        self._out = out
        self._minwidth = minwidth
        self._padding = padding
        self._lines: list[list[str]] = []
        self._partial = ""

    def write(self, text: str) -> None:
        """Add text; cells end at tabs and lines at newlines."""
        *complete, self._partial = (self._partial + text).split("\n")
        for line in complete:
            cells = line.split("\t")
            self._lines.append(cells)
            if len(cells) == 1:
                self.flush()

    def flush(self) -> None:
        """Write every complete buffered line, aligned."""
        if not self._lines:
            return
        out: list[str] = []
        self._format(out, [], 0, len(self._lines))
        self._out.write("".join(out))
        self._lines.clear()

    def _format(self, out: list[str], widths: list[int], first: int, end: int) -> None:
        """Lay out lines [first, end), whose columns left of len(widths) are sized."""
        column = len(widths)
        start = first
        this = first
        while this < end:
            if column >= len(self._lines[this]) - 1:
                this += 1
                continue
            # A block of lines with a cell in this column begins here.
            self._write_lines(out, widths, start, this)
            start = this
            width = self._minwidth
            while this < end and column < len(self._lines[this]) - 1:
                width = max(width, len(self._lines[this][column]) + self._padding)
                this += 1
            self._format(out, [*widths, width], start, this)
            start = this
        self._write_lines(out, widths, start, end)

    def _write_lines(self, out: list[str], widths: list[int], first: int, end: int) -> None:
        for cells in self._lines[first:end]:
            for index, cell in enumerate(cells):
                out.append(cell)
                if index < len(widths):
                    out.append(" " * (widths[index] - len(cell)))
            out.append("\n")
