"""The ``pyicechunk`` command group, its shared options and what every verb reaches through them.

Every verb that works on a repository takes it from ``-R/--repo`` (before or after the verb;
the ``PYICECHUNK_REPO`` environment variable; else the current directory): a local path, a
``file://``, ``s3://``, ``gs://`` or ``az://`` URL, or an alias from ``config add``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from pyicechunk._version import __version__

F = TypeVar("F", bound=Callable[..., Any])


class _Formatter(click.HelpFormatter):
    """Help with a lower-case ``usage:`` line, as git and argparse print it."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, "usage: " if prefix is None else prefix)


class _Context(click.Context):
    formatter_class = _Formatter


@dataclass
class Options:
    """What the global options say; verbs reach it as ``click.get_current_context().obj``."""

    repo: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    anonymous: bool = False
    allow_http: bool | None = None
    force_path_style: bool | None = None
    color: str = "auto"
    debug: bool = False
    progress: bool | None = None
    verb: str | None = None
    cache: dict[str, Any] = field(default_factory=dict)


def _record_verb(ctx: click.Context) -> None:
    # Error lines name the verb that failed ("pyicechunk branch create: error: ...").
    found = ctx.find_object(Options)
    if found is not None:
        found.verb = ctx.command_path


class Command(click.Command):
    """A verb whose help is printed with :class:`_Formatter`."""

    context_class = _Context

    def invoke(self, ctx: click.Context) -> Any:
        _record_verb(ctx)
        return super().invoke(ctx)


class Group(click.Group):
    """A group whose verbs and subgroups print help with :class:`_Formatter`."""

    context_class = _Context
    command_class = Command
    group_class = type

    def invoke(self, ctx: click.Context) -> Any:
        _record_verb(ctx)
        return super().invoke(ctx)


def _store(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A callback that records an option's value in :class:`Options` when it is given."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and value != () and value is not False:
            setattr(ctx.ensure_object(Options), name, value)
        return value

    return callback


def _repo_option_list(from_env: bool) -> list[Callable[[F], F]]:
    """The repository options; only the group's read the environment, so that a verb's
    defaults never override what was given before the verb."""

    def env(*names: str) -> list[str] | None:
        return list(names) if from_env else None

    def stored(*decls: str, key: str, **attrs: Any) -> Callable[[F], F]:
        # Each is kept in the invocation's Options instead of being passed to the verb.
        return click.option(*decls, expose_value=False, callback=_store(key), **attrs)

    return [
        stored(
            "-R",
            "--repo",
            key="repo",
            metavar="PATH_OR_URL",
            envvar=env("PYICECHUNK_REPO"),
            help="The repository: a path, a file://, s3://bucket/prefix, gs://bucket/prefix "
            "or az://container/prefix URL, or an alias from `config add` (default: "
            "$PYICECHUNK_REPO, else the current directory).",
        ),
        stored(
            "--endpoint-url",
            key="endpoint_url",
            envvar=env("AWS_ENDPOINT_URL"),
            help="S3-compatible endpoint (default: $AWS_ENDPOINT_URL).",
        ),
        stored(
            "--region",
            key="region",
            envvar=env("AWS_REGION", "AWS_DEFAULT_REGION"),
            help="S3 region (default: $AWS_REGION, $AWS_DEFAULT_REGION).",
        ),
        stored(
            "--anonymous",
            key="anonymous",
            is_flag=True,
            default=False,
            help="No credentials (public buckets); otherwise they come from the usual "
            "AWS_*, GOOGLE_* or AZURE_* environment variables.",
        ),
        stored(
            "--allow-http/--no-allow-http",
            key="allow_http",
            default=None,
            help="Allow a plain-HTTP endpoint (default: when the endpoint URL is http://).",
        ),
        stored(
            "--force-path-style/--no-force-path-style",
            key="force_path_style",
            default=None,
            help="Path-style S3 addressing (default: on when an endpoint URL is given).",
        ),
    ]


def repo_options(func: F) -> F:
    """Add the repository options to a verb (they may follow the verb, as git's -C may not)."""
    for option in reversed(_repo_option_list(from_env=False)):
        func = option(func)
    return func


def _group_repo_options(func: F) -> F:
    for option in reversed(_repo_option_list(from_env=True)):
        func = option(func)
    return func


def json_option(func: F) -> F:
    """Add ``--json`` (output for scripts; the schema is in the verb's help)."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for scripts (schema below)."
    )(func)


def options() -> Options:
    """The current invocation's :class:`Options`."""
    return click.get_current_context().ensure_object(Options)


def _show_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"pyicechunk {__version__}")
        ctx.exit()


@click.group(
    cls=Group,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Print the version and exit.",
)
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    expose_value=False,
    callback=_store("color"),
    help="Colours in the output (auto: on a terminal, unless NO_COLOR is set).",
)
@click.option(
    "--debug",
    is_flag=True,
    expose_value=False,
    callback=_store("debug"),
    help="Show the full traceback when a command fails.",
)
@_group_repo_options
def app() -> None:
    """pyicechunk: look at and manage Icechunk repositories (transactional, versioned Zarr).

    \b
    Refs: a branch, a tag, a snapshot id or a unique prefix of one (at least 4 characters),
    each optionally followed by ~N for its N-th ancestor (main~1 is main's parent).
    """
