"""ICECHUNK_LOG-style directives applied to the ``pyicechunk`` logger hierarchy."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator

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
