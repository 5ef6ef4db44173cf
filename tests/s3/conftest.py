from __future__ import annotations

from typing import Any

import pytest
from s3_helpers import s3_kwargs

from pyicechunk.storage import Storage, s3_storage


@pytest.fixture
def s3_storage_handle(s3_server: Any, s3_bucket: str) -> Storage:
    return s3_storage(**s3_kwargs(s3_server, s3_bucket, "repo"))
