"""Docstrings assembled from shared fragments (pyicechunk._docs) come out complete."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import types

import pytest

import pyicechunk
from pyicechunk._docs import fill_doc, filled

PLACEHOLDER = re.compile(r"^\s*\{\w+\}\s*$", re.MULTILINE)


def test_a_placeholder_line_takes_the_fragment_indented_as_it_was() -> None:
    template = "Summary.\n\n    {params}\n\n    Returns\n    -------\n    int\n"
    fragment = "Parameters\n----------\nx\n    The value.\n\n    More.\n"
    assert filled(template, {"params": fragment}) == (
        "Summary.\n\n    Parameters\n    ----------\n    x\n        The value.\n\n"
        "        More.\n\n    Returns\n    -------\n    int\n"
    )
    # Only a line holding nothing but the name is a placeholder.
    assert filled("a {params} b\n``{x}``", {}) == "a {params} b\n``{x}``"
    with pytest.raises(KeyError):
        filled("    {missing}\n", {"params": fragment})


def test_fill_doc_completes_the_docstring() -> None:
    @fill_doc(returns="Returns\n-------\nint\n")
    def f() -> int:
        """Summary.

        {returns}
        """
        return 1

    assert inspect.getdoc(f) == "Summary.\n\nReturns\n-------\nint"


def _documented() -> list[tuple[str, str]]:
    found = []
    for info in pkgutil.walk_packages(pyicechunk.__path__, "pyicechunk."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for owner in [module, *(v for v in vars(module).values() if issubclass(type(v), type))]:
            for name, value in vars(owner).items():
                wrapped = type(value) in (classmethod, staticmethod)
                target = value.__func__ if wrapped else value
                if type(target) is not types.FunctionType:
                    continue
                doc = target.__doc__
                if isinstance(doc, str) and target.__module__ == info.name:
                    found.append((f"{info.name}.{getattr(owner, '__name__', '')}.{name}", doc))
    return found


def test_no_docstring_keeps_a_placeholder() -> None:
    documented = _documented()
    assert len(documented) > 500
    left = [name for name, doc in documented if PLACEHOLDER.search(doc)]
    assert not left, left
