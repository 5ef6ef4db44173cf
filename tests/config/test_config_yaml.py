"""config.yaml: our codec against icechunk 1.1.21, both ways, on a local filesystem repository."""

from __future__ import annotations

import pathlib
from types import ModuleType
from typing import Any

import icechunk as ic
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyicechunk.config as pc
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.config_yaml import config_from_yaml, config_to_yaml

from ._reference import build_rich, plain


def new_repo(path: pathlib.Path, config: Any = None) -> Any:
    storage = ic.local_filesystem_storage(str(path))
    ic.Repository.create(storage, config)
    return storage


def test_reading_what_the_reference_wrote(tmp_path: pathlib.Path) -> None:
    theirs = build_rich(ic)
    storage = new_repo(tmp_path, theirs)
    ours = config_from_yaml((tmp_path / "config.yaml").read_bytes())
    assert plain(ours) == plain(theirs)
    assert plain(ours) == plain(ic.Repository.fetch_config(storage))
    # The reference writes map-like stores through a hash map; a None map becomes {}.
    assert plain(ours) == plain(build_rich(pc))


def test_reference_reads_what_we_wrote(tmp_path: pathlib.Path) -> None:
    storage = new_repo(tmp_path)
    ours = build_rich(pc)
    (tmp_path / "config.yaml").write_bytes(config_to_yaml(ours))
    fetched = ic.Repository.fetch_config(storage)
    assert plain(fetched) == plain(ours)
    opened = ic.Repository.open(storage).config
    assert plain(opened) == plain(ours)


PARTIAL_CONFIGS = [
    lambda m: m.RepositoryConfig(),
    lambda m: build_rich(m, containers=False),
    lambda m: m.RepositoryConfig(compression=m.CompressionConfig(level=1)),
    lambda m: m.RepositoryConfig(storage=m.StorageSettings(unsafe_use_conditional_update=False)),
    lambda m: m.RepositoryConfig(caching=m.CachingConfig(num_chunk_refs=0)),
    lambda m: m.RepositoryConfig(
        manifest=m.ManifestConfig(splitting=m.ManifestSplittingConfig([]))
    ),
    lambda m: m.RepositoryConfig(manifest=m.ManifestConfig(preload=m.ManifestPreloadConfig())),
    lambda m: m.RepositoryConfig(virtual_chunk_containers={}),
    # Quoting and key-style corner cases where PyYAML and libyaml differ by default.
    lambda m: m.RepositoryConfig(
        storage=m.StorageSettings(
            storage_class="00", metadata_storage_class="yes", chunks_storage_class="multi\nline"
        ),
        virtual_chunk_containers={"": m.VirtualChunkContainer("s3://b/", m.s3_store(region="1.5"))},
    ),
]


def _one_container(m: ModuleType, store: Any, prefix: str) -> Any:
    cfg = m.RepositoryConfig(inline_chunk_threshold_bytes=0)
    cfg.set_virtual_chunk_container(m.VirtualChunkContainer(prefix, store))
    return cfg


SINGLE_CONTAINER = [
    lambda m: _one_container(m, m.s3_store(region="eu"), "s3://b/"),
    lambda m: _one_container(m, m.s3_store(s3_compatible=True), "s3://b/"),
    lambda m: _one_container(m, m.ObjectStoreConfig.Tigris(m.S3Options()), "s3://b/"),
    lambda m: _one_container(m, m.gcs_store(), "gs://b/"),
    lambda m: _one_container(
        m, m.storage.azure_store(account="a") if m is ic else m.azure_store(account="a"), "az://b/"
    ),
    lambda m: _one_container(m, m.http_store({"only": "one"}), "https://h/"),
    lambda m: _one_container(m, m.local_filesystem_store("/d"), "file:///d/"),
]


@pytest.mark.parametrize("build", PARTIAL_CONFIGS + SINGLE_CONTAINER)
def test_bytes_identical_to_reference(tmp_path: pathlib.Path, build: Any) -> None:
    storage = ic.local_filesystem_storage(str(tmp_path))
    repo = ic.Repository.create(storage, build(ic))
    repo.save_config()
    expected = (tmp_path / "config.yaml").read_bytes()
    assert config_to_yaml(build(pc)) == expected
    back = config_from_yaml(expected)
    assert config_to_yaml(back) == expected
    assert plain(back) == plain(ic.Repository.fetch_config(storage))


def test_many_containers_parse_the_same(tmp_path: pathlib.Path) -> None:
    # The reference's container map is a hash map, so only the parsed documents can match.
    new_repo(tmp_path, build_rich(ic))
    expected = tree((tmp_path / "config.yaml").read_bytes())
    assert tree(config_to_yaml(build_rich(pc))) == expected


