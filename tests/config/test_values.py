"""Reprs, equality, defaults and pickling of the config classes, against both references."""

from __future__ import annotations

import pickle
from types import ModuleType

import pytest
from oracle import Both

import pyicechunk
import pyicechunk.config as pc
from pyicechunk.format.config_serde import Tagged

from ._configs import build
from ._reference import BOTH, build_rich

# Expressions run on pyicechunk and on icechunk 2.3.0 (``icechunk`` is either), whose config
# reprs pyicechunk follows: the constructor call, one field a line (1.1's were one line, with
# some fields left out, and printed ``algorithm=None`` whatever the algorithm).
RETRY_CONFIG = 'getattr(icechunk, "_icechunk_python", icechunk.config).RepoUpdateRetryConfig'
REPR_CASES = [
    "icechunk.RepositoryConfig()",
    """icechunk.RepositoryConfig(
        inline_chunk_threshold_bytes=1,
        get_partial_values_concurrency=2,
        max_concurrent_requests=3,
        max_concurrent_decodes=4,
        num_updates_per_repo_info_file=5,
        caching=icechunk.CachingConfig(1, 2, 3, 4, 5),
        storage=icechunk.StorageSettings(
            concurrency=icechunk.StorageConcurrencySettings(1, 2),
            retries=icechunk.StorageRetriesSettings(1, 2, 3),
            unsafe_use_conditional_create=True,
            unsafe_use_conditional_update=False,
            storage_class="a",
            chunks_storage_class="c",
            minimum_size_for_multipart_upload=9,
            timeouts=icechunk.StorageTimeoutSettings(1),
        ),
        manifest=icechunk.ManifestConfig(splitting=icechunk.ManifestSplittingConfig([])),
        repo_update_retries=RETRY(icechunk.StorageRetriesSettings(1)),
        virtual_chunk_containers={
            "s3://b/": icechunk.VirtualChunkContainer("s3://b/", icechunk.s3_store(region="r")),
        },
    )""",
    "icechunk.RepositoryConfig(virtual_chunk_containers={})",
    "icechunk.CompressionConfig(level=4)",
    "icechunk.CompressionConfig(icechunk.CompressionAlgorithm.Zstd, 2)",
    'icechunk.S3Options("r", "http://x", True, True, True, 5, True)',
    "icechunk.S3Options()",
    "icechunk.S3Options(checksum_algorithm=icechunk.ChecksumAlgorithm.Crc32c)",
    "icechunk.ManifestConfig()",
    "icechunk.ManifestConfig(max_concurrent_manifest_fetches_during_commit=3)",
    "icechunk.ManifestPreloadConfig(max_arrays_to_scan=4)",
    "icechunk.ManifestPreloadConfig(preload_if=icechunk.ManifestPreloadCondition.and_conditions("
    "[icechunk.ManifestPreloadCondition.num_refs(None, 5), icechunk.ManifestPreloadCondition.or_"
    "conditions([icechunk.ManifestPreloadCondition.true(), icechunk.ManifestPreloadCondition."
    "false(), icechunk.ManifestPreloadCondition.path_matches('p')])]))",
    "icechunk.ManifestVirtualChunkLocationCompressionConfig(compression_level=-1)",
    "icechunk.ManifestSplittingConfig(None)",
    "icechunk.ManifestSplitCondition.or_conditions([icechunk.ManifestSplitCondition.path_matches("
    "'x'), icechunk.ManifestSplitCondition.name_matches('y')])",
    "icechunk.ManifestSplitCondition.and_conditions([icechunk.ManifestSplitCondition.AnyArray()])",
    'icechunk.ManifestSplitCondition.path_matches("a\'b") | icechunk.ManifestSplitCondition.'
    "AnyArray()",
    "[icechunk.ManifestSplitDimCondition.Axis(1), icechunk.ManifestSplitDimCondition."
    "DimensionName('a\"b'), icechunk.ManifestSplitDimCondition.Any()]",
    """icechunk.ManifestSplittingConfig.from_dict({
        icechunk.ManifestSplitCondition.or_conditions([
            icechunk.ManifestSplitCondition.name_matches('t"e\\\\mp'),
            icechunk.ManifestSplitCondition.AnyArray(),
        ]): {
            icechunk.ManifestSplitDimCondition.DimensionName("lon"): 3,
            icechunk.ManifestSplitDimCondition.Axis(0): 2,
            icechunk.ManifestSplitDimCondition.Any(): 10,
        }
    })""",
    "icechunk.CompressionAlgorithm.Zstd",
    "icechunk.CompressionAlgorithm()",
    "icechunk.ChecksumAlgorithm.Crc64Nvme",
    'icechunk.s3_store(region="us-east-1")',
    'icechunk.s3_store(region="us-east-1", s3_compatible=True)._0',
    "icechunk.local_filesystem_store('/data/x')",
    "icechunk.http_store({'a': 'b'}, {'h': 'v'})",
    "icechunk.http_store()",
    "icechunk.gcs_store({'a': 'b'})",
    "icechunk.ObjectStoreConfig.Azure({'account': 'a'})",
    "icechunk.ObjectStoreConfig.InMemory()",
    "icechunk.ObjectStoreConfig.Tigris(icechunk.S3Options(region='r'))",
    "icechunk.VirtualChunkContainer('http://h/', icechunk.http_store({'a': 'b'}), name='n')",
    "RETRY()",
]


@pytest.mark.parametrize("expression", REPR_CASES)
def test_reprs_and_strs_match_icechunk_2(both: Both, expression: str) -> None:
    both.run(f"RETRY = {RETRY_CONFIG}\nvalue = {expression}")
    ours, ref = both.run("repr(value), str(value)")
    assert ours.error is None and ref.error is None, (ours.error, ref.error)
    assert ours.value == ref.value


def test_reprs_are_executable() -> None:
    # Wherever the reference's repr is Python, evaluating ours builds an equal config. It is
    # not for bare enum members (``algorithm=Zstd``) and split sizes, whose dimension
    # conditions and ``any_array()`` print constructors that icechunk 2.3.0 does not have.
    namespace = {"icechunk": pyicechunk}
    for value in (
        pc.RepositoryConfig(
            inline_chunk_threshold_bytes=3,
            caching=pc.CachingConfig(num_chunk_refs=7),
            storage=pc.StorageSettings(storage_class="s", timeouts=pc.StorageTimeoutSettings(1)),
            manifest=pc.ManifestConfig(
                preload=pc.ManifestPreloadConfig(
                    preload_if=pc.ManifestPreloadCondition.num_refs(None, 5)
                    | pc.ManifestPreloadCondition.name_matches("t")
                ),
            ),
            repo_update_retries=pc.RepoUpdateRetryConfig(pc.StorageRetriesSettings(1)),
            virtual_chunk_containers={
                "s3://b/": pc.VirtualChunkContainer(
                    "s3://b/",
                    pc.s3_store(region="r", checksum_algorithm=pc.ChecksumAlgorithm.Sha1),
                    name="n",
                ),
                "file:///d/": pc.VirtualChunkContainer(
                    "file:///d/", pc.local_filesystem_store("/d")
                ),
            },
        ),
        pc.ObjectStoreConfig.InMemory(),
    ):
        assert eval(repr(value), namespace) == value


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
