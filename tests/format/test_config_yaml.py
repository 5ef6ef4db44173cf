"""config.yaml of spec-1 repositories: our codec against icechunk 2.3.0 and icechunk 1.1.21.

icechunk 2.3.0 writes the 2.x keys into spec-1 ``config.yaml``; so do we, to the byte. icechunk
1.1.21 (in this process) reads those files, ignoring the keys it does not know, as long as no
HTTP store has headers.
"""

from __future__ import annotations

import pathlib
from typing import Any

import icechunk as ic
import pytest
import yaml
from config import _configs, _plain
from config._configs import FULLY_SET, NAMES, build
from config._plain import plain
from config._reference import build_rich
from config._reference import plain as plain_1_1
from config.strategies import SAFE_TEXT, TEXT, configs, newline_regex_config
from hypothesis import HealthCheck, example, given, settings
from oracle import InProcess, Oracle, raises

import pyicechunk
import pyicechunk.config as pc
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.config_yaml import config_from_yaml, config_to_yaml

HELPERS = [pathlib.Path(m.__file__).read_text() for m in (_configs, _plain)]


def load_helpers(impl: InProcess | Oracle) -> None:
    for source in HELPERS:
        impl.run(source)


def new_1_1_repo(path: pathlib.Path, config: Any = None) -> Any:
    storage = ic.local_filesystem_storage(str(path))
    ic.Repository.create(storage, config)
    return storage


