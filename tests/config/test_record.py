"""The field tables of the config classes: constructors built from them match the reference's."""

from __future__ import annotations

import inspect

import icechunk as ic
import pytest

import pyicechunk.config as pc

RECORDS = [
    "CachingConfig",
    "CompressionConfig",
    "ManifestConfig",
    "ManifestPreloadConfig",
    "ManifestSplittingConfig",
    "RepositoryConfig",
    "S3Options",
    "StorageConcurrencySettings",
    "StorageRetriesSettings",
    "StorageSettings",
    "VirtualChunkContainer",
]


def parameters(cls: type) -> list[tuple[str, object]]:
    return [(p.name, p.default) for p in inspect.signature(cls).parameters.values()]


@pytest.mark.parametrize("name", RECORDS)
def test_constructor_parameters_match_reference(name: str) -> None:
    # Names, order and defaults; the order is also what positional calls and merges rely on.
    assert parameters(getattr(pc, name)) == parameters(getattr(ic, name))
