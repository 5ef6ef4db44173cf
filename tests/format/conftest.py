"""Fixtures shared by the format tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._refrepo import build_repo


@pytest.fixture(scope="package", params=[False, True], ids=["single", "split"])
def ref_repo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository written by icechunk 1.1.21, without and with manifest splitting.

    Tests only read it; those that write copy it first.
    """
    path = tmp_path_factory.mktemp("ref") / "repo"
    build_repo(path, splitting=request.param)
    return path
