"""The small parts of the ``repo`` object that most updates leave as they were, kept as bytes.

A branch or tag operation changes one or two of the refs tables and the ops log; the status,
the metadata, the config, the feature flags and the other refs table are the ones read. Writing
them again table by table costs more than the rest of such an update, so each group of them is
written once into a builder of its own, as a *block* (see :mod:`.blocks`: position-independent
bytes, padded to a multiple of 8), and the block is copied into every later encoding whose
values are the same. The values are compared, not the objects' identities: a group's key holds
copies of anything mutable, so a mapping changed in place is never mistaken for the one kept.
"""

from __future__ import annotations

from collections.abc import Callable

from pyicechunk.format.flatbuf import Builder
from pyicechunk.format.repo_info.blocks import built, place

__all__ = ["KeptGroups"]

Key = tuple[object, ...]


class KeptGroups:
    """Writes one group of objects as a block, reusing the block of the last two keys.

    Parameters
    ----------
    write
        Writes the group for a key into the builder given (no table open), and returns the
        references of its objects (0 for an object it left out).
    """

    def __init__(self, write: Callable[[Builder, Key], tuple[int, ...]]) -> None:
        self._write = write
        # Replaced, never mutated: encodings in other threads see consistent records.
        self._kept: tuple[tuple[Key, bytes, tuple[int, ...]], ...] = ()

    def clear(self) -> None:
        """Forget every block kept."""
        self._kept = ()

    def fresh(self) -> KeptGroups:
        """Another instance that writes groups the same way, with no block kept."""
        return KeptGroups(self._write)

    def write(self, b: Builder, key: Key) -> tuple[int, ...]:
        """Write the group of ``key`` into ``b``; the references of its objects (0: absent).

        ``key`` must hold values that determine the group, with copies of anything that could
        change in place after the call.
        """
        kept = self._kept
        # Tuples compare item by item, each by identity first, then by value.
        found = next((entry for entry in kept if key == entry[0]), None)
        if found is None:
            data, refs = built(lambda own: self._write(own, key))
            self._kept = ((key, data, refs), *kept[:1])
        else:
            _, data, refs = found
        start = place(b, data)
        return tuple(start + ref if ref else 0 for ref in refs)
