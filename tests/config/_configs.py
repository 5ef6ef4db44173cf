"""Rich repository configs built through the icechunk 2 API of either implementation.

Self-contained (no imports): tests run this module's source inside a snippet, where ``icechunk``
is the implementation, and call ``build(icechunk, name)``; in process they call the same
function with ``pyicechunk``. Every config here is one icechunk 2.3.0 accepts. Stores are built
with explicit option maps, since the reference turns a ``None`` map into ``{}`` on the way in.
"""

from __future__ import annotations

from typing import Any


def retry_config_class(m: Any) -> Any:
    """``RepoUpdateRetryConfig``: icechunk 2.3.0 keeps it in its native module only."""
    native = getattr(m, "_icechunk_python", None)
    if native is not None and hasattr(native, "RepoUpdateRetryConfig"):
        return native.RepoUpdateRetryConfig
    return m.config.RepoUpdateRetryConfig


def _full_storage(m: Any, **changes: Any) -> Any:
    # Every field set, so that merging a backend's defaults over it changes nothing.
    fields = {
        "concurrency": m.StorageConcurrencySettings(3, 1000),
        "retries": m.StorageRetriesSettings(4, 10, 100),
        "unsafe_use_conditional_create": True,
        "unsafe_use_conditional_update": False,
        "unsafe_use_metadata": False,
        "storage_class": "STANDARD",
        "metadata_storage_class": "true",
        "chunks_storage_class": "a: b # c",
        "minimum_size_for_multipart_upload": 123,
        "timeouts": m.StorageTimeoutSettings(1, 2, 3, 4),
    }
    fields.update(changes)
    return m.StorageSettings(**fields)


def _containers(m: Any) -> list[Any]:
    """A container of every store kind; names on some of them; maps of one entry each."""
    C = m.ChecksumAlgorithm
    return [
        m.VirtualChunkContainer(
            "s3://bucket/", m.s3_store(region="us-east-1", checksum_algorithm=C.Crc32c), "s3c"
        ),
        m.VirtualChunkContainer(
            "s3://other/p/",
            m.s3_store(
                endpoint_url="http://localhost:9000",
                allow_http=True,
                anonymous=True,
                s3_compatible=True,
                force_path_style=True,
                network_stream_timeout_seconds=0,
                requester_pays=True,
                checksum_algorithm=C.Crc64Nvme,
            ),
        ),
        m.VirtualChunkContainer(
            "tigris://t/", m.ObjectStoreConfig.Tigris(m.S3Options(region="auto")), "tig"
        ),
        m.VirtualChunkContainer("gs://b/", m.gcs_store({"service_account": "x"})),
        m.VirtualChunkContainer("az://acc/", m.ObjectStoreConfig.Azure({"account": "acc"})),
        m.VirtualChunkContainer(
            "https://ex.com/", m.http_store({"timeout": "5s"}, {"x-h": "'1'"}), "web"
        ),
        m.VirtualChunkContainer("http://x.org/a/", m.http_store({})),
        m.VirtualChunkContainer("file:///data/", m.local_filesystem_store("/data"), "local"),
    ]


def _conditions(m: Any) -> tuple[Any, Any]:
    P, S, D = m.ManifestPreloadCondition, m.ManifestSplitCondition, m.ManifestSplitDimCondition
    preload = P.or_conditions(
        [
            P.path_matches("^/x"),
            P.name_matches("t: 'x'"),
            P.num_refs(1, 10),
            P.num_refs(None, None),
            P.num_refs(0, 4294967295),
            P.and_conditions([P.true(), P.false(), P.or_conditions([])]),
            P.and_conditions([P.true(), P.or_conditions([P.false(), P.name_matches("0x10")])]),
        ]
    )
    splitting = m.ManifestSplittingConfig(
        [
            (
                S.path_matches("temp.*"),
                [(D.Axis(0), 10), (D.DimensionName("lat"), 5), (D.Any(), 2)],
            ),
            (S.or_conditions([S.name_matches("a"), S.AnyArray()]), [(D.Any(), 100)]),
            (
                S.and_conditions([S.or_conditions([S.AnyArray(), S.path_matches("yes")])]),
                [],
            ),
            (S.AnyArray(), [(D.DimensionName("~"), 0), (D.Axis(2**20), 4294967295)]),
        ]
    )
    return preload, splitting


def _full(m: Any, *, containers: bool = True) -> Any:
    preload_if, splitting = _conditions(m)
    cfg = m.RepositoryConfig(
        inline_chunk_threshold_bytes=100,
        get_partial_values_concurrency=5,
        compression=m.CompressionConfig(m.CompressionAlgorithm.Zstd, 5),
        max_concurrent_requests=10,
        caching=m.CachingConfig(10, 20, 30, 40, 2**64 - 1),
        storage=_full_storage(m),
        manifest=m.ManifestConfig(
            preload=m.ManifestPreloadConfig(7, preload_if, max_arrays_to_scan=9),
            splitting=splitting,
            virtual_chunk_location_compression=m.ManifestVirtualChunkLocationCompressionConfig(
                11,
                dictionary_max_training_samples=12,
                dictionary_max_size_bytes=13,
                compression_level=-2,
            ),
            max_concurrent_manifest_fetches_during_commit=4,
        ),
        repo_update_retries=retry_config_class(m)(m.StorageRetriesSettings(5, 6, 7)),
        num_updates_per_repo_info_file=77,
        max_concurrent_decodes=3,
    )
    if containers:
        for cont in _containers(m):
            cfg.set_virtual_chunk_container(cont)
    return cfg


