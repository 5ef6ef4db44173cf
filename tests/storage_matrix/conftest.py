"""The core repository, session and store suites again, on memory, local and S3 storage.

The tests come from tests/api (imported by the test module here); this conftest overrides their
fixtures so that ``ic`` is pyicechunk only and ``repo`` / ``local_repo`` are repositories on each
storage kind in turn. The parity with icechunk is already checked by tests/api on memory; what
this adds is that every storage backend gives the same results.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "api"))

import pyicechunk


@pytest.fixture
def ic() -> ModuleType:
    """Only pyicechunk: the storage kind is what varies here."""
    return pyicechunk


@pytest.fixture(params=["memory", "local", "s3"])
def storage_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def repo(new_storage: Any, storage_kind: str) -> Any:
    """A fresh repository on the storage kind under test."""
    return pyicechunk.Repository.create(new_storage(storage_kind))


@pytest.fixture(params=["local", "s3"])
def local_repo(request: pytest.FixtureRequest, new_storage: Any) -> Any:
    """A fresh repository on storage that other processes can reach (pickling tests)."""
    return pyicechunk.Repository.create(new_storage(request.param))
