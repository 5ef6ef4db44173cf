"""RepositoryConfig: merging and the effective config, against both references."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import icechunk as ic
import pytest
from oracle import Both, InProcess, Oracle

import pyicechunk.config as pc

from . import _configs, _plain
from ._reference import plain

HELPERS = [Path(m.__file__).read_text() for m in (_configs, _plain)]


def load_helpers(impl: InProcess | Oracle) -> None:
    """``build``, ``retry_config_class`` and ``plain`` in the implementation's namespace."""
    for source in HELPERS:
        impl.run(source)


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


MERGE_VARIANTS = """
R = retry_config_class(icechunk)
S, T = icechunk.StorageRetriesSettings, icechunk.StorageTimeoutSettings
V = icechunk.ManifestVirtualChunkLocationCompressionConfig
P, D = icechunk.ManifestPreloadConfig, icechunk.ManifestSplitDimCondition
variants = [
    icechunk.RepositoryConfig(
        repo_update_retries=R(S(1, None, 3)),
        num_updates_per_repo_info_file=4,
        max_concurrent_decodes=4,
        storage=icechunk.StorageSettings(timeouts=T(1, None, 3)),
        manifest=icechunk.ManifestConfig(
            preload=P(1, max_arrays_to_scan=2),
            virtual_chunk_location_compression=V(1, dictionary_max_size_bytes=9),
            max_concurrent_manifest_fetches_during_commit=2,
        ),
    ),
    icechunk.RepositoryConfig(
        repo_update_retries=R(S(None, 2, None)),
        num_updates_per_repo_info_file=5,
        storage=icechunk.StorageSettings(timeouts=T(None, 2), storage_class="s"),
        manifest=icechunk.ManifestConfig(
            preload=P(max_arrays_to_scan=5),
            splitting=icechunk.ManifestSplittingConfig.from_dict(
                {icechunk.ManifestSplitCondition.AnyArray(): {D.Any(): 3}}
            ),
            virtual_chunk_location_compression=V(None, compression_level=5),
        ),
    ),
    icechunk.RepositoryConfig(
        repo_update_retries=R(),
        manifest=icechunk.ManifestConfig(virtual_chunk_location_compression=V()),
    ),
    icechunk.RepositoryConfig(),
    build(icechunk, "partial"),
]
for i, prefix in enumerate(["s3://one/", "s3://two/"]):
    variants[i].set_virtual_chunk_container(
        icechunk.VirtualChunkContainer(prefix, icechunk.s3_store(), "same")
    )
"""


def test_merges_of_the_2x_fields_match_icechunk2(both: Both) -> None:
    for impl in (both.ours, both.reference):
        load_helpers(impl)
        impl.run(MERGE_VARIANTS)
    before = both.same("[plain(v) for v in variants]")
    merged = both.same("[[plain(a.merge(b)) for b in variants] for a in variants]")
    # Nested retries, timeouts and location compression merge field by field.
    first_then_second = merged[0][1]
    assert first_then_second["repo_update_retries"]["default"]["max_tries"] == 1
    assert first_then_second["repo_update_retries"]["default"]["initial_backoff_ms"] == 2
    location = first_then_second["manifest"]["virtual_chunk_location_compression"]
    assert (location["min_num_chunks"], location["compression_level"]) == (1, 5)
    assert first_then_second["storage"]["timeouts"]["operation_timeout_ms"] == 3
    # Preload is replaced wholesale; containers too.
    assert first_then_second["manifest"]["preload"]["max_total_refs"] is None
    assert list(first_then_second["virtual_chunk_containers"]) == ["s3://two/"]
    assert both.same("[plain(v) for v in variants]") == before


def _str_fields(text: str) -> dict[str, str]:
    """icechunk 2's ``str()`` block of a config as ``{"a.b.c": "value"}``."""
    fields: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("<"):
            continue
        depth = len(line) - len(stripped)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        key, _, value = stripped.partition(":")
        path = ".".join([*(k for _, k in stack), key])
        if value.strip():
            fields[path] = value.strip()
        else:
            stack.append((depth, key))
    return fields


# Where icechunk 2's str() shows a value, and the field of our effective config that holds it.
EFFECTIVE = {
    "max_concurrent_decodes": "max_concurrent_decodes",
    "num_updates_per_repo_info_file": "num_updates_per_repo_info_file",
    "manifest.preload.max_arrays_to_scan": "preload_max_arrays_to_scan",
    "manifest.max_concurrent_manifest_fetches_during_commit": (
        "max_concurrent_manifest_fetches_during_commit"
    ),
    "manifest.virtual_chunk_location_compression.min_num_chunks": (
        "location_compression_min_num_chunks"
    ),
    "manifest.virtual_chunk_location_compression.dictionary_max_training_samples": (
        "location_compression_dictionary_max_training_samples"
    ),
    "manifest.virtual_chunk_location_compression.dictionary_max_size_bytes": (
        "location_compression_dictionary_max_size_bytes"
    ),
    "manifest.virtual_chunk_location_compression.compression_level": ("location_compression_level"),
    "repo_update_retries.default.max_tries": "repo_update_max_tries",
    "repo_update_retries.default.initial_backoff_ms": "repo_update_initial_backoff_ms",
    "repo_update_retries.default.max_backoff_ms": "repo_update_max_backoff_ms",
}


@pytest.mark.parametrize(
    "config",
    [
        "icechunk.RepositoryConfig()",
        "icechunk.RepositoryConfig(repo_update_retries=R(icechunk.StorageRetriesSettings(5)))",
        "icechunk.RepositoryConfig(repo_update_retries=R(icechunk.StorageRetriesSettings()))",
        "build(icechunk, 'partial')",
        "build(icechunk, 'full')",
    ],
)
def test_effective_values_of_the_2x_fields_match_icechunk2(both: Both, config: str) -> None:
    """Our effective values are the ones icechunk 2.3.0's ``str()`` shows for the same config."""
    for impl in (both.ours, both.reference):
        load_helpers(impl)
        impl.run("R = retry_config_class(icechunk)")
    shown = _str_fields(both.reference.run(f"str({config})"))
    ours = both.ours.run(
        f"effective = ({config})._effective()\n[str(getattr(effective, a)) for a in attrs]",
        attrs=list(EFFECTIVE.values()),
    )
    assert [shown[path].removesuffix(" (default)") for path in EFFECTIVE] == ours
