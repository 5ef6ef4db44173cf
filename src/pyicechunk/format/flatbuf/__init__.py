"""The flatbuffer toolkit every binary Icechunk object is written and read with.

Only what Icechunk's schemas need, in pure Python:

* :class:`Builder` (:mod:`.builder`) writes a buffer one object at a time (snapshots, the repo
  object);
* :mod:`.layout` has the arithmetic of encoders that compute a whole layout up front and fill
  it with numpy (manifests, transaction logs);
* :class:`Table` / :class:`Vector` (:mod:`.table`) read one table at a time;
* :class:`ColumnReader` (:mod:`.columns`) reads many tables at once as numpy columns.

Both readers check every offset against the buffer and raise
:class:`~pyicechunk.exceptions.IcechunkError` for damage. They word their messages differently
(``malformed flatbuffer: ...`` and ``invalid <object> flatbuffer (N bytes): ...``), and only the
column reader checks alignment; each object keeps the reader, and so the errors, it always had.
"""

from pyicechunk.format.flatbuf.builder import Builder
from pyicechunk.format.flatbuf.columns import ColumnReader, TableFields
from pyicechunk.format.flatbuf.layout import (
    FILE_IDENTIFIER,
    align,
    align_all,
    gather_index,
    new_buffer,
    vtable_block,
)
from pyicechunk.format.flatbuf.table import Table, Vector, malformed, required, root_table

__all__ = [
    "FILE_IDENTIFIER",
    "Builder",
    "ColumnReader",
    "Table",
    "TableFields",
    "Vector",
    "align",
    "align_all",
    "gather_index",
    "malformed",
    "new_buffer",
    "required",
    "root_table",
    "vtable_block",
]
