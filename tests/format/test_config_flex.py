"""The spec-2 config FlexBuffer (``Repo.config``) against icechunk 2.3.0, both ways."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from config import _configs, _plain
from config._configs import FULLY_SET, NAMES, build
from config._plain import plain
from config.strategies import configs, newline_regex_config
from hypothesis import HealthCheck, example, given, settings
from oracle import InProcess, Oracle, raises

import pyicechunk
import pyicechunk.config as pc
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.config_flex import config_from_flexbuffer, config_to_flexbuffer
from pyicechunk.format.flexbuffers import decode_flexbuffer, encode_flexbuffer
from pyicechunk.format.repo_info import pack_repo_object, unpack_repo_object

HELPERS = [Path(m.__file__).read_text() for m in (_configs, _plain)]


def load_helpers(impl: InProcess | Oracle) -> None:
    """``build`` and ``plain`` in the implementation's namespace."""
    for source in HELPERS:
        impl.run(source)


def stored_config(repo: Path) -> bytes | None:
    return unpack_repo_object((repo / "repo").read_bytes()).config


def store_config(repo: Path, data: bytes) -> None:
    """Replace the config FlexBuffer in the repo object (everything else as it was)."""
    info = unpack_repo_object((repo / "repo").read_bytes())
    (repo / "repo").write_bytes(pack_repo_object(dataclasses.replace(info, config=data)))


CREATE = """
storage = icechunk.local_filesystem_storage(str(path))
icechunk.Repository.create(storage, build(icechunk, name))
plain(icechunk.Repository.fetch_config(storage))
"""

CREATE_DEFAULT = """
icechunk.Repository.create(icechunk.local_filesystem_storage(str(path)))
None
"""

READ_BACK = """
storage = icechunk.local_filesystem_storage(str(path))
repo = icechunk.Repository.open(storage)
(plain(icechunk.Repository.fetch_config(storage)), plain(repo.config))
"""


@pytest.mark.parametrize("name", NAMES)
def test_reading_what_icechunk2_stored(ic2: Oracle, tmp_path: Path, name: str) -> None:
    load_helpers(ic2)
    path = tmp_path / "repo"
    theirs = ic2.run(CREATE, path=path, name=name)
    stored = stored_config(path)
    if name == "default":
        # An all-unset config is not stored at all.
        assert stored is None and theirs is None
        return
    assert stored is not None
    ours = config_from_flexbuffer(stored)
    assert plain(ours) == theirs
    if name in FULLY_SET:
        assert ours == build(pyicechunk, name)
    # Written again, the same tree (byte layout, such as key-string order, may differ).
    assert decode_flexbuffer(config_to_flexbuffer(ours)) == decode_flexbuffer(stored)


@pytest.mark.parametrize("name", NAMES)
def test_icechunk2_reads_what_we_stored(ic2: Oracle, tmp_path: Path, name: str) -> None:
    load_helpers(ic2)
    path = tmp_path / "repo"
    ic2.run(CREATE_DEFAULT, path=path)
    ours = build(pyicechunk, name)
    store_config(path, config_to_flexbuffer(ours))
    fetched, opened = ic2.run(READ_BACK, path=path)
    assert fetched == plain(ours)
    if name in FULLY_SET:
        assert opened == plain(ours)
    # The reference saves it again: what it writes decodes to what it uses.
    ic2.run("repo.save_config()")
    data = stored_config(path)
    assert data is not None
    assert plain(config_from_flexbuffer(data)) == opened


def _with_unknown_keys(tree: dict[str, Any]) -> dict[str, Any]:
    """A config tree with keys of a newer writer at several levels."""
    tree = copy.deepcopy(tree)
    tree["from_the_future"] = {"a": [1, "x", None], "b": {"nested": True}}
    tree["storage"]["new_knob"] = 5
    tree["manifest"]["preload"]["shiny"] = -1.5
    tree["repo_update_retries"]["per_operation"] = {"commit": {"max_tries": 3}}
    container = tree["virtual_chunk_containers"]["s3://bucket/"]
    container["extra"] = "e"
    container["store"]["s3"]["new_option"] = "v"
    return tree


