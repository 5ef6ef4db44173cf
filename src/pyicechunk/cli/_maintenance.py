"""Maintenance verbs: ``stats``, ``ops``, ``expire``, ``gc`` and ``upgrade``.

Times for ``--older-than`` are a date or date-time (``2026-01-31``, ``2026-01-31T12:00Z``;
UTC unless it says otherwise) or an age (``30d``, ``12h``, ``2w``, ``90m``, ``45s``).

``--progress/--no-progress`` shows or hides the progress of the work (default: as
:mod:`pyicechunk.progress` decides, a bar when stderr is a terminal unless
``PYICECHUNK_PROGRESS`` says otherwise).

JSON schemas: ``stats`` ``{"native_bytes", "virtual_bytes", "inlined_bytes", "total_bytes"}``;
``ops`` ``[{"kind", "updated_at", "backup_path", "details": {...}}, ...]`` newest first;
``gc`` ``{"dry_run", "older_than", "deleted": {"chunks_deleted", ..., "bytes_deleted"}}``;
``expire`` ``{"older_than", "expired": [ids]}``; ``upgrade`` ``{"dry_run", "spec_version"}``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sys
from typing import Any

import click
from rich.text import Text

import pyicechunk
from pyicechunk.cli._app import app, json_option, options, repo_options
from pyicechunk.cli._describe import human_bytes
from pyicechunk.cli._location import open_repository
from pyicechunk.cli._output import CliError, console, emit_json, iso, relative_time, table
from pyicechunk.progress import progress_mode

__all__ = ["parse_time", "spec_version"]

_AGE = re.compile(r"(\d+)\s*([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def parse_time(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """A point in time from an age (``30d``) or an ISO 8601 date or date-time."""
    now = now or dt.datetime.now(dt.UTC)
    ages = _AGE.findall(text.strip().lower())
    if ages and "".join(f"{n}{u}" for n, u in ages) == re.sub(r"\s+", "", text.lower()):
        return now - dt.timedelta(seconds=sum(int(n) * _SECONDS[u] for n, u in ages))
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(
            f"bad time {text!r}: give an age like 30d, 12h, 2w, or a date like 2026-01-31 "
            "or 2026-01-31T12:00:00Z"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def spec_version(repo: Any) -> int:
    """The repository's on-disk spec version (1 for a library without ``spec_version``)."""
    return int(getattr(repo, "spec_version", 1))


def _progress() -> contextlib.AbstractContextManager[Any]:
    """The progress mode ``--progress/--no-progress`` chose for the library calls in it."""
    chosen = options().progress
    return contextlib.nullcontext() if chosen is None else progress_mode(chosen)


def _progress_option(func: Any) -> Any:
    def store(ctx: click.Context, param: click.Parameter, value: bool | None) -> None:
        options().progress = value

    return click.option(
        "--progress/--no-progress",
        default=None,
        expose_value=False,
        callback=store,
        help="Show progress (default: when stderr is a terminal, unless $PYICECHUNK_PROGRESS "
        "is off).",
    )(func)


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError(f"{question.rstrip('?')}: pass --yes to confirm when not interactive")
    if not click.confirm(question, default=False, err=True):
        raise CliError("nothing done: not confirmed")


@app.command("stats")
@repo_options
@json_option
def stats(as_json: bool) -> None:
    """Bytes of chunk data reachable from any branch or tag, by kind of chunk.

    --json prints {"native_bytes", "virtual_bytes", "inlined_bytes", "total_bytes"}.
    """
    result = open_repository(options()).chunk_storage_stats()
    rows = {
        "native_bytes": result.native_bytes,
        "virtual_bytes": result.virtual_bytes,
        "inlined_bytes": result.inlined_bytes,
        "total_bytes": result.total_bytes(),
    }
    if as_json:
        emit_json(rows)
        return
    t = table("Chunks", "Bytes", "")
    for name, value in rows.items():
        t.add_row(name.removesuffix("_bytes"), f"{value:,}", human_bytes(value))
    console().print(t)


def _update_json(update: Any) -> dict[str, Any]:
    kind = update.kind
    details = {
        name: getattr(kind, name)
        for name in dir(kind)
        if not name.startswith("_") and not callable(getattr(kind, name))
    }
    return {
        "kind": type(kind).__name__,
        "updated_at": update.updated_at,
        "backup_path": getattr(update, "backup_path", None),
        "details": details,
    }


@app.command("ops")
@repo_options
@click.option("-n", "--max-count", type=int, metavar="N", help="Show at most N entries.")
@json_option
def ops(max_count: int | None, as_json: bool) -> None:
    """The repository's operations log, newest first (spec-2 repositories).

    --json prints [{"kind", "updated_at", "backup_path", "details": {...}}, ...].
    """
    repo = open_repository(options())
    if spec_version(repo) < 2:
        raise CliError(
            "the operations log needs a spec-2 repository and this one is spec 1 (upgrade it "
            "with `pyicechunk upgrade`)"
        )
    ops_log = getattr(repo, "ops_log", None)
    if ops_log is None:
        raise CliError("this version of pyicechunk cannot read the operations log yet")
    entries = []
    for n, update in enumerate(ops_log()):
        if max_count is not None and n >= max_count:
            break
        entries.append(_update_json(update))
    if as_json:
        emit_json(entries)
        return
    t = table("When", "Operation", "Details")
    for entry in entries:
        details = ", ".join(f"{k}={v}" for k, v in sorted(entry["details"].items()))
        t.add_row(relative_time(entry["updated_at"]), entry["kind"], details)
    console().print(t)


