"""pytest fixtures for scenarios that run on pyicechunk and on icechunk 2.3.0.

Imported into ``tests/conftest.py``, so every test can ask for them:

- ``ic2``: the worker's icechunk 2.3.0 oracle, with a fresh namespace for this test;
- ``pyic``: pyicechunk in this process, with a fresh namespace;
- ``impl``: parametrised over both (ids ``pyicechunk`` and ``icechunk2``);
- ``both``: the two side by side (:class:`~oracle.implementations.Both`);
- ``storage_spec``: a factory of location specs for ``make_storage`` in a snippet.

Each namespace has ``workdir`` bound: a directory of its own under the test's ``tmp_path``.
When no Python >= 3.12 is found, the tests that ask for the oracle fail (never skip), with a
message saying how to get one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .environment import OracleUnavailable
from .implementations import Both, InProcess, Oracle

IMPLS = ("pyicechunk", "icechunk2")


def _workdir(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def ic2_process() -> Iterator[Oracle]:
    """The worker's one oracle (started by its first call, ended with the session)."""
    oracle = Oracle()
    yield oracle
    oracle.close()


@pytest.fixture
def ic2(ic2_process: Oracle, tmp_path: Path) -> Oracle:
    """icechunk 2.3.0 with a fresh namespace, ``workdir`` bound to ``tmp_path/icechunk2``."""
    try:
        ic2_process.reset(workdir=_workdir(tmp_path, ic2_process.name))
    except OracleUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    return ic2_process


@pytest.fixture
def pyic(tmp_path: Path) -> Iterator[InProcess]:
    """pyicechunk in this process, ``workdir`` bound to ``tmp_path/pyicechunk``."""
    impl = InProcess(workdir=_workdir(tmp_path, InProcess.name))
    yield impl
    impl.close()


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> InProcess | Oracle:
    """The implementation a scenario runs on: pyicechunk, then icechunk 2.3.0."""
    fixture = {"pyicechunk": "pyic", "icechunk2": "ic2"}[request.param]
    found: InProcess | Oracle = request.getfixturevalue(fixture)
    return found


@pytest.fixture
def both(pyic: InProcess, ic2: Oracle) -> Both:
    """pyicechunk and icechunk 2.3.0 side by side."""
    return Both(pyic, ic2)


@pytest.fixture
def storage_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """Factory ``(kind, name=None) -> spec`` of new locations for ``make_storage(spec)``.

    ``kind`` is ``memory``, ``local`` (a directory under ``tmp_path``) or ``s3`` (a prefix in a
    new bucket on the test's moto server, started on demand, with its credentials). The same
    spec names the same location in either implementation.
    """

    def make(kind: str, name: str | None = None) -> dict[str, Any]:
        name = name or f"repo-{uuid.uuid4().hex[:8]}"
        if kind == "memory":
            return {"kind": "memory"}
        if kind == "local":
            return {"kind": "local", "path": str(tmp_path / name)}
        if kind == "s3":
            server = request.getfixturevalue("s3_server")
            return {
                "kind": "s3",
                "bucket": request.getfixturevalue("s3_bucket"),
                "prefix": name,
                "endpoint_url": server.endpoint_url,
                "region": server.region,
                "access_key_id": server.access_key_id,
                "secret_access_key": server.secret_access_key,
            }
        raise ValueError(f"unknown storage kind {kind!r}; use memory, local or s3")

    return make
