"""The history of a repository as a picture: :class:`AncestryGraph`, as text and as SVG.

The drawing is icechunk 2.x's, character for character: one column per branch ("main" first,
then the others by name), every snapshot once, in the column of the first branch (in that
order) whose history reaches it, newest first; a side branch's column joins the column of its
fork point with a ``─╯`` on the fork point's line. Labels name the branches whose tip is the
snapshot, then the tags pointing at it. Branch colours come from the branch's position among
all branches of the repository, so a branch keeps its colour whatever is drawn.

A graph of one tag or snapshot walks that history as a branch without a name, which is why
the reference labels its tip ``(, v1)`` or ``()``; we draw the same.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from pyicechunk._readonly import ReadOnly
from pyicechunk._sync import blocking_twin

__all__ = ["AncestryGraph", "GraphNode", "ancestry_graph", "ancestry_graph_async"]

# The reference draws at most this many snapshots, then says how many it left out.
MAX_NODES = 100
# Messages are cut to their first line and to this many bytes of UTF-8 (with "...").
MESSAGE_BYTES = 60

# 24-bit colours: one per branch (by position among all branches, cycling), one for tags.
BRANCH_COLOURS = (
    ((183, 228, 0), "#B7E400"),
    ((166, 83, 255), "#A653FF"),
    ((255, 101, 84), "#FF6554"),
    ((255, 158, 13), "#FF9E0D"),
    ((248, 129, 209), "#F881D1"),
)
TAG_COLOUR = ((94, 196, 247), "#5EC4F7")

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_ITALIC = "\x1b[3m"
_DIM = "\x1b[2m"

# SVG geometry, in pixels.
_COLUMN_WIDTH = 20.0
_ROW_HEIGHT = 28.0
_RADIUS = 5.0
_TEXT_GAP = 14.0
_LEFT = 15.0
_TOP = 10.0
_STROKE = 2.0
_FONT_SIZE = 13.0
_TEXT_WIDTH = 500.0

_ONE_OF = "Must provide one of branch, tag, or snapshot_id"


class _Snapshot(Protocol):
    """What the graph needs of a snapshot (pyicechunk's and icechunk's SnapshotInfo)."""

    @property
    def id(self) -> str: ...
    @property
    def parent_id(self) -> str | None: ...
    @property
    def written_at(self) -> dt.datetime: ...
    @property
    def message(self) -> str: ...


@dataclass(frozen=True)
class GraphNode:
    """One snapshot as drawn: where, and with which labels.

    Attributes
    ----------
    id, parent_id, written_at, message
        The snapshot's.
    branches
        Branches whose tip this snapshot is (of those drawn), "main" first, then by name.
    tags
        Tags pointing at this snapshot, by name.
    column
        Its column (0 is the leftmost, "main" when it is drawn).
    """

    id: str
    parent_id: str | None
    written_at: dt.datetime
    message: str
    branches: tuple[str, ...]
    tags: tuple[str, ...]
    column: int


class _Line(NamedTuple):
    """A column's vertical segment from the line of ``row`` to the next node line."""

    row: int
    column: int


class _Fork(NamedTuple):
    """Column ``column`` ends, from the line of ``start``, in the node of ``row`` (in ``into``)."""

    start: int
    column: int
    row: int
    into: int


def _main_first(name: str) -> tuple[bool, str]:
    return (name != "main", name)


def _ansi(rgb: tuple[int, int, int]) -> str:
    return "\x1b[38;2;{};{};{}m".format(*rgb)


def _branch_ansi(index: int) -> str:
    return _ansi(BRANCH_COLOURS[index % len(BRANCH_COLOURS)][0])


def _branch_hex(index: int) -> str:
    return BRANCH_COLOURS[index % len(BRANCH_COLOURS)][1]


