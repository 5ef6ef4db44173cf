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


@pytest.mark.parametrize(("lifetime", "scatter"), [(1.0, False), (1.0, True), (3600.0, False)])
def test_refreshable_credentials_are_refreshed_after_expiry(
    s3_server: Any, s3_bucket: str, lifetime: float, scatter: bool
) -> None:
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
    # a credential is fetched once and reused while it is valid (the scattered one first)
    assert len(CALLS) == 1
    time.sleep(1.5)  # past the 1 s lifetime, not past the 1 h one
    asyncio.run(three_requests())
    assert len(CALLS) == (2 if lifetime < 60 else 1)
