"""Azure credentials icechunk 2.x added: anonymous and refreshable ones (azure_credentials'
order of choice), and a repository on azurite whose key comes from a refreshing getter."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

import pyicechunk as ic
from pyicechunk.storage import Storage

# azurite's documented development account and key (public, the same for every installation).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_CALLS = Path(os.environ.get("TMPDIR", "/tmp")) / f"azure-getter-calls-{os.getpid()}"


def right_key() -> ic.AzureRefreshableCredential.AccessKey:
    """The emulator's key, valid for a second: each use after that fetches it again."""
    with open(_CALLS, "a") as calls:
        calls.write("x")
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    return ic.AzureRefreshableCredential.AccessKey(AZURITE_KEY, expires_after=soon)


def wrong_key() -> ic.AzureRefreshableCredential.AccessKey:
    return ic.AzureRefreshableCredential.AccessKey("d3Jvbmc=")


def _storage(container: str, credentials: ic.AnyAzureCredential) -> Storage:
    # The emulator's endpoint given explicitly: emulator mode would sign with its own key.
    endpoint = f"{os.environ['AZURITE_BLOB_STORAGE_URL']}/{AZURITE_ACCOUNT}"
    config = {"endpoint": endpoint, "allow_http": "true"}
    return Storage.new_azure_blob(AZURITE_ACCOUNT, container, "repo", credentials, config=config)


def test_the_order_of_choice() -> None:
    c = ic.credentials
    assert isinstance(
        c.azure_credentials(access_key="k", anonymous=True), c.AzureCredentials.Anonymous
    )
    assert isinstance(c.azure_anonymous_credentials(), c.AzureCredentials.Anonymous)
    refreshing = c.azure_credentials(get_credentials=wrong_key, access_key="k")
    assert isinstance(refreshing, c.AzureCredentials.Refreshable)
    assert refreshing.current is None
    scattered = c.azure_refreshable_credentials(wrong_key, scatter_initial_credentials=True)
    assert isinstance(scattered.current, c.AzureRefreshableCredential.AccessKey)
    assert isinstance(c.azure_credentials(), c.AzureCredentials.FromEnv)
    assert c.containers_credentials({"az://x/": scattered})["az://x/"].credentials is scattered


def test_a_repository_with_refreshed_credentials(azure_container: str) -> None:
    _CALLS.unlink(missing_ok=True)
    repo = ic.Repository.create(
        _storage(azure_container, ic.azure_refreshable_credentials(right_key)), spec_version=2
    )
    repo.create_tag("t", repo.lookup_branch("main"))
    assert _CALLS.read_text()  # the getter served the requests
    with pytest.raises(ic.IcechunkError):
        ic.Repository.open(_storage(azure_container, ic.azure_refreshable_credentials(wrong_key)))
    again = ic.Repository.open(
        _storage(azure_container, ic.azure_refreshable_credentials(right_key))
    )
    assert again.list_tags() == {"t"}
    _CALLS.unlink(missing_ok=True)


def test_anonymous_requests_are_unsigned(azure_container: str) -> None:
    # azurite refuses unsigned requests to a private container: the credentials were not used.
    storage = _storage(azure_container, ic.azure_anonymous_credentials())
    with pytest.raises(ic.IcechunkError):
        ic.Repository.create(storage, spec_version=2)
