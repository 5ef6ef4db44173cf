"""The ``pyicechunk`` command: ``demo`` and ``info``, run as real subprocesses."""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module
from pathlib import Path
from types import ModuleType

import icechunk
import pytest
import zarr


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


def check_demo_repository(path: Path, ic: ModuleType) -> None:
    repo = ic.Repository.open(ic.local_filesystem_storage(str(path)))
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


@pytest.mark.parametrize("hide_xarray", [False, True], ids=["xarray", "zarr-only"])
def test_demo_builds_a_repository(tmp_path: Path, hide_xarray: bool) -> None:
    path = tmp_path / "demo-repo"
    done = pyicechunk_cmd("demo", str(path), hide_xarray=hide_xarray)
    assert done.returncode == 0, done.stderr
    assert "Time travel" in done.stdout
    check_demo_repository(path, import_module("pyicechunk"))
    # Whatever wrote it, the reference implementation reads it.
    check_demo_repository(path, icechunk)


def test_demo_refuses_a_non_empty_path(tmp_path: Path) -> None:
    keep = tmp_path / "precious.txt"
    keep.write_text("do not delete")
    done = pyicechunk_cmd("demo", str(tmp_path))
    assert done.returncode == 1
    assert "is not empty" in done.stderr and "--overwrite" in done.stderr
    assert keep.read_text() == "do not delete"


def test_demo_overwrite_replaces_existing_content(tmp_path: Path) -> None:
    (tmp_path / "junk.txt").write_text("junk")
    done = pyicechunk_cmd("demo", str(tmp_path), "--overwrite")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "junk.txt").exists()
    check_demo_repository(tmp_path, import_module("pyicechunk"))


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