def tree(data: bytes) -> Any:
    """A YAML document as nested (tag, value) pairs, with mappings unordered and every
    spelling of null the same."""

    def walk(node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return node.tag, {walk(k): walk(v) for k, v in node.value}
        if isinstance(node, yaml.SequenceNode):
            return node.tag, tuple(walk(x) for x in node.value)
        return node.tag, None if node.tag == "tag:yaml.org,2002:null" else node.value

    return walk(yaml.compose(data.decode(), Loader=yaml.SafeLoader))


# --- against icechunk 2.3.0 ----------------------------------------------------------------

CREATE_SPEC1 = """
storage = icechunk.local_filesystem_storage(str(path))
repo = icechunk.Repository.create(storage, build(icechunk, name), spec_version=1)
repo.save_config()
plain(icechunk.Repository.fetch_config(storage))
"""

FETCH = """
storage = icechunk.local_filesystem_storage(str(path))
(plain(icechunk.Repository.fetch_config(storage)), plain(icechunk.Repository.open(storage).config))
"""

# The reference's container map is a hash map: only configs with at most one container have a
# predictable byte order.
ONE_OR_NO_CONTAINER = [n for n in NAMES if n not in ("full", "extremes")]


@pytest.mark.parametrize("name", ONE_OR_NO_CONTAINER)
def test_bytes_identical_to_icechunk2(ic2: Oracle, tmp_path: pathlib.Path, name: str) -> None:
    load_helpers(ic2)
    path = tmp_path / "repo"
    theirs = ic2.run(CREATE_SPEC1, path=path, name=name)
    expected = (path / "config.yaml").read_bytes()
    back = config_from_yaml(expected)
    assert plain(back) == theirs
    assert config_to_yaml(back) == expected
    if name in FULLY_SET:
        assert config_to_yaml(build(pyicechunk, name)) == expected


@pytest.mark.parametrize("name", ["full", "extremes"])
def test_many_containers_parse_the_same(ic2: Oracle, tmp_path: pathlib.Path, name: str) -> None:
    load_helpers(ic2)
    path = tmp_path / "repo"
    theirs = ic2.run(CREATE_SPEC1, path=path, name=name)
    written = (path / "config.yaml").read_bytes()
    assert plain(config_from_yaml(written)) == theirs
    assert tree(config_to_yaml(build(pyicechunk, name))) == tree(written)


@pytest.mark.parametrize("name", NAMES)
def test_icechunk2_reads_what_we_wrote(ic2: Oracle, tmp_path: pathlib.Path, name: str) -> None:
    load_helpers(ic2)
    path = tmp_path / "repo"
    ic2.run(
        "icechunk.Repository.create(icechunk.local_filesystem_storage(str(path)), "
        "spec_version=1)\nNone",
        path=path,
    )
    ours = build(pyicechunk, name)
    (path / "config.yaml").write_bytes(config_to_yaml(ours))
    fetched, opened = ic2.run(FETCH, path=path)
    assert fetched == plain(ours)
    if name in FULLY_SET:
        assert opened == plain(ours)


# Keys a newer icechunk might write, at several levels of the file 2.3.0 writes for "full",
# each inserted after the line it names.
UNKNOWN_KEYS = [
    ("inline_chunk_threshold_bytes: 100\n", "future_top: {a: [1, x, null], b: !tag {k: '5'}}\n"),
    ("storage:\n", "  new_knob: 5\n"),
    ("    name: s3c\n", "    extra: !variant {deep: [true]}\n"),
    ("      checksum_algorithm: crc32c\n", "      new_option: v\n"),
    ("    max_arrays_to_scan: 9\n", "    shiny: -1.5\n"),
    ("num_updates_per_repo_info_file: 77\n", "last_future: ~\n"),
]


def _keys(node: yaml.Node, path: str = "") -> set[str]:
    """Every key path of a YAML document (tags ignored)."""
    found: set[str] = set()
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            here = f"{path}.{k.value}"
            found |= {here} | _keys(v, here)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            found |= _keys(v, f"{path}[{i}]")
    return found


def test_open_and_save_keeps_every_key(ic2: Oracle, tmp_path: pathlib.Path) -> None:
    """icechunk 2.3.0 writes a rich spec-1 config; pyicechunk opens it and saves it; nothing is
    lost, icechunk 2.3.0 reads back the same config, unknown keys survive."""
    load_helpers(ic2)
    path = tmp_path / "repo"
    theirs = ic2.run(CREATE_SPEC1, path=path, name="full")
    text = (path / "config.yaml").read_text()
    for anchor, addition in UNKNOWN_KEYS:
        assert text.count(anchor) == 1, anchor
        text = text.replace(anchor, anchor + addition)
    (path / "config.yaml").write_text(text)
    before = _keys(yaml.compose(text))
    # The reference ignores the unknown keys.
    assert ic2.run(FETCH, path=path)[0] == theirs

    storage = pyicechunk.local_filesystem_storage(str(path))
    repo = pyicechunk.Repository.open(storage)
    assert plain(repo.config) == theirs
    repo.save_config()
    saved = (path / "config.yaml").read_bytes()
    assert _keys(yaml.compose(saved.decode())) == before
    assert tree(saved) == tree(text.encode())
    fetched, opened = ic2.run(FETCH, path=path)
    assert fetched == opened == theirs
    # A config edited and saved again still keeps them.
    edited = pyicechunk.Repository.open(
        storage, config=pc.RepositoryConfig(max_concurrent_decodes=9)
    )
    edited.save_config()
    again = (path / "config.yaml").read_bytes()
    assert _keys(yaml.compose(again.decode())) == before
    assert ic2.run(FETCH, path=path)[0]["max_concurrent_decodes"] == 9


def test_saving_what_icechunk2_wrote_changes_no_byte(ic2: Oracle, tmp_path: pathlib.Path) -> None:
    load_helpers(ic2)
    path = tmp_path / "repo"
    ic2.run(CREATE_SPEC1, path=path, name="one_container_5")
    written = (path / "config.yaml").read_bytes()
    pyicechunk.Repository.open(pyicechunk.local_filesystem_storage(str(path))).save_config()
    assert (path / "config.yaml").read_bytes() == written


BAD_DOCS: list[tuple[bytes, str, bool]] = [
    # (document, what the message names, whether icechunk 1.1.21 refuses it too)
    (b"inline_chunk_threshold_bytes: 70000\n", "inline_chunk_threshold_bytes", True),
    (b"inline_chunk_threshold_bytes: '12'\n", "inline_chunk_threshold_bytes", True),
    (b"compression: 5\n", "compression", True),
    (b"compression: {algorithm: lz4}\n", "compression.algorithm", True),
    (b"storage: {retries: {max_tries: 0}}\n", "storage.retries.max_tries", True),
    (b"storage: {unsafe_use_metadata: yes}\n", "storage.unsafe_use_metadata", True),
    (b"storage: {storage_class: [a]}\n", "storage.storage_class", True),
    (b"caching: {num_chunk_refs: -1}\n", "caching.num_chunk_refs", True),
    (b"manifest: {preload: {preload_if: !maybe x}}\n", "manifest.preload.preload_if", True),
    (
        b"manifest: {preload: {preload_if: !num_refs {from: 3, to: Unbounded}}}\n",
        "manifest.preload.preload_if.from",
        True,
    ),
    (
        b"manifest: {splitting: {split_sizes: [[any_array]]}}\n",
        "manifest.splitting.split_sizes[0]",
        True,
    ),
    (
        b"manifest: {splitting: {split_sizes: "
        b"[[any_array, [{condition: !Axis x, num_chunks: 1}]]]}}\n",
        "manifest.splitting.split_sizes[0][1][0].condition",
        True,
    ),
    (
        b"virtual_chunk_containers: {'s3://b/': {url_prefix: 's3://b/', store: !s3 {region: x}}}\n",
        "anonymous",
        True,
    ),
    (b"virtual_chunk_containers: {'s3://b/': {store: in_memory}}\n", "url_prefix", True),
    (
        b"virtual_chunk_containers: {'x/': {url_prefix: x/, store: !ftp {}}}\n",
        "virtual_chunk_containers.x/.store",
        True,
    ),
    (b"- a list\n", "a mapping of repository settings", True),
    (b"a: [unclosed\n", "cannot parse", True),
    (b"\xff\xfe", "cannot parse", True),
    # 2.x keys, which icechunk 1.1 ignores.
    (b"max_concurrent_decodes: many\n", "max_concurrent_decodes", False),
    (b"num_updates_per_repo_info_file: 65536\n", "num_updates_per_repo_info_file", False),
    (b"repo_update_retries: {default: {max_tries: 0}}\n", "default.max_tries", False),
    (b"storage: {timeouts: {read_timeout_ms: -1}}\n", "storage.timeouts.read_timeout_ms", False),
    (
        b"manifest: {virtual_chunk_location_compression: {compression_level: x}}\n",
        "manifest.virtual_chunk_location_compression.compression_level",
        False,
    ),
    (b"manifest: {preload: {max_arrays_to_scan: 1.5}}\n", "max_arrays_to_scan", False),
    (b"previous_file: [x]\n", "previous_file", False),
    (
        b"virtual_chunk_containers: {'s3://b/': {url_prefix: 's3://b/', store: !s3 "
        b"{anonymous: true, allow_http: false, checksum_algorithm: md5}}}\n",
        "checksum_algorithm",
        False,
    ),
]


@pytest.mark.parametrize(("doc", "named", "refused_by_1_1"), BAD_DOCS)
def test_malformed_known_keys_are_reported(
    ic2: Oracle, tmp_path: pathlib.Path, doc: bytes, named: str, refused_by_1_1: bool
) -> None:
    with pytest.raises(IcechunkError) as info:
        config_from_yaml(doc, key="repo/config.yaml")
    message = str(info.value)
    assert "repo/config.yaml" in message and named in message
    # The references refuse the same documents.
    path = tmp_path / "repo"
    ic2.run(
        "icechunk.Repository.create(icechunk.local_filesystem_storage(str(path)), "
        "spec_version=1)\nNone",
        path=path,
    )
    (path / "config.yaml").write_bytes(doc)
    with raises("IcechunkError"):
        ic2.run(
            "icechunk.Repository.fetch_config(icechunk.local_filesystem_storage(str(path)))",
            path=path,
        )
    if refused_by_1_1:
        with pytest.raises(ic.IcechunkError):
            ic.Repository.fetch_config(ic.local_filesystem_storage(str(path)))


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
    # The unknown keys are written back, with their values as YAML reads them.
    written = yaml.safe_load(config_to_yaml(cfg))
    assert written["future_key"] == {"a": 1}
    assert written["storage"]["retries"]["brand_new"] is True


def test_unknown_values_keep_their_types_and_tags() -> None:
    doc = (
        b"future: [1, '1', 1.5, .inf, true, 'true', null, x, !tagged {k: v}, !scalar 3]\n"
        b"storage: {new: {deeper: 0x10}}\n"
    )
    again = config_to_yaml(config_from_yaml(doc))
    assert config_to_yaml(config_from_yaml(again)) == again
    top = {k.value: v for k, v in yaml.compose(again.decode()).value}
    future = top["future"]
    assert [(n.tag, n.value) for n in future.value if isinstance(n, yaml.ScalarNode)] == [
        ("tag:yaml.org,2002:int", "1"),
        ("tag:yaml.org,2002:str", "1"),
        ("tag:yaml.org,2002:float", "1.5"),
        ("tag:yaml.org,2002:float", ".inf"),
        ("tag:yaml.org,2002:bool", "true"),
        ("tag:yaml.org,2002:str", "true"),
        ("tag:yaml.org,2002:null", "null"),
        ("tag:yaml.org,2002:str", "x"),
        ("!scalar", "3"),
    ]
    assert future.value[8].tag == "!tagged"
    assert yaml.safe_load(yaml.serialize(top["storage"]))["new"] == {"deeper": 16}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(TEXT))
