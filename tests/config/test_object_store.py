"""Object store configs and their constructors, against icechunk 1.1.21."""

from __future__ import annotations

from types import ModuleType

import icechunk as ic
import pytest

import pyicechunk.config as pc

from ._reference import BOTH


@BOTH
def test_store_variant_classes_and_payloads(m: ModuleType) -> None:
    O = m.ObjectStoreConfig  # noqa: E741
    assert str(O.LocalFileSystem("/x")._0) == "/x"
    assert O.Gcs(None)._0 is None
    assert m.gcs_store({"a": "b"})._0 == {"a": "b"}
    assert m.http_store()._0 is None
    assert m.local_filesystem_store("rel/p")._0.as_posix() == "rel/p"
    assert m.s3_store()._0.network_stream_timeout_seconds == 60
    assert isinstance(m.s3_store(s3_compatible=True), O.S3Compatible)
    with pytest.raises(TypeError):
        O.Http()


def test_azure_store_puts_account_first() -> None:
    ours = pc.azure_store(account="acc", config={"x": "y"})._0
    assert ours == ic.storage.azure_store(account="acc", config={"x": "y"})._0
    assert list(ours) == ["account", "x"]
