from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import pickle
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import icechunk
import pytest

import pyicechunk
from pyicechunk.exceptions import IcechunkError, ObjectNotFoundError
from pyicechunk.storage import (
    ObjectVersion,
    RangeByteRequest,
    Storage,
    StorageBackend,
    local_filesystem_storage,
)
from pyicechunk.storage.local import LocalFileSystemBackend
from pyicechunk.testing.faults import FaultPlan, FaultyBackend
from pyicechunk.testing.storage import StorageTests


class TestLocalFileSystemStorage(StorageTests):
    @pytest.fixture
    def storage_backend(self, tmp_path: Path) -> StorageBackend:
        return LocalFileSystemBackend(str(tmp_path / "repo"))


_T = TypeVar("_T")


def run(coro: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coro)


def test_storage_cannot_be_constructed_directly() -> None:
    with pytest.raises(TypeError) as info:
        Storage()
    assert str(info.value) == (
        "cannot create 'Storage' instances; use a constructor such as "
        "local_filesystem_storage(path)"
    )


def test_repr_and_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = local_filesystem_storage("rel/repo")
    expected = f"<icechunk.Storage>\ntype: local filesystem\npath: {tmp_path}/rel/repo\n"
    assert repr(storage) == expected
    assert repr(Storage.new_local_filesystem("rel/repo")) == expected
    # Pickles by absolute path: a copy made elsewhere still points at the same directory.
    monkeypatch.chdir("/")
    assert repr(pickle.loads(pickle.dumps(storage))) == expected


def test_objects_are_plain_files_at_their_keys(tmp_path: Path) -> None:
    backend = LocalFileSystemBackend(str(tmp_path / "repo"))
    assert not (tmp_path / "repo").exists()  # created on demand, not at construction
    run(backend.put("refs/branch.main/ref.json", b'{"snapshot":"1CECHNKREP0F1RSTCMT0"}'))
    run(backend.put_if_absent("snapshots/1CECHNKREP0F1RSTCMT0", b"snap"))
    ref = tmp_path / "repo/refs/branch.main/ref.json"
    assert json.loads(ref.read_bytes()) == {"snapshot": "1CECHNKREP0F1RSTCMT0"}
    assert (tmp_path / "repo/snapshots/1CECHNKREP0F1RSTCMT0").read_bytes() == b"snap"
    # No temporary or lock files are left anywhere.
    files = sorted(str(p.relative_to(tmp_path / "repo")) for p in (tmp_path / "repo").rglob("*"))
    assert files == [
        "refs",
        "refs/branch.main",
        "refs/branch.main/ref.json",
        "snapshots",
        "snapshots/1CECHNKREP0F1RSTCMT0",
    ]


def test_put_many_writes_small_and_large_objects(tmp_path: Path) -> None:
    # Small objects are written on the loop's thread, large ones (64 KiB and more) in workers.
    backend = LocalFileSystemBackend(str(tmp_path / "repo"))
    items = [(f"manifests/M{i:02d}", bytes([i]) * (10 if i % 3 else 100_000)) for i in range(9)]
    run(backend.put_many(items))
    run(backend.put_many([]))
    assert {k: (tmp_path / "repo" / k).read_bytes() for k, _ in items} == dict(items)
    assert sorted(p.name for p in (tmp_path / "repo/manifests").iterdir()) == [
        k[10:] for k, _ in items
    ]
    with pytest.raises(IcechunkError, match="reserved for temporary files"):
        run(backend.put_many([("manifests/ok", b"x"), ("manifests/M#12", b"y")]))
    assert not (tmp_path / "repo/manifests/ok").exists()  # every key is checked first


def test_cas_leaves_no_files_behind(tmp_path: Path) -> None:
    backend = LocalFileSystemBackend(str(tmp_path))
    run(backend.put("refs/branch.main/ref.json", b"a"))
    _, version = run(backend.get_versioned("refs/branch.main/ref.json"))
    assert run(backend.put_if_version("refs/branch.main/ref.json", b"b", version))
    assert not run(backend.put_if_version("refs/branch.main/ref.json", b"c", version))
    assert not run(backend.put_if_absent("refs/branch.main/ref.json", b"d"))
    assert os.listdir(tmp_path / "refs/branch.main") == ["ref.json"]


def test_temporary_names_are_hidden_and_reserved(tmp_path: Path) -> None:
    backend = LocalFileSystemBackend(str(tmp_path))
    run(backend.put("chunks/A", b"a"))
    # What a crash between writing and renaming leaves behind.
    (tmp_path / "chunks/A#123456").write_bytes(b"partial")
    (tmp_path / "chunks/B#").write_bytes(b"not temporary: no digits")
    (tmp_path / "chunks/C#12x").write_bytes(b"not temporary: not only digits")
    assert [i.key for i in run(backend.list(""))] == ["chunks/A", "chunks/B#", "chunks/C#12x"]
    with pytest.raises(IcechunkError, match="reserved for temporary files"):
        run(backend.put("chunks/D#42", b"x"))