def _short_message(message: str) -> str:
    """The first line, cut to :data:`MESSAGE_BYTES` bytes as the reference does.

    The reference slices bytes and fails on a cut inside a character; we cut before it.
    """
    line = message.split("\n", 1)[0].removesuffix("\r")
    raw = line.encode()
    if len(raw) <= MESSAGE_BYTES:
        return line
    return raw[: MESSAGE_BYTES - 3].decode(errors="ignore") + "..."


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _number(value: float) -> str:
    # Numbers as the reference formats them: integers without ".0", others in shortest form.
    return str(int(value)) if value.is_integer() else repr(value)


def _colour_disabled() -> bool:
    # https://no-color.org: any non-empty value turns colours off.
    return bool(os.environ.get("NO_COLOR"))


class AncestryGraph:
    """A drawing of a repository's history, made by ``Repository.ancestry_graph()``.

    ``str(graph)`` and ``repr(graph)`` are the text drawing, with 24-bit ANSI colours unless
    the graph was made with ``plain=True`` or the ``NO_COLOR`` environment variable is set;
    ``_repr_svg_()`` and ``_repr_html_()`` show it in Jupyter. Only snapshots reachable from a
    branch (or from the tag or snapshot asked for) appear; at most 100 of them.
    """

    _nodes: tuple[GraphNode, ...]
    _num_columns: int
    _all_branches: tuple[str, ...]
    _total: int
    _plain: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "AncestryGraph cannot be constructed directly; use Repository.ancestry_graph()"
        )

    @classmethod
    def _build(
        cls,
        histories: Iterable[tuple[str, Sequence[_Snapshot]]],
        tags: Mapping[str, Iterable[str]],
        all_branches: Iterable[str],
        *,
        plain: bool = False,
    ) -> AncestryGraph:
        """The graph of ``histories``: ``(branch name, snapshots newest first)`` pairs.

        ``tags`` maps snapshot ids to the tags pointing there; ``all_branches`` names every
        branch of the repository (for colours). A history named ``""`` is a tag's or a
        snapshot's.
        """
        ordered = sorted(histories, key=lambda h: _main_first(h[0]))
        graph = cls.__new__(cls)
        graph._all_branches = tuple(sorted(all_branches, key=_main_first))
        graph._plain = plain
        graph._num_columns = len(ordered)
        tips: dict[str, list[str]] = {}
        for name, snapshots in ordered:
            if snapshots:
                tips.setdefault(snapshots[0].id, []).append(name)
        nodes: list[GraphNode] = []
        seen: set[str] = set()
        for column, (_, snapshots) in enumerate(ordered):
            for snapshot in snapshots:
                if snapshot.id in seen:
                    break  # the rest of this history is drawn already
                seen.add(snapshot.id)
                nodes.append(
                    GraphNode(
                        id=snapshot.id,
                        parent_id=snapshot.parent_id,
                        written_at=snapshot.written_at,
                        message=snapshot.message,
                        branches=tuple(tips.get(snapshot.id, ())),
                        tags=tuple(sorted(tags.get(snapshot.id, ()))),
                        column=column,
                    )
                )
        # Newest first; ties keep column and walk order (the reference leaves them to chance).
        nodes.sort(key=lambda n: n.written_at, reverse=True)
        graph._total = len(nodes)
        graph._nodes = tuple(nodes[:MAX_NODES])
        return graph

    # -- the value ----------------------------------------------------------------------------

    nodes = ReadOnly[tuple[GraphNode, ...]](
        "_nodes", "The snapshots drawn, newest first (one per row)."
    )

    num_columns = ReadOnly[int](
        "_num_columns", "How many columns the drawing has (one per branch drawn)."
    )

    total_snapshots = ReadOnly[int](
        "_total", "How many snapshots the history has, including those beyond the 100 drawn."
    )

    @property
    def plain(self) -> bool:
        """Whether the text drawing is made without colours."""
        return self._plain or _colour_disabled()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AncestryGraph):
            return NotImplemented
        return (self._nodes, self._num_columns, self._all_branches, self._total) == (
            other._nodes,
            other._num_columns,
            other._all_branches,
            other._total,
        )

    __hash__ = None  # type: ignore[assignment]

    # -- layout -------------------------------------------------------------------------------

    def _column_colours(self) -> list[int]:
        """For each column, the palette index of the branch at its newest node."""
        colours = []
        for column in range(self._num_columns):
            first = next((n for n in self._nodes if n.column == column), None)
            index = column
            if first is not None and first.branches:
                name = first.branches[0]
                index = self._all_branches.index(name) if name in self._all_branches else 0
            colours.append(index)
        return colours

    def _layout(self) -> tuple[list[_Line], list[_Fork]]:
        """Vertical segments and fork joins, shared by the text and the SVG drawings."""
        lines: list[_Line] = []
        forks: list[_Fork] = []
        active = [False] * self._num_columns
        # Where each side column joins: the parent of its oldest node drawn.
        joins: dict[int, str] = {}
        for column in range(1, self._num_columns):
            oldest = next((n for n in reversed(self._nodes) if n.column == column), None)
            if oldest is not None and oldest.parent_id is not None:
                joins[column] = oldest.parent_id
        last = len(self._nodes) - 1
        for row, node in enumerate(self._nodes):
            active[node.column] = True
            for column in sorted(c for c, at in joins.items() if at == node.id and active[c]):
                forks.append(_Fork(max(row - 1, 0), column, row, node.column))
                active[column] = False
            if row == last:
                continue
            more = any(n.column == node.column for n in self._nodes[row + 1 :])
            # A side column stays open until it joins its fork point.
            if not more and node.column not in joins:
                active[node.column] = False
            lines.extend(_Line(row, c) for c, on in enumerate(active) if on)
        return lines, forks

    # -- text ---------------------------------------------------------------------------------

    def _labels(self, node: GraphNode, colours: list[int], plain: bool) -> str:
        parts = []
        for name in node.branches:
            colour = _branch_ansi(colours[node.column])
            parts.append(name if plain else f"{_BOLD}{colour}{name}{_RESET}")
        for name in node.tags:
            parts.append(name if plain else f"{_BOLD}{_ITALIC}{_ansi(TAG_COLOUR[0])}{name}{_RESET}")
        return f" ({', '.join(parts)})" if parts else ""

    def _text(self, plain: bool) -> str:
        if not self._nodes:
            return "(empty history)\n"
        colours = self._column_colours()
        lines, forks = self._layout()
        line_columns: dict[int, set[int]] = {}
        for line in lines:
            line_columns.setdefault(line.row, set()).add(line.column)
        # A fork is drawn on the line of the node it joins.
        joining: dict[int, list[int]] = {}
        for fork in forks:
            joining.setdefault(fork.row, []).append(fork.column)

        def cell(glyph: str, glyph_colour: int, trail: str = " ", trail_colour: int = 0) -> str:
            if plain:
                return glyph + trail
            head = f"{_branch_ansi(glyph_colour)}{glyph}{_RESET}"
            if trail == " ":
                return head + " "
            return f"{head}{_branch_ansi(trail_colour)}{trail}{_RESET}"

        out: list[str] = []
        for row, node in enumerate(self._nodes):
            joins = sorted(joining.get(row, ()))
            rightmost = joins[-1] if joins else None

            def next_join_colour(column: int, joins: list[int] = joins) -> int:
                return next((colours[j] for j in joins if j >= column), 0)

            here = line_columns.get(row, set())
            above = line_columns.get(row - 1, set()) if row > 0 else set()
            prefix = []
            for column in range(self._num_columns):
                between = rightmost is not None and node.column <= column < rightmost
                trail = "─" if between else " "
                trail_colour = next_join_colour(column + 1) if between else 0
                if column == node.column:
                    prefix.append(cell("●", colours[column], trail, trail_colour))
                elif column in joins:
                    prefix.append(cell("╯", colours[column], trail, trail_colour))
                elif column in here or column in above:
                    prefix.append(cell("│", colours[column]))
                elif rightmost is not None and node.column < column < rightmost:
                    prefix.append(cell("─", next_join_colour(column), trail, trail_colour))
                else:
                    prefix.append("  ")
            short = node.id[:8]
            labels = self._labels(node, colours, plain)
            message = _short_message(node.message)
            ident = short if plain else f"{_DIM}{short}{_RESET}"
            out.append(f"{''.join(prefix)}{ident}{labels} {message}\n")
            if here:
                connector = (
                    cell("│", colours[c]) if c in here else "  " for c in range(self._num_columns)
                )
                out.append("".join(connector) + "\n")
        if self._total > len(self._nodes):
            note = f"  ... (showing {len(self._nodes)} of {self._total} snapshots)"
            out.append((note if plain else f"{_DIM}{note}{_RESET}") + "\n")
        return "".join(out)

    def __str__(self) -> str:
        return self._text(self.plain)

    __repr__ = __str__

    # -- SVG ----------------------------------------------------------------------------------

    def svg(self, *, interactive: bool = False) -> str:
        """The SVG drawing; ``interactive`` adds ``data-snapshot`` attributes for a web page."""
        if not self._nodes:
            return (
                '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="30" '
                'style="font-family: monospace; font-size: 13px;">'
                '<text x="10" y="20" fill="#888">(empty history)</text></svg>'
            )
        colours = self._column_colours()
        lines, forks = self._layout()

        def x(column: int) -> float:
            return _LEFT + column * _COLUMN_WIDTH

        def y(row: int) -> float:
            return _TOP + row * _ROW_HEIGHT + _RADIUS

        text_x = _LEFT + max(self._num_columns, 1) * _COLUMN_WIDTH + _TEXT_GAP
        height = 2 * _TOP + len(self._nodes) * _ROW_HEIGHT
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_number(text_x + _TEXT_WIDTH)}" '
            f'height="{_number(height)}" style="font-family: monospace; font-size: '
            f'{_number(_FONT_SIZE)}px;">\n'
        ]
        for column, first, last in self._spans(lines, forks):
            out.append(
                f'  <line x1="{_number(x(column))}" y1="{_number(y(first))}" '
                f'x2="{_number(x(column))}" y2="{_number(y(last))}" '
                f'stroke="{_branch_hex(colours[column])}" stroke-width="{_number(_STROKE)}" />\n'
            )
        for fork in forks:
            x1, y1 = x(fork.column), y(fork.start)
            x2, y2 = x(fork.into), y(fork.row)
            mid = (y1 + y2) / 2
            out.append(
                f'  <path d="M {_number(x1)} {_number(y1)} C {_number(x1)} {_number(mid)}, '
                f'{_number(x2)} {_number(mid)}, {_number(x2)} {_number(y2)}" fill="none" '
                f'stroke="{_branch_hex(colours[fork.column])}" '
                f'stroke-width="{_number(_STROKE)}" />\n'
            )
        for row, node in enumerate(self._nodes):
            colour = _branch_hex(colours[node.column])
            data = f' data-snapshot="{node.id}" class="ic-node"' if interactive else ""
            out.append(
                f'  <circle cx="{_number(x(node.column))}" cy="{_number(y(row))}" '
                f'r="{_number(_RADIUS)}" fill="{colour}"{data} />\n'
            )
            labels = [
                f'<tspan font-weight="bold" fill="{colour}">{_escape(b)}</tspan>'
                for b in node.branches
            ] + [
                f'<tspan font-weight="bold" font-style="italic" fill="{TAG_COLOUR[1]}">'
                f"{_escape(t)}</tspan>"
                for t in node.tags
            ]
            label = f" ({', '.join(labels)})" if labels else ""
            message = _escape(_short_message(node.message))
            out.append(
                f'  <text x="{_number(text_x)}" y="{_number(y(row) + _FONT_SIZE / 3)}" '
                f'fill="#aaa"{data}><tspan fill="#888">{node.id[:8]}</tspan>{label} '
                f"{message}</text>\n"
            )
        if self._total > len(self._nodes):
            note_y = y(len(self._nodes)) + _FONT_SIZE
            out.append(
                f'  <text x="{_number(text_x)}" y="{_number(note_y)}" fill="#888">... (showing '
                f"{len(self._nodes)} of {self._total} snapshots)</text>\n"
            )
        out.append("</svg>\n")
        return "".join(out)

    @staticmethod
    def _spans(lines: list[_Line], forks: list[_Fork]) -> list[tuple[int, int, int]]:
        """Consecutive segments of a column as one line ``(column, first row, last row)``.

        A column that forks ends where its curve starts. Lines that end at a fork come first,
        in the order they end, then the others by column (the reference's order for those
        is its hash map's).
        """
        fork_rows = {f.column: f.start for f in forks}
        open_spans: dict[int, tuple[int, int]] = {}
        done: list[tuple[int, int, int]] = []
        for line in lines:
            start, end = line.row, line.row + 1
            if line.column in open_spans:
                first, last = open_spans[line.column]
                if start <= last:
                    start, end = first, max(last, end)
                else:
                    done.append((line.column, first, last))
            open_spans[line.column] = (start, end)
            fork_row = fork_rows.get(line.column)
            if fork_row is not None and end > fork_row:
                first, _ = open_spans.pop(line.column)
                done.append((line.column, first, fork_row))
        done.extend((c, first, last) for c, (first, last) in sorted(open_spans.items()))
        return done

    def _repr_svg_(self) -> str:
        return self.svg()

    def _repr_html_(self) -> str:
        return f'<div style="overflow-x: auto;">{self.svg()}</div>'


