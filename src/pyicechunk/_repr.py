"""The text and HTML forms of icechunk 2.x's structured reprs.

icechunk 2.x shows its handle and value classes as a block: a header ``<icechunk.module.Class>``
and one ``name: value`` line per field, a nested block indented four spaces under its field's
name. ``_repr_html_`` shows the same fields as a small self-contained HTML fragment (a
``<style>`` block with ``--ic-*`` colour variables that follow Jupyter's light and dark themes,
then the fields; nested blocks fold into ``<details>``).

A :class:`Block` holds a header and its fields; :meth:`Block.text` and :meth:`Block.html` render
it. Classes build their block from their state and return one of the two.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Block", "Shown", "qualified", "session_block"]

# The reference spells its classes by their public module; reprs name them the same way so
# that output written for icechunk reads the same with ``import pyicechunk as icechunk``.
_MODULES = {
    "Repository": "icechunk",
    "IcechunkStore": "icechunk",
    "Storage": "icechunk",
    "Session": "icechunk.session",
    "ForkSession": "icechunk.session",
    "SnapshotInfo": "icechunk.snapshots",
    "ManifestFileInfo": "icechunk.snapshots",
    "Diff": "icechunk.snapshots",
    "GCSummary": "icechunk.ops",
    "ChunkStorageStats": "icechunk.stats",
    "StorageSettings": "icechunk.storage",
    "StorageConcurrencySettings": "icechunk.storage",
    "StorageRetriesSettings": "icechunk.storage",
    "StorageTimeoutSettings": "icechunk.storage",
    "S3Options": "icechunk.storage",
    "VirtualChunkContainer": "icechunk.virtual",
}


def qualified(name: str) -> str:
    """The reference's fully qualified spelling of the public class ``name``."""
    return f"{_MODULES.get(name, 'icechunk.config')}.{name}"


@dataclass(frozen=True)
class Block:
    """A header and its fields; a field's value is its text, or a nested :class:`Block`.

    Parameters
    ----------
    header
        The qualified class name, as :func:`qualified` spells it (with a suffix such as
        ``" (v2)"`` where the class shows one); None for a plain mapping, shown as its
        fields alone.
    fields
        ``(name, value)`` pairs in display order.
    """

    header: str | None
    fields: Sequence[tuple[str, str | Block]]

    def text(self) -> str:
        """The block as text, ending with a newline."""
        return "\n".join(self._lines()) + "\n"

    def _lines(self) -> list[str]:
        lines = [] if self.header is None else [f"<{self.header}>"]
        for name, value in self.fields:
            if isinstance(value, Block):
                lines.append(f"{name}:")
                lines.extend("    " + line for line in value._lines())
            else:
                first, *rest = value.split("\n")
                lines.append(f"{name}: {first}")
                lines.extend("    " + line for line in rest)
        return lines

    def html(self) -> str:
        """The block as an HTML fragment for Jupyter: a style block, then the fields."""
        return _STYLE + self._html(0)

    def _html(self, depth: int) -> str:
        pad = "  " * depth
        out = [f'{pad}<div class="icechunk-repr">']
        if self.header is not None:
            out.append(f'{pad}  <div class="icechunk-header">{html.escape(self.header)}</div>')
        for name, value in self.fields:
            label = html.escape(name)
            if isinstance(value, Block):
                out.append(f"{pad}  <details>")
                out.append(f'{pad}    <summary class="icechunk-field-name">{label}</summary>')
                out.append(value._html(depth + 2))
                out.append(f"{pad}  </details>")
            else:
                out.append(
                    f'{pad}  <div class="icechunk-field"><span class="icechunk-field-name">'
                    f'{label}:</span> <span class="icechunk-field-value">'
                    f"{html.escape(value)}</span></div>"
                )
        out.append(f"{pad}</div>")
        return "\n".join(out)


def session_block(name: str, read_only: bool, snapshot_id: str, *more: tuple[str, object]) -> Block:
    """The block of a session or store: its class, whether it is read-only, its snapshot, and
    the further ``(name, value)`` fields the class shows."""
    fields = [("read_only", str(read_only)), ("snapshot_id", snapshot_id)]
    return Block(qualified(name), [*fields, *((k, str(v)) for k, v in more)])


class Shown:
    """Mixin: ``repr``, ``str`` and ``_repr_html_`` all show the class's :meth:`_block`."""

    __slots__ = ()

    def _block(self) -> Block:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self._block().text()

    def __str__(self) -> str:
        return self._block().text()

    def _repr_html_(self) -> str:
        return self._block().html()


# Colours come from Jupyter's theme variables where they exist, with light fallbacks and a dark
# set for the themes that mark themselves dark.
_STYLE = """<style>
:root {
  --ic-font-color: var(--jp-content-font-color0, #111);
  --ic-font-color-muted: var(--jp-content-font-color2, #666);
  --ic-border-color: var(--jp-border-color2, #ccc);
  --ic-background-nested: var(--jp-layout-color1, #f5f5f5);
}
html[theme="dark"], html[data-theme="dark"], body[data-theme="dark"], body.vscode-dark {
  --ic-font-color: var(--jp-content-font-color0, #eee);
  --ic-font-color-muted: var(--jp-content-font-color2, #aaa);
  --ic-border-color: var(--jp-border-color2, #555);
  --ic-background-nested: var(--jp-layout-color1, #2b2b2b);
}
.icechunk-repr { color: var(--ic-font-color); line-height: 1.5; max-width: 720px; }
.icechunk-repr .icechunk-header {
  font-weight: 600; border-bottom: 1px solid var(--ic-border-color); margin-bottom: 4px;
}
.icechunk-repr .icechunk-field-name { color: var(--ic-font-color-muted); font-weight: 600; }
.icechunk-repr summary { cursor: pointer; }
.icechunk-repr details > .icechunk-repr {
  background: var(--ic-background-nested); margin: 4px 0 4px 12px; padding: 4px 8px;
}
</style>
"""
