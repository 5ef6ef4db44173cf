"""The ``pyicechunk`` command: look at and manage Icechunk repositories from a terminal.

Verbs: ``log`` (also ``ancestry``, ``snapshot list``), ``show``, ``diff``, ``ls``, ``cat``,
``branch``, ``tag``, ``ops``, ``stats``, ``expire``, ``gc``, ``upgrade``, ``config``
(``show``, ``set``, and icechunk's ``init``, ``add``, ``list``), ``repo create``, ``inspect``,
``info``, ``demo`` and ``serve``. Every read verb takes ``--json`` (schemas in each verb's
``--help`` and in the modules of this package). A failure prints one line on stderr and exits
with status 1 (``--debug`` shows the traceback); usage errors exit with status 2; a closed
pipe (``| head``) ends the command quietly with status 0.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from pyicechunk.cli import _config, _history, _maintenance, _misc, _refcmds, _tree  # noqa: F401
from pyicechunk.cli._app import Options, app
from pyicechunk.cli._output import CliError

__all__ = ["app", "main"]


def _one_line(error: BaseException) -> str:
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _quiet_stdout() -> None:
    # The reader went away: send whatever is still buffered nowhere, so that the interpreter's
    # final flush does not complain about the pipe either.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the ``pyicechunk`` command line.

    Parameters
    ----------
    argv
        Arguments without the program name; None means ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status: 0 on success, 1 when the command failed, 2 for a usage error.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    opts = Options()
    try:
        status = app.main(args=args, prog_name="pyicechunk", standalone_mode=False, obj=opts)
        sys.stdout.flush()
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.UsageError as usage:
        usage.show()
        return usage.exit_code
    except click.Abort:
        click.echo("pyicechunk: aborted", err=True)
        return 1
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except KeyboardInterrupt:
        click.echo("pyicechunk: interrupted", err=True)
        return 130
    except Exception as error:
        if opts.debug:
            traceback.print_exc()
        verb = opts.verb or "pyicechunk"
        message = _one_line(error)
        if not isinstance(error, CliError) and not _is_library_error(error):
            message = f"{type(error).__name__}: {message} (run with --debug for the traceback)"
        click.echo(f"{verb}: error: {message}", err=True)
        return 1
    return status if isinstance(status, int) else 0


def _is_library_error(error: BaseException) -> bool:
    from pyicechunk.exceptions import IcechunkError

    # The library's own errors and the built-in kinds it raises for bad arguments say what
    # went wrong in their message already.
    return isinstance(error, (IcechunkError, ValueError, KeyError, TypeError, OSError))