async def ancestry_graph_async(
    repo: Any,
    *,
    branch: str | None = None,
    tag: str | None = None,
    snapshot_id: str | None = None,
    plain: bool = False,
) -> AncestryGraph:
    """Async version of :func:`ancestry_graph`."""
    if sum(x is not None for x in (branch, tag, snapshot_id)) > 1:
        raise ValueError(_ONE_OF)
    all_branches, tag_names = await asyncio.gather(
        repo.list_branches_async(), repo.list_tags_async()
    )
    tag_names = sorted(tag_names)
    tag_ids = await asyncio.gather(*(repo.lookup_tag_async(t) for t in tag_names))
    tags: dict[str, list[str]] = {}
    for name, sid in zip(tag_names, tag_ids, strict=True):
        tags.setdefault(sid, []).append(name)

    async def walk(**start: str) -> list[Any]:
        return [s async for s in repo.ancestry(**start)]

    histories: list[tuple[str, Sequence[_Snapshot]]]
    if tag is not None:
        histories = [("", await walk(tag=tag))]
    elif snapshot_id is not None:
        histories = [("", await walk(snapshot_id=snapshot_id))]
    else:
        names = [branch] if branch is not None else sorted(all_branches)
        walks = await asyncio.gather(*(walk(branch=b) for b in names))
        histories = list(zip(names, walks, strict=True))
    return AncestryGraph._build(histories, tags, all_branches, plain=plain)


ancestry_graph = blocking_twin(
    ancestry_graph_async,
    """Draw the history of ``repo``: every branch and tag, or one ref's history.

    Parameters
    ----------
    repo
        The repository (any object with pyicechunk's ``Repository`` API).
    branch, tag, snapshot_id
        At most one: draw only that history. With none, every branch is drawn.
    plain
        Draw the text without colours.

    Returns
    -------
    AncestryGraph

    Raises
    ------
    ValueError
        More than one of ``branch``, ``tag`` and ``snapshot_id`` was given.
    IcechunkError
        The ref or snapshot does not exist, or the history cannot be read.
    """,
)