def test_unknown_keys_are_kept_and_ignored_by_both(ic2: Oracle, tmp_path: Path) -> None:
    cfg = build(pyicechunk, "full")
    tree = _with_unknown_keys(decode_flexbuffer(config_to_flexbuffer(cfg)))
    data = encode_flexbuffer(tree)
    read = config_from_flexbuffer(data)
    assert read == cfg  # unknown keys take no part in equality
    assert decode_flexbuffer(config_to_flexbuffer(read)) == tree  # and are written back
    # Edits and merges keep them.
    read.inline_chunk_threshold_bytes = 1
    merged = read.merge(pc.RepositoryConfig(storage=pc.StorageSettings(storage_class="X")))
    again = decode_flexbuffer(config_to_flexbuffer(merged))
    assert again["from_the_future"] == tree["from_the_future"]
    assert again["storage"]["new_knob"] == 5 and again["storage"]["storage_class"] == "X"
    # icechunk 2.3.0 ignores them.
    load_helpers(ic2)
    path = tmp_path / "repo"
    ic2.run(CREATE_DEFAULT, path=path)
    store_config(path, data)
    assert ic2.run(READ_BACK, path=path)[0] == plain(cfg)


BAD_TREES: list[tuple[str, Any, str]] = [
    ("u16 as string", {"inline_chunk_threshold_bytes": "nine"}, "inline_chunk_threshold_bytes"),
    ("u16 negative", {"max_concurrent_decodes": -1}, "max_concurrent_decodes"),
    ("u16 too big", {"num_updates_per_repo_info_file": 65536}, "num_updates_per_repo_info_file"),
    ("float for int", {"max_concurrent_requests": 1.0}, "max_concurrent_requests"),
    ("bool for int", {"max_concurrent_decodes": True}, "max_concurrent_decodes"),
    ("int for bool", {"storage": {"unsafe_use_metadata": 1}}, "storage.unsafe_use_metadata"),
    ("nonzero", {"repo_update_retries": {"default": {"max_tries": 0}}}, "default.max_tries"),
    (
        "u32 timeout",
        {"storage": {"timeouts": {"connect_timeout_ms": 2**32}}},
        "storage.timeouts.connect_timeout_ms",
    ),
    (
        "i32 level",
        {"manifest": {"virtual_chunk_location_compression": {"compression_level": 2**31}}},
        "compression_level",
    ),
    ("unit variant", {"compression": {"algorithm": "Zstd"}}, "compression.algorithm"),
    (
        "unknown variant",
        {"manifest": {"preload": {"preload_if": "maybe"}}},
        "manifest.preload.preload_if",
    ),
    (
        "missing bound",
        {"manifest": {"preload": {"preload_if": {"num_refs": {"from": "Unbounded"}}}}},
        "`to`",
    ),
    (
        "missing num_chunks",
        {"manifest": {"splitting": {"split_sizes": [["any_array", [{"condition": "Any"}]]]}}},
        "num_chunks",
    ),
    (
        "checksum spelling",
        {
            "virtual_chunk_containers": {
                "s3://b/": {
                    "url_prefix": "s3://b/",
                    "store": {
                        "s3": {
                            "anonymous": True,
                            "allow_http": False,
                            "checksum_algorithm": "Crc32",
                        }
                    },
                }
            }
        },
        "checksum_algorithm",
    ),
    (
        "missing required",
        {"virtual_chunk_containers": {"s3://b/": {"url_prefix": "s3://b/", "store": {"s3": {}}}}},
        "anonymous",
    ),
    (
        "headers not a map",
        {
            "virtual_chunk_containers": {
                "http://b/": {"url_prefix": "http://b/", "store": {"http": {"headers": "x"}}}
            }
        },
        "headers",
    ),
    ("previous_file int", {"previous_file": 5}, "previous_file"),
    ("root not a map", None, "<root>"),
]


@pytest.mark.parametrize(("case", "tree", "named"), BAD_TREES, ids=[c[0] for c in BAD_TREES])
def test_wrong_types_are_refused_by_both(
    ic2: Oracle, tmp_path: Path, case: str, tree: Any, named: str
) -> None:
    data = encode_flexbuffer(tree)
    with pytest.raises(IcechunkError) as info:
        config_from_flexbuffer(data, key="repo")
    message = str(info.value)
    assert "deserialization" in message and "repo" in message and named in message
    path = tmp_path / "repo"
    ic2.run(CREATE_DEFAULT, path=path)
    store_config(path, data)
    with raises("FormatError", kind="deserialization"):
        ic2.run("icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))", path=path)


