"""Refreshable S3 credentials: the callable is called again once its credential expires.

moto accepts any key, so the test counts calls of a module-level (hence picklable) getter.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pyicechunk.credentials import S3StaticCredentials
from pyicechunk.storage import s3_storage

CALLS: list[datetime] = []
LIFETIME_SECONDS = [1.0]


def short_lived() -> S3StaticCredentials:
    now = datetime.now(UTC)
    CALLS.append(now)
    return S3StaticCredentials("x", "x", expires_after=now + timedelta(seconds=LIFETIME_SECONDS[0]))


@pytest.mark.parametrize(
    ("lifetime", "scatter"), [(1.0, False), (1.0, True), (3600.0, False), (3600.0, True)]
)
def test_refreshable_credentials_are_refreshed_after_expiry(
    s3_server: Any, s3_bucket: str, lifetime: float, scatter: bool
) -> None:
    """A credential valid for long is fetched once (or scattered) and reused; one that expires
    is fetched again. (obstore asks again for any credential within five minutes of expiry,
    at most every 100 ms, so a short-lived one may be fetched more than once before it
    expires: only "again after expiry" holds for it, whatever the machine's load.)"""
    CALLS.clear()
    LIFETIME_SECONDS[0] = lifetime
    backend = s3_storage(
        bucket=s3_bucket,
        prefix="p",
        endpoint_url=s3_server.endpoint_url,
        allow_http=True,
        force_path_style=True,
        region=s3_server.region,
        get_credentials=short_lived,
        scatter_initial_credentials=scatter,
    )._backend
    at_construction = len(CALLS)
    assert at_construction == (1 if scatter else 0)

    async def three_requests() -> None:
        await backend.put("chunks/a", b"1")
        await backend.get("chunks/a")
        await backend.head("chunks/a")

    asyncio.run(three_requests())
    if lifetime > 600:
        assert len(CALLS) == 1  # fetched once (the scattered one, if any) and reused
        asyncio.run(three_requests())
        assert len(CALLS) == 1
        return
    fetched = len(CALLS)
    assert fetched >= 1
    time.sleep(1.5)  # past the 1 s lifetime
    asyncio.run(three_requests())
    assert len(CALLS) > fetched
