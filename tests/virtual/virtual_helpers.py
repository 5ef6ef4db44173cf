"""Helpers shared by the virtual chunk tests (a uniquely named module: several test folders
have a conftest.py, so tests cannot import from "conftest" reliably)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np


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



def file_config(ic: ModuleType, prefix: str, directory: Path) -> Any:
    """A repository config with one local-filesystem virtual chunk container."""
    config = ic.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer(prefix, ic.local_filesystem_store(str(directory)))
    )
    return config