@pytest.mark.parametrize("data", [b"", b"\x01", b"\xff\xff\xff", b"not a flexbuffer at all"])
def test_damaged_bytes_are_a_clear_error(data: bytes) -> None:
    with pytest.raises(IcechunkError, match="deserialization of repo: the config is not a valid"):
        config_from_flexbuffer(data)


def test_missing_keys_and_nulls_are_unset() -> None:
    assert config_from_flexbuffer(encode_flexbuffer({})) == pc.RepositoryConfig()
    cfg = config_from_flexbuffer(
        encode_flexbuffer({"inline_chunk_threshold_bytes": 77, "manifest": None, "storage": {}})
    )
    assert cfg == pc.RepositoryConfig(inline_chunk_threshold_bytes=77, storage=pc.StorageSettings())
    # S3 booleans other than the two required ones default to false.
    store = config_from_flexbuffer(
        encode_flexbuffer(
            {
                "virtual_chunk_containers": {
                    "s3://b/": {
                        "url_prefix": "s3://b/",
                        "store": {"s3": {"anonymous": True, "allow_http": False}},
                    }
                }
            }
        )
    ).virtual_chunk_containers
    expected = pc.ObjectStoreConfig.S3(pc.S3Options(anonymous=True))
    assert store == {"s3://b/": pc.VirtualChunkContainer("s3://b/", expected)}


def test_the_tree_is_serdes_shape() -> None:
    tree = decode_flexbuffer(config_to_flexbuffer(build(pyicechunk, "full")))
    # Every struct field present, unit variants as strings, newtype variants as one-key maps.
    assert tree["compression"] == {"algorithm": "zstd", "level": 5}
    assert tree["previous_file"] is None
    containers = tree["virtual_chunk_containers"]
    assert containers["file:///data/"]["store"] == {"local_file_system": "/data"}
    assert containers["http://x.org/a/"]["store"] == {"http": {}}
    assert containers["https://ex.com/"]["store"] == {
        "http": {"timeout": "5s", "headers": {"x-h": "'1'"}}
    }
    assert containers["s3://bucket/"]["store"]["s3"]["checksum_algorithm"] == "crc32c"
    rule = tree["manifest"]["splitting"]["split_sizes"][0]
    assert rule == [
        {"path_matches": {"regex": "temp.*"}},
        [
            {"condition": {"Axis": 0}, "num_chunks": 10},
            {"condition": {"DimensionName": "lat"}, "num_chunks": 5},
            {"condition": "Any", "num_chunks": 2},
        ],
    ]
    bounds = tree["manifest"]["preload"]["preload_if"]["or"][2]
    assert bounds == {"num_refs": {"from": {"Included": 1}, "to": {"Excluded": 10}}}
    assert json.dumps(tree)  # nothing but JSON-like values


def test_an_option_named_headers_cannot_be_saved() -> None:
    cfg = pc.RepositoryConfig()
    cfg.set_virtual_chunk_container(
        pc.VirtualChunkContainer("http://h/", pc.http_store({"headers": "x"}))
    )
    with pytest.raises(IcechunkError, match="option named 'headers'"):
        config_to_flexbuffer(cfg)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cfg=configs())
@example(cfg=newline_regex_config())
def test_icechunk2_reads_random_configs(
    ic2: Oracle, tmp_path: Path, cfg: pc.RepositoryConfig
) -> None:
    data = config_to_flexbuffer(cfg)
    assert config_from_flexbuffer(data) == cfg
    path = tmp_path / "random"
    if not (path / "repo").exists():
        load_helpers(ic2)
        ic2.run(CREATE_DEFAULT, path=path)
    store_config(path, data)
    fetched = ic2.run(
        "plain(icechunk.Repository.fetch_config(icechunk.local_filesystem_storage(str(path))))",
        path=path,
    )
    assert fetched == plain(cfg)
