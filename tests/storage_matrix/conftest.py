"""The core repository, session and store suites again, on memory, local and S3 storage.

The tests come from tests/api (imported by the test module here); this conftest overrides their
fixtures so that ``ic`` is pyicechunk only and ``repo`` / ``local_repo`` are repositories on each
storage kind in turn, of both format versions. The parity with icechunk 1.1.21 is already checked
by tests/api on memory (spec 1); what this adds is that every storage backend gives the same
results, and that spec 2 does too, except where icechunk 2.x deliberately answers differently
(the tests ask ``parity.on_spec_2``).
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


@pytest.fixture(params=[1, 2], ids=["spec1", "spec2"])
def spec_version(request: pytest.FixtureRequest) -> int:
    version: int = request.param
    return version


@pytest.fixture
def repo(new_storage: Any, storage_kind: str, spec_version: int) -> Any:
    """A fresh repository of the format version under test on the storage kind under test."""
    return pyicechunk.Repository.create(new_storage(storage_kind), spec_version=spec_version)


@pytest.fixture(params=["local", "s3"])
def local_repo(request: pytest.FixtureRequest, new_storage: Any, spec_version: int) -> Any:
    """A fresh repository on storage that other processes can reach (pickling tests)."""
    return pyicechunk.Repository.create(new_storage(request.param), spec_version=spec_version)
