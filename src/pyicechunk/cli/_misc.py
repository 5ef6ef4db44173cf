"""The other verbs: ``inspect``, ``info``, ``demo`` and ``serve``.

JSON: ``inspect`` always prints JSON (the library's description of the object);
``info --json`` prints ``{name: version}``.
"""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from typing import Any

import click

from pyicechunk._version import __version__
from pyicechunk.cli._app import app, json_option, options, repo_options
from pyicechunk.cli._location import open_repository, resolve_location
from pyicechunk.cli._maintenance import spec_version
from pyicechunk.cli._output import CliError, emit_json
from pyicechunk.cli._refs import current_snapshots

__all__: list[str] = []

# Distributions whose versions a bug report needs, shown when installed (icechunk: the reference).
_REPORTED = (
    "numpy",
    "zarr",
    "numcodecs",
    "xarray",
    "dask",
    "distributed",
    "obstore",
    "virtualizarr",
    "icechunk",
    "ipywidgets",
    "click",
    "rich",
    "flask",
)


def _as_dict(described: Any) -> Any:
    # icechunk 1.1 returns JSON text, icechunk 2.x a dict: accept either.
    return json.loads(described) if isinstance(described, str) else described


@app.command("inspect")
@repo_options
@click.argument("target", metavar="OBJECT")
@click.option("--manifest", "kind", flag_value="manifest", help="OBJECT is a manifest id.")
@click.option(
    "--transaction-log",
    "kind",
    flag_value="transaction-log",
    help="OBJECT is a ref or snapshot whose transaction log to show.",
)
@json_option
def inspect(target: str, kind: str | None, as_json: bool) -> None:
    """Print the stored description of OBJECT as JSON: a snapshot (a ref or snapshot id), a
    manifest (--manifest), a transaction log (--transaction-log), or `repo` (the repository
    object of a spec-2 repository)."""

    repo = open_repository(options())
    if kind == "manifest":
        method = getattr(repo, "inspect_manifest", None)
        if method is None:
            raise CliError("this version of pyicechunk cannot inspect manifests yet")
        emit_json(_as_dict(method(target.upper())))
        return
    if target == "repo" and kind is None:
        if spec_version(repo) < 2:
            raise CliError("`inspect repo` needs a spec-2 repository and this one is spec 1")
        method = getattr(repo, "inspect_repo_info", None)
        if method is None:
            raise CliError("this version of pyicechunk cannot inspect the repository object yet")
        emit_json(_as_dict(method()))
        return
    snapshot_id = current_snapshots().resolve(target).snapshot_id
    if kind == "transaction-log":
        method = getattr(repo, "inspect_transaction_log", None)
        if method is None:
            raise CliError("this version of pyicechunk cannot inspect transaction logs yet")
        emit_json(_as_dict(method(snapshot_id)))
        return
    emit_json(_as_dict(repo.inspect_snapshot(snapshot_id)))


def versions() -> dict[str, str]:
    """Platform, Python, pyicechunk and the installed related distributions."""
    found = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "pyicechunk": __version__,
    }
    for name in _REPORTED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


@app.command("info")
@json_option
def info(as_json: bool) -> None:
    """Print the versions a bug report needs (`name:  version` lines).

    --json prints {name: version}.
    """
    found = versions()
    if as_json:
        emit_json(found)
        return
    for name, version in found.items():
        click.echo(f"{name}:  {version}")


@app.command("demo")
@click.argument("path", metavar="PATH")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace the Icechunk repository at PATH (anything else is refused, never deleted).",
)
def demo(path: str, overwrite: bool) -> None:
    """Create a demo repository at PATH (a new or empty directory) and walk through commits,
    branches, tags, time travel and diffs."""
    from pyicechunk.demo import run

    run(path, overwrite=overwrite)


@app.command("serve")
@repo_options
@click.argument("location", metavar="PATH_OR_URL", required=False)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port (0: any free).")
def serve(location: str | None, host: str, port: int) -> None:
    """Browse the repository's history in a web browser (read-only).

    Listens on 127.0.0.1 unless --host says otherwise; stop it with Ctrl-C.
    """
    opts = options()
    if location is not None:
        opts.repo = location
    try:
        from pyicechunk.web import serve as run_server
    except ImportError as e:
        raise CliError(
            f"the history browser needs the 'web' extra ({e.name} is missing): "
            "pip install 'pyicechunk[web]'"
        ) from e
    repo = open_repository(opts)

    def ready(url: str) -> None:
        click.echo(f"Serving {resolve_location(opts)} at {url} (read-only; Ctrl-C stops it)")
        sys.stdout.flush()  # whoever started us may be waiting for the address

    run_server(repo, host=host, port=port, on_ready=ready)
