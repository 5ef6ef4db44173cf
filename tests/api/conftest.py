"""Fixtures for the API-parity suite: the ``ic`` implementation switch and fresh repositories."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from parity import IMPLEMENTATIONS, create_repo


@pytest.fixture(params=IMPLEMENTATIONS)
def ic(request: pytest.FixtureRequest) -> ModuleType:
    """The implementation under test: ``icechunk`` or ``pyicechunk``."""
    return importlib.import_module(request.param)


@pytest.fixture
def repo(ic: ModuleType) -> Any:
    """A fresh repository on in-memory storage (spec 1: the format the reference writes)."""
    return create_repo(ic, ic.in_memory_storage())


@pytest.fixture
def local_repo(ic: ModuleType, tmp_path: Path) -> Any:
    """A fresh repository on local-filesystem storage (survives pickling)."""
    return create_repo(ic, ic.local_filesystem_storage(str(tmp_path / "repo")))