def test_reference_ignores_our_temporary_names(tmp_path: Path) -> None:
    """A leftover temporary file under refs/ must not break the reference's ref listing."""
    path = str(tmp_path / "repo")
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(path))
    (tmp_path / "repo/refs/junk#8675309").write_bytes(b"leftover")
    assert icechunk.Repository.open(icechunk.local_filesystem_storage(path)).list_branches() == {
        "main"
    }
    assert repo.list_tags() == set()


def test_reads_reference_written_repository(tmp_path: Path) -> None:
    path = str(tmp_path / "repo")
    icechunk.Repository.create(icechunk.local_filesystem_storage(path))
    backend = LocalFileSystemBackend(path)
    keys = [info.key for info in run(backend.list(""))]
    assert keys == ["refs/branch.main/ref.json", "snapshots/1CECHNKREP0F1RSTCMT0"]
    ref = json.loads(run(backend.get("refs/branch.main/ref.json")))
    assert ref == {"snapshot": "1CECHNKREP0F1RSTCMT0"}
    header = run(backend.get("snapshots/1CECHNKREP0F1RSTCMT0", RangeByteRequest(0, 12)))
    assert header == "ICE🧊CHUNK".encode()


def test_directory_and_blocked_paths(tmp_path: Path) -> None:
    backend = LocalFileSystemBackend(str(tmp_path))
    run(backend.put("chunks/A", b"a"))
    with pytest.raises(ObjectNotFoundError):
        run(backend.get("chunks"))  # a directory is not an object
    with pytest.raises(ObjectNotFoundError):
        run(backend.get("chunks/A/below"))  # a path through a file
    assert run(backend.head("chunks")) is None
    assert not run(backend.exists("chunks/A/below"))
    run(backend.delete("chunks"))  # deleting a directory deletes nothing
    assert run(backend.exists("chunks/A"))
    with pytest.raises(
        IcechunkError, match=r"local filesystem storage error for object 'chunks/A/x'"
    ):
        run(backend.put("chunks/A/x", b"cannot create a directory where a file is"))


def test_list_rejects_escaping_prefix(tmp_path: Path) -> None:
    backend = LocalFileSystemBackend(str(tmp_path / "repo"))
    with pytest.raises(IcechunkError, match="invalid storage key"):
        run(backend.list("../"))


def test_missing_root_lists_nothing(tmp_path: Path) -> None:
    backend = LocalFileSystemBackend(str(tmp_path / "does/not/exist"))
    assert run(backend.list("")) == []
    assert run(backend.delete_many(["a", "b/c"])) == 0
    assert not run(backend.put_if_version("refs/branch.main/ref.json", b"x", ObjectVersion("0")))


def test_default_settings_match_reference_except_conditional_update(tmp_path: Path) -> None:
    ours = local_filesystem_storage(str(tmp_path)).default_settings()
    theirs = icechunk.local_filesystem_storage(str(tmp_path / "ref")).default_settings()
    for settings in (ours, theirs):
        assert settings.concurrency is not None and settings.retries is not None
    assert (
        ours.concurrency.max_concurrent_requests_for_object,
        ours.concurrency.ideal_concurrent_request_size,
    ) == (
        theirs.concurrency.max_concurrent_requests_for_object,
        theirs.concurrency.ideal_concurrent_request_size,
    )
    assert (
        ours.retries.max_tries,
        ours.retries.initial_backoff_ms,
        ours.retries.max_backoff_ms,
    ) == (
        theirs.retries.max_tries,
        theirs.retries.initial_backoff_ms,
        theirs.retries.max_backoff_ms,
    )
    assert ours.unsafe_use_metadata is theirs.unsafe_use_metadata is False
    # The reference turns conditional updates off on local disk; ours are real, so they stay on.
    assert theirs.unsafe_use_conditional_update is False
    assert ours.unsafe_use_conditional_update is None
    assert ours.unsafe_use_conditional_create is None


def _put_and_get_in_child(root: str) -> None:
    async def main() -> None:
        backend = LocalFileSystemBackend(root)
        await backend.put("chunks/FROM_CHILD", b"child")
        assert await backend.get("chunks/FROM_CHILD") == b"child"

    asyncio.run(main())


def test_works_in_a_forked_child_after_use_in_parent(tmp_path: Path) -> None:
    """A fork inherits the thread pool object without its threads; the child must not hang."""
    backend = LocalFileSystemBackend(str(tmp_path))

    async def fill() -> None:
        await asyncio.gather(*(backend.put(f"chunks/{i}", b"x") for i in range(8)))

    run(fill())
    child = multiprocessing.get_context("fork").Process(
        target=_put_and_get_in_child, args=(str(tmp_path),)
    )
    child.start()
    child.join(timeout=30)
    hung = child.is_alive()
    if hung:
        child.kill()
        child.join()
    assert (hung, child.exitcode) == (False, 0)


