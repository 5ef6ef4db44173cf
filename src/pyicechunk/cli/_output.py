"""Output for people (Rich: tables, colours on a terminal) and for scripts (``--json``)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from pyicechunk.format.config_serde import Tagged

__all__ = [
    "CliError",
    "console",
    "emit_json",
    "iso",
    "relative_time",
    "table",
    "wants_colour",
]


class CliError(Exception):
    """A failure to report as one line on stderr, with exit status 1."""


class _Console(Console):
    """Rich's console, leaving a closed pipe to :func:`pyicechunk.cli.main` (status 0)."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


def _colour_mode() -> str:
    from pyicechunk.cli._app import options

    try:
        return options().color
    except RuntimeError:  # outside a command (tests calling helpers directly)
        return "auto"


def console() -> Console:
    """The console for stdout: colours on a terminal (``--color``, ``NO_COLOR``), no wrapping
    of long lines when the output goes to a file or a pipe."""
    mode = _colour_mode()
    terminal = sys.stdout.isatty()
    return _Console(
        file=sys.stdout,
        force_terminal=True if mode == "always" else None,
        no_color=mode == "never" or None,
        highlight=False,
        soft_wrap=True,
        width=None if terminal else 10_000,
    )


def wants_colour() -> bool:
    """Whether stdout gets ANSI colours (for text made elsewhere, like the ancestry graph)."""
    out = console()
    return bool(out.is_terminal and out.color_system is not None and not out.no_color)


def table(*columns: str) -> Table:
    """A borderless table with bold headers, the shape of git's listings."""
    t = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for name in columns:
        t.add_column(name, overflow="fold")
    return t


def emit_json(value: Any) -> None:
    """Print ``value`` as indented JSON (datetimes as ISO 8601 UTC strings)."""
    click.echo(json.dumps(value, indent=2, default=_json_default, ensure_ascii=False))


def _json_default(value: Any) -> Any:
    if isinstance(value, Tagged):  # a config variant (a container's store), as serde_json has it
        return {value.name: value.content}
    if isinstance(value, dt.datetime):
        return iso(value)
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def iso(when: dt.datetime) -> str:
    """``when`` in UTC as ISO 8601 with a ``Z``."""
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


_UNITS = (
    ("year", 365 * 86_400),
    ("month", 30 * 86_400),
    ("week", 7 * 86_400),
    ("day", 86_400),
    ("hour", 3_600),
    ("minute", 60),
    ("second", 1),
)


def relative_time(when: dt.datetime, now: dt.datetime | None = None) -> str:
    """``"3 minutes ago"``, ``"in 2 days"``, ``"just now"``."""
    now = now or dt.datetime.now(dt.UTC)
    seconds = (now - when).total_seconds()
    ahead = seconds < 0
    seconds = abs(seconds)
    if seconds < 1:
        return "just now"
    for unit, size in _UNITS:
        if seconds >= size:
            n = int(seconds // size)
            words = f"{n} {unit}{'s' if n != 1 else ''}"
            return f"in {words}" if ahead else f"{words} ago"
    raise AssertionError("unreachable: seconds >= 1 matches the last unit")
