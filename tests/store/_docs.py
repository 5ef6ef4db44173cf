"""Minimal valid zarr v3 metadata documents for store tests."""

from __future__ import annotations

import json
from typing import Any


def array_doc(shape: list[int], chunks: list[int], **extra: Any) -> bytes:
    """A valid zarr v3 array document (uint8, default chunk key encoding)."""
    doc = {
        "shape": shape,
        "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [{"name": "bytes"}],
        "attributes": {},
        "zarr_format": 3,
        "node_type": "array",
        "storage_transformers": [],
        **extra,
    }
    return json.dumps(doc, indent=2).encode()


def group_doc(**attributes: Any) -> bytes:
    """A valid zarr v3 group document."""
    doc = {"attributes": attributes, "zarr_format": 3, "node_type": "group"}
    return json.dumps(doc, indent=2).encode()
