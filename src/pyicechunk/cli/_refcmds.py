"""Ref verbs: ``branch [list|create|delete|reset]`` and ``tag [list|create|delete]``.

``branch list --json`` and ``tag list --json`` print ``[{"name", "snapshot_id", "short_id",
"written_at", "message"}, ...]`` sorted by name ("main" first for branches).
"""

from __future__ import annotations

from typing import Any

import click
from rich.text import Text

from pyicechunk.cli._app import app, json_option, repo_options
from pyicechunk.cli._history import first_line
from pyicechunk.cli._output import console, emit_json, relative_time, table
from pyicechunk.cli._refs import Snapshots, current_snapshots

__all__: list[str] = []


def _list(snapshots: Snapshots, refs: dict[str, str], kind: str, as_json: bool) -> None:
    names = sorted(refs, key=lambda n: (n != "main", n) if kind == "branch" else (False, n))
    infos = {sid: snapshots.repo.lookup_snapshot(sid) for sid in set(refs.values())}
    rows = [
        {
            "name": name,
            "snapshot_id": refs[name],
            "short_id": snapshots.short(refs[name]),
            "written_at": infos[refs[name]].written_at,
            "message": infos[refs[name]].message,
        }
        for name in names
    ]
    if as_json:
        emit_json(rows)
        return
    t = table(kind.capitalize(), "Snapshot", "Written", "Message")
    style = "bold green" if kind == "branch" else "bold italic cyan"
    for row in rows:
        t.add_row(
            Text(row["name"], style=style),
            Text(row["short_id"], style="yellow"),
            relative_time(row["written_at"]),
            first_line(row["message"]),
        )
    console().print(t)


def _done(message: str) -> None:
    console().print(Text(message))


@app.group("branch", invoke_without_command=True)
@repo_options
@json_option
@click.pass_context
def branch(ctx: click.Context, as_json: bool) -> None:
    """List, create, delete or reset branches (alone: list them)."""
    if ctx.invoked_subcommand is None:
        snapshots = current_snapshots()
        _list(snapshots, snapshots.branches, "branch", as_json)


@branch.command("list")
@repo_options
@json_option
def branch_list(as_json: bool) -> None:
    """List the branches.

    --json prints [{"name", "snapshot_id", "short_id", "written_at", "message"}, ...].
    """
    snapshots = current_snapshots()
    _list(snapshots, snapshots.branches, "branch", as_json)


@branch.command("create")
@repo_options
@click.argument("name")
@click.argument("start", metavar="[FROM]", required=False)
def branch_create(name: str, start: str | None) -> None:
    """Create branch NAME at FROM (a ref; default: main)."""
    snapshots = current_snapshots()
    target = snapshots.resolve(start or "main")
    snapshots.repo.create_branch(name, target.snapshot_id)
    _done(f"Created branch {name} at {snapshots.short(target.snapshot_id)}.")


@branch.command("delete")
@repo_options
@click.argument("name")
def branch_delete(name: str) -> None:
    """Delete branch NAME (its snapshots stay until they expire or are collected)."""
    snapshots = current_snapshots()
    tip = snapshots.repo.lookup_branch(name)
    snapshots.repo.delete_branch(name)
    _done(f"Deleted branch {name} (was at {snapshots.short(tip)}).")


@branch.command("reset")
@repo_options
@click.argument("name")
@click.argument("to", metavar="TO")
def branch_reset(name: str, to: str) -> None:
    """Point branch NAME at TO (a ref), if nobody moved it meanwhile."""
    snapshots = current_snapshots()
    target = snapshots.resolve(to)
    current = snapshots.repo.lookup_branch(name)
    snapshots.repo.reset_branch(name, target.snapshot_id, from_snapshot_id=current)
    _done(
        f"Reset branch {name} from {snapshots.short(current)} to "
        f"{snapshots.short(target.snapshot_id)}."
    )


@app.group("tag", invoke_without_command=True)
@repo_options
@json_option
@click.pass_context
def tag(ctx: click.Context, as_json: bool) -> None:
    """List, create or delete tags (alone: list them)."""
    if ctx.invoked_subcommand is None:
        snapshots = current_snapshots()
        _list(snapshots, snapshots.tags, "tag", as_json)


@tag.command("list")
@repo_options
@json_option
def tag_list(as_json: bool) -> None:
    """List the tags.

    --json prints [{"name", "snapshot_id", "short_id", "written_at", "message"}, ...].
    """
    snapshots = current_snapshots()
    _list(snapshots, snapshots.tags, "tag", as_json)


@tag.command("create")
@repo_options
@click.argument("name")
@click.argument("target", metavar="[REF]", required=False)
def tag_create(name: str, target: str | None) -> None:
    """Create tag NAME at REF (default: main's tip)."""
    snapshots = current_snapshots()
    ref = snapshots.resolve(target or "main")
    snapshots.repo.create_tag(name, ref.snapshot_id)
    _done(f"Created tag {name} at {snapshots.short(ref.snapshot_id)}.")


@tag.command("delete")
@repo_options
@click.argument("name")
def tag_delete(name: str) -> None:
    """Delete tag NAME (a deleted tag's name cannot be used again)."""
    snapshots = current_snapshots()
    at: Any = snapshots.repo.lookup_tag(name)
    snapshots.repo.delete_tag(name)
    _done(f"Deleted tag {name} (was at {snapshots.short(at)}).")