def tree(data: bytes) -> Any:
    """A YAML document as nested (tag, value) pairs, with mappings unordered."""

    def walk(node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return node.tag, {walk(k): walk(v) for k, v in node.value}
        if isinstance(node, yaml.SequenceNode):
            return node.tag, tuple(walk(x) for x in node.value)
        return node.tag, node.value

    return walk(yaml.compose(data.decode(), Loader=yaml.SafeLoader))


def test_empty_missing_unknown_and_null() -> None:
    assert config_from_yaml(b"") == pc.RepositoryConfig()
    assert config_from_yaml(b"# only a comment\n") == pc.RepositoryConfig()
    assert config_from_yaml(b"null\n") == pc.RepositoryConfig()
    cfg = config_from_yaml(
        b"future_key: {a: 1}\ninline_chunk_threshold_bytes: 0x10\n"
        b"storage:\n  retries: {max_tries: 2, brand_new: true}\n  storage_class: ~\n"
        b"manifest: {splitting: {}}\ncaching: {}\n"
    )
    assert cfg == pc.RepositoryConfig(
        inline_chunk_threshold_bytes=16,
        storage=pc.StorageSettings(retries=pc.StorageRetriesSettings(max_tries=2)),
        manifest=pc.ManifestConfig(splitting=pc.ManifestSplittingConfig(None)),
        caching=pc.CachingConfig(),
    )


def test_reference_is_equally_lenient(tmp_path: pathlib.Path) -> None:
    storage = new_repo(tmp_path)
    doc = (
        b"future_key: {a: 1}\nmax_concurrent_requests: 3\n"
        b"virtual_chunk_containers:\n  s3://b/:\n    url_prefix: s3://b/\n"
        b"    store: !s3 {anonymous: true, allow_http: false}\n"
    )
    (tmp_path / "config.yaml").write_bytes(doc)
    assert plain(ic.Repository.fetch_config(storage)) == plain(config_from_yaml(doc))


BAD_DOCS = [
    (b"inline_chunk_threshold_bytes: 70000\n", "inline_chunk_threshold_bytes"),
    (b"inline_chunk_threshold_bytes: '12'\n", "inline_chunk_threshold_bytes"),
    (b"compression: 5\n", "compression"),
    (b"compression: {algorithm: lz4}\n", "compression.algorithm"),
    (b"storage: {retries: {max_tries: 0}}\n", "storage.retries.max_tries"),
    (b"storage: {unsafe_use_metadata: yes}\n", "storage.unsafe_use_metadata"),
    (b"storage: {storage_class: [a]}\n", "storage.storage_class"),
    (b"caching: {num_chunk_refs: -1}\n", "caching.num_chunk_refs"),
    (b"manifest: {preload: {preload_if: !maybe x}}\n", "manifest.preload.preload_if"),
    (
        b"manifest: {preload: {preload_if: !num_refs {from: 3, to: Unbounded}}}\n",
        "manifest.preload.preload_if.from",
    ),
    (b"manifest: {splitting: {split_sizes: [[any_array]]}}\n", "manifest.splitting.split_sizes[0]"),
    (
        b"manifest: {splitting: {split_sizes: "
        b"[[any_array, [{condition: !Axis x, num_chunks: 1}]]]}}\n",
        "manifest.splitting.split_sizes[0][1][0].condition",
    ),
    (
        b"virtual_chunk_containers: {'s3://b/': {url_prefix: 's3://b/', store: !s3 {region: x}}}\n",
        "anonymous",
    ),
    (b"virtual_chunk_containers: {'s3://b/': {store: in_memory}}\n", "url_prefix"),
    (
        b"virtual_chunk_containers: {'x/': {url_prefix: x/, store: !ftp {}}}\n",
        "virtual_chunk_containers.x/.store",
    ),
    (b"- a list\n", "a mapping of repository settings"),
    (b"a: [unclosed\n", "cannot parse"),
    (b"\xff\xfe", "cannot parse"),
]


@pytest.mark.parametrize(("doc", "named"), BAD_DOCS)
def test_malformed_known_keys_are_reported(tmp_path: pathlib.Path, doc: bytes, named: str) -> None:
    with pytest.raises(IcechunkError) as info:
        config_from_yaml(doc, key="repo/config.yaml")
    message = str(info.value)
    assert "repo/config.yaml" in message and named in message
    # The reference refuses the same documents.
    storage = new_repo(tmp_path)
    (tmp_path / "config.yaml").write_bytes(doc)
    with pytest.raises(ic.IcechunkError):
        ic.Repository.fetch_config(storage)


# --- round trips ---------------------------------------------------------------------------

SAFE_TEXT = st.one_of(
    st.sampled_from(
        ["", "yes", "null", "~", "1", "0x1", "007", "1e5", "a: b", "#x", "é", " x", "a\nb"]
    ),
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
        max_size=12,
    ),
)
TEXT = st.one_of(
    SAFE_TEXT, st.text(max_size=12).filter(lambda s: "\r" not in s and "\x85" not in s)
)