def _partial(m: Any) -> Any:
    return m.RepositoryConfig(
        compression=m.CompressionConfig(level=1),
        storage=_full_storage(
            m,
            retries=m.StorageRetriesSettings(max_tries=2),
            timeouts=m.StorageTimeoutSettings(read_timeout_ms=9),
        ),
        manifest=m.ManifestConfig(
            preload=m.ManifestPreloadConfig(max_arrays_to_scan=0),
            virtual_chunk_location_compression=m.ManifestVirtualChunkLocationCompressionConfig(
                min_num_chunks=0
            ),
        ),
        repo_update_retries=retry_config_class(m)(),
        max_concurrent_decodes=1,
    )


def _empty_collections(m: Any) -> Any:
    P = m.ManifestPreloadCondition
    cfg = m.RepositoryConfig(
        storage=_full_storage(m),
        manifest=m.ManifestConfig(
            preload=m.ManifestPreloadConfig(preload_if=P.or_conditions([])),
            splitting=m.ManifestSplittingConfig([]),
            virtual_chunk_location_compression=m.ManifestVirtualChunkLocationCompressionConfig(),
        ),
        repo_update_retries=retry_config_class(m)(m.StorageRetriesSettings()),
        caching=m.CachingConfig(),
    )
    cfg.clear_virtual_chunk_containers()
    return cfg


def _extremes(m: Any) -> Any:
    C = m.ChecksumAlgorithm
    cfg = m.RepositoryConfig(
        inline_chunk_threshold_bytes=0,
        get_partial_values_concurrency=65535,
        max_concurrent_requests=65535,
        max_concurrent_decodes=65535,
        num_updates_per_repo_info_file=65535,
        storage=_full_storage(
            m,
            timeouts=m.StorageTimeoutSettings(0, 4294967295, 0, 4294967295),
            minimum_size_for_multipart_upload=2**64 - 1,
            storage_class="multi\nline",
            metadata_storage_class="00",
            chunks_storage_class="yes",
        ),
        manifest=m.ManifestConfig(
            virtual_chunk_location_compression=m.ManifestVirtualChunkLocationCompressionConfig(
                65535,
                dictionary_max_training_samples=65535,
                dictionary_max_size_bytes=4294967295,
                compression_level=-(2**31),
            ),
            max_concurrent_manifest_fetches_during_commit=65535,
        ),
    )
    for i, algorithm in enumerate([C.Crc32, C.Crc32c, C.Crc64Nvme, C.Sha1, C.Sha256]):
        store = m.s3_store(region="1.5" if i else None, checksum_algorithm=algorithm)
        cfg.set_virtual_chunk_container(m.VirtualChunkContainer(f"s3://b{i}/", store, f"c{i}"))
    # Maps of several entries (the reference writes them in hash order).
    for prefix, store in [
        ("gs://many/", m.gcs_store({"a": "1", "b": "", "c": "null"})),
        ("https://h/", m.http_store({"timeout": "1s", "x": "y"}, {"a": "1", "b": "2"})),
    ]:
        cfg.set_virtual_chunk_container(m.VirtualChunkContainer(prefix, store))
    return cfg


# Regexes that icechunk 2.3.0's repr of a stored condition shows unescaped: a newline, quotes,
# a backslash, and text that reads like the end of one call and the start of the next.
AWKWARD_TEXT = [
    "a\nb",
    'say "hi"',
    "\\d+",
    '"), icechunk.config.ManifestPreloadCondition.true(), '
    'icechunk.config.ManifestPreloadCondition.name_matches("',
    "",
]


def _awkward_text(m: Any) -> Any:
    P = m.ManifestPreloadCondition
    matches = [P.and_conditions([P.path_matches(t), P.name_matches(t)]) for t in AWKWARD_TEXT]
    return m.RepositoryConfig(
        storage=_full_storage(m),
        manifest=m.ManifestConfig(
            preload=m.ManifestPreloadConfig(preload_if=P.or_conditions([*matches, P.true()]))
        ),
    )


def _one_container(m: Any, index: int) -> Any:
    cfg = m.RepositoryConfig(inline_chunk_threshold_bytes=0, storage=_full_storage(m))
    cfg.set_virtual_chunk_container(_containers(m)[index])
    return cfg


def build(m: Any, name: str) -> Any:
    """The config called ``name`` (one of :data:`NAMES`), built with module ``m``."""
    if name.startswith("one_container_"):
        return _one_container(m, int(name.rsplit("_", 1)[1]))
    return {
        "full": _full,
        "full_without_containers": lambda m: _full(m, containers=False),
        "partial": _partial,
        "empty_collections": _empty_collections,
        "extremes": _extremes,
        "awkward_text": _awkward_text,
        "default": lambda m: m.RepositoryConfig(),
    }[name](m)


# Configs whose every storage field is set: a backend's defaults merged over them change
# nothing, so the config a repository stores equals the one it was created with.
FULLY_SET = ["full", "full_without_containers", "empty_collections", "extremes", "awkward_text"] + [
    f"one_container_{i}" for i in range(8)
]
NAMES = [*FULLY_SET, "partial", "default"]
