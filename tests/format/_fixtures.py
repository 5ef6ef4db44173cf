"""Objects written by icechunk 2.3.0, stored in ``fixtures/``."""

from __future__ import annotations

from pathlib import Path

from pyicechunk.format.header import FileType, open_object

FIXTURES = Path(__file__).parent / "fixtures"


def open_fixture(name: str, kind: FileType) -> tuple[int, bytes]:
    return open_object((FIXTURES / name).read_bytes(), kind, name)
