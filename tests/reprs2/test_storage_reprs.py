"""Storage's repr (API-2.md §12): icechunk 2.x's ``<icechunk.Storage>`` block, never a secret.

The same constructor calls run on pyicechunk and on icechunk 2.3.0; nothing here talks to a
server (storages connect on first use), so the S3 ones need none.
"""

from __future__ import annotations

import pytest
from oracle import Both, InProcess, Oracle

Impl = InProcess | Oracle

SECRETS = ("AKIDSECRET", "SECRETKEY", "SESSIONTOKEN", "AZUREKEY", "GCSKEY")

STORAGES = [
    "icechunk.in_memory_storage()",
    "icechunk.local_filesystem_storage(str(workdir.parent / 'repo'))",
    "icechunk.s3_storage(bucket='b', prefix='p', region='us-east-1', "
    "access_key_id='AKIDSECRET', secret_access_key='SECRETKEY', session_token='SESSIONTOKEN', "
    "endpoint_url='http://127.0.0.1:1', allow_http=True, force_path_style=True)",
    "icechunk.s3_storage(bucket='b', prefix='p', region='r', anonymous=True, requester_pays=True)",
    "icechunk.s3_storage(bucket='b', prefix='', region='r', from_env=True)",
    "icechunk.s3_storage(bucket='b', prefix='p', access_key_id='AKIDSECRET', "
    "secret_access_key='SECRETKEY')",
    "icechunk.Storage.new_s3(icechunk.S3Options(region='r', anonymous=True), 'b', 'p', None)",
    "icechunk.tigris_storage(bucket='b', prefix='p', region='iad', "
    "access_key_id='AKIDSECRET', secret_access_key='SECRETKEY')",
    "icechunk.r2_storage(bucket='b', prefix='p', account_id='acct', "
    "access_key_id='AKIDSECRET', secret_access_key='SECRETKEY')",
    "icechunk.gcs_storage(bucket='b', prefix='p', service_account_key='GCSKEY')",
    "icechunk.gcs_storage(bucket='b', prefix=None, anonymous=True)",
    "icechunk.azure_storage(account='a', container='c', prefix='p', access_key='AZUREKEY')",
    "icechunk.http_storage('http://127.0.0.1:1/x')",
    "icechunk.http_storage('http://127.0.0.1:1/x/', headers={'Authorization': 'SECRETKEY'})",
    "icechunk.redirect_storage('http://127.0.0.1:1/r')",
]


@pytest.mark.parametrize("storage", STORAGES)
def test_storage_repr_is_the_reference_block(both: Both, storage: str) -> None:
    ours, ref = both.run(f"storage = {storage}\nrepr(storage), str(storage)")
    assert ours.error is None and ref.error is None, (ours.error, ref.error)
    assert ours.value == ref.value
    text, _ = ours.value
    assert text.startswith("<icechunk.Storage>\ntype: ")
    assert not [secret for secret in SECRETS if secret in text]


def test_storage_html_has_the_fields(impl: Impl) -> None:
    impl.run(
        "storage = icechunk.s3_storage(bucket='b', prefix='p', region='r', "
        "access_key_id='AKIDSECRET', secret_access_key='SECRETKEY')"
    )
    html = impl.run("storage._repr_html_()")
    assert html.startswith("<style>") and "S3 (native)" in html
    assert not [secret for secret in SECRETS if secret in html]


def test_a_pickled_storage_keeps_its_block(pyic: InProcess) -> None:
    # icechunk 2.3.0's storages do not pickle; pyicechunk's do.
    pyic.run("import pickle\nstorage = icechunk.tigris_storage(bucket='b', prefix='p', region='r')")
    assert pyic.run("repr(pickle.loads(pickle.dumps(storage))) == repr(storage)") is True


def test_a_repository_shows_its_storage(impl: Impl) -> None:
    impl.run(
        "repo = icechunk.Repository.create("
        "icechunk.local_filesystem_storage(str(workdir / 'r')), spec_version=2)"
    )
    text = impl.run("repr(repo)")
    path = impl.run("str(workdir / 'r')")
    block = f"<icechunk.Storage>\n    type: local filesystem\n    path: {path}\n"
    assert f"\nstorage:\n    {block}config: <RepositoryConfig ...>\n" in text
