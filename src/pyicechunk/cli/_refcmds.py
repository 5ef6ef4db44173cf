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


def _ref_commands(kind: str, *, about: str, start: str, start_help: str, gone: str) -> click.Group:
    """The ``kind`` group (``branch`` or ``tag``) with its ``list``, ``create`` and ``delete``.

    ``about`` is the group's help, ``start`` the metavar of create's optional start ref and
    ``start_help`` what create's help says of it; ``gone`` is what delete's help says happens
    after.
    """
    plural = f"{kind}es" if kind.endswith("ch") else f"{kind}s"

    def listing(as_json: bool) -> None:
        snapshots = current_snapshots()
        _list(snapshots, snapshots.branches if kind == "branch" else snapshots.tags, kind, as_json)

    @app.group(kind, invoke_without_command=True, help=f"{about} (alone: list them).")
    @repo_options
    @json_option
    @click.pass_context
    def group(ctx: click.Context, as_json: bool) -> None:
        if ctx.invoked_subcommand is None:
            listing(as_json)

    list_help = f"List the {plural}.\n\n--json prints {_JSON_ROW}."
    group.command("list", help=list_help)(repo_options(json_option(listing)))

    @group.command("create", help=f"Create {kind} NAME at {start.strip('[]')} ({start_help}).")
    @repo_options
    @click.argument("name")
    @click.argument("start", metavar=start, required=False)
    def create(name: str, start: str | None) -> None:
        snapshots = current_snapshots()
        target = snapshots.resolve(start or "main")
        made = snapshots.repo.create_branch if kind == "branch" else snapshots.repo.create_tag
        made(name, target.snapshot_id)
        _done(f"Created {kind} {name} at {snapshots.short(target.snapshot_id)}.")

    @group.command("delete", help=f"Delete {kind} NAME ({gone}).")
    @repo_options
    @click.argument("name")
    def delete(name: str) -> None:
        snapshots = current_snapshots()
        repo = snapshots.repo
        was: Any = repo.lookup_branch(name) if kind == "branch" else repo.lookup_tag(name)
        (repo.delete_branch if kind == "branch" else repo.delete_tag)(name)
        _done(f"Deleted {kind} {name} (was at {snapshots.short(was)}).")

    return group


_JSON_ROW = '[{"name", "snapshot_id", "short_id", "written_at", "message"}, ...]'

branch = _ref_commands(
    "branch",
    about="List, create, delete or reset branches",
    start="[FROM]",
    start_help="a ref; default: main",
    gone="its snapshots stay until they expire or are collected",
)
tag = _ref_commands(
    "tag",
    about="List, create or delete tags",
    start="[REF]",
    start_help="default: main's tip",
    gone="a deleted tag's name cannot be used again",
)


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
