"""Fixtures for virtual chunk tests: the ``ic`` switch (reference or pyicechunk) and a data file."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

IMPLEMENTATIONS = ("icechunk", "pyicechunk")


@pytest.fixture(params=IMPLEMENTATIONS)
def ic(request: pytest.FixtureRequest) -> ModuleType:
    """The implementation under test: ``icechunk`` (1.1.21) or ``pyicechunk``."""
    return importlib.import_module(request.param)


@dataclass(frozen=True)
class DataFile:
    """A local file of known int32 values, and the container prefix for its directory."""

    path: Path
    values: np.ndarray

    @property
    def prefix(self) -> str:
        return f"file://{self.path.parent}/"

    @property
    def url(self) -> str:
        return f"file://{self.path}"


@pytest.fixture
def data_file(tmp_path: Path) -> DataFile:
    """``data/values.bin``: 16 little-endian int32 values 100..115 (64 bytes)."""
    values = np.arange(100, 116, dtype="<i4")
    path = tmp_path / "data" / "values.bin"
    path.parent.mkdir()
    path.write_bytes(values.tobytes())
    return DataFile(path, values)


def file_config(ic: ModuleType, prefix: str, directory: Path) -> Any:
    """A repository config with one local-filesystem virtual chunk container."""
    config = ic.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer(prefix, ic.local_filesystem_store(str(directory)))
    )
    return config
