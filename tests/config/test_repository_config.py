"""RepositoryConfig: merging (against icechunk 1.1.21) and the effective config."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import icechunk as ic
import pytest

import pyicechunk.config as pc

from ._reference import plain


def _rich(m: ModuleType, variant: int) -> Any:
    """Configs that set different subsets of fields, for merge tests."""
    if variant == 0:
        cfg = m.RepositoryConfig(
            inline_chunk_threshold_bytes=1,
            compression=m.CompressionConfig(level=1),
            caching=m.CachingConfig(num_snapshot_nodes=1, num_bytes_chunks=1),
            storage=m.StorageSettings(
                concurrency=m.StorageConcurrencySettings(1, None),
                retries=m.StorageRetriesSettings(max_tries=1),
                storage_class="one",
                unsafe_use_metadata=False,
            ),
            manifest=m.ManifestConfig(
                preload=m.ManifestPreloadConfig(max_total_refs=1),
                splitting=m.ManifestSplittingConfig(
                    [
                        (
                            m.ManifestSplitCondition.AnyArray(),
                            [(m.ManifestSplitDimCondition.Any(), 1)],
                        )
                    ]
                ),
            ),
        )
        cfg.set_virtual_chunk_container(m.VirtualChunkContainer("s3://one/", m.s3_store()))
        return cfg
    if variant == 1:
        cfg = m.RepositoryConfig(
            get_partial_values_concurrency=2,
            max_concurrent_requests=2,
            compression=m.CompressionConfig(algorithm=m.CompressionAlgorithm.Zstd),
            caching=m.CachingConfig(num_chunk_refs=2, num_bytes_chunks=2),
            storage=m.StorageSettings(
                concurrency=m.StorageConcurrencySettings(None, 2),
                chunks_storage_class="two",
                unsafe_use_metadata=True,
            ),
            manifest=m.ManifestConfig(
                preload=m.ManifestPreloadConfig(preload_if=m.ManifestPreloadCondition.true())
            ),
        )
        cfg.set_virtual_chunk_container(m.VirtualChunkContainer("gs://two/", m.gcs_store({})))
        return cfg
    if variant == 2:
        cfg = m.RepositoryConfig(storage=m.StorageSettings(retries=m.StorageRetriesSettings(3)))
        cfg.clear_virtual_chunk_containers()
        return cfg
    return m.RepositoryConfig()


@pytest.mark.parametrize("left", range(4))
@pytest.mark.parametrize("right", range(4))
def test_merge_matches_reference(left: int, right: int) -> None:
    ours_left = _rich(pc, left)
    before = plain(ours_left)
    ours = ours_left.merge(_rich(pc, right))
    theirs = _rich(ic, left).merge(_rich(ic, right))
    assert plain(ours) == plain(theirs)
    assert plain(ours_left) == before


def test_merge_rules_spelled_out() -> None:
    merged = _rich(pc, 0).merge(_rich(pc, 1))
    assert merged.inline_chunk_threshold_bytes == 1
    assert merged.get_partial_values_concurrency == 2
    assert merged.caching == pc.CachingConfig(
        num_snapshot_nodes=1, num_chunk_refs=2, num_bytes_chunks=2
    )
    assert (
        merged.storage is not None
        and merged.storage.concurrency == pc.StorageConcurrencySettings(1, 2)
    )
    assert merged.storage.unsafe_use_metadata is True
    # preload is replaced wholesale, splitting kept from the left side
    assert merged.manifest is not None and merged.manifest.preload == pc.ManifestPreloadConfig(
        preload_if=pc.ManifestPreloadCondition.true()
    )
    assert merged.manifest.splitting == _rich(pc, 0).manifest.splitting
    assert sorted(merged.virtual_chunk_containers or {}) == ["gs://two/"]
    assert _rich(pc, 0).merge(_rich(pc, 2)).virtual_chunk_containers == {}


def test_effective_defaults() -> None:
    eff = pc.RepositoryConfig()._effective()
    assert (
        eff.inline_chunk_threshold_bytes,
        eff.get_partial_values_concurrency,
        eff.compression_level,
        eff.max_concurrent_requests,
        eff.num_snapshot_nodes,
        eff.num_chunk_refs,
        eff.num_transaction_changes,
        eff.num_bytes_attributes,
        eff.num_bytes_chunks,
        eff.preload_max_total_refs,
    ) == (512, 10, 3, 256, 500_000, 15_000_000, 0, 0, 0, 10_000)
    assert eff.compression_algorithm is pc.CompressionAlgorithm.Zstd
    assert eff.split_sizes == (
        (
            pc.ManifestSplitCondition.path_matches(".*"),
            ((pc.ManifestSplitDimCondition.Any(), 2**32 - 1),),
        ),
    )
    P = pc.ManifestPreloadCondition
    assert isinstance(eff.preload_if, P.And)
    coords, refs = eff.preload_if._0
    assert refs == P.num_refs(None, 1001)
    assert len(coords._0) == 6 and all(isinstance(c, P.NameMatches) for c in coords._0)


def test_effective_values_follow_settings() -> None:
    S, D = pc.ManifestSplitCondition, pc.ManifestSplitDimCondition
    cfg = pc.RepositoryConfig(
        inline_chunk_threshold_bytes=0,
        compression=pc.CompressionConfig(level=9),
        caching=pc.CachingConfig(num_chunk_refs=5),
        manifest=pc.ManifestConfig(
            preload=pc.ManifestPreloadConfig(max_total_refs=3),
            splitting=pc.ManifestSplittingConfig([(S.AnyArray(), [(D.Axis(0), 7)])]),
        ),
    )
    eff = cfg._effective()
    assert (eff.inline_chunk_threshold_bytes, eff.compression_level, eff.num_chunk_refs) == (
        0,
        9,
        5,
    )
    assert eff.preload_max_total_refs == 3
    assert eff.split_sizes == ((S.AnyArray(), ((D.Axis(0), 7),)),)
    with pytest.raises(AttributeError):
        eff.inline_chunk_threshold_bytes = 1  # type: ignore[misc]
