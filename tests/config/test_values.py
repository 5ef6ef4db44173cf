"""Reprs, equality, defaults and pickling of the config classes, against icechunk 1.1.21."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from types import ModuleType
from typing import Any

import icechunk as ic
import pytest

import pyicechunk.config as pc

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
def test_reprs_match_reference(build: Callable[[ModuleType], Any]) -> None:
    assert repr(build(pc)) == repr(build(ic))


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


def test_everything_pickles() -> None:
    cfg = build_rich(pc)
    again = pickle.loads(pickle.dumps(cfg))
    assert again == cfg
    assert again.virtual_chunk_containers == cfg.virtual_chunk_containers
    for value in (
        pc.ManifestPreloadCondition.true(),
        pc.ManifestPreloadCondition.num_refs(1, None),
        pc.ManifestSplitDimCondition.Any(),
        pc.ObjectStoreConfig.InMemory(),
        pc.CompressionAlgorithm.Zstd,
    ):
        assert pickle.loads(pickle.dumps(value)) == value
