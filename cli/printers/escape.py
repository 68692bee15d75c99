"""Neutralising control characters in text that comes from the network.

Pod names, namespaces, labels, DNS names, URLs, summaries and node names
reach the terminal unchanged unless they pass through `escape`. A raw ESC
or CSI in them could recolour the screen, move the cursor or rewrite
earlier lines; a CR or LF could forge a line that looks like a flow. The
printer's own colour codes are added after escaping, so they are the only
raw escape sequences in the output.
"""

from __future__ import annotations

import re
from typing import Final


def _replacement(code: int) -> str:
    if code == 0x0D:
        return "\\r"
    if code == 0x0A:
        return "\\n"
    if code == 0x09:
        return "\\t"
    if code < 0x20:
        # Caret notation, so ESC (0x1b) reads "^[".
        return "^" + chr(code + 0x40)
    if code == 0x7F:
        return "^?"
    # A C1 control is the 8-bit form of ESC followed by code - 0x40 (0x9b,
    # CSI, is ESC "["); print it as that escape would print.
    return "^[" + chr(code - 0x40)


_CONTROLS: Final = [*range(0x20), *range(0x7F, 0xA0)]
_TRANSLATION: Final = {code: _replacement(code) for code in _CONTROLS}
_HAS_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f]").search


def escape(text: str) -> str:
    """`text` with every C0 and C1 control character made visible.

    ESC prints as "^[", CR, LF and TAB as the two characters "\\r", "\\n"
    and "\\t", other C0 controls in caret notation ("^G"), DEL as "^?" and
    C1 controls as their 7-bit escape ("^[[" for CSI).
    """
    # isprintable() is the cheap common case; it is also false for some
    # harmless characters (non-ASCII spaces), hence the second look.
    if text.isprintable() or _HAS_CONTROL(text) is None:
        return text
    return text.translate(_TRANSLATION)


_GO_ESCAPES: Final = {
    0x07: "\\a",
    0x08: "\\b",
    0x0C: "\\f",
    0x0A: "\\n",
    0x0D: "\\r",
    0x09: "\\t",
    0x0B: "\\v",
    0x5C: "\\\\",
    0x22: '\\"',
}


def quote(text: str) -> str:
    """`text` as a double-quoted string literal, the way Go's %q writes it.

    Node status messages print quoted; printable characters stay as they
    are and everything else becomes an escape, so the result holds no
    control character.
    """
    parts = ['"']
    for char in text:
        code = ord(char)
        named = _GO_ESCAPES.get(code)
        if named is not None:
            parts.append(named)
        elif char.isprintable():
            parts.append(char)
        elif code < 0x80:
            parts.append(f"\\x{code:02x}")
        elif code < 0x10000:
            parts.append(f"\\u{code:04x}")
        else:
            parts.append(f"\\U{code:08x}")
    parts.append('"')
    return "".join(parts)


_JSON_TRANSLATION: Final = {code: f"\\u{code:04x}" for code in range(0x7F, 0xA0)}


def escape_json(line: str) -> str:
    """A JSON text with DEL and the C1 controls written as \\u escapes.

    JSON encoders escape the C0 controls but leave these raw, and a raw CSI
    (U+009B) drives a terminal like ESC "[" does. They can only stand
    inside strings, where the escape reads back as the same character.
    """
    if line.isascii():
        return line
    return line.translate(_JSON_TRANSLATION)