def uint(bits: int, low: int = 0) -> st.SearchStrategy[int]:
    return st.integers(low, 2**bits - 1)


def opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def configs(text: st.SearchStrategy[str]) -> st.SearchStrategy[pc.RepositoryConfig]:
    P, S, D = pc.ManifestPreloadCondition, pc.ManifestSplitCondition, pc.ManifestSplitDimCondition
    preload_cond = st.recursive(
        st.one_of(
            st.builds(P.path_matches, text),
            st.builds(P.name_matches, text),
            st.builds(P.num_refs, opt(uint(32)), opt(uint(32))),
            st.just(P.true()),
            st.just(P.false()),
        ),
        lambda inner: (
            st.builds(P.or_conditions, st.lists(inner, max_size=3))
            | st.builds(P.and_conditions, st.lists(inner, max_size=3))
        ),
        max_leaves=6,
    )
    split_cond = st.recursive(
        st.one_of(
            st.builds(S.path_matches, text), st.builds(S.name_matches, text), st.just(S.AnyArray())
        ),
        lambda inner: (
            st.builds(S.or_conditions, st.lists(inner, max_size=3))
            | st.builds(S.and_conditions, st.lists(inner, max_size=3))
        ),
        max_leaves=5,
    )
    dim = st.one_of(st.builds(D.Axis, uint(64)), st.builds(D.DimensionName, text), st.just(D.Any()))
    split_sizes = st.lists(
        st.tuples(split_cond, st.lists(st.tuples(dim, uint(32)), max_size=3)), max_size=3
    )
    s3_options = st.builds(
        pc.S3Options,
        opt(text),
        opt(text),
        st.booleans(),
        st.booleans(),
        st.booleans(),
        opt(uint(32)),
        st.booleans(),
    )
    str_map = st.dictionaries(text, text, max_size=3)
    store = st.one_of(
        st.builds(pc.ObjectStoreConfig.S3, s3_options),
        st.builds(pc.ObjectStoreConfig.S3Compatible, s3_options),
        st.builds(pc.ObjectStoreConfig.Tigris, s3_options),
        st.builds(pc.ObjectStoreConfig.Gcs, str_map),
        st.builds(pc.ObjectStoreConfig.Azure, str_map),
        st.builds(pc.ObjectStoreConfig.Http, str_map),
        st.builds(
            pc.ObjectStoreConfig.LocalFileSystem, st.sampled_from(["/data", "/a b/c", "rel"])
        ),
        st.just(pc.ObjectStoreConfig.InMemory()),
    )

    def container(
        prefix: str, s: pc.ObjectStoreConfig, name: str | None
    ) -> pc.VirtualChunkContainer:
        cont = pc.VirtualChunkContainer(prefix, s)  # type: ignore[arg-type]
        cont.name = name
        return cont

    containers = st.dictionaries(text, st.builds(container, text, store, opt(text)), max_size=3)
    return st.builds(
        pc.RepositoryConfig,
        opt(uint(16)),
        opt(uint(16)),
        opt(
            st.builds(
                pc.CompressionConfig, opt(st.just(pc.CompressionAlgorithm.Zstd)), opt(uint(8))
            )
        ),
        opt(uint(16)),
        opt(st.builds(pc.CachingConfig, *[opt(uint(64))] * 5)),
        opt(
            st.builds(
                pc.StorageSettings,
                opt(st.builds(pc.StorageConcurrencySettings, opt(uint(16, 1)), opt(uint(64, 1)))),
                opt(
                    st.builds(
                        pc.StorageRetriesSettings, opt(uint(16, 1)), opt(uint(32)), opt(uint(32))
                    )
                ),
                opt(st.booleans()),
                opt(st.booleans()),
                opt(st.booleans()),
                opt(text),
                opt(text),
                opt(text),
                opt(uint(64)),
            )
        ),
        opt(containers),
        opt(
            st.builds(
                pc.ManifestConfig,
                opt(st.builds(pc.ManifestPreloadConfig, opt(uint(32)), opt(preload_cond))),
                opt(st.builds(pc.ManifestSplittingConfig, opt(split_sizes))),
            )
        ),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(TEXT))
def test_round_trip(cfg: pc.RepositoryConfig) -> None:
    data = config_to_yaml(cfg)
    assert config_from_yaml(data) == cfg
    assert config_to_yaml(config_from_yaml(data)) == data


@pytest.fixture(scope="module")
def shared_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, Any]:
    path = tmp_path_factory.mktemp("hyp-repo")
    return path, new_repo(path)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cfg=configs(SAFE_TEXT))
def test_reference_reads_random_configs(
    shared_repo: tuple[pathlib.Path, Any], cfg: pc.RepositoryConfig
) -> None:
    path, storage = shared_repo
    (path / "config.yaml").write_bytes(config_to_yaml(cfg))
    assert plain(ic.Repository.fetch_config(storage)) == plain(cfg)
