"""Docstrings assembled from shared pieces.

Several public functions take the same parameters, return the same thing or raise for the same
reasons, and so document it with the same numpydoc text. That text is written once, as a
*fragment* (a module-level string starting in column 0), and each docstring names it on a line
of its own, ``{name}``, where it belongs. :func:`fill_doc` replaces such a line with the
fragment, indented as the line was, so that the finished ``__doc__`` (what ``help()`` and the
API reference show) is complete and valid numpydoc.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_PLACEHOLDER = re.compile(r"^(?P<indent>[ \t]*)\{(?P<name>\w+)\}[ \t]*$", re.MULTILINE)


def filled(template: str, fragments: dict[str, str]) -> str:
    """``template`` with every line that is only ``{name}`` replaced by ``fragments[name]``.

    Each line of the fragment takes the indentation of the line it replaces (blank lines stay
    blank); the fragment's trailing line break is dropped.

    Raises
    ------
    KeyError
        If the template names a fragment that ``fragments`` does not hold.
    """

    def expand(match: re.Match[str]) -> str:
        indent = match["indent"]
        lines = fragments[match["name"]].rstrip("\n").split("\n")
        return "\n".join(indent + line if line.strip() else "" for line in lines)

    return _PLACEHOLDER.sub(expand, template)


def fill_doc(**fragments: str) -> Callable[[F], F]:
    """Decorator: complete the function's docstring with ``fragments`` (see :func:`filled`).

    Raises
    ------
    KeyError
        If the docstring names a fragment that is not given.
    """

    def apply(function: F) -> F:
        function.__doc__ = filled(function.__doc__ or "", fragments)
        return function

    return apply
