"""The content of ref files, ``refs/branch.<name>/ref.json`` and ``refs/tag.<name>/ref.json``.

A ref file is the JSON object ``{"snapshot":"<id>"}`` (§2).
"""

from __future__ import annotations

import json

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.ids import decode_id, encode_id

__all__ = ["decode_ref", "encode_ref"]


def encode_ref(snapshot_id: bytes) -> bytes:
    """Return the bytes of a ref file pointing at ``snapshot_id`` (compact JSON)."""
    return b'{"snapshot":"' + encode_id(snapshot_id).encode("ascii") + b'"}'


def decode_ref(data: bytes, key: str) -> bytes:
    """Return the snapshot id a ref file points at.

    Parameters
    ----------
    data
        The file content: a JSON object with a ``snapshot`` string (other keys are ignored).
    key
        The ref's storage key, used in error messages.

    Returns
    -------
    bytes
        The 12-byte snapshot id.

    Raises
    ------
    IcechunkError
        If the content is not such a JSON object or the id is invalid.
    """
    try:
        document = json.loads(data)
    except RecursionError:
        # A real ref is one flat object; nesting deep enough to exhaust the parser's stack is
        # damage (or hostile), and must not surface as Python's own RecursionError.
        raise IcechunkError(
            f"cannot read ref {key}: its JSON is nested too deeply to be a ref file (expected "
            '{"snapshot":"<id>"}); the ref file is damaged',
            kind="deserialization",
        ) from None
    except (ValueError, UnicodeDecodeError):
        document = None
    text = document.get("snapshot") if isinstance(document, dict) else None
    if not isinstance(text, str):
        raise IcechunkError(
            f'cannot read ref {key}: expected a JSON object with a "snapshot" id, found '
            f"{bytes(data[:60])!r}; the ref file is damaged",
            kind="deserialization",
        )
    try:
        return decode_id(text, 12)
    except ValueError as exc:
        raise IcechunkError(
            f"cannot read ref {key}: {exc}; the ref file is damaged", kind="deserialization"
        ) from None
