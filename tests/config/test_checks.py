"""Argument checks of the config classes: the reference's exception types and messages."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import icechunk as ic
import pytest

import pyicechunk.config as pc

from ._reference import BOTH, outcome

ERROR_CASES: list[tuple[str, Callable[[ModuleType], Any]]] = [
    ("u16 negative", lambda m: m.RepositoryConfig(inline_chunk_threshold_bytes=-1)),
    ("u16 too big", lambda m: m.RepositoryConfig(inline_chunk_threshold_bytes=70000)),
    ("u16 str", lambda m: m.RepositoryConfig(inline_chunk_threshold_bytes="3")),
    ("u16 float", lambda m: m.RepositoryConfig(get_partial_values_concurrency=3.0)),
    (
        "u16 bool",
        lambda m: m.RepositoryConfig(max_concurrent_requests=True).max_concurrent_requests,
    ),
    ("nested type", lambda m: m.RepositoryConfig(caching=1)),
    ("nested wrong class", lambda m: m.RepositoryConfig(compression=m.CachingConfig())),
    ("u64 negative", lambda m: m.CachingConfig(num_snapshot_nodes=-1)),
    ("u64 too big", lambda m: m.CachingConfig(num_chunk_refs=2**64)),
    ("u64 max", lambda m: m.CachingConfig(num_chunk_refs=2**64 - 1)),
    ("u32 negative", lambda m: m.StorageRetriesSettings(initial_backoff_ms=-1)),
    ("u32 too big", lambda m: m.StorageRetriesSettings(max_backoff_ms=2**32)),
    ("u8 too big", lambda m: m.CompressionConfig(level=256)),
    ("nonzero u16", lambda m: m.StorageConcurrencySettings(0)),
    ("nonzero u64", lambda m: m.StorageConcurrencySettings(ideal_concurrent_request_size=0)),
    ("nonzero u16 retries", lambda m: m.StorageRetriesSettings(max_tries=0)),
    ("algorithm int", lambda m: m.CompressionConfig(algorithm=0)),
    ("bool field int", lambda m: m.StorageSettings(unsafe_use_metadata=1)),
    ("str field int", lambda m: m.StorageSettings(storage_class=1)),
    ("s3 bool None", lambda m: m.S3Options(allow_http=None)),
    ("containers value", lambda m: m.RepositoryConfig(virtual_chunk_containers={"a": 1})),
    ("containers list", lambda m: m.RepositoryConfig(virtual_chunk_containers=[1])),
    ("preload list item", lambda m: m.ManifestPreloadCondition.or_conditions([1])),
    ("num_refs negative", lambda m: m.ManifestPreloadCondition.num_refs(-1, 2)),
    ("axis negative", lambda m: m.ManifestSplitDimCondition.Axis(-1)),
    ("store type", lambda m: m.VirtualChunkContainer("s3://b/", 1)),
    ("local path type", lambda m: m.ObjectStoreConfig.LocalFileSystem(1)),
    ("gcs opts value", lambda m: m.ObjectStoreConfig.Gcs({"a": 1})),
    (
        "read-only containers",
        lambda m: setattr(m.RepositoryConfig(), "virtual_chunk_containers", {}),
    ),
]


@pytest.mark.parametrize(("case", "call"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_argument_errors_match_reference(case: str, call: Callable[[ModuleType], Any]) -> None:
    theirs = outcome(lambda: call(ic))
    ours = outcome(lambda: call(pc))
    if case == "read-only containers":
        # pyo3 and Python word the message differently; both refuse the assignment.
        assert theirs[0] == ours[0] == "AttributeError"
    else:
        assert ours == theirs


@BOTH
def test_assignment_is_validated(m: ModuleType) -> None:
    cfg = m.RepositoryConfig()
    with pytest.raises(TypeError, match="argument 'caching': 'int' object cannot be cast as"):
        cfg.caching = 1
    with pytest.raises(OverflowError, match="out of range integral type conversion attempted"):
        cfg.inline_chunk_threshold_bytes = 1 << 16
    cfg.inline_chunk_threshold_bytes = 7
    assert cfg.inline_chunk_threshold_bytes == 7
