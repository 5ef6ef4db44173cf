"""Object store configs and their constructors, against both references."""

from __future__ import annotations

from types import ModuleType

import icechunk as ic
import pytest
from oracle import Both

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


def test_icechunk2_store_payloads(both: Both) -> None:
    code = """
    C = icechunk.ChecksumAlgorithm
    h = icechunk.http_store({"a": "b"}, {"h": "v"})
    match h:
        case icechunk.ObjectStoreConfig.Http(opts, headers):
            matched = (opts, headers)
    s3 = icechunk.s3_store(s3_compatible=True, checksum_algorithm=C.Crc64Nvme)._0
    (h._0, h._1, len(h), h[1], matched, icechunk.http_store()._1,
     icechunk.ObjectStoreConfig.Http({"x": "y"}, None)._1, repr(s3.checksum_algorithm),
     s3.network_stream_timeout_seconds, icechunk.S3Options(checksum_algorithm=C.Sha1) ==
     icechunk.S3Options(checksum_algorithm=C.Sha256))
    """
    assert both.same(code) == (
        {"a": "b"},
        {"h": "v"},
        2,
        {"h": "v"},
        ({"a": "b"}, {"h": "v"}),
        None,
        None,
        "ChecksumAlgorithm.Crc64Nvme",
        60,
        False,
    )