def _summary_fields(summary: Any) -> dict[str, int]:
    names = sorted(n for n in dir(summary) if n.endswith("_deleted") and not n.startswith("_"))
    return {n: int(getattr(summary, n)) for n in names}


def _print_summary(title: str, counts: dict[str, int]) -> None:
    out = console()
    out.print(Text(title, style="bold"))
    t = table("Objects", "Count")
    for name, value in counts.items():
        label = name.removesuffix("_deleted").replace("_", " ")
        shown = f"{value:,} ({human_bytes(value)})" if name == "bytes_deleted" else f"{value:,}"
        t.add_row(label, shown)
    out.print(t)


@app.command("gc")
@repo_options
@click.option(
    "--older-than",
    default="1d",
    show_default=True,
    metavar="TIME",
    help="Only delete objects written before this (an age or a date).",
)
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@_progress_option
@json_option
def gc(older_than: str, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Delete objects that no branch or tag reaches (garbage collection).

    First counts what would go, then asks before deleting (unless --yes or --dry-run).
    --json prints {"dry_run", "older_than", "deleted": {... counts, "bytes_deleted"}}.
    """
    repo = open_repository(options())
    threshold = parse_time(older_than)
    with _progress():
        planned = _summary_fields(repo.garbage_collect(threshold, dry_run=True))
    nothing = not any(planned.values())
    if dry_run or nothing:
        if as_json:
            emit_json({"dry_run": True, "older_than": iso(threshold), "deleted": planned})
        elif nothing:
            console().print(f"Nothing to delete: no unreachable object older than {older_than}.")
        else:
            _print_summary(f"Would delete (objects older than {iso(threshold)}):", planned)
        return
    if not as_json:
        _print_summary(f"Would delete (objects older than {iso(threshold)}):", planned)
    _confirm("Delete these objects for good?", yes)
    with _progress():
        done = _summary_fields(repo.garbage_collect(threshold))
    if as_json:
        emit_json({"dry_run": False, "older_than": iso(threshold), "deleted": done})
    else:
        _print_summary("Deleted:", done)


@app.command("expire")
@repo_options
@click.option(
    "--older-than",
    required=True,
    metavar="TIME",
    help="Cut snapshots written before this out of every history (an age or a date).",
)
@click.option("--delete-expired-branches", is_flag=True, help="Also delete expired branches.")
@click.option("--delete-expired-tags", is_flag=True, help="Also delete expired tags.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@_progress_option
@json_option
def expire(
    older_than: str,
    delete_expired_branches: bool,
    delete_expired_tags: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Expire old snapshots: cut them out of the history of every branch and tag.

    Their data stays until `pyicechunk gc` deletes it. --json prints {"older_than",
    "expired": [snapshot ids]}.
    """
    repo = open_repository(options())
    threshold = parse_time(older_than)
    _confirm(f"Cut every snapshot written before {iso(threshold)} out of the history?", yes)
    with _progress():
        expired = sorted(
            repo.expire_snapshots(
                threshold,
                delete_expired_branches=delete_expired_branches,
                delete_expired_tags=delete_expired_tags,
            )
        )
    if as_json:
        emit_json({"older_than": iso(threshold), "expired": expired})
        return
    console().print(
        f"Expired {len(expired)} snapshot(s); run `pyicechunk gc` to delete their data."
    )


@app.command("upgrade")
@repo_options
@click.option("--dry-run", is_flag=True, help="Check that the upgrade would work; write nothing.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@_progress_option
@json_option
def upgrade(dry_run: bool, yes: bool, as_json: bool) -> None:
    """Upgrade a spec-1 repository to spec 2 (icechunk 2's format).

    icechunk 1.x cannot read the repository afterwards. --json prints {"dry_run",
    "spec_version"} (the version after the upgrade, or the current one for a dry run).
    """
    repo = open_repository(options())
    if spec_version(repo) >= 2:
        raise CliError(f"the repository is spec {spec_version(repo)} already: nothing to do")
    migrate = getattr(pyicechunk, "upgrade_icechunk_repository", None)
    if migrate is None:
        raise CliError("this version of pyicechunk cannot upgrade repositories to spec 2 yet")
    if not dry_run:
        _confirm("Upgrade to spec 2? icechunk 1.x will not read it any more", yes)
    with _progress():
        upgraded = migrate(repo, dry_run=dry_run)
    version = spec_version(upgraded)
    if as_json:
        emit_json({"dry_run": dry_run, "spec_version": version})
    elif dry_run:
        console().print("Dry run: the repository can be upgraded; nothing was written.")
    else:
        console().print(f"Upgraded: the repository is spec {version} now.")
