"""The field tables of the config classes: constructors built from them match the references'."""

from __future__ import annotations

import inspect

import icechunk as ic
import pytest
from oracle import Oracle

import pyicechunk.config as pc

RECORDS_1_1 = [
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
RECORDS_2 = [
    *RECORDS_1_1,
    "ManifestVirtualChunkLocationCompressionConfig",
    "RepoUpdateRetryConfig",
    "StorageTimeoutSettings",
]

# Names, kinds (positional or keyword-only) and defaults, as plain data.
SIGNATURE = """
import inspect
[(p.name, p.kind.name, repr(p.default)) for p in inspect.signature(cls).parameters.values()]
"""


def parameters(cls: type) -> list[tuple[str, str, str]]:
    return [
        (p.name, p.kind.name, repr(p.default)) for p in inspect.signature(cls).parameters.values()
    ]


@pytest.mark.parametrize("name", RECORDS_1_1)
def test_icechunk_1_1_calls_still_fit(name: str) -> None:
    # icechunk 2 only appends parameters, so every 1.1 call (positional or not) still works.
    ours, theirs = parameters(getattr(pc, name)), parameters(getattr(ic, name))
    assert ours[: len(theirs)] == theirs


@pytest.mark.parametrize("name", RECORDS_2)
def test_constructor_parameters_match_icechunk2(ic2: Oracle, name: str) -> None:
    # Names, order, kinds and defaults; the order is also what positional calls rely on.
    where = "icechunk._icechunk_python" if name == "RepoUpdateRetryConfig" else "icechunk"
    theirs = ic2.run(f"cls = {where}.{name}\n" + SIGNATURE)
    assert [tuple(p) for p in theirs] == parameters(getattr(pc, name))
