"""Result types, their text forms, errors and configuration values (API-1.1 §7, §9, §10)."""

from __future__ import annotations

import pickle
import re
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import zarr
from parity import INITIAL_SNAPSHOT_ID, commit_array, differs, msg


def test_diff_sections_in_order(ic: ModuleType, repo: Any) -> None:
    session = repo.writable_session("main")
    root = zarr.create_group(session.store)
    root.create_group("old_group")
    root.create_group("kept_group")
    root.create_array("old_array", shape=(2,), chunks=(1,), dtype="i4")
    kept = root.create_array("kept_array", shape=(4,), chunks=(2,), dtype="i4")
    kept[:] = 1
    base = session.commit("base")

    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="r+")
    root.create_group("new_group")
    root.create_array("new_array", shape=(1,), dtype="i4")
    root["kept_group"].attrs["a"] = 1
    root["kept_array"].resize((6,))
    del root["old_group"]
    del root["old_array"]
    root["kept_array"][4:] = 2
    session.commit("everything")

    diff = repo.diff(from_snapshot_id=base, to_branch="main")
    assert diff.new_groups == {"/new_group"}
    assert diff.new_arrays == {"/new_array"}
    assert diff.updated_groups == {"/kept_group"}
    assert diff.updated_arrays == {"/kept_array"}
    assert diff.deleted_groups == {"/old_group"}
    assert diff.deleted_arrays == {"/old_array"}
    assert diff.updated_chunks == {"/kept_array": [[2]]}
    expected = (
        "Groups created:\n    /new_group\n\n"
        "Arrays created:\n    /new_array\n\n"
        "Group definitions updated:\n    /kept_group\n\n"
        "Array definitions updated:\n    /kept_array\n\n"
        "Groups deleted:\n    /old_group\n\n"
        "Arrays deleted:\n    /old_array\n\n"
        "Chunks updated:\n    /kept_array:\n        [2]\n"
    )
    assert str(diff) == expected
    assert repr(diff) == expected


def test_diff_chunk_truncation(ic: ModuleType, repo: Any) -> None:
    session = repo.writable_session("main")
    arr = zarr.create_array(session.store, name="a", shape=(12,), chunks=(1,), dtype="i4")
    arr[:] = np.arange(1, 13)
    text = str(session.status())
    chunk_lines = "".join(f"        [{i}]\n" for i in range(10))
    assert text == (
        "Groups created:\n    /\n\nArrays created:\n    /a\n\n"
        f"Chunks updated:\n    /a:\n{chunk_lines}        ... 2 more\n"
    )
    assert session.status().updated_chunks == {"/a": [[i] for i in range(12)]}


def test_diff_multiple_arrays_sorted(ic: ModuleType, repo: Any) -> None:
    session = repo.writable_session("main")
    root = zarr.create_group(session.store)
    for name in ("b", "a"):
        arr = root.create_array(name, shape=(2, 2), chunks=(1, 1), dtype="i4")
        arr[:] = 1
    status = session.status()
    assert list(status.updated_chunks) == ["/a", "/b"]
    assert status.updated_chunks["/a"] == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert status.new_arrays == {"/a", "/b"}
    assert "    /a:\n        [0, 0]\n" in str(status)
    assert str(status).index("    /a:") < str(status).index("    /b:")


def test_diff_overwrite_and_nested_groups(ic: ModuleType, repo: Any) -> None:
    commit_array(repo)
    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="r+")
    root.create_array("a", shape=(3,), dtype="f8", overwrite=True)
    root.create_group("g/h")
    status = session.status()
    assert "/a" in status.new_arrays
    assert "/a" in status.deleted_arrays
    assert {"/g", "/g/h"} <= status.new_groups


def test_diff_equality(ic: ModuleType, repo: Any) -> None:
    first = commit_array(repo)
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[0] = 9
    status = session.status()
    second = session.commit("c")
    assert repo.diff(from_snapshot_id=first, to_snapshot_id=second) == status
    empty = repo.readonly_session("main").status()
    assert str(empty) == ""
    assert empty != status
    assert empty.updated_chunks == {}
    assert empty.new_groups == set()


def test_snapshot_info_fields_and_repr(ic: ModuleType, repo: Any) -> None:
    sid = commit_array(repo, message="hello world commit", values=np.arange(1, 5, dtype="i4"))
    info = repo.lookup_snapshot(sid)
    assert isinstance(info.id, str)
    assert len(info.id) == 20
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{20}", info.id)
    assert info.parent_id == INITIAL_SNAPSHOT_ID
    assert info.message == "hello world commit"
    assert info.metadata == {}
    w = info.written_at
    expected_time = (
        f"datetime.datetime({w.year},{w.month},{w.day},{w.hour},{w.minute},{w.second},"
        f"{w.microsecond}, tzinfo=datetime.timezone.utc)"
    )
    root = repo.lookup_snapshot(INITIAL_SNAPSHOT_ID)
    if differs(ic, "reprs_2x"):
        assert (
            repr(info)
            == str(info)
            == (
                f"<icechunk.snapshots.SnapshotInfo>\nid: {sid}\nparent_id: {INITIAL_SNAPSHOT_ID}\n"
                f"written_at: {expected_time}\nmessage: hello world commit\nmetadata: {{}}\n"
            )
        )
        assert "\nparent_id: None\n" in repr(root)
        assert "\nmessage: Repository initialized\n" in repr(root)
    else:
        assert repr(info) == (
            f'SnapshotInfo(id="{sid}", parent_id={INITIAL_SNAPSHOT_ID}, '
            f'written_at={expected_time}, message="hello worl...")'
        )
        assert repr(root).startswith(
            f'SnapshotInfo(id="{INITIAL_SNAPSHOT_ID}", parent_id=None, written_at='
        )
        assert repr(root).endswith('message="Repository...")')
    assert info == repo.lookup_snapshot(sid)
    assert info != root


