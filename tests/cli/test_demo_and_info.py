"""The ``pyicechunk`` command: ``demo`` and ``info``, run as real subprocesses (and, for the
quick refusals of ``demo --overwrite``, through :func:`pyicechunk.cli.main` in this process)."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import import_module
from pathlib import Path
from types import ModuleType

import pytest
import zarr
from oracle import Oracle

import pyicechunk
from pyicechunk.cli import main
from pyicechunk.format.header import MAGIC


def pyicechunk_cmd(*args: str, hide_xarray: bool = False) -> subprocess.CompletedProcess[str]:
    if hide_xarray:
        code = (
            "import sys; sys.modules['xarray'] = None; "
            "from pyicechunk.cli import main; sys.exit(main(sys.argv[1:]))"
        )
        cmd = [sys.executable, "-c", code, *args]
    else:
        cmd = [sys.executable, "-m", "pyicechunk", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


# What a demo repository holds, as a snippet that pyicechunk and icechunk 2.3.0 (the oracle) run
# alike, with ``icechunk`` bound to the implementation and ``path`` to the repository.
CHECK_DEMO = """
repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))
assert {"main", "dev"} <= repo.list_branches()
assert "v1" in repo.list_tags()
dev_history = list(repo.ancestry(branch="dev"))
# initial snapshot + write + append + the attribute change on dev
assert len(dev_history) >= 4
main_history = list(repo.ancestry(branch="main"))
assert repo.lookup_tag("v1") == main_history[0].id
now = zarr.open_array(repo.readonly_session(branch="main").store, path="temperature")
first = zarr.open_array(
    repo.readonly_session(snapshot_id=main_history[-2].id).store, path="temperature"
)
assert now.shape[0] > first.shape[0]
assert now.shape[1:] == first.shape[1:]
dev_root = zarr.open_group(repo.readonly_session(branch="dev").store, mode="r")
main_root = zarr.open_group(repo.readonly_session(branch="main").store, mode="r")
assert dict(dev_root.attrs) != dict(main_root.attrs)
"""


def check_demo_repository(path: Path, ic: ModuleType = pyicechunk) -> None:
    exec(CHECK_DEMO, {"icechunk": ic, "zarr": zarr, "path": path})


@pytest.mark.parametrize("hide_xarray", [False, True], ids=["xarray", "zarr-only"])
def test_demo_builds_a_repository(tmp_path: Path, hide_xarray: bool, ic2: Oracle) -> None:
    path = tmp_path / "demo-repo"
    done = pyicechunk_cmd("demo", str(path), hide_xarray=hide_xarray)
    assert done.returncode == 0, done.stderr
    assert "Time travel" in done.stdout
    check_demo_repository(path, import_module("pyicechunk"))
    # The demo writes what Repository.create does, spec 2, and the reference reads it.
    storage = pyicechunk.local_filesystem_storage(str(path))
    assert pyicechunk.Repository.fetch_spec_version(storage) == 2
    ic2.run(CHECK_DEMO, path=path)


def test_demo_refuses_a_non_empty_path(tmp_path: Path) -> None:
    keep = tmp_path / "precious.txt"
    keep.write_text("do not delete")
    done = pyicechunk_cmd("demo", str(tmp_path))
    assert done.returncode == 1
    assert "is not empty" in done.stderr and "--overwrite" in done.stderr
    assert keep.read_text() == "do not delete"


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every entry under ``root``: file contents, None for directories, the target of links."""
    return {
        str(p.relative_to(root)): (
            os.readlink(p).encode() if p.is_symlink() else None if p.is_dir() else p.read_bytes()
        )
        for p in sorted(root.rglob("*"))
    }


def _overwrite_in_process(path: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    status = main(["demo", path, "--overwrite"])
    return status, capsys.readouterr().err


def _assert_refused(status: int, err: str, *needles: str) -> None:
    assert status == 1
    assert err.startswith("pyicechunk demo: error: ") and err.count("\n") == 1  # one line
    assert "--overwrite only replaces an Icechunk repository" in err
    for needle in needles:
        assert needle in err


def _demo_repository(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", str(path)]) == 0
    capsys.readouterr()


def test_demo_overwrite_refuses_a_foreign_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "junk.txt").write_text("junk")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.md").write_text("keep")
    before = _tree(tmp_path)
    status, err = _overwrite_in_process(str(tmp_path), capsys)
    _assert_refused(status, err, "is not an Icechunk repository", "junk.txt")
    assert _tree(tmp_path) == before


def test_demo_overwrite_of_the_current_directory_is_refused(tmp_path: Path) -> None:
    """The reported accident: ``demo --overwrite .`` among unrelated files deletes nothing."""
    (tmp_path / "thesis.tex").write_text("years of work")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "chunks").write_text("a file, not a repository's directory")
    before = _tree(tmp_path)
    cmd = [sys.executable, "-m", "pyicechunk", "demo", "--overwrite", "."]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    _assert_refused(done.returncode, done.stderr, ". is not an Icechunk repository")
    assert _tree(tmp_path) == before


