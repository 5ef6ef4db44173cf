"""Configuration verbs: the repository's (``config show|set``), the command line's aliases
(``config init|add|list``, icechunk's spellings), and ``repo create``.

``config show`` prints the configuration as ``config.yaml`` holds it (a container's store is a
YAML tag such as ``!s3``); ``--json`` prints the same serde tree with each variant as a one-key
map (``{"s3": {...}}``), as serde_json writes it. ``config list --json`` prints
``{alias: {"location", ...options}}``.
"""

from __future__ import annotations

import enum
from typing import Any

import click
import yaml
from rich.text import Text

import pyicechunk
from pyicechunk.cli._app import app, json_option, options, repo_options
from pyicechunk.cli._location import (
    ALIAS_KEYS,
    alias_file,
    load_aliases,
    open_repository,
    resolve_location,
    save_aliases,
    storage_for,
)
from pyicechunk.cli._output import CliError, console, emit_json, table
from pyicechunk.format.config_serde import config_to_tree
from pyicechunk.format.config_yaml import config_to_yaml

__all__: list[str] = []

# The classes of the parts of a RepositoryConfig that are None until set.
_PARTS: dict[str, Any] = {
    "compression": pyicechunk.CompressionConfig,
    "caching": pyicechunk.CachingConfig,
    "storage": pyicechunk.StorageSettings,
    "manifest": pyicechunk.ManifestConfig,
    "concurrency": pyicechunk.StorageConcurrencySettings,
    "retries": pyicechunk.StorageRetriesSettings,
    "preload": pyicechunk.ManifestPreloadConfig,
}


@app.group("config")
def config() -> None:
    """The repository's configuration (show, set) and the command line's aliases (init, add,
    list)."""


@config.command("show")
@repo_options
@json_option
def config_show(as_json: bool) -> None:
    """Print the repository's effective configuration (YAML, as config.yaml holds it).

    --json prints the same settings as JSON.
    """
    # Printed from the persisted tree itself: re-parsing the YAML would need constructors for
    # the variant tags (!s3, !http, ...) that containers' stores are written with.
    cfg = open_repository(options()).config
    if as_json:
        emit_json(config_to_tree(cfg))
    else:
        click.echo(config_to_yaml(cfg).decode("utf-8").rstrip("\n"))


def _value_for(current: Any, text: str) -> Any:
    value = yaml.safe_load(text)
    if isinstance(current, enum.Enum):
        by_name = {m.name.lower(): m for m in type(current)}
        found = by_name.get(str(value).lower())
        if found is None:
            raise CliError(f"{text!r} is not one of {', '.join(sorted(by_name))}")
        return found
    return value


@config.command("set")
@repo_options
@click.argument("key")
@click.argument("value")
def config_set(key: str, value: str) -> None:
    """Set KEY (dotted, like compression.level) to VALUE and save the configuration."""
    repo = open_repository(options())
    cfg = repo.config
    obj = cfg
    *parents, last = key.split(".")
    for part in parents:
        if not part or part.startswith("_") or not hasattr(obj, part):
            raise CliError(f"unknown configuration key {key!r}: {part!r} is not a setting")
        sub = getattr(obj, part)
        if sub is None:
            if part not in _PARTS:
                raise CliError(f"cannot set {key!r}: {part} has no settings of its own")
            sub = _PARTS[part]()
            setattr(obj, part, sub)
        obj = sub
    if not last or last.startswith("_") or not hasattr(obj, last):
        known = sorted(n for n in config_to_tree(cfg) if not n.startswith("_"))
        hint = f" (top-level keys: {', '.join(known)})" if not parents else ""
        raise CliError(f"unknown configuration key {key!r}{hint}")
    try:
        setattr(obj, last, _value_for(getattr(obj, last), value))
    except (TypeError, ValueError) as e:
        raise CliError(f"cannot set {key} to {value!r}: {e}") from e
    repo.reopen(config=cfg).save_config()
    console().print(Text(f"Set {key} = {value} in the repository's saved configuration."))


@config.command("init")
@click.option("-f", "--force", is_flag=True, help="Replace an existing alias file.")
def config_init(force: bool) -> None:
    """Create the command line's alias file (empty)."""
    path = alias_file()
    if path.exists() and not force:
        raise CliError(f"{path} exists already: add aliases with `config add`, or pass --force")
    console().print(Text(f"Created {save_aliases({})}."))


@config.command("add")
@repo_options
@click.argument("alias")
@click.argument("location")
def config_add(alias: str, location: str) -> None:
    """Save LOCATION (a path or URL, with the storage options given) as ALIAS, usable with -R."""
    if "://" in alias or "/" in alias or not alias.strip():
        raise CliError(f"bad alias {alias!r}: use a plain name without / or ://")
    opts = options()
    storage_for(location, opts)  # refuse what could never be opened
    entry: dict[str, Any] = {"location": location}
    entry.update({k: getattr(opts, k) for k in ALIAS_KEYS if getattr(opts, k) not in (None, False)})
    repos = load_aliases()
    repos[alias] = entry
    path = save_aliases(repos)
    console().print(Text(f"Added {alias} -> {location} to {path}."))


@config.command("list")
@json_option
def config_list(as_json: bool) -> None:
    """Print the command line's aliases.

    --json prints {alias: {"location", ...options}}.
    """
    repos = load_aliases()
    if as_json:
        emit_json(repos)
        return
    t = table("Alias", "Location", "Options")
    for name, entry in sorted(repos.items()):
        extra = ", ".join(f"{k}={v}" for k, v in sorted(entry.items()) if k != "location")
        t.add_row(name, entry["location"], extra)
    console().print(t)


@app.group("repo")
def repo_group() -> None:
    """Repositories (icechunk's spelling: `repo create`)."""


@repo_group.command("create")
@repo_options
@click.argument("location", required=False)
@click.option(
    "--spec-version",
    type=click.IntRange(1, 2),
    default=None,
    help="On-disk format version (default: the library's).",
)
def repo_create(location: str | None, spec_version: int | None) -> None:
    """Create an empty repository at LOCATION (a path, URL or alias; default: -R)."""
    opts = options()
    if location is not None:
        opts.repo = location
    where = resolve_location(opts)
    storage = storage_for(where, opts)
    try:
        repo = pyicechunk.Repository.create(storage, spec_version=spec_version)
    except pyicechunk.IcechunkError as e:
        raise CliError(f"cannot create a repository at {where}: {e}") from e
    console().print(
        Text(f"Created an empty repository at {where} (spec version {int(repo.spec_version)}).")
    )
