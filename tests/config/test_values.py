"""Reprs, equality, defaults and pickling of the config classes, against both references."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from types import ModuleType
from typing import Any

import icechunk as ic
import pytest
from oracle import Both

import pyicechunk
import pyicechunk.config as pc
from pyicechunk.format.config_serde import Tagged

from ._configs import build
from ._reference import BOTH, build_rich

REPR_CASES: list[Callable[[ModuleType], Any]] = [
    lambda m: m.RepositoryConfig(),
    lambda m: m.RepositoryConfig(
        inline_chunk_threshold_bytes=1,
        get_partial_values_concurrency=2,
        max_concurrent_requests=3,
        caching=m.CachingConfig(1, 2, 3, 4, 5),
        storage=m.StorageSettings(
            concurrency=m.StorageConcurrencySettings(1, 2),
            retries=m.StorageRetriesSettings(1, 2, 3),
            unsafe_use_conditional_create=True,
            unsafe_use_conditional_update=False,
            storage_class="a",
            chunks_storage_class="c",
            minimum_size_for_multipart_upload=9,
        ),
        manifest=m.ManifestConfig(splitting=m.ManifestSplittingConfig([])),
    ),
    lambda m: m.CompressionConfig(level=4),
    lambda m: m.S3Options("r", "http://x", True, True, True, 5, True),
    lambda m: m.S3Options(),
    lambda m: m.ManifestConfig(),
    lambda m: m.ManifestSplittingConfig(None),
    lambda m: m.ManifestSplitCondition.or_conditions(
        [m.ManifestSplitCondition.path_matches("x"), m.ManifestSplitCondition.name_matches("y")]
    ),
    lambda m: m.ManifestSplitCondition.and_conditions([m.ManifestSplitCondition.AnyArray()]),
    lambda m: m.ManifestSplitCondition.path_matches("a'b") | m.ManifestSplitCondition.AnyArray(),
    lambda m: [
        m.ManifestSplitDimCondition.Axis(1),
        m.ManifestSplitDimCondition.DimensionName('a"b'),
        m.ManifestSplitDimCondition.Any(),
    ],
    lambda m: m.ManifestSplittingConfig.from_dict(
        {
            m.ManifestSplitCondition.or_conditions(
                [
                    m.ManifestSplitCondition.name_matches('t"e\\mp\n'),
                    m.ManifestSplitCondition.AnyArray(),
                ]
            ): {
                m.ManifestSplitDimCondition.DimensionName("lon"): 3,
                m.ManifestSplitDimCondition.Axis(0): 2,
                m.ManifestSplitDimCondition.Any(): 10,
            }
        }
    ),
    lambda m: m.CompressionAlgorithm.Zstd,
    lambda m: m.CompressionAlgorithm(),
    lambda m: m.s3_store(region="us-east-1")._0,
]


@pytest.mark.parametrize("build", REPR_CASES)
def test_reprs_match_icechunk_1_1(build: Callable[[ModuleType], Any]) -> None:
    assert repr(build(pc)) == repr(build(ic))


def test_reprs_of_the_2x_fields() -> None:
    # Still in 1.1's style; the fields icechunk 2 added show only when set.
    assert repr(pc.RepositoryConfig(max_concurrent_decodes=2)) == (
        "RepositoryConfig(inline_chunk_threshold_bytes=None, get_partial_values_concurrency=None, "
        "compression=None, caching=None, storage=None, manifest=None, max_concurrent_decodes=2)"
    )
    assert repr(pc.StorageSettings(timeouts=pc.StorageTimeoutSettings(1))).endswith(
        ", timeouts=StorageTimeoutSettings(connect_timeout_ms=1, read_timeout_ms=None, "
        "operation_timeout_ms=None, operation_attempt_timeout_ms=None))"
    )
    assert repr(pc.S3Options(checksum_algorithm=pc.ChecksumAlgorithm.Crc32c)).endswith(
        "requester_pays=False, checksum_algorithm=ChecksumAlgorithm.Crc32c)"
    )
    assert repr(pc.RepoUpdateRetryConfig(pc.StorageRetriesSettings(1))) == (
        "RepoUpdateRetryConfig(default=StorageRetriesSettings(max_tries=1, "
        "initial_backoff_ms=None, max_backoff_ms=None))"
    )
    assert repr(pc.ManifestVirtualChunkLocationCompressionConfig(compression_level=-1)) == (
        "ManifestVirtualChunkLocationCompressionConfig(min_num_chunks=None, "
        "dictionary_max_training_samples=None, dictionary_max_size_bytes=None, "
        "compression_level=-1)"
    )
    assert repr(pc.ManifestConfig(max_concurrent_manifest_fetches_during_commit=3)) == (
        "ManifestConfig(preload=None, splitting=None, "
        "max_concurrent_manifest_fetches_during_commit=3)"
    )
    assert repr(pc.ManifestPreloadConfig(max_arrays_to_scan=4)) == (
        "ManifestPreloadConfig(max_total_refs=None, preload_if=None, max_arrays_to_scan=4)"
    )
    assert repr(pc.VirtualChunkContainer("s3://b/", pc.s3_store())).endswith(
        "requester_pays=False)))"
    )
    container = pc.VirtualChunkContainer("http://h/", pc.http_store({"a": "b"}, {"h": "v"}), "n")
    assert repr(container) == (
        "VirtualChunkContainer(url_prefix='http://h/', "
        "store=ObjectStoreConfig.Http({'a': 'b'}, {'h': 'v'}), name='n')"
    )
    assert (
        repr(pc.ChecksumAlgorithm.Crc64Nvme)
        == str(pc.ChecksumAlgorithm.Crc64Nvme)
        == "ChecksumAlgorithm.Crc64Nvme"
    )


def test_compression_repr_shows_the_algorithm() -> None:
    # The reference always prints algorithm=None; we print what is set.
    cfg = pc.CompressionConfig(pc.CompressionAlgorithm.Zstd, 2)
    assert repr(cfg) == "CompressionConfig(algorithm=CompressionAlgorithm.Zstd, level=2)"


@BOTH
def test_defaults_are_unset(m: ModuleType) -> None:
    cfg = m.RepositoryConfig.default()
    assert cfg == m.RepositoryConfig()
    for name in (
        "inline_chunk_threshold_bytes",
        "get_partial_values_concurrency",
        "compression",
        "max_concurrent_requests",
        "caching",
        "storage",
        "virtual_chunk_containers",
        "manifest",
    ):
        assert getattr(cfg, name) is None
    assert m.CachingConfig.default() == m.CachingConfig()
    assert m.CompressionConfig.default() == m.CompressionConfig()
    assert m.CompressionAlgorithm.default() == m.CompressionAlgorithm.Zstd
    assert int(m.CompressionAlgorithm.Zstd) == 0


@BOTH
def test_equality_by_value(m: ModuleType) -> None:
    P, S = m.ManifestPreloadCondition, m.ManifestSplitCondition
    assert m.RepositoryConfig(caching=m.CachingConfig(1)) == m.RepositoryConfig(
        caching=m.CachingConfig(1)
    )
    assert m.RepositoryConfig(caching=m.CachingConfig(1)) != m.RepositoryConfig(
        caching=m.CachingConfig(2)
    )
    assert P.num_refs(1, 2) == P.num_refs(1, 2)
    assert P.num_refs(1, 2) != P.num_refs(1, 3)
    assert P.true() != P.false()
    assert (P.true() & P.false()) == P.and_conditions([P.true(), P.false()])
    assert (P.true() | P.false()) == P.or_conditions([P.true(), P.false()])
    assert (S.AnyArray() | S.path_matches("x")) == S.or_conditions(
        [S.AnyArray(), S.path_matches("x")]
    )
    assert hash(S.path_matches("x")) == hash(S.path_matches("x"))
    assert len({S.path_matches("x"), S.path_matches("x"), S.name_matches("x")}) == 2
    assert m.s3_store(region="a") == m.s3_store(region="a")
    assert m.s3_store() != m.s3_store(s3_compatible=True)
    assert m.VirtualChunkContainer("s3://b/", m.s3_store()) == m.VirtualChunkContainer(
        "s3://b/", m.s3_store()
    )
    for unhashable in (m.RepositoryConfig(), P.true(), m.ObjectStoreConfig.InMemory()):
        with pytest.raises(TypeError, match="unhashable"):
            hash(unhashable)


def test_icechunk2_defaults_equality_and_attributes(both: Both) -> None:
    code = """
    native = getattr(icechunk, "_icechunk_python", None)
    R = native.RepoUpdateRetryConfig if native else icechunk.config.RepoUpdateRetryConfig
    V = icechunk.ManifestVirtualChunkLocationCompressionConfig
    T = icechunk.StorageTimeoutSettings
    Repo = icechunk.RepositoryConfig
    c, m = Repo(), icechunk.ManifestConfig()
    defaults = [
        c.repo_update_retries, c.num_updates_per_repo_info_file, c.max_concurrent_decodes,
        c.previous_file, R().default, icechunk.StorageSettings().timeouts,
        icechunk.S3Options().checksum_algorithm, m.max_concurrent_manifest_fetches_during_commit,
        m.virtual_chunk_location_compression, icechunk.ManifestPreloadConfig().max_arrays_to_scan,
        V().min_num_chunks, T().read_timeout_ms,
        icechunk.VirtualChunkContainer("s3://b/", icechunk.s3_store()).name,
        icechunk.http_store()._1,
    ]
    equal = [
        T(1) == T(1), T(1) == T(2), V(1, compression_level=2) == V(1, compression_level=2),
        V(1) == V(1, compression_level=2), R() == R(), R(icechunk.StorageRetriesSettings(1)) == R(),
        Repo(max_concurrent_decodes=1) == Repo(max_concurrent_decodes=1),
        Repo(max_concurrent_decodes=1) == Repo(),
        icechunk.VirtualChunkContainer("s3://b/", icechunk.s3_store(), "n")
        == icechunk.VirtualChunkContainer("s3://b/", icechunk.s3_store(), "n"),
        icechunk.VirtualChunkContainer("s3://b/", icechunk.s3_store(), "n")
        == icechunk.VirtualChunkContainer("s3://b/", icechunk.s3_store()),
        icechunk.http_store({}, {"a": "b"}) == icechunk.http_store({}, {"a": "b"}),
        icechunk.http_store({}, {"a": "b"}) == icechunk.http_store({}),
        icechunk.S3Options(checksum_algorithm=icechunk.ChecksumAlgorithm.Sha1)
        == icechunk.S3Options(checksum_algorithm=icechunk.ChecksumAlgorithm.Sha1),
        icechunk.ChecksumAlgorithm.Crc32c == 1,
    ]
    unhashable = []
    for value in (T(), V(), R(), icechunk.RepositoryConfig()):
        try:
            hash(value)
        except TypeError:
            unhashable.append(type(value).__name__)
    o = icechunk.S3Options()
    o.checksum_algorithm = icechunk.ChecksumAlgorithm.Sha256
    m = icechunk.ManifestConfig()
    m.virtual_chunk_location_compression = V(5)
    m.max_concurrent_manifest_fetches_during_commit = 2
    (defaults, equal, unhashable, [int(x) for x in (
        icechunk.ChecksumAlgorithm.Crc32, icechunk.ChecksumAlgorithm.Crc32c,
        icechunk.ChecksumAlgorithm.Crc64Nvme, icechunk.ChecksumAlgorithm.Sha1,
        icechunk.ChecksumAlgorithm.Sha256)], repr(o.checksum_algorithm),
        m.virtual_chunk_location_compression.min_num_chunks,
        m.max_concurrent_manifest_fetches_during_commit)
    """
    defaults, equal, unhashable, *rest = both.same(code)
    assert defaults == [None] * len(defaults)
    assert equal == [
        True,
        False,
        True,
        False,
        True,
        False,
        True,
        False,
        True,
        False,
        True,
        False,
        True,
        True,
    ]
    assert len(unhashable) == 4
    assert rest == [[0, 1, 2, 3, 4], "ChecksumAlgorithm.Sha256", 5, 2]


def test_everything_pickles() -> None:
    cfg = build_rich(pc)
    again = pickle.loads(pickle.dumps(cfg))
    assert again == cfg
    assert again.virtual_chunk_containers == cfg.virtual_chunk_containers
    full = build(pyicechunk, "full")
    full._unknown = {"future": [1, Tagged("x", {"y": None})]}
    again = pickle.loads(pickle.dumps(full))
    assert again == full and again._unknown == full._unknown
    for value in (
        pc.ManifestPreloadCondition.true(),
        pc.ManifestPreloadCondition.num_refs(1, None),
        pc.ManifestSplitDimCondition.Any(),
        pc.ObjectStoreConfig.InMemory(),
        pc.CompressionAlgorithm.Zstd,
        pc.ChecksumAlgorithm.Crc64Nvme,
        pc.http_store({"a": "b"}, {"h": "v"}),
        pc.StorageTimeoutSettings(1, 2, 3, 4),
        pc.RepoUpdateRetryConfig(pc.StorageRetriesSettings(1)),
        pc.ManifestVirtualChunkLocationCompressionConfig(1, compression_level=-3),
    ):
        assert pickle.loads(pickle.dumps(value)) == value
