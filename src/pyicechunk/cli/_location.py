"""Where a repository is: a path, a URL or an alias, turned into a Storage and a Repository.

Aliases live in a small YAML file (``$PYICECHUNK_CLI_CONFIG``, else
``$XDG_CONFIG_HOME/pyicechunk/cli-config.yaml``, else ``~/.config/pyicechunk/cli-config.yaml``)
written by ``config init`` and ``config add``::

    repos:
      era5:
        location: s3://bucket/era5
        region: us-west-2
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from pyicechunk.cli._app import Options
from pyicechunk.cli._output import CliError

__all__ = [
    "alias_file",
    "load_aliases",
    "open_repository",
    "resolve_location",
    "save_aliases",
    "storage_for",
]

_SCHEMES = ("file", "s3", "gs", "gcs", "az", "azure")
# Options an alias may carry, with the Options field each sets.
ALIAS_KEYS = ("endpoint_url", "region", "anonymous", "allow_http", "force_path_style")


def alias_file() -> Path:
    """The file that holds the command line's repository aliases."""
    configured = os.environ.get("PYICECHUNK_CLI_CONFIG")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "pyicechunk" / "cli-config.yaml"


def load_aliases() -> dict[str, dict[str, Any]]:
    """The aliases in :func:`alias_file` (none when it does not exist)."""
    path = alias_file()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise CliError(f"cannot read the alias file {path}: {e.strerror}") from e
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise CliError(f"the alias file {path} is not valid YAML: {e}") from e
    repos = doc.get("repos", {}) if isinstance(doc, dict) else None
    if not isinstance(repos, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("location"), str) for v in repos.values()
    ):
        raise CliError(
            f"the alias file {path} should map `repos:` to aliases, each with a `location:`"
        )
    return repos


def save_aliases(repos: dict[str, dict[str, Any]]) -> Path:
    """Write ``repos`` to :func:`alias_file` (atomically: a new file renamed over the old)."""
    path = alias_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump({"repos": repos}, sort_keys=True))
    tmp.replace(path)
    return path


def resolve_location(opts: Options) -> str:
    """The repository location the options name, with an alias's own options applied."""
    given = opts.repo or "."
    if "://" in given or Path(given).exists():
        return given
    alias = load_aliases().get(given)
    if alias is None:
        return given
    for key in ALIAS_KEYS:
        if key in alias and getattr(opts, key) in (None, False):
            setattr(opts, key, alias[key])
    return str(alias["location"])


def _bucket_and_prefix(location: str, what: str) -> tuple[str, str]:
    parts = urlsplit(location)
    if not parts.netloc:
        raise CliError(f"{location} names no {what}: write {parts.scheme}://{what}/prefix")
    return parts.netloc, parts.path.strip("/")


def _s3_credentials(opts: Options) -> dict[str, Any]:
    if opts.anonymous:
        return {"anonymous": True}
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return {
            "access_key_id": key,
            "secret_access_key": secret,
            "session_token": os.environ.get("AWS_SESSION_TOKEN") or None,
        }
    return {"from_env": True}


def storage_for(location: str, opts: Options) -> Any:
    """A Storage for ``location`` (a path or a URL)."""
    import pyicechunk as ic

    scheme = urlsplit(location).scheme.lower() if "://" in location else ""
    if not scheme:
        return ic.local_filesystem_storage(os.path.abspath(location))
    if scheme not in _SCHEMES:
        raise CliError(
            f"unsupported location {location!r}: give a path or a file://, s3://, gs:// or "
            "az:// URL"
        )
    if scheme == "file":
        parts = urlsplit(location)
        if parts.netloc not in ("", "localhost"):
            raise CliError(f"{location} names a remote host; file:// URLs must be local")
        return ic.local_filesystem_storage(parts.path)
    if scheme == "s3":
        bucket, prefix = _bucket_and_prefix(location, "bucket")
        endpoint = opts.endpoint_url
        allow_http = opts.allow_http
        if allow_http is None:
            allow_http = bool(endpoint and endpoint.startswith("http://"))
        force_path_style = opts.force_path_style
        if force_path_style is None:
            force_path_style = bool(endpoint)
        return ic.s3_storage(
            bucket=bucket,
            prefix=prefix or None,
            region=opts.region,
            endpoint_url=endpoint,
            allow_http=allow_http,
            force_path_style=force_path_style,
            **_s3_credentials(opts),
        )
    if scheme in ("gs", "gcs"):
        bucket, prefix = _bucket_and_prefix(location, "bucket")
        if opts.anonymous:
            return ic.gcs_storage(bucket=bucket, prefix=prefix or None, anonymous=True)
        return ic.gcs_storage(bucket=bucket, prefix=prefix or None, from_env=True)
    container, prefix = _bucket_and_prefix(location, "container")
    account = os.environ.get("AZURE_STORAGE_ACCOUNT_NAME") or os.environ.get(
        "AZURE_STORAGE_ACCOUNT"
    )
    if not account:
        raise CliError(
            f"{location}: set AZURE_STORAGE_ACCOUNT_NAME to the storage account of the container"
        )
    return ic.azure_storage(account=account, container=container, prefix=prefix, from_env=True)


def open_repository(opts: Options) -> Any:
    """The repository the options name, opened once per invocation."""
    cached = opts.cache.get("repository")
    if cached is not None:
        return cached
    import pyicechunk as ic

    location = resolve_location(opts)
    if "://" not in location and not Path(location).is_dir():
        raise CliError(
            f"there is no Icechunk repository at {location}: no such directory (create one "
            f"with `pyicechunk repo create {location}`)"
        )
    storage = storage_for(location, opts)
    try:
        repo = ic.Repository.open(storage)
    except ic.IcechunkError as e:
        if getattr(e, "kind", None) == "repository-not-found":
            raise CliError(
                f"there is no Icechunk repository at {location} (create one with "
                f"`pyicechunk repo create {location}`)"
            ) from e
        raise CliError(f"cannot open the repository at {location}: {e}") from e
    opts.cache["repository"] = repo
    opts.cache["location"] = location
    return repo
