"""Data verbs: ``ls`` (the tree of groups and arrays) and ``cat`` (an array and some values).

JSON schemas: a node is ``{"path", "type": "group"|"array", "attributes"}``; arrays add
``"shape", "dtype", "chunks", "dimension_names", "fill_value"``. ``ls --json`` prints
``{"snapshot_id", "path", "nodes": [node, ...]}``; ``cat --json`` prints an array node with
``"snapshot_id"``, ``"chunks_total", "chunks_written", "bytes_stored"``, ``"selection"`` (the
text form) and ``"values"`` (nested lists; NaN and infinities as null, dates as strings).
"""

from __future__ import annotations

from typing import Any

import click
import numpy as np
import zarr
from rich.text import Text
from rich.tree import Tree

from pyicechunk.cli._app import app, json_option, repo_options
from pyicechunk.cli._describe import (
    Node,
    chunk_stats,
    default_selection,
    human_bytes,
    json_values,
    node_json,
    open_node,
    parse_selection,
    short_json,
    tree_json,
)
from pyicechunk.cli._output import CliError, console, emit_json
from pyicechunk.cli._refs import current_snapshots

__all__: list[str] = []


def _session(ref: str) -> tuple[str, Any]:
    snapshots = current_snapshots()
    target = snapshots.resolve(ref)
    session = snapshots.repo.readonly_session(snapshot_id=target.snapshot_id)
    return target.snapshot_id, session


def _label(node: Node) -> Text:
    name = node.basename or "/"
    if isinstance(node, zarr.Group):
        text = Text(name if name == "/" else name + "/", style="bold blue")
    else:
        info = node_json(node)
        text = Text(name, style="bold")
        text.append(f"  {tuple(info['shape'])} {info['dtype']}", style="green")
        if info["chunks"] is not None:
            text.append(f"  chunks {tuple(info['chunks'])}", style="dim")
        if info["dimension_names"]:
            text.append(f"  dims {tuple(info['dimension_names'])}", style="dim")
    if node.attrs:
        text.append("  " + short_json(dict(node.attrs)), style="italic")
    return text


def _tree(node: Node, into: Tree) -> None:
    if isinstance(node, zarr.Group):
        for _, child in sorted(node.members(), key=lambda m: m[0]):
            branch = into.add(_label(child))
            _tree(child, branch)


@app.command("ls")
@repo_options
@click.argument("ref", required=False)
@click.argument("path", required=False)
@json_option
def ls(ref: str | None, path: str | None, as_json: bool) -> None:
    """Show the groups and arrays at REF (default: main) under PATH (default: /).

    --json prints {"snapshot_id", "path", "nodes": [...]}; each node is {"path", "type",
    "attributes"} and arrays add "shape", "dtype", "chunks", "dimension_names", "fill_value".
    """
    snapshot_id, session = _session(ref or "main")
    where = "/" + (path or "").strip("/")
    nodes = tree_json(session, where)
    if as_json:
        emit_json({"snapshot_id": snapshot_id, "path": where, "nodes": nodes})
        return
    if not nodes:
        console().print("(an empty snapshot: no groups or arrays)")
        return
    node = open_node(session, where)
    tree = Tree(_label(node))
    _tree(node, tree)
    console().print(tree)


@app.command("cat")
@repo_options
@click.argument("ref")
@click.argument("path")
@click.option(
    "-s",
    "--slice",
    "selection",
    metavar="SELECTION",
    help="Which values, numpy style: 0:5,:,3 (default: the first 10 along each dimension).",
)
@json_option
def cat(ref: str, path: str, selection: str | None, as_json: bool) -> None:
    """Show the array at PATH in REF: its metadata, chunk statistics and some values.

    --json prints the array's node (see `ls --help`) with "snapshot_id", "chunks_total",
    "chunks_written", "bytes_stored", "selection" and "values" (nested lists; NaN and
    infinities as null, dates and other kinds as strings).
    """
    snapshot_id, session = _session(ref)
    node = open_node(session, path)
    if not isinstance(node, zarr.Array):
        raise CliError(f"/{node.path} is a group, not an array: list it with `pyicechunk ls`")
    chosen = (
        parse_selection(selection, node.ndim) if selection else default_selection(tuple(node.shape))
    )
    values = np.asarray(node[chosen])
    info = node_json(node) | chunk_stats(node)
    shown = selection or ",".join(f"{s.start}:{s.stop}" for s in chosen)
    if as_json:
        emit_json(
            {"snapshot_id": snapshot_id, **info, "selection": shown, "values": json_values(values)}
        )
        return
    out = console()
    out.print(_label(node))
    out.print(
        Text(
            f"chunks written: {info['chunks_written']:,} of {info['chunks_total']:,}, "
            f"{human_bytes(info['bytes_stored'])} stored"
        )
    )
    if info["fill_value"] is not None:
        out.print(Text(f"fill value: {info['fill_value']}"))
    for key, value in sorted(node.attrs.items()):
        out.print(Text(f"{key}: {short_json(value, 200)}"))
    out.print(Text(f"values [{shown}]:", style="bold"))
    click.echo(np.array2string(values, threshold=1000, max_line_width=120))