def test_round_trip(cfg: pc.RepositoryConfig) -> None:
    data = config_to_yaml(cfg)
    assert config_from_yaml(data) == cfg
    assert config_to_yaml(config_from_yaml(data)) == data


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cfg=configs(SAFE_TEXT))
@example(cfg=newline_regex_config())
def test_icechunk2_reads_random_configs(
    ic2: Oracle, tmp_path: pathlib.Path, cfg: pc.RepositoryConfig
) -> None:
    path = tmp_path / "random"
    if not path.exists():
        load_helpers(ic2)
        ic2.run(
            "icechunk.Repository.create(icechunk.local_filesystem_storage(str(path)), "
            "spec_version=1)\nNone",
            path=path,
        )
    (path / "config.yaml").write_bytes(config_to_yaml(cfg))
    fetched = ic2.run(
        "plain(icechunk.Repository.fetch_config(icechunk.local_filesystem_storage(str(path))))",
        path=path,
    )
    assert fetched == plain(cfg)


# --- against icechunk 1.1.21 ---------------------------------------------------------------


def test_reading_what_icechunk1_wrote(tmp_path: pathlib.Path) -> None:
    theirs = build_rich(ic)
    storage = new_1_1_repo(tmp_path, theirs)
    ours = config_from_yaml((tmp_path / "config.yaml").read_bytes())
    assert plain_1_1(ours) == plain_1_1(theirs)
    assert plain_1_1(ours) == plain_1_1(ic.Repository.fetch_config(storage))
    # The reference writes map-like stores through a hash map; a None map becomes {}.
    assert plain_1_1(ours) == plain_1_1(build_rich(pc))