def test_manifest_file_info(ic: ModuleType, repo: Any) -> None:
    session = repo.writable_session("main")
    root = zarr.create_group(session.store)
    a = root.create_array("a", shape=(4,), chunks=(1,), dtype="i4")
    a[:] = np.arange(1, 5)
    b = root.create_array("b", shape=(2,), chunks=(1,), dtype="i4")
    b[:] = 7
    sid = session.commit("two arrays")
    manifests = repo.lookup_snapshot(sid).manifests
    assert sorted(m.num_chunk_refs for m in manifests) == [2, 4]
    for m in manifests:
        assert isinstance(m, ic.ManifestFileInfo)
        assert len(m.id) == 20
        assert m.size_bytes > 0
        if differs(ic, "reprs_2x"):
            assert repr(m) == (
                f"<icechunk.snapshots.ManifestFileInfo>\nid: {m.id}\n"
                f"size_bytes: {m.size_bytes}\nnum_chunk_refs: {m.num_chunk_refs}\n"
            )
        else:
            fields = f'id="{m.id}", size_bytes={m.size_bytes}, num_chunk_refs={m.num_chunk_refs}'
            assert repr(m) == f"ManifestFileInfo({fields})"


def test_icechunk_error_type(ic: ModuleType, repo: Any) -> None:
    err = ic.IcechunkError("something broke")
    assert err.message == "something broke"
    if differs(ic, "typed_errors"):
        assert repr(err) == 'icechunk.IcechunkError(message="something broke", kind="unknown")'
    else:
        assert repr(err) == "IcechunkError(message=something broke)"
    copy = pickle.loads(pickle.dumps(err))
    assert isinstance(copy, ic.IcechunkError)
    assert copy.message == "something broke"
    with pytest.raises(ic.IcechunkError) as info:
        repo.lookup_branch("missing")
    raised = info.value
    assert raised.message == str(raised)
    if differs(ic, "typed_errors"):
        assert raised.args == (str(raised), "ref-not-found")
        assert isinstance(raised, ic.RefNotFoundError) and isinstance(raised, KeyError)
    else:
        assert raised.args == (str(raised),)
    assert "ref not found `missing`" in str(raised).splitlines()[0]


def test_spec_version(ic: ModuleType) -> None:
    # icechunk 1.1 writes spec 1; pyicechunk, like icechunk 2.x, writes spec 2 by default and
    # reads both.
    expected = 2 if ic.__name__ == "pyicechunk" else 1
    assert ic.spec_version() == expected
    if ic.__name__ == "pyicechunk":
        assert [int(v) for v in ic.supported_spec_versions()] == [2, 1]


def test_repository_config_values(ic: ModuleType) -> None:
    cfg = ic.RepositoryConfig(inline_chunk_threshold_bytes=10, max_concurrent_requests=3)
    assert cfg == ic.RepositoryConfig(inline_chunk_threshold_bytes=10, max_concurrent_requests=3)
    assert cfg != ic.RepositoryConfig.default()
    assert ic.RepositoryConfig.default() == ic.RepositoryConfig()
    if differs(ic, "reprs_2x"):
        assert repr(ic.RepositoryConfig()).startswith(
            "icechunk.config.RepositoryConfig(\n    inline_chunk_threshold_bytes=None,\n"
        )
    else:
        assert repr(ic.RepositoryConfig()) == (
            "RepositoryConfig(inline_chunk_threshold_bytes=None, "
            "get_partial_values_concurrency=None, compression=None, caching=None, storage=None, "
            "manifest=None)"
        )
    merged = ic.RepositoryConfig(inline_chunk_threshold_bytes=1).merge(
        ic.RepositoryConfig(get_partial_values_concurrency=2)
    )
    assert (merged.inline_chunk_threshold_bytes, merged.get_partial_values_concurrency) == (1, 2)
    with pytest.raises(TypeError, match=msg("cannot be cast as 'CachingConfig'")):
        cfg.caching = 5
    with pytest.raises(OverflowError):
        cfg.inline_chunk_threshold_bytes = -1


def test_compression_config_repr_quirk(ic: ModuleType) -> None:
    # API-1.1 §40: the reference prints algorithm=None even when an algorithm is set; we fix it.
    cfg = ic.CompressionConfig(algorithm=ic.CompressionAlgorithm.Zstd, level=5)
    assert cfg.algorithm == ic.CompressionAlgorithm.Zstd
    assert cfg.level == 5
    if differs(ic, "compression_config_repr"):
        assert "algorithm=None" not in repr(cfg) and "level=5" in repr(cfg)
    else:
        assert "algorithm=None" in repr(cfg)
    assert repr(ic.CompressionConfig(level=5)).count("None") == 1
    assert ic.CompressionAlgorithm.default() == ic.CompressionAlgorithm.Zstd
