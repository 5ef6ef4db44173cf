"""Conditional writes carry write ids in the form icechunk 2.3.0 sends: random UUID text."""

from __future__ import annotations

import uuid

from pyicechunk.storage import _new_write_id


def test_write_ids_are_distinct_version_4_uuids_in_their_usual_text_form() -> None:
    ids = [_new_write_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
