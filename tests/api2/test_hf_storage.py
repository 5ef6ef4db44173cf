"""hf_storage: a Hugging Face Storage Bucket through its S3 gateway, configured as icechunk 2.3.0
configures it (endpoint per namespace, path style, us-east-1). No request reaches the network."""

from __future__ import annotations

import re

import pytest
from oracle import InProcess, Oracle, raises

import pyicechunk as ic

MAKE = "icechunk.hf_storage(bucket='b', prefix='p', namespace='ns', access_key_id='HFAK1', "


def test_the_gateway_settings(impl: InProcess | Oracle) -> None:
    text = impl.run(f"repr({MAKE} secret_access_key='s'))")
    # Each implementation spells its storage repr its own way; both name the same settings.
    for setting in (
        r"region[:=] ?us-east-1",
        r"endpoint_url[:=] ?https://s3\.hf\.co/ns",
        r"force_path_style[:=] ?(True|true)",
        r"bucket[:=] ?b\b",
        r"prefix[:=] ?p\b",
    ):
        assert re.search(setting, text), (setting, text)


def test_conflicting_credentials(impl: InProcess | Oracle) -> None:
    with raises("ValueError", kind=None):
        impl.run(f"{MAKE} secret_access_key='s', from_env=True)")


def test_options_pyicechunk_does_not_support_are_refused() -> None:
    with pytest.raises(ValueError, match="leave legacy_rooted_keys"):
        ic.hf_storage(bucket="b", prefix="p", namespace="ns", legacy_rooted_keys=True)
    # Extra headers are supported (tests/security/test_request_headers.py).
    ic.hf_storage(bucket="b", prefix="p", namespace="ns", headers={"x": "y"}, read_headers={})
    with pytest.raises(ValueError, match="namespace"):
        ic.hf_storage(bucket="b", prefix="p", namespace="a/b")
