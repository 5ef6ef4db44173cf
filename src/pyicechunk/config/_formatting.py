"""How the configuration classes spell values in reprs and messages, as the reference does.

Python-side reprs quote strings with double quotes; messages that quote a Rust value use Rust's
``Debug`` form, whose string escapes differ from Python's.
"""

from __future__ import annotations


def _fmt(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def _rust_debug_str(value: str) -> str:
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
