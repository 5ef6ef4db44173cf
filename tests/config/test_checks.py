"""Argument checks of the config classes: the references' exception types and messages."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import icechunk as ic
import pytest
from oracle import Both, ImplError

import pyicechunk.config as pc

from ._reference import BOTH, outcome

RETRY_CLASS = """
native = getattr(icechunk, "_icechunk_python", None)
R = native.RepoUpdateRetryConfig if native else icechunk.config.RepoUpdateRetryConfig
"""

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


# icechunk 2's fields: the same exception types as icechunk 2.3.0. (Its newer pyo3 words the
# messages differently; ours keep the 1.1 wording of the rest of the config classes.)
ERROR_CASES_2 = [
    "icechunk.RepositoryConfig(max_concurrent_decodes=-1)",
    "icechunk.RepositoryConfig(max_concurrent_decodes=65536)",
    "icechunk.RepositoryConfig(num_updates_per_repo_info_file='3')",
    "icechunk.RepositoryConfig(num_updates_per_repo_info_file=1.5)",
    "icechunk.RepositoryConfig(repo_update_retries=icechunk.StorageRetriesSettings())",
    "R(default='x')",
    "icechunk.ManifestConfig(max_concurrent_manifest_fetches_during_commit=65536)",
    "icechunk.ManifestConfig(virtual_chunk_location_compression=1)",
    "icechunk.ManifestPreloadConfig(max_arrays_to_scan=2**32)",
    "icechunk.ManifestVirtualChunkLocationCompressionConfig(65536)",
    "icechunk.ManifestVirtualChunkLocationCompressionConfig(dictionary_max_size_bytes=-1)",
    "icechunk.ManifestVirtualChunkLocationCompressionConfig(compression_level=2**31)",
    "icechunk.ManifestVirtualChunkLocationCompressionConfig(1, 2)",
    "icechunk.StorageTimeoutSettings(connect_timeout_ms=2**32)",
    "icechunk.StorageTimeoutSettings(read_timeout_ms='1')",
    "icechunk.StorageSettings(timeouts='x')",
    "icechunk.S3Options(checksum_algorithm='crc32')",
    "icechunk.S3Options(checksum_algorithm=1)",
    "icechunk.s3_store(checksum_algorithm='sha1')",
    "icechunk.VirtualChunkContainer('s3://b/', icechunk.s3_store(), 1)",
    "icechunk.VirtualChunkContainer('s3://b/', icechunk.s3_store(), 'n', 4)",
    "icechunk.VirtualChunkContainer('s3://b/')",
    "icechunk.http_store({}, {'a': 1})",
    "icechunk.http_store({}, ['a'])",
    "icechunk.ObjectStoreConfig.Http()",
    # Assignments are checked too.
    "c = icechunk.RepositoryConfig()\nc.max_concurrent_decodes = -2",
    "c = icechunk.StorageSettings()\nc.timeouts = icechunk.StorageRetriesSettings()",
    "c = icechunk.VirtualChunkContainer('s3://b/', icechunk.s3_store())\nc.name = 3",
    "c = icechunk.VirtualChunkContainer('s3://b/', icechunk.s3_store())\nc.store = None",
    "c = icechunk.RepositoryConfig()\nc.previous_file = 'x'",
]


@pytest.mark.parametrize("code", ERROR_CASES_2)
def test_icechunk2_argument_errors(both: Both, code: str) -> None:
    for impl in (both.ours, both.reference):
        impl.run(RETRY_CLASS)
    # ``same`` asserts both raise the same class (and kind), then raises ours.
    with pytest.raises(ImplError) as info:
        both.same(code)
    assert info.value.type in ("TypeError", "OverflowError", "ValueError", "AttributeError")


def test_icechunk2_bounds_are_accepted(both: Both) -> None:
    code = """
    v = icechunk.ManifestVirtualChunkLocationCompressionConfig(
        0, dictionary_max_training_samples=65535, dictionary_max_size_bytes=2**32 - 1,
        compression_level=-(2**31),
    )
    t = icechunk.StorageTimeoutSettings(0, 2**32 - 1, None, 7)
    c = icechunk.RepositoryConfig(max_concurrent_decodes=0, num_updates_per_repo_info_file=65535)
    (v.compression_level, v.dictionary_max_size_bytes, t.read_timeout_ms,
     t.operation_attempt_timeout_ms, c.max_concurrent_decodes)
    """
    assert both.same(code) == (-(2**31), 2**32 - 1, 2**32 - 1, 7, 0)
