"""The ``context:`` lines of an error: which operations were under way when it was raised.

icechunk 2.x ends the text of its errors with the tracing spans that were open when the error
was made, innermost first::

    ref not found `x`

    context:
       0: icechunk::repository::lookup_branch_v2
               with branch="x"
                 at icechunk/src/repository.rs:1009
       1: icechunk::repository::lookup_branch
    ...

pyicechunk has no spans; its equivalent is the call stack at the moment the error is built.
:func:`context_block` walks it and keeps the public functions of pyicechunk's public modules
(``pyicechunk.repository.Repository.lookup_branch_async``, ``pyicechunk.store...``), each
with the arguments that say what it was working on (the branch, tag, snapshot id, key, path or
commit message; an allow-list, so no credential or option can show) and the line it was at.
An error built outside pyicechunk (by user code) gets no block. :func:`without_context` takes
a block out of a message again, for errors that quote another error's text.
"""

from __future__ import annotations

import json
import re
import sys
from types import CodeType, FrameType

from pyicechunk._logging import source_path

__all__ = ["context_block", "without_context"]

_PACKAGE = "pyicechunk"
# The arguments a context line shows: what an operation works on, never how it connects.
_FIELDS = frozenset(
    {
        "branch",
        "branch_name",
        "tag",
        "tag_name",
        "snapshot_id",
        "from_snapshot_id",
        "to_snapshot_id",
        "from_branch",
        "to_branch",
        "from_tag",
        "to_tag",
        "message",
        "key",
        "path",
        "array_path",
        "from_path",
        "to_path",
        "prefix",
        "allow_empty",
    }
)
# The modules whose frames never count: the error classes themselves and this one.
_SKIPPED_MODULES = frozenset({f"{_PACKAGE}.exceptions", __name__})
# Longest value shown of a field (a commit message can be long).
_MAX_VALUE = 120

# Per code object: its span name and the arguments to show, or None if it is not a span.
_spans: dict[CodeType, tuple[str, tuple[str, ...]] | None] = {}

_BLOCK = re.compile(
    r"\n\ncontext:(?:\n {3,}\d+: [^\n]*(?:\n {11}with [^\n]*)?\n {13}at [^\n]*?:\d+)+"
)


def _span_of(frame: FrameType) -> tuple[str, tuple[str, ...]] | None:
    code = frame.f_code
    if code in _spans:
        return _spans[code]
    module = frame.f_globals.get("__name__", "")
    found: tuple[str, tuple[str, ...]] | None = None
    parts = module.split(".")
    public_module = parts[0] == _PACKAGE and not any(p.startswith("_") for p in parts[1:])
    if public_module and module not in _SKIPPED_MODULES:
        qualname = code.co_qualname
        if not any(p.startswith(("_", "<")) for p in qualname.split(".")):
            count = code.co_argcount + code.co_kwonlyargcount
            shown = tuple(n for n in code.co_varnames[:count] if n in _FIELDS)
            found = (f"{module}.{qualname}", shown)
    _spans[code] = found
    return found


def _value(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        text = value if len(value) <= _MAX_VALUE else value[:_MAX_VALUE] + "…"
        return json.dumps(text, ensure_ascii=False)
    return None  # objects and None say nothing a reader needs here


def context_block(skip: int = 1) -> str:
    """The ``context:`` block for an error being built now, or ``""`` outside pyicechunk.

    Parameters
    ----------
    skip
        How many frames above the caller's to leave out before walking the stack.
    """
    frame: FrameType | None = sys._getframe(skip + 1)
    lines: list[str] = []
    index = 0
    while frame is not None:
        span = _span_of(frame)
        if span is not None:
            name, shown = span
            values = frame.f_locals
            fields = [(n, _value(values.get(n))) for n in shown]
            text = " ".join(f"{n}={v}" for n, v in fields if v is not None)
            lines.append(f"{index:>4}: {name}")
            index += 1
            if text:
                lines.append(f"           with {text}")
            lines.append(
                f"             at {source_path(frame.f_code.co_filename)}:{frame.f_lineno}"
            )
        frame = frame.f_back
    if not lines:
        return ""
    return "\n\ncontext:\n" + "\n".join(lines)


def without_context(message: str) -> str:
    """``message`` with any ``context:`` block taken out (an error quoting another's text)."""
    return _BLOCK.sub("", message)
