"""GCS storage without a server: constructors, credential rules and pickling."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import icechunk
import pytest
from oracle import Both

import pyicechunk.credentials as ours
import pyicechunk.storage as our_storage


def _bearer() -> ours.GcsBearerCredential:
    return ours.GcsBearerCredential("tok", expires_after=datetime.now(UTC) + timedelta(hours=1))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bucket": "b", "prefix": "p", "anonymous": True},
        {"bucket": "b", "prefix": None, "bearer_token": "t"},
        {"bucket": "b", "prefix": "deep/er", "service_account_file": "/nonexistent.json"},
        {"bucket": "b", "prefix": "p", "from_env": True},
        {"bucket": "b", "prefix": "p", "config": {"service_account_key": "{}"}},
    ],
)
def test_gcs_storage_repr_matches_reference(both: Both, kwargs: dict[str, Any]) -> None:
    # icechunk 2.x's block, as icechunk 2.3.0 prints it.
    ours, ref = both.run(f"repr(icechunk.gcs_storage(**{kwargs!r}))")
    assert ours.error is None and ref.error is None, (ours.error, ref.error)
    assert ours.value == ref.value


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bearer_token": "t", "anonymous": True},
        {"service_account_file": "f", "service_account_key": "k"},
        {"application_credentials": "a", "from_env": True},
    ],
)
def test_conflicting_gcs_credentials_rejected_like_reference(kwargs: dict[str, Any]) -> None:
    def outcome(fn: Any) -> str:
        try:
            fn(bucket="b", prefix="p", **kwargs)
        except ValueError:
            return "ValueError"
        return "ok"

    assert outcome(our_storage.gcs_storage) == outcome(icechunk.gcs_storage)


def test_get_credentials_alone_means_from_env_like_reference() -> None:
    # A quirk of icechunk 1.1.21 kept for parity: GCS needs from_env=False for a callable.
    for module in (ours, icechunk):
        kind = type(module.gcs_credentials(get_credentials=_bearer)).__name__
        assert kind.endswith("FromEnv")


def test_gcs_storage_pickles_with_its_credentials() -> None:
    storage = our_storage.gcs_storage(
        bucket="b",
        prefix="p",
        get_credentials=_bearer,
        scatter_initial_credentials=True,
        from_env=False,
    )
    copy = pickle.loads(pickle.dumps(storage))
    assert repr(copy) == repr(storage)
    spec = copy._backend._spec  # type: ignore[attr-defined]
    assert isinstance(spec.credentials, ours.GcsCredentials.Refreshable)
    assert pickle.loads(spec.credentials.pickled_function) is _bearer
    assert spec.credentials.current.bearer == "tok"
