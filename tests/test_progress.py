"""Progress of long operations (pyicechunk.progress): shown when asked or interactive, silent
otherwise, and complete when the work is.

Repositories are real (local filesystem); the command line runs as a real process where what
matters is whether its stderr is a terminal, a pipe or a pseudo-terminal.
"""

from __future__ import annotations

import datetime as dt
import os
import pty
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import zarr

import pyicechunk
from pyicechunk import progress
from pyicechunk.cli import main

ARRAYS = 30  # one manifest and 4 chunks each, per commit


def build(path: Path, spec: int) -> pyicechunk.Repository:
    """main: ARRAYS arrays (ARRAYS manifests); a deleted branch rewrote them all, so that as
    many manifests and their chunks are unreachable."""
    repo = pyicechunk.Repository.create(
        pyicechunk.local_filesystem_storage(str(path)), spec_version=spec
    )
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    rng = np.random.default_rng(0)
    # Random doubles: chunks too big to be inlined into manifests, so they are objects too.
    for i in range(ARRAYS):
        root.create_array(f"a{i}", shape=(400,), chunks=(100,), dtype="f8")[:] = rng.random(400)
    base = session.commit("many arrays")
    repo.create_branch("scratch", base)
    session = repo.writable_session("scratch")
    for i in range(ARRAYS):
        zarr.open_array(session.store, path=f"a{i}", mode="r+")[:] = rng.random(400)
    session.commit("rewrite everything")
    repo.delete_branch("scratch")
    return repo


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """One built repository per spec version, copied by :func:`repo_at` for each test."""
    base = tmp_path_factory.mktemp("progress-templates")
    return {spec: _built(base / f"spec{spec}", spec) for spec in (1, 2)}


def _built(path: Path, spec: int) -> Path:
    build(path, spec)
    return path


def repo_at(templates: dict[int, Path], path: Path, spec: int) -> pyicechunk.Repository:
    """A fresh copy of the spec's template at ``path``, opened (old objects stay old: copies
    keep modification times)."""
    shutil.copytree(templates[spec], path)
    return pyicechunk.Repository.open(pyicechunk.local_filesystem_storage(str(path)))


def later() -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


@pytest.mark.parametrize("spec", [1, 2], ids=["spec1", "spec2"])
def test_gc_forced_on_reaches_completion(
    tmp_path: Path, spec: int, capsys: pytest.CaptureFixture[str], templates: dict[int, Path]
) -> None:
    repo = repo_at(templates, tmp_path / "repo", spec)
    capsys.readouterr()
    with progress.progress_mode("on") as shown:
        summary = repo.garbage_collect(later())
    assert summary.manifests_deleted == ARRAYS and summary.chunks_deleted == 4 * ARRAYS
    steps = {s.description: s for s in shown.steps}
    reading = steps["reading manifests"]
    # Every reachable manifest was read, and the bar says so.
    assert reading.operation == "garbage collection"
    assert reading.completed == reading.total == ARRAYS
    # Each kind of object deleted, batch by batch, to the last one.
    assert steps["deleting manifests"].completed == ARRAYS
    assert steps["deleting chunks"].completed == 4 * ARRAYS
    assert steps["deleting snapshots"].completed == 1
    for step in shown.steps:
        assert step.completed == step.total > 0, step
    err = strip_ansi(capsys.readouterr().err)
    assert re.search(rf"garbage collection: reading manifests\s.*\b{ARRAYS}/{ARRAYS}\b", err), err
    # The mode is restored: outside the block nothing is recorded or shown.
    assert progress.current_mode() == "auto" or os.environ.get(progress.ENV_VAR)


