"""History verbs: ``log`` (``ancestry``, ``snapshot list``), ``show`` and ``diff``.

JSON schemas (``--json``; times are ISO 8601 UTC strings, ids full 20-character ids):

- snapshot: ``{"id", "short_id", "parent_id", "written_at", "message", "metadata",
  "branches": [...], "tags": [...]}``; ``log`` prints a list of them (``log --graph`` adds
  ``"column"``), ``show`` one with ``"changes"`` (a diff, or null for the first snapshot) and
  ``"manifests": [{"id", "size_bytes", "num_chunk_refs"}]``.
- diff: ``{"from", "to", "new_groups", "new_arrays", "deleted_groups", "deleted_arrays",
  "updated_groups", "updated_arrays"`` (sorted path lists)``, "updated_chunks": {path:
  [[coords], ...]}, "moved_nodes": [[from, to], ...]}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import click
from rich.text import Text

from pyicechunk.cli._app import app, json_option, repo_options
from pyicechunk.cli._output import CliError, console, emit_json, iso, relative_time, table
from pyicechunk.cli._refs import Ref, Snapshots, current_snapshots
from pyicechunk.history import NODE_LISTS

__all__ = ["diff_json", "first_line", "snapshot_json"]


def snapshot_json(snapshots: Snapshots, info: Any) -> dict[str, Any]:
    """The JSON form of a snapshot (see the module's schemas)."""
    branches, tags = snapshots.labels(info.id)
    return {
        "id": info.id,
        "short_id": snapshots.short(info.id),
        "parent_id": info.parent_id,
        "written_at": iso(info.written_at),
        "message": info.message,
        "metadata": info.metadata,
        "branches": branches,
        "tags": tags,
    }


def diff_json(diff: Any, from_id: str | None, to_id: str) -> dict[str, Any]:
    """The JSON form of a Diff (see the module's schemas)."""
    out: dict[str, Any] = {"from": from_id, "to": to_id}
    out.update({name: sorted(getattr(diff, name)) for name in NODE_LISTS})
    out["updated_chunks"] = {
        path: [list(c) for c in coords] for path, coords in sorted(diff.updated_chunks.items())
    }
    out["moved_nodes"] = [list(m) for m in getattr(diff, "moved_nodes", [])]
    return out


def _labels(branches: list[str], tags: list[str]) -> Text:
    text = Text()
    if not branches and not tags:
        return text
    text.append(" (")
    parts = [(b, "bold green") for b in branches] + [(t, "bold italic cyan") for t in tags]
    for n, (name, style) in enumerate(parts):
        if n:
            text.append(", ")
        text.append(name, style=style)
    text.append(")")
    return text


def first_line(message: str) -> str:
    return message.split("\n", 1)[0].removesuffix("\r")


def _history(snapshots: Snapshots, ref: str | None, all_refs: bool) -> list[Any]:
    if all_refs:
        if ref is not None:
            raise CliError("give a REF or --all, not both")
        return sorted(snapshots.all().values(), key=lambda s: s.written_at, reverse=True)
    start = snapshots.resolve(ref or "main")
    return list(snapshots.repo.ancestry(snapshot_id=start.snapshot_id))


def _limit(infos: Iterable[Any], count: int | None) -> list[Any]:
    infos = list(infos)
    return infos if count is None else infos[: max(count, 0)]


def _print_graph(snapshots: Snapshots, ref: str | None, as_json: bool) -> None:
    from pyicechunk.cli._output import wants_colour
    from pyicechunk.graph import ancestry_graph

    selector = snapshots.resolve(ref).selector() if ref is not None else {}
    graph = ancestry_graph(snapshots.repo, **selector, plain=not wants_colour())
    if as_json:
        known = snapshots.all()
        infos = [known.get(n.id) or snapshots.repo.lookup_snapshot(n.id) for n in graph.nodes]
        emit_json(
            [
                {**snapshot_json(snapshots, info), "column": node.column}
                for node, info in zip(graph.nodes, infos, strict=True)
            ]
        )
        return
    click.echo(str(graph), nl=False, color=not graph.plain)


def _print_long(snapshots: Snapshots, infos: list[Any]) -> None:
    out = console()
    for n, info in enumerate(infos):
        if n:
            out.print()
        branches, tags = snapshots.labels(info.id)
        head = Text("snapshot ", style="yellow")
        head.append(info.id, style="yellow")
        head.append_text(_labels(branches, tags))
        out.print(head)
        when = info.written_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        out.print(Text(f"Date:     {when} ({relative_time(info.written_at)})"))
        if info.metadata:
            out.print(Text(f"Metadata: {json.dumps(info.metadata, sort_keys=True)}"))
        out.print()
        for line in (info.message or "").splitlines() or [""]:
            out.print(Text(f"    {line}"))


def _print_oneline(snapshots: Snapshots, infos: list[Any]) -> None:
    out = console()
    for info in infos:
        branches, tags = snapshots.labels(info.id)
        line = Text(snapshots.short(info.id), style="yellow")
        line.append_text(_labels(branches, tags))
        line.append(" " + first_line(info.message))
        out.print(line)


def _log(
    ref: str | None,
    max_count: int | None,
    graph: bool,
    oneline: bool,
    all_refs: bool,
    as_json: bool,
    style: str = "long",
) -> None:
    snapshots = current_snapshots()
    if graph:
        if all_refs and ref is not None:
            raise CliError("give a REF or --all, not both")
        _print_graph(snapshots, ref, as_json)
        return
    infos = _limit(_history(snapshots, ref, all_refs), max_count)
    if as_json:
        emit_json([snapshot_json(snapshots, i) for i in infos])
    elif oneline:
        _print_oneline(snapshots, infos)
    elif style == "table":
        t = table("Snapshot", "Written", "Refs", "Message")
        for info in infos:
            branches, tags = snapshots.labels(info.id)
            t.add_row(
                Text(snapshots.short(info.id), style="yellow"),
                relative_time(info.written_at),
                _labels(branches, tags)[2:-1] if branches or tags else "",
                first_line(info.message),
            )
        console().print(t)
    else:
        _print_long(snapshots, infos)


def _log_options(func: Any) -> Any:
    """REF and the options of :func:`_log`, passed to ``func`` as keyword arguments."""
    for decorate in reversed(
        [
            click.argument("ref", required=False),
            click.option("-n", "--max-count", type=int, metavar="N", help="Show at most N."),
            click.option(
                "--graph",
                is_flag=True,
                help="Draw the history as a graph (every branch unless REF is given; at most "
                "100 snapshots).",
            ),
            click.option("--oneline", is_flag=True, help="One line per snapshot."),
            click.option(
                "--all", "all_refs", is_flag=True, help="Every snapshot reachable from a ref."
            ),
            json_option,
            repo_options,
        ]
    ):
        func = decorate(func)
    return func


@app.command("log")
@_log_options
def log(**options: Any) -> None:
    """Show the history of REF (default: main), newest first.

    --json prints a list of snapshots: {"id", "short_id", "parent_id", "written_at",
    "message", "metadata", "branches", "tags"} (with --graph also "column").
    """
    _log(**options)


@app.command("ancestry")
@_log_options
def ancestry(**options: Any) -> None:
    """The same as `log` (icechunk's spelling)."""
    _log(**options)


@app.group("snapshot")
def snapshot() -> None:
    """Snapshots (icechunk's spelling: `snapshot list`)."""


@snapshot.command("list")
@_log_options
def snapshot_list(**options: Any) -> None:
    """List the snapshots in the history of REF (default: main) as a table.

    --json prints the same list as `log --json`.
    """
    _log(**options, style="table")


def _diff(snapshots: Snapshots, older: str, newer: str) -> Any:
    return snapshots.repo.diff(from_snapshot_id=older, to_snapshot_id=newer)


def _print_diff(diff: Any) -> None:
    text = str(diff)
    if not text.strip():
        console().print("No changes.")
        return
    click.echo(text.rstrip("\n"))


@app.command("show")
@repo_options
@click.argument("ref", metavar="SNAPSHOT|REF")
@json_option
def show(ref: str, as_json: bool) -> None:
    """Show a snapshot: message, metadata, parent, changes and manifests.

    --json prints {"id", "short_id", "parent_id", "written_at", "message", "metadata",
    "branches", "tags", "changes", "manifests"}: changes is a diff (see `diff --help`) or null
    for the first snapshot; manifests is a list of {"id", "size_bytes", "num_chunk_refs"}.
    """
    snapshots = current_snapshots()
    target: Ref = snapshots.resolve(ref)
    repo = snapshots.repo
    info = repo.lookup_snapshot(target.snapshot_id)
    changes = None if info.parent_id is None else _diff(snapshots, info.parent_id, info.id)
    list_manifests = getattr(repo, "list_manifest_files", None)
    manifests = list_manifests(info.id) if list_manifests else getattr(info, "manifests", [])
    if as_json:
        doc = snapshot_json(snapshots, info)
        doc["changes"] = None if changes is None else diff_json(changes, info.parent_id, info.id)
        doc["manifests"] = [
            {"id": m.id, "size_bytes": m.size_bytes, "num_chunk_refs": m.num_chunk_refs}
            for m in manifests
        ]
        emit_json(doc)
        return
    out = console()
    _print_long(snapshots, [info])
    out.print()
    if info.parent_id is not None:
        out.print(Text(f"Parent:   {info.parent_id}"))
        out.print()
        out.print(Text("Changes:", style="bold"))
        _print_diff(changes)
    else:
        out.print("The repository's first snapshot: no parent, no changes.")
    if manifests:
        out.print()
        t = table("Manifest", "Bytes", "Chunk refs")
        for m in manifests:
            t.add_row(m.id, f"{m.size_bytes:,}", f"{m.num_chunk_refs:,}")
        out.print(t)


@app.command("diff")
@repo_options
@click.argument("older", metavar="A")
@click.argument("newer", metavar="[B]", required=False)
@json_option
def diff(older: str, newer: str | None, as_json: bool) -> None:
    """Show the changes from A to B (default: main). A must be in the history of B.

    --json prints {"from", "to", "new_groups", "new_arrays", "deleted_groups",
    "deleted_arrays", "updated_groups", "updated_arrays", "updated_chunks": {path: [[i, j,
    ...], ...]}, "moved_nodes": [[from, to], ...]}.
    """
    snapshots = current_snapshots()
    start = snapshots.resolve(older)
    end = snapshots.resolve(newer or "main")
    if start.snapshot_id == end.snapshot_id:
        changes = None
    else:
        try:
            changes = _diff(snapshots, start.snapshot_id, end.snapshot_id)
        except Exception as e:
            if "ancestry doesn't include" in str(e) or "ancestor" in str(e):
                raise CliError(
                    f"{older} is not in the history of {newer or 'main'}: diff shows what "
                    "changed from an older snapshot to a newer one"
                ) from e
            raise
    if as_json:
        if changes is None:
            emit_json({"from": start.snapshot_id, "to": end.snapshot_id} | _empty_diff())
        else:
            emit_json(diff_json(changes, start.snapshot_id, end.snapshot_id))
        return
    if changes is None:
        console().print("No changes.")
    else:
        _print_diff(changes)


def _empty_diff() -> dict[str, Any]:
    return {k: [] for k in NODE_LISTS} | {"updated_chunks": {}, "moved_nodes": []}