def test_demo_overwrite_replaces_a_demo_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "demo-repo"
    _demo_repository(path, capsys)
    old = pyicechunk.Repository.open(pyicechunk.local_filesystem_storage(str(path)))
    old.create_tag("from-the-first-run", old.lookup_branch("main"))
    old.delete_tag("v1")  # leaves a tombstone
    old.delete_branch("dev")  # leaves an empty ref directory
    assert main(["demo", str(path), "--overwrite"]) == 0
    check_demo_repository(path, pyicechunk)
    new = pyicechunk.Repository.open(pyicechunk.local_filesystem_storage(str(path)))
    assert new.list_tags() == {"v1"}
    assert len(list(new.ancestry(branch="main"))) == 3  # a new repository: initial + 2 commits


def test_demo_overwrite_replaces_the_current_directory_holding_a_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _demo_repository(tmp_path, capsys)
    monkeypatch.chdir(tmp_path)
    assert main(["demo", ".", "--overwrite"]) == 0
    assert tmp_path.is_dir()
    check_demo_repository(tmp_path, pyicechunk)


def test_demo_overwrite_recognises_the_spec_2_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The tree icechunk 2.3.0 leaves after create + commit + tag + branch (FORMAT-V2 §1).
    header = MAGIC + b"ic-2.3.0".ljust(24) + bytes([2, 6, 1])
    (tmp_path / "repo").write_bytes(header + b"\x28\xb5\x2f\xfd")
    for folder, name in [
        ("overwritten", "repo.30707556389872.ZKXWZE2XG3JBNVQ00MR0"),
        ("manifests", "Z8JRNFP62WXN7XSCKJS0"),
        ("snapshots", "1CECHNKREP0F1RSTCMT0"),
        ("snapshots", "4G2HKE6C6TFZJB8ECC9G"),
        ("transactions", "1CECHNKREP0F1RSTCMT0"),
        ("chunks", "4G2HKE6C6TFZJB8ECC9G"),
    ]:
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / name).write_bytes(b"x")
    assert main(["demo", str(tmp_path), "--overwrite"]) == 0
    # Every object of the old tree is gone; what is there is the new spec-2 demo repository.
    assert (tmp_path / "repo").read_bytes() != header + b"\x28\xb5\x2f\xfd"
    assert not (tmp_path / "overwritten" / "repo.30707556389872.ZKXWZE2XG3JBNVQ00MR0").exists()
    for folder, name in [("manifests", "Z8JRNFP62WXN7XSCKJS0"), ("chunks", "4G2HKE6C6TFZJB8ECC9G")]:
        assert not (tmp_path / folder / name).exists()
    check_demo_repository(tmp_path, pyicechunk)


@pytest.mark.parametrize(
    ("intruder", "needle"),
    [
        ("README.md", "README.md is not part of one"),
        ("chunks/notes.txt", "notes.txt is not part of one"),
        ("refs/unexpected/ref.json", "unexpected is not part of one"),
        ("refs/branch.main/backup.json", "backup.json is not part of one"),
        ("snapshots/link", "link is not a plain file"),
    ],
)
def test_demo_overwrite_refuses_a_repository_holding_anything_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], intruder: str, needle: str
) -> None:
    repo = tmp_path / "repo"
    _demo_repository(repo, capsys)
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours")
    target = repo / intruder
    target.parent.mkdir(parents=True, exist_ok=True)
    if intruder.endswith("link"):
        target.symlink_to(outside)
    else:
        target.write_text("mine")
    before = _tree(tmp_path)
    status, err = _overwrite_in_process(str(repo), capsys)
    _assert_refused(status, err, needle)
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("kind", ["file", "half-created"])
def test_demo_overwrite_refuses_what_is_not_a_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    if kind == "file":
        path = tmp_path / "a-file"
        path.write_text("data")
        needle = "is not a directory"
    else:  # the names fit, but there is no repository: no main branch, no repo object
        path = tmp_path / "half"
        (path / "snapshots").mkdir(parents=True)
        (path / "snapshots" / "1CECHNKREP0F1RSTCMT0").write_bytes(b"x")
        needle = "neither refs/branch.main/ref.json (spec 1) nor a repo object (spec 2)"
    before = _tree(tmp_path)
    status, err = _overwrite_in_process(str(path), capsys)
    _assert_refused(status, err, needle)
    assert _tree(tmp_path) == before


def test_info_prints_versions() -> None:
    done = pyicechunk_cmd("info")
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(":  ", 1) for line in done.stdout.splitlines())
    assert lines["python"] == ".".join(map(str, sys.version_info[:3]))
    assert lines["pyicechunk"] == import_module("pyicechunk").__version__
    assert lines["zarr"] == zarr.__version__
    assert list(lines)[:3] == ["platform", "python", "pyicechunk"]


def test_no_command_is_a_usage_error() -> None:
    done = pyicechunk_cmd()
    assert done.returncode == 2
    assert "usage: pyicechunk" in done.stderr