def test_not_a_terminal_prints_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    templates: dict[int, Path],
) -> None:
    repo = repo_at(templates, tmp_path / "repo", 2)
    monkeypatch.delenv(progress.ENV_VAR, raising=False)
    capsys.readouterr()
    assert progress.current_mode() == "auto"
    repo.garbage_collect(later())  # stderr is pytest's capture, not a terminal
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a0", mode="r+")[:] = 7
    session.commit("one more")
    repo.expire_snapshots(later())
    assert capsys.readouterr() == ("", "")
    # Switched off, even forcing nothing through the environment shows nothing.
    monkeypatch.setenv(progress.ENV_VAR, "off")
    with progress.progress_mode("off") as shown:
        repo.garbage_collect(later())
    assert shown.steps == [] and capsys.readouterr() == ("", "")


def test_cli_gc_progress_when_not_a_terminal(
    tmp_path: Path,
    templates: dict[int, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command line in this process, its stdout and stderr captured (not terminals)."""
    loc = str(tmp_path / "repo")
    repo_at(templates, tmp_path / "repo", 2)
    gc = ["-R", loc, "gc", "--older-than", "2100-01-01", "--dry-run"]

    def run(*args: str, env: str | None = None) -> tuple[int, str, str]:
        if env is None:
            monkeypatch.delenv(progress.ENV_VAR, raising=False)
        else:
            monkeypatch.setenv(progress.ENV_VAR, env)
        capsys.readouterr()
        status = main([*gc, *args])
        out, err = capsys.readouterr()
        return status, out, err

    # Not a terminal: nothing on stderr, only the summary on stdout.
    status, out, err = run()
    assert (status, err) == (0, "") and "Would delete" in out
    # Forced on (the option, or the environment): each step's final state, once, plain.
    for args, env in [(("--progress",), None), ((), "on")]:
        status, _, err = run(*args, env=env)
        assert status == 0 and "garbage collection: reading manifests" in err
        assert f"{ARRAYS}/{ARRAYS}" in err and "\x1b[" not in err
        assert err.count("reading manifests") == 1
    # --no-progress wins over the environment; the choice ends with the command.
    assert run("--no-progress", env="on")[::2] == (0, "")
    assert progress.current_mode() == "on"
    status, _, err = run(env="x")
    assert status == 1 and "PYICECHUNK_PROGRESS must be 'auto', 'on' or 'off'" in err
    assert err.count("\n") == 1


def test_a_terminal_gets_a_bar(tmp_path: Path, templates: dict[int, Path]) -> None:
    """Auto mode on a pseudo-terminal draws the bar (with the start-up delay set to 0 so that
    this quick collection is long enough to show)."""
    repo_at(templates, tmp_path / "repo", 2)
    script = textwrap.dedent(
        f"""
        import datetime as dt
        import pyicechunk
        from pyicechunk import progress
        progress.AUTO_DELAY = 0.0
        storage = pyicechunk.local_filesystem_storage({str(tmp_path / "repo")!r})
        repo = pyicechunk.Repository.open(storage)
        assert progress.current_mode() == "auto"
        repo.garbage_collect(dt.datetime(2100, 1, 1, tzinfo=dt.UTC), dry_run=True)
        """
    )
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != progress.ENV_VAR}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=follower, env=env
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=120) == 0
    os.close(leader)
    drawn = b"".join(chunks).decode()
    assert "\x1b[" in drawn  # drawn with terminal controls (cursor hidden, colours)
    assert f"{ARRAYS}/{ARRAYS}" in strip_ansi(drawn)


_FAKE_KERNEL = """
import builtins, sys
import IPython  # a kernel has it loaded
class ZMQInteractiveShell:  # what a Jupyter kernel's get_ipython() returns
    pass
builtins.get_ipython = lambda: ZMQInteractiveShell()
"""


@pytest.mark.parametrize("widgets", [True, False], ids=["ipywidgets", "no-ipywidgets"])
def test_jupyter_widget_or_a_clear_error(
    tmp_path: Path, widgets: bool, templates: dict[int, Path]
) -> None:
    repo_at(templates, tmp_path / "repo", 2)
    hide = "" if widgets else "sys.modules['ipywidgets'] = None\n"
    script = (
        _FAKE_KERNEL
        + hide
        + textwrap.dedent(
            f"""
        import datetime as dt, warnings
        import pyicechunk
        from pyicechunk import progress
        storage = pyicechunk.local_filesystem_storage({str(tmp_path / "repo")!r})
        repo = pyicechunk.Repository.open(storage)
        cutoff = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
        try:
            with progress.progress_mode("on") as shown:
                repo.garbage_collect(cutoff, dry_run=True)
        except ImportError as e:
            print("ImportError:", e)
        else:
            print("steps:", [(s.description, s.completed, s.total) for s in shown.steps])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            progress.AUTO_DELAY = 0.0
            repo.garbage_collect(cutoff, dry_run=True)  # auto
        print("warnings:", [str(w.message) for w in caught])
        """
        )
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    if widgets:
        # Rich drew into an ipywidgets Output (displayed as its repr outside a real kernel).
        assert "Output()" in out
        assert f"steps: [('reading manifests', {ARRAYS}, {ARRAYS})]" in out
        assert "warnings: []" in out
    else:
        assert "ImportError: progress bars in Jupyter need ipywidgets: pip install " in out
        assert "'pyicechunk[notebook]'" in out
        assert re.search(r"warnings: \[.progress bars in Jupyter need ipywidgets", out), out


def test_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(progress.ENV_VAR, raising=False)
    assert progress.current_mode() == "auto"
    for value, mode in [("ON", "on"), ("1", "on"), ("false", "off"), (" auto ", "auto")]:
        monkeypatch.setenv(progress.ENV_VAR, value)
        assert progress.current_mode() == mode
    monkeypatch.setenv(progress.ENV_VAR, "sometimes")
    with pytest.raises(ValueError, match="PYICECHUNK_PROGRESS must be 'auto', 'on' or 'off'"):
        progress.current_mode()
    try:
        progress.set_progress(False)  # code's choice wins over the environment
        assert progress.current_mode() == "off"
        with progress.progress_mode(True):
            assert progress.current_mode() == "on"
        assert progress.current_mode() == "off"
    finally:
        progress.set_progress(None)
    monkeypatch.setenv(progress.ENV_VAR, "on")
    assert progress.current_mode() == "on"
    with pytest.raises(ValueError, match="mode must be"):
        progress.set_progress("loud")
    # Outside an operation, advancing does nothing (the hooks are free when nobody looks).
    progress.advance("nothing", 5, total=5)


def test_the_other_long_operations_report_their_steps(
    tmp_path: Path, templates: dict[int, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = repo_at(templates, tmp_path / "v1", 1)
    with progress.progress_mode("on") as shown:
        # A rewrite is a commit: its manifest writes show under the rewrite's name.
        repo.rewrite_manifests("rewrite", branch="main")
        repo.expire_snapshots(later())
        upgraded = pyicechunk.upgrade_icechunk_repository(repo, dry_run=False)
        session = upgraded.writable_session("main")
        for i in range(ARRAYS):
            zarr.open_array(session.store, path=f"a{i}", mode="r+")[:1] = 5.0
        session.commit("touch every array")
    found = [(s.operation, s.description, s.completed, s.total) for s in shown.steps]
    # Spec 1 expires ref by ref (main is the only one); the migration counts the snapshots it
    # reads, however many the expiration left.
    assert found[:2] == [
        ("rewriting manifests", "writing manifests", ARRAYS, ARRAYS),
        ("expiration", "refs", 1, 1),
    ]
    assert found[2][:2] == ("upgrade to spec 2", "reading snapshots") and found[2][2] >= 2
    assert found[3] == ("commit", "writing manifests", ARRAYS, ARRAYS)
    assert len(found) == 4
    err = strip_ansi(capsys.readouterr().err)
    assert "rewriting manifests: writing manifests" in err and "commit: writing manifests" in err
