"""Credential helpers and storage constructors, side by side with icechunk 1.1.21."""

from __future__ import annotations

import pickle
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import icechunk
import pytest
from oracle import Both

import pyicechunk.credentials as ours
import pyicechunk.storage as our_storage
from pyicechunk._error_context import without_context
from pyicechunk.exceptions import IcechunkError

S3_CASES: list[dict[str, Any]] = [
    {},
    {"from_env": True},
    {"anonymous": True},
    {"access_key_id": "a", "secret_access_key": "b"},
    {"access_key_id": "a", "secret_access_key": "b", "session_token": "t"},
    {"access_key_id": "a"},
    {"anonymous": True, "from_env": True},
    {"access_key_id": "a", "secret_access_key": "b", "from_env": True},
    {"from_env": False},
    {"session_token": "t"},
]
GCS_CASES: list[dict[str, Any]] = [
    {},
    {"anonymous": True},
    {"bearer_token": "t"},
    {"service_account_file": "f", "bearer_token": "t"},
    {"bearer_token": "t", "from_env": True},
    {"from_env": False},
]
AZURE_CASES: list[dict[str, Any]] = [
    {},
    {"access_key": "k"},
    {"sas_token": "s"},
    {"access_key": "k", "sas_token": "s"},
    {"access_key": "k", "from_env": True},
    {"from_env": False},
]


def _outcome(fn: Any, kwargs: dict[str, Any]) -> tuple[str, str]:
    try:
        result = fn(**kwargs)
    except ValueError as e:
        return ("ValueError", str(e))
    # Compare the credential kind by its qualified class name (S3Credentials.Static, ...).
    return ("ok", re.split(r"[._]", type(result).__qualname__)[-1])


@pytest.mark.parametrize("kwargs", S3_CASES)
def test_s3_credentials_rules(kwargs: dict[str, Any]) -> None:
    assert _outcome(ours.s3_credentials, kwargs) == _outcome(icechunk.s3_credentials, kwargs)


@pytest.mark.parametrize("kwargs", GCS_CASES)
def test_gcs_credentials_rules(kwargs: dict[str, Any]) -> None:
    assert _outcome(ours.gcs_credentials, kwargs) == _outcome(icechunk.gcs_credentials, kwargs)


@pytest.mark.parametrize("kwargs", AZURE_CASES)
def test_azure_credentials_rules(kwargs: dict[str, Any]) -> None:
    assert _outcome(ours.azure_credentials, kwargs) == _outcome(icechunk.azure_credentials, kwargs)


def test_static_repr_masks_secrets() -> None:
    # icechunk 1.1.21 prints the secrets; 2.x masks them, and so do we (1.1's layout)
    creds = ours.S3StaticCredentials("AKIAEXAMPLE", "secret-key", "token")
    assert repr(creds) == (
        'S3StaticCredentials(access_key_id="AKIA****", secret_access_key="****", '
        'session_token="****", expires_after=None)'
    )
    assert repr(ours.S3StaticCredentials("a", "b")) == (
        'S3StaticCredentials(access_key_id="a****", secret_access_key="****", '
        "session_token=None, expires_after=None)"
    )


def _fresh() -> ours.S3StaticCredentials:
    return ours.S3StaticCredentials("x", "x", expires_after=datetime.now(UTC) + timedelta(hours=1))


def test_refreshable_pickles_its_callable() -> None:
    cred = ours.s3_refreshable_credentials(_fresh, scatter_initial_credentials=True)
    assert isinstance(cred.current, ours.S3StaticCredentials)
    assert pickle.loads(cred.pickled_function) is _fresh
    with pytest.raises((pickle.PicklingError, AttributeError)):
        ours.s3_refreshable_credentials(lambda: _fresh())


def test_constructor_errors_match_reference() -> None:
    for fn_name, kwargs in [
        ("tigris_storage", {"bucket": "b", "prefix": "p"}),
        ("r2_storage", {"bucket": "b", "prefix": "p"}),
    ]:
        with pytest.raises(icechunk.IcechunkError) as theirs:
            getattr(icechunk, fn_name)(**kwargs)
        with pytest.raises(IcechunkError) as mine:
            getattr(our_storage, fn_name)(**kwargs)
        # The reference's report wraps long lines; compare the words.
        assert " ".join(without_context(str(mine.value)).split()) in " ".join(
            str(theirs.value).split()
        )


@pytest.mark.parametrize(
    ("fn_name", "kwargs"),
    [
        ("s3_storage", {"bucket": "b", "prefix": "p", "region": "r", "from_env": True}),
        ("s3_storage", {"bucket": "b", "prefix": None, "anonymous": True}),
        ("tigris_storage", {"bucket": "b", "prefix": "p", "region": "r"}),
        ("tigris_storage", {"bucket": "b", "prefix": "p", "use_weak_consistency": True}),
        ("r2_storage", {"prefix": "bk/sub", "account_id": "acc"}),
        ("r2_storage", {"bucket": "b", "prefix": "p", "endpoint_url": "http://x"}),
        ("gcs_storage", {"bucket": "b", "prefix": "p", "anonymous": True}),
        ("azure_storage", {"account": "a", "container": "c", "prefix": "p", "access_key": "k"}),
    ],
)
def test_storage_reprs_match_reference(both: Both, fn_name: str, kwargs: dict[str, Any]) -> None:
    # icechunk 2.x's block, as icechunk 2.3.0 prints it.
    ours, ref = both.run(f"repr(icechunk.{fn_name}(**{kwargs!r}))")
    assert ours.error is None and ref.error is None, (ours.error, ref.error)
    assert ours.value == ref.value
