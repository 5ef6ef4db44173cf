"""The warning for committing or flushing a forked session without merging names the caller's
line, for the blocking methods and for the awaited ones."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import pyicechunk as ic


def _forked() -> ic.Session:
    session = ic.Repository.create(ic.in_memory_storage()).writable_session("main")
    session.fork()
    return session


def _assert_names_this_file(record: pytest.WarningsRecorder, verb: str) -> None:
    (warning,) = [w for w in record if "after forking" in str(w.message)]
    assert str(warning.message).startswith(f"{verb} a session after forking")
    assert warning.filename == __file__


def test_blocking_commit_and_flush_warn_at_the_callers_line() -> None:
    for verb, call in [
        ("Committing", lambda s: s.commit("x")),
        ("Flushing", lambda s: s.flush("x")),
    ]:
        session = _forked()
        with pytest.warns(UserWarning) as record, pytest.raises(ic.IcechunkError):
            call(session)
        _assert_names_this_file(record, verb)


def test_awaited_commit_and_flush_warn_at_the_callers_line() -> None:
    calls: list[tuple[str, Callable[[ic.Session], Coroutine[Any, Any, str]]]] = [
        ("Committing", lambda s: s.commit_async("x")),
        ("Flushing", lambda s: s.flush_async("x")),
    ]
    for verb, call in calls:
        session = _forked()

        async def run(
            session: ic.Session = session,
            call: Callable[[ic.Session], Coroutine[Any, Any, str]] = call,
        ) -> None:
            await call(session)

        with pytest.warns(UserWarning) as record, pytest.raises(ic.IcechunkError):
            asyncio.run(run())
        _assert_names_this_file(record, verb)
