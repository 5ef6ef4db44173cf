"""Fixtures for cross-implementation tests: a writer module ``a`` and a reader module ``b``."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

# (writer, reader).  ("icechunk", "icechunk") validates the tests themselves against the reference.
PAIRS = [("icechunk", "pyicechunk"), ("pyicechunk", "icechunk"), ("icechunk", "icechunk")]


@pytest.fixture(params=PAIRS, ids=["-".join(p) for p in PAIRS])
def pair(request: pytest.FixtureRequest) -> tuple[ModuleType, ModuleType]:
    """The implementation that builds the repository and the one that reads it back."""
    writer, reader = request.param
    return importlib.import_module(writer), importlib.import_module(reader)
