"""``[MetadataItem]`` vectors: (name, encoded value) tables sorted by name (FORMAT-V2 §4).

Snapshots hold commit metadata and the repo object holds repository and commit metadata in
this one table shape (the reference's ``common.fbs``); the values' encoding (MessagePack or
FlexBuffers) is the caller's business.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pyicechunk.format.flatbuf import Builder, Vector, required

__all__ = ["read_metadata_items", "write_metadata_items"]


def write_metadata_items(b: Builder, items: Iterable[tuple[str, bytes]]) -> int:
    """Write a ``[MetadataItem]`` vector of already encoded values and return its reference.

    Parameters
    ----------
    b
        The builder.
    items
        (name, value) pairs, in the order to write (sorted by name).
    """
    refs = []
    for name, value in items:
        name_ref = b.create_string(name)
        value_ref = b.create_bytes_vector(value)
        b.start_table(2)
        b.add_offset(0, name_ref)
        b.add_offset(1, value_ref)
        refs.append(b.end_table(required=(0, 1)))
    return b.create_offset_vector(refs)


def read_metadata_items(vec: Vector, where: str) -> Iterator[tuple[str, bytes]]:
    """Yield the (name, value) pairs of a ``[MetadataItem]`` vector, one item at a time.

    Parameters
    ----------
    vec
        The vector.
    where
        The field's name for messages, e.g. ``"Snapshot.metadata"``.

    Raises
    ------
    IcechunkError
        If an item is damaged or lacks its name or value.
    """
    for i in range(len(vec)):
        item = vec.table(i)
        name = required(item.string(0), f"{where}[{i}].name")
        value = required(item.bytes_vector(1), f"{where}[{i}].value")
        yield name, value