def test_icechunk1_reads_what_we_wrote(tmp_path: pathlib.Path) -> None:
    storage = new_1_1_repo(tmp_path)
    ours = build_rich(pc)
    (tmp_path / "config.yaml").write_bytes(config_to_yaml(ours))
    assert plain_1_1(ic.Repository.fetch_config(storage)) == plain_1_1(ours)
    assert plain_1_1(ic.Repository.open(storage).config) == plain_1_1(ours)


@pytest.mark.parametrize("name", ["partial", "full_without_containers", "one_container_0"])
def test_icechunk1_ignores_the_2x_keys(tmp_path: pathlib.Path, name: str) -> None:
    storage = new_1_1_repo(tmp_path)
    ours = build(pyicechunk, name)
    (tmp_path / "config.yaml").write_bytes(config_to_yaml(ours))
    assert plain_1_1(ic.Repository.fetch_config(storage)) == plain_1_1(ours)


def test_icechunk1_cannot_read_http_headers(tmp_path: pathlib.Path) -> None:
    # The one 2.x value 1.1 refuses: its HTTP store holds only string options.
    storage = new_1_1_repo(tmp_path)
    (tmp_path / "config.yaml").write_bytes(config_to_yaml(build(pyicechunk, "one_container_5")))
    with pytest.raises(ic.IcechunkError, match="headers"):
        ic.Repository.fetch_config(storage)


def test_icechunk1_is_equally_lenient(tmp_path: pathlib.Path) -> None:
    storage = new_1_1_repo(tmp_path)
    doc = (
        b"future_key: {a: 1}\nmax_concurrent_requests: 3\n"
        b"virtual_chunk_containers:\n  s3://b/:\n    url_prefix: s3://b/\n"
        b"    store: !s3 {anonymous: true, allow_http: false}\n"
    )
    (tmp_path / "config.yaml").write_bytes(doc)
    assert plain_1_1(ic.Repository.fetch_config(storage)) == plain_1_1(config_from_yaml(doc))


@pytest.fixture(scope="module")
def shared_1_1_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, Any]:
    path = tmp_path_factory.mktemp("hyp-repo")
    return path, new_1_1_repo(path)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cfg=configs(SAFE_TEXT, http_headers=False))
def test_icechunk1_reads_random_configs(
    shared_1_1_repo: tuple[pathlib.Path, Any], cfg: pc.RepositoryConfig
) -> None:
    path, storage = shared_1_1_repo
    (path / "config.yaml").write_bytes(config_to_yaml(cfg))
    assert plain_1_1(ic.Repository.fetch_config(storage)) == plain_1_1(cfg)