@pytest.mark.parametrize("count", [3, 40])
def test_make_durable_small_and_large_barriers(tmp_path: Path, count: int) -> None:
    # Below the threshold every file is fdatasynced; from it on, one syncfs per filesystem.
    backend = LocalFileSystemBackend(str(tmp_path / "repo"))
    keys = [f"chunks/C{i:04d}" for i in range(count)] + ["manifests/M0"]

    async def scenario() -> list[bytes]:
        for i, key in enumerate(keys):
            await backend.put(key, bytes([i % 256]) * 1000)
        await backend.make_durable(keys)
        return [await backend.get(key) for key in keys]

    assert run(scenario()) == [bytes([i % 256]) * 1000 for i in range(len(keys))]


@pytest.mark.parametrize("count", [3, 40])
def test_make_durable_of_a_missing_object_names_it(tmp_path: Path, count: int) -> None:
    backend = LocalFileSystemBackend(str(tmp_path / "repo"))
    run(backend.put("chunks/present", b"x"))
    keys = ["chunks/present"] * (count - 1) + ["elsewhere/absent"]
    with pytest.raises(IcechunkError, match="local filesystem storage error") as info:
        run(backend.make_durable(keys))
    assert "No such file or directory" in str(info.value)


def test_write_ids_are_extended_attributes_no_reader_sees(tmp_path: Path) -> None:
    """Conditional writes stamp ``user.icechunkwriteid``; listings and the reference see
    only the objects, and a ref the reference rewrites simply carries no stamp."""
    root = tmp_path / "repo"
    storage = local_filesystem_storage(str(root))
    repo = pyicechunk.Repository.create(storage, spec_version=1)  # icechunk 1.1.21 reads it
    tip = repo.lookup_branch("main")
    repo.create_tag("v1", tip)
    keys = ["refs/branch.main/ref.json", "refs/tag.v1/ref.json"]
    for key in keys:
        stamp = os.getxattr(root / key, "user.icechunkwriteid").decode()
        assert uuid.UUID(stamp).version == 4
        assert run(storage._backend._read_write_id(key)) == stamp
    on_disk = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert on_disk == [info.key for info in run(storage._backend.list(""))]
    theirs = icechunk.Repository.open(icechunk.local_filesystem_storage(str(root)))
    assert theirs.list_tags() == {"v1"}
    theirs.create_branch("dev", tip)
    assert run(storage._backend._read_write_id("refs/branch.dev/ref.json")) is None
    # a lost response to our next update is still recognised as our own write
    faulty = FaultyBackend(storage._backend, FaultPlan(rates={"put_if_version": 1.0}, lost_ack=1.0))
    data, version = run(faulty.get_versioned("refs/branch.dev/ref.json"))
    assert run(faulty.put_if_version("refs/branch.dev/ref.json", data, version))


def _count_renames(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    renamed: list[str] = []
    real = os.replace

    def replace(src: Any, dst: Any) -> None:
        renamed.append(os.path.basename(dst))
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    return renamed


@pytest.mark.parametrize("durable", [True, False])
def test_new_chunks_are_created_under_their_own_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durable: bool
) -> None:
    backend = LocalFileSystemBackend(str(tmp_path), durable=durable)
    renamed = _count_renames(monkeypatch)
    small, large = b"s" * 100, bytes(range(256)) * 4096  # on the loop's thread; in a worker
    run(backend.put("chunks/SMALL", small))
    run(backend.put("chunks/LARGE", large))
    assert renamed == []
    assert (tmp_path / "chunks/SMALL").read_bytes() == small
    assert run(backend.get("chunks/LARGE")) == large
    # Any other object still goes through a temporary file, renamed into place.
    run(backend.put("manifests/M", large))
    assert renamed == ["M"]
    # A chunk that exists already is replaced as a whole, like every other object.
    run(backend.put("chunks/LARGE", small))
    assert renamed == ["M", "LARGE"]
    assert run(backend.get("chunks/LARGE")) == small
    assert sorted(os.listdir(tmp_path / "chunks")) == ["LARGE", "SMALL"]


def test_a_failed_chunk_write_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = LocalFileSystemBackend(str(tmp_path))
    run(backend.put("chunks/FIRST", b"x"))
    real_write = os.write

    def write(fd: int, data: Any) -> int:
        real_write(fd, bytes(data[:10]))  # part of it lands, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", write)
    for size in (100, 1 << 20):
        with pytest.raises(IcechunkError, match="No space left") as info:
            run(backend.put("chunks/HALF", b"y" * size))
        assert info.value.kind == "io"
        assert os.listdir(tmp_path / "chunks") == ["FIRST"]
