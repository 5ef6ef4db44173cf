"""Fixtures for virtual chunk tests: the ``ic`` switch (reference or pyicechunk) and a data file."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from virtual_helpers import DataFile

IMPLEMENTATIONS = ("icechunk", "pyicechunk")


@pytest.fixture(params=IMPLEMENTATIONS)
def ic(request: pytest.FixtureRequest) -> ModuleType:
    """The implementation under test: ``icechunk`` (1.1.21) or ``pyicechunk``."""
    return importlib.import_module(request.param)


@pytest.fixture
def data_file(tmp_path: Path) -> DataFile:
    """``data/values.bin``: 16 little-endian int32 values 100..115 (64 bytes)."""
    values = np.arange(100, 116, dtype="<i4")
    path = tmp_path / "data" / "values.bin"
    path.parent.mkdir()
    path.write_bytes(values.tobytes())
    return DataFile(path, values)
