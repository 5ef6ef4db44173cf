"""ICECHUNK_LOG-style directives applied to the ``pyicechunk`` logger hierarchy."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyicechunk._logging import initialize_logs, set_logs_filter


@pytest.fixture(autouse=True)
def _restore_default_filter(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("ICECHUNK_LOG", raising=False)
    monkeypatch.delenv("ICECHUNK_NO_LOGS", raising=False)
    yield
    set_logs_filter(None)


def emitted(caplog: pytest.LogCaptureFixture, name: str, level: int) -> bool:
    """Log one record through ``name`` and report whether it got through the filter."""
    caplog.clear()
    logging.getLogger(name).log(level, "probe")
    return any(r.name == name and r.getMessage() == "probe" for r in caplog.records)


def test_default_is_warn(caplog: pytest.LogCaptureFixture) -> None:
    initialize_logs()
    assert emitted(caplog, "pyicechunk.session", logging.WARNING)
    assert emitted(caplog, "pyicechunk", logging.ERROR)
    assert not emitted(caplog, "pyicechunk.session", logging.INFO)


@pytest.mark.parametrize(
    ("directive", "passes", "blocked"),
    [
        ("trace", 5, None),
        ("debug", logging.DEBUG, 5),
        ("info", logging.INFO, logging.DEBUG),
        ("warn", logging.WARNING, logging.INFO),
        ("ERROR", logging.ERROR, logging.WARNING),
        ("off", None, logging.CRITICAL),
        ("3", logging.INFO, logging.DEBUG),
        ("icechunk=debug,info", logging.DEBUG, 5),
        ("pyicechunk=debug", logging.DEBUG, 5),
        ("icechunk=error,trace", logging.ERROR, logging.WARNING),
        ("zarr=debug", None, logging.CRITICAL),
    ],
)
def test_levels(
    caplog: pytest.LogCaptureFixture, directive: str, passes: int | None, blocked: int | None
) -> None:
    set_logs_filter(directive)
    if passes is not None:
        assert emitted(caplog, "pyicechunk.storage", passes)
    if blocked is not None:
        assert not emitted(caplog, "pyicechunk.storage", blocked)


def test_submodule_target_configures_only_that_logger(caplog: pytest.LogCaptureFixture) -> None:
    set_logs_filter("icechunk::session=debug,warn")
    assert emitted(caplog, "pyicechunk.session", logging.DEBUG)
    assert emitted(caplog, "pyicechunk.session.rebase", logging.DEBUG)
    assert not emitted(caplog, "pyicechunk.storage", logging.INFO)
    # A later filter that does not name the submodule undoes the earlier setting.
    set_logs_filter("warn")
    assert not emitted(caplog, "pyicechunk.session", logging.DEBUG)


def test_none_rereads_environment(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_logs_filter("error")
    assert not emitted(caplog, "pyicechunk", logging.INFO)
    monkeypatch.setenv("ICECHUNK_LOG", "icechunk=info")
    set_logs_filter(None)
    assert emitted(caplog, "pyicechunk", logging.INFO)
    assert not emitted(caplog, "pyicechunk", logging.DEBUG)


def test_invalid_directive_is_reported_not_raised(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    set_logs_filter("icechunk=loud,debug")
    err = capsys.readouterr().err
    assert "ignoring `icechunk=loud`: error parsing level filter" in err
    # The valid part still applies.
    assert emitted(caplog, "pyicechunk", logging.DEBUG)


def test_records_reach_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    set_logs_filter("info")
    logging.getLogger("pyicechunk.repository").info("opened repository at /tmp/x")
    logging.getLogger("pyicechunk.repository").debug("not this one")
    err = capsys.readouterr().err
    assert "INFO pyicechunk.repository: opened repository at /tmp/x" in err
    assert "not this one" not in err


def test_handler_is_added_once() -> None:
    for _ in range(3):
        initialize_logs()
        set_logs_filter("debug")
    logger = logging.getLogger("pyicechunk")
    own = [h for h in logger.handlers if type(h).__module__ == "pyicechunk._logging"]
    assert len(own) == 1


def _stderr_of_child(env: dict[str, str]) -> str:
    code = (
        "import logging; from pyicechunk._logging import initialize_logs; initialize_logs(); "
        "logging.getLogger('pyicechunk.x').debug('debug-line'); "
        "logging.getLogger('pyicechunk.x').warning('warn-line')"
    )
    # The autouse fixture removed any ICECHUNK_LOG of the calling environment.
    env = {**os.environ, **env}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stderr


def test_environment_variable_in_a_fresh_process() -> None:
    err = _stderr_of_child({"ICECHUNK_LOG": "icechunk=debug"})
    assert "debug-line" in err and "warn-line" in err
    err = _stderr_of_child({"ICECHUNK_LOG": "error"})
    assert "debug-line" not in err and "warn-line" not in err


def test_no_logs_variable_leaves_logging_alone() -> None:
    err = _stderr_of_child({"ICECHUNK_NO_LOGS": "1", "ICECHUNK_LOG": "debug"})
    # No handler of ours: Python's last-resort handler prints the bare warning only.
    assert err.strip() == "warn-line"


# -- records of repository operations ----------------------------------------------------------

SCENARIO = """
import sys, zarr, pyicechunk as icechunk
repo = icechunk.Repository.create(icechunk.local_filesystem_storage(sys.argv[1]), spec_version=2)
session = repo.writable_session("main")
zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i4")[:] = 1
session.commit("first")
"""

EXPECTED = (
    "DEBUG pyicechunk.repository: Creating Repository",
    "DEBUG pyicechunk.session: Writable session created, branch_name: 'main'",
    "INFO pyicechunk.session.core: Commit started, branch_name: 'main'",
    "INFO pyicechunk.session.core: Commit done, branch_name: 'main', new_snapshot_id: ",
    "DEBUG pyicechunk.asset_manager: Writing manifest, id: ",
    "DEBUG pyicechunk.repo_state.repo_object: Writing repo info, size_bytes: ",
    "DEBUG pyicechunk.repo_state.repo_object: Repo info object updated successfully, attempts: 1",
)


def _run_scenario(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ICECHUNK_")}
    return subprocess.run(
        [sys.executable, "-c", SCENARIO, str(tmp_path / "repo")],
        env={**full, **env},
        capture_output=True,
        text=True,
        check=True,
    )


def test_debug_records_of_create_session_and_commit_go_to_stderr(tmp_path: Path) -> None:
    done = _run_scenario(tmp_path, {"ICECHUNK_LOG": "debug"})
    assert done.stdout == ""
    for expected in EXPECTED:
        assert expected in done.stderr, expected
    # The reference's line shape: two spaces, an RFC 3339 UTC timestamp, level, target.
    first = done.stderr.splitlines()[0]
    assert re.fullmatch(
        r"  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z DEBUG pyicechunk\.repository: "
        r"Creating Repository",
        first,
    ), first


def test_log_to_stdout(tmp_path: Path) -> None:
    done = _run_scenario(tmp_path, {"ICECHUNK_LOG": "debug", "ICECHUNK_LOG_TO_STDOUT": "1"})
    assert "pyicechunk" not in done.stderr
    for expected in EXPECTED:
        assert expected in done.stdout, expected


def test_an_empty_log_to_stdout_counts_as_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = logging.getLogger("pyicechunk")
    ours = [h for h in logger.handlers if type(h).__module__ == "pyicechunk._logging"]
    for handler in ours:  # the handler picks its stream when it is made, at import
        logger.removeHandler(handler)
    try:
        monkeypatch.setenv("ICECHUNK_LOG_TO_STDOUT", "")
        set_logs_filter("info")
        logging.getLogger("pyicechunk.x").info("to stdout")
        out, err = capsys.readouterr()
        assert "INFO pyicechunk.x: to stdout" in out and err == ""
    finally:
        for handler in [h for h in logger.handlers if type(h).__module__ == "pyicechunk._logging"]:
            logger.removeHandler(handler)
        for handler in ours:
            logger.addHandler(handler)


def test_info_shows_commits_and_not_debug_records(caplog: pytest.LogCaptureFixture) -> None:
    import zarr

    import pyicechunk as ic

    set_logs_filter("icechunk=info")
    repo = ic.Repository.create(ic.in_memory_storage(), spec_version=2)
    session = repo.writable_session("main")
    zarr.create_group(session.store)
    session.commit("one")
    seen = [(r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("pyicechunk")]
    assert next(m for _, m in seen if m.startswith("Commit")).startswith("Commit started")
    assert all(level >= logging.INFO for level, _ in seen)


def _records(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith(name)]


def test_rebase_steps_and_manifest_loads(caplog: pytest.LogCaptureFixture) -> None:
    import numpy as np
    import zarr

    import pyicechunk as ic

    set_logs_filter("icechunk=debug")
    repo = ic.Repository.create(ic.in_memory_storage(), spec_version=2)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4,), chunks=(1,), dtype="i4")[:] = 0
    session.commit("base")
    ours, theirs = repo.writable_session("main"), repo.writable_session("main")
    zarr.open_array(theirs.store, path="a", mode="r+")[0] = 1
    theirs.commit("theirs")
    zarr.open_array(ours.store, path="a", mode="r+")[3] = 2
    caplog.clear()
    ours.commit("ours", rebase_with=ic.ConflictDetector())
    messages = _records(caplog, "pyicechunk.session")
    assert any(m.startswith("Branch moved during commit, rebasing") for m in messages)
    assert any(m.startswith("Rebasing, branch_name: 'main'") for m in messages)
    caplog.clear()
    reopened = ic.Repository.open(repo.storage)
    np.testing.assert_array_equal(
        zarr.open_array(reopened.readonly_session("main").store, path="a")[:], [1, 0, 0, 2]
    )
    assert any("file_type: MANIFEST" in m for m in _records(caplog, "pyicechunk.asset_manager"))
    assert any(m == "Opening Repository" for m in _records(caplog, "pyicechunk.repository"))


def test_chunk_requests_at_trace(caplog: pytest.LogCaptureFixture) -> None:
    import numpy as np
    import zarr

    import pyicechunk as ic

    repo = ic.Repository.create(ic.in_memory_storage(), spec_version=2)
    session = repo.writable_session("main")
    arr = zarr.create_array(session.store, name="a", shape=(2000,), chunks=(1000,), dtype="i8")
    set_logs_filter("icechunk=debug")
    noise = np.random.default_rng(5).integers(0, 2**62, 2000)
    arr[:] = noise  # incompressible 8000-byte chunks: native, not inlined
    session.commit("at debug")
    assert not any("chunk," in m for m in _records(caplog, "pyicechunk.asset_manager"))
    set_logs_filter("trace")
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[:] = noise + 1
    session.commit("at trace")
    assert zarr.open_array(repo.readonly_session("main").store, path="a")[0] == noise[0] + 1
    messages = _records(caplog, "pyicechunk.asset_manager")
    assert sum(m.startswith("Writing chunk, id: ") for m in messages) == 2
    assert sum(m.startswith("Downloading chunk, key: chunks/") for m in messages) >= 1


def test_small_caches_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    import zarr

    import pyicechunk as ic

    repo = ic.Repository.create(ic.in_memory_storage(), spec_version=2)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(8,), chunks=(1,), dtype="i4")[:] = 1
    session.commit("eight chunks")
    config = ic.RepositoryConfig(caching=ic.CachingConfig(num_chunk_refs=6, num_snapshot_nodes=5))
    small = ic.Repository.open(repo.storage, config=config)
    caplog.clear()
    for _ in range(2):
        zarr.open_array(small.readonly_session("main").store, path="a")[:]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    manifest = [w for w in warnings if w.startswith("A manifest with 8 chunk references")]
    assert len(manifest) == 1 and "num_chunk_refs" in manifest[0] and "keep 6" in manifest[0]
    snapshot = [w for w in warnings if w.startswith("A snapshot with 2 nodes")]
    assert len(snapshot) == 1 and "num_snapshot_nodes" in snapshot[0]
    # A cache of the default size says nothing.
    caplog.clear()
    zarr.open_array(ic.Repository.open(repo.storage).readonly_session("main").store, path="a")[:]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_unknown_targets_are_reported(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    set_logs_filter("zarr=debug,icechunk::no_such_module=trace,icechunk::session=debug,info")
    err = capsys.readouterr().err
    assert "ignoring the target of `zarr=debug`" in err
    assert "`icechunk::no_such_module`" in err
    assert "icechunk::session" not in err.replace("such as `icechunk::session`", "")
    assert emitted(caplog, "pyicechunk.session", logging.DEBUG)
    # The reference's storage crates name our storage package.
    set_logs_filter("icechunk_storage=debug,warn")
    assert "ignoring" not in capsys.readouterr().err
    assert emitted(caplog, "pyicechunk.storage", logging.DEBUG)


def test_no_secret_in_any_record(
    caplog: pytest.LogCaptureFixture, s3_server: Any, s3_bucket: str
) -> None:
    import zarr

    import pyicechunk as ic

    secrets = ("AKIALOGTESTKEY000001", "s3cr3t-l0g-test-value", "t0ken-l0g-test-value")
    storage = ic.s3_storage(
        bucket=s3_bucket,
        prefix="logged",
        endpoint_url=s3_server.endpoint_url,
        region=s3_server.region,
        access_key_id=secrets[0],
        secret_access_key=secrets[1],
        session_token=secrets[2],
        allow_http=True,
        force_path_style=True,
    )
    set_logs_filter("trace")
    repo = ic.Repository.create(storage, spec_version=2)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i4")[:] = 3
    session.commit("over S3")
    again = ic.Repository.open(storage)
    zarr.open_array(again.readonly_session("main").store, path="a")[:]
    logged = [caplog.handler.format(r) for r in caplog.records]
    assert any("Commit done" in line for line in logged)
    for line in logged:
        for secret in secrets:
            assert secret not in line


class _Terminal(io.StringIO):
    """A text stream that says it is a terminal, as a console's stderr does."""

    def isatty(self) -> bool:
        return True


def test_line_shape_levels_source_and_colours(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    set_logs_filter("warn")
    logging.getLogger("pyicechunk.storage").warning("careful")
    line, at = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"  \S+Z  WARN pyicechunk\.storage: careful", line), line
    assert re.fullmatch(r"    at .*test_logging\.py:\d+", at), at
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    logging.getLogger("pyicechunk.storage").error("broken")
    assert "\x1b[31mERROR\x1b[0m pyicechunk.storage: broken" in terminal.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    logging.getLogger("pyicechunk.storage").error("plain")
    assert " ERROR pyicechunk.storage: plain" in terminal.getvalue()
