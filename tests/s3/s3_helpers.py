"""Helpers shared by the S3 tests."""

from __future__ import annotations

from typing import Any


def s3_kwargs(server: Any, bucket: str, prefix: str) -> dict[str, Any]:
    """Keyword arguments that both pyicechunk's and icechunk's s3_storage accept."""
    return {
        "bucket": bucket,
        "prefix": prefix,
        "endpoint_url": server.endpoint_url,
        "allow_http": True,
        "force_path_style": True,
        "access_key_id": server.access_key_id,
        "secret_access_key": server.secret_access_key,
        "region": server.region,
    }
