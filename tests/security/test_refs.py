"""Ref names and ref files cannot lead outside the repository.

Names: every name is tried with both implementations on a local repository, and nothing outside
the repository directory may change; pyicechunk refuses every name that is not one plain path
component (and the empty name), icechunk 1.1.21 refuses those containing ``/``.

Symbolic links: pyicechunk never follows a link under ``refs/`` on the local filesystem (the
storage module says why). A linked ref is invisible to listings and any direct use of it raises;
nothing outside the repository is read or written through it. icechunk 1.1.21 follows such links;
these tests are pyicechunk's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import zarr
from security_helpers import one_line

import pyicechunk

# Names both implementations refuse: they hold a '/'.
SLASHED = ["a/b", "../x", "../../outside", "/abs", "x/", "/"]
# Names pyicechunk refuses as well (icechunk 1.1.21 accepts them, percent-encoding some on disk).
OURS_ONLY = ["", ".", "..", "a\\b", "..\\..\\outside", "a\x00b", "a\nb", "%2e%2e", "%2F", "a%2Fb"]


def _digest(root: Path, skip: Path | None = None) -> dict[str, str]:
    """Every path under ``root`` (outside ``skip``) and a digest of what it holds."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if skip is not None and (here == skip or skip in here.parents):
            dirnames.clear()
            continue
        for name in dirnames + filenames:
            path = here / name
            if path.is_symlink():
                out[str(path)] = "link:" + os.readlink(path)
            elif path.is_file():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                out[str(path)] = "dir"
    return out


def _new_repo(ic: ModuleType, tmp_path: Path) -> tuple[Any, Path, str]:
    # spec 1, as icechunk 1.1.21 writes: these tests are about the files under refs/
    path = tmp_path / "repo"
    spec = {"spec_version": 1} if ic is pyicechunk else {}
    repo = ic.Repository.create(ic.local_filesystem_storage(str(path)), **spec)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "ref.json").write_bytes((path / "refs" / "branch.main" / "ref.json").read_bytes())
    return repo, path, repo.lookup_branch("main")


@pytest.mark.parametrize("name", SLASHED + OURS_ONLY)
def test_ref_names_never_leave_the_repository(ic: ModuleType, tmp_path: Path, name: str) -> None:
    repo, path, sid = _new_repo(ic, tmp_path)
    before_outside = _digest(tmp_path, skip=path)
    before_repo = _digest(path)
    refused = ic.__name__ == "pyicechunk" or name in SLASHED
    for action in (repo.create_branch, repo.create_tag):
        if refused:
            with pytest.raises(ic.IcechunkError, match="invalid ref name"):
                action(name, sid)
        else:
            action(name, sid)
    assert _digest(tmp_path, skip=path) == before_outside
    if refused:
        assert _digest(path) == before_repo


def _uses(repo: Any, sid: str) -> list[Callable[[str], Any]]:
    return [
        repo.lookup_branch,
        repo.lookup_tag,
        repo.delete_branch,
        repo.delete_tag,
        lambda n: repo.reset_branch(n, sid),
        lambda n: repo.readonly_session(branch=n),
        lambda n: repo.readonly_session(tag=n),
        repo.writable_session,
    ]


@pytest.mark.parametrize("name", ["../../outside", "a/../../outside", "..\\..\\outside", "x\x00"])
def test_ref_lookups_never_leave_the_repository(ic: ModuleType, tmp_path: Path, name: str) -> None:
    repo, _, sid = _new_repo(ic, tmp_path)
    before = _digest(tmp_path)
    for use in _uses(repo, sid):
        if ic.__name__ == "pyicechunk" or "/" in name:
            with pytest.raises(ic.IcechunkError, match="invalid ref name"):
                use(name)
        else:
            with pytest.raises(ic.IcechunkError):
                use(name)
    assert _digest(tmp_path) == before


def test_deeply_nested_ref_json(ic: ModuleType, tmp_path: Path) -> None:
    _, path, _ = _new_repo(ic, tmp_path)
    ref = path / "refs" / "branch.main" / "ref.json"
    for damage in (b"[" * 100_000, b'{"snapshot":' * 100_000):
        ref.write_bytes(damage)
        with pytest.raises(ic.IcechunkError) as info:
            ic.Repository.open(ic.local_filesystem_storage(str(path))).lookup_branch("main")
        if ic.__name__ == "pyicechunk":
            assert "refs/branch.main/ref.json" in str(info.value)
            assert "nested too deeply" in str(info.value)


# --- symbolic links (pyicechunk's deliberate choice) -------------------------------------------

LINK_REFUSED = "refusing to follow the symbolic link"


def _linked_branch(tmp_path: Path) -> tuple[Any, Path, Path, str]:
    """A repository whose refs/branch.evil is a link to a directory outside holding a ref."""
    repo, path, sid = _new_repo(pyicechunk, tmp_path)
    outside = tmp_path / "outside"
    (path / "refs" / "branch.evil").symlink_to(outside, target_is_directory=True)
    return repo, path, outside, sid


def test_linked_ref_directory_is_neither_read_nor_written(tmp_path: Path) -> None:
    repo, _, outside, sid = _linked_branch(tmp_path)
    before = _digest(outside)
    assert "evil" not in repo.list_branches()
    for use in (repo.lookup_branch, repo.delete_branch, repo.writable_session):
        with pytest.raises(pyicechunk.IcechunkError, match=LINK_REFUSED):
            use("evil")
    with pytest.raises(pyicechunk.IcechunkError, match=LINK_REFUSED):
        repo.create_branch("evil", sid)
    assert _digest(outside) == before
    # the rest of the repository works as usual
    assert repo.list_branches() == {"main"}
    assert repo.lookup_branch("main") == sid


def test_linked_tag_directory_is_not_read(tmp_path: Path) -> None:
    repo, path, sid = _new_repo(pyicechunk, tmp_path)
    (path / "refs" / "tag.t").symlink_to(tmp_path / "outside", target_is_directory=True)
    assert repo.list_tags() == set()
    for use in (repo.lookup_tag, repo.delete_tag, lambda n: repo.readonly_session(tag=n)):
        with pytest.raises(pyicechunk.IcechunkError, match=LINK_REFUSED):
            use("t")
    with pytest.raises(pyicechunk.IcechunkError, match=LINK_REFUSED):
        repo.create_tag("t", sid)
    assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == ["ref.json"]


def test_linked_ref_file_is_not_read_and_a_commit_does_not_write_through_it(
    tmp_path: Path,
) -> None:
    repo, path, _ = _new_repo(pyicechunk, tmp_path)
    session = repo.writable_session("main")
    zarr.create_group(session.store, path="g")
    ref = path / "refs" / "branch.main" / "ref.json"
    ref.unlink()
    ref.symlink_to(tmp_path / "outside" / "ref.json")
    before = _digest(tmp_path / "outside")
    with pytest.raises(pyicechunk.IcechunkError, match=LINK_REFUSED):
        repo.lookup_branch("main")
    with pytest.raises(pyicechunk.IcechunkError, match=LINK_REFUSED) as info:
        session.commit("through a link")
    assert "ref.json" in one_line(info.value)
    assert _digest(tmp_path / "outside") == before
    assert "main" not in repo.list_branches()


def test_linked_refs_directory(tmp_path: Path) -> None:
    repo, path, sid = _new_repo(pyicechunk, tmp_path)
    moved = tmp_path / "outside" / "refs"
    shutil.move(path / "refs", moved)
    (path / "refs").symlink_to(moved, target_is_directory=True)
    before = _digest(tmp_path / "outside")
    for use in (repo.list_branches, repo.list_tags):
        with pytest.raises(pyicechunk.IcechunkError, match=LINK_REFUSED):
            use()
    with pytest.raises(pyicechunk.IcechunkError, match=LINK_REFUSED):
        repo.lookup_branch("main")
    with pytest.raises(pyicechunk.IcechunkError, match=LINK_REFUSED):
        repo.create_branch("dev", sid)
    assert _digest(tmp_path / "outside") == before
