"""Log configuration driven by the ``ICECHUNK_LOG`` environment variable.

icechunk 1.1 configures its Rust ``tracing`` subscriber from ``ICECHUNK_LOG``, a comma-separated
list of EnvFilter directives (``"info"``, ``"icechunk=debug,warn"``, ``"icechunk::session=trace"``).
We accept the same strings and apply them to Python's :mod:`logging`: targets ``icechunk`` and
``pyicechunk`` both mean our ``pyicechunk`` logger, and ``icechunk::a::b`` means the logger
``pyicechunk.a.b``. Directives for other targets are valid but configure nothing of ours.

Records go to a console handler on stderr, or on stdout when ``ICECHUNK_LOG_TO_STDOUT`` is set
(to anything, even empty) when the package is imported, as in icechunk 2.1+. Each line reads
like the reference's: two spaces, an RFC 3339 UTC timestamp, the level, the logger name and the
message. Records still propagate to the root logger, so applications that configure
:mod:`logging` themselves see them too.

What is logged (targets as logger names): ``pyicechunk.repository`` (DEBUG: creating and
opening a repository), ``pyicechunk.session`` (DEBUG: a session starts, each rebase step;
INFO: a commit starts and is done), ``pyicechunk.asset_manager`` (DEBUG: each snapshot,
manifest and transaction log written or downloaded; WARN: a cache too small for what it is
asked to hold; TRACE: chunk reads and writes) and ``pyicechunk.storage`` (WARN: the backends'
warnings; TRACE: every storage request, one record each, see
:mod:`pyicechunk.storage.request_log`). No line carries a credential: messages name keys and
ids, never a storage's options.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import logging
import os
import sys
from typing import TextIO

__all__ = ["initialize_logs", "set_logs_filter"]

LOGGER_NAME = "pyicechunk"
ENV_VAR = "ICECHUNK_LOG"
# Set (to anything, even empty) before import to log to stdout instead of stderr.
STDOUT_ENV_VAR = "ICECHUNK_LOG_TO_STDOUT"
# Set (to anything) to leave logging completely alone, as in the reference.
DISABLE_ENV_VAR = "ICECHUNK_NO_LOGS"

TRACE = 5
# One above CRITICAL: nothing passes.
OFF = logging.CRITICAL + 10

_LEVELS = {
    "off": OFF,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE,
}
# tracing's LevelFilter also accepts the numbers 0 (off) to 5 (trace).
_NUMERIC_LEVELS = dict(zip("012345", _LEVELS.values(), strict=True))
_OUR_TARGETS = ("icechunk", "pyicechunk")
# The reference's other crates log storage matters; our storage package does that here.
_STORAGE_TARGETS = ("icechunk_storage", "icechunk_arrow_object_store", "icechunk_s3")

logging.addLevelName(TRACE, "TRACE")

# Child loggers whose level an earlier directive set, so that the next one can reset them.
_configured_children: set[str] = set()


class _ConsoleHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` (or ``sys.stdout``) is at the time of each record.

    Looking the stream up late keeps output going to the right place when the stream is
    replaced after import (pytest's capture, notebooks).
    """

    def __init__(self, to_stdout: bool) -> None:
        super().__init__()
        self.to_stdout = to_stdout

    @property
    def stream(self) -> TextIO:
        return sys.stdout if self.to_stdout else sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = self.stream
            formatter = self.formatter
            if isinstance(formatter, _Formatter):
                # Colours on a terminal only, and never with NO_COLOR (https://no-color.org).
                formatter.colour = "NO_COLOR" not in os.environ and _isatty(stream)
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


# tracing's level names, and the colours its console output gives them.
_NAMES = {TRACE: "TRACE", logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN"}
_COLOURS = {"TRACE": "35", "DEBUG": "34", "INFO": "32", "WARN": "33", "ERROR": "31"}


class _Formatter(logging.Formatter):
    """The reference's console lines, ``  <time> <LEVEL> <target>: <message>`` and ``at``.

    For example ``  2026-12-01T12:00:01.920172Z  WARN pyicechunk.storage: message``, then
    ``    at pyicechunk/storage/local.py:280``; the time is RFC 3339 in UTC.
    """

    colour = False

    def format(self, record: logging.LogRecord) -> str:
        when = dt.datetime.fromtimestamp(record.created, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        level = _NAMES.get(record.levelno, "ERROR" if record.levelno > logging.WARNING else "TRACE")
        shown = f"{level:>5}"
        if self.colour:
            when = f"\x1b[2m{when}\x1b[0m"
            shown = f"\x1b[{_COLOURS[level]}m{shown}\x1b[0m"
        text = f"  {when} {shown} {record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return f"{text}\n    at {source_path(record.pathname)}:{record.lineno}"


def source_path(path: str) -> str:
    """A module's path from the package directory on (``pyicechunk/session/core.py``)."""
    marker = os.sep + LOGGER_NAME + os.sep
    found = path.rfind(marker)
    return path if found < 0 else path[found + 1 :].replace(os.sep, "/")


def _handler() -> logging.Handler:
    logger = logging.getLogger(LOGGER_NAME)
    to_stdout = STDOUT_ENV_VAR in os.environ
    for handler in logger.handlers:
        if isinstance(handler, _ConsoleHandler):
            return handler
    handler = _ConsoleHandler(to_stdout)
    handler.setFormatter(_Formatter())
    logger.addHandler(handler)
    return handler


def _parse_level(text: str) -> int | None:
    text = text.strip().lower()
    return _LEVELS.get(text, _NUMERIC_LEVELS.get(text))


def _logger_for_target(target: str) -> str | None:
    """Our logger name for a tracing target, or None if the target is not ours."""
    head, *rest = target.split("::")
    if head in _STORAGE_TARGETS and not rest:
        return f"{LOGGER_NAME}.storage"
    if head not in _OUR_TARGETS or any(not part for part in rest):
        return None
    return ".".join([LOGGER_NAME, *rest])


def _is_known(name: str) -> bool:
    """Whether the logger ``name`` belongs to a module of the package (so it can log)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _warn_unknown_target(directive: str, target: str) -> None:
    print(
        f"ignoring the target of `{directive}`: pyicechunk logs nothing under `{target}` "
        f"(targets are `icechunk`, `pyicechunk` or a module such as `icechunk::session`)",
        file=sys.stderr,
    )


def _parse(directives: str) -> tuple[int, dict[str, int]]:
    """Levels for our loggers from an EnvFilter-like string.

    Returns the level of the ``pyicechunk`` logger and the levels of any child loggers that a
    directive names. Invalid directives are reported on stderr and skipped.
    """
    default: int | None = None
    targets: dict[str, int] = {}
    any_valid = False
    for raw in directives.split(","):
        directive = raw.strip()
        if not directive:
            continue
        target, sep, level_text = directive.rpartition("=")
        if not sep:
            # A bare word is either a level for everything or a target enabled at trace level.
            level = _parse_level(directive)
            if level is not None:
                default = level
            else:
                name = _logger_for_target(directive)
                if name is not None and _is_known(name):
                    targets[name] = TRACE
                else:
                    _warn_unknown_target(directive, directive)
            any_valid = True
            continue
        level = _parse_level(level_text)
        if level is None:
            print(
                f"ignoring `{directive}`: error parsing level filter: expected one of "
                '"off", "error", "warn", "info", "debug", "trace", or a number 0-5',
                file=sys.stderr,
            )
            continue
        any_valid = True
        name = _logger_for_target(target.strip())
        if name is not None and _is_known(name):
            targets[name] = level
        else:
            _warn_unknown_target(directive, target.strip())
    if default is None:
        # Like EnvFilter: with no usable directive at all only errors pass; otherwise targets
        # that no directive names are switched off.
        default = logging.ERROR if not any_valid else OFF
    root_level = targets.pop(LOGGER_NAME, default)
    return root_level, targets


def _apply(directives: str | None) -> None:
    _handler()
    children: dict[str, int] = {}
    if directives is None:
        root_level = logging.WARNING
    else:
        root_level, children = _parse(directives)
    logging.getLogger(LOGGER_NAME).setLevel(root_level)
    for name in _configured_children - children.keys():
        logging.getLogger(name).setLevel(logging.NOTSET)
    for name, level in children.items():
        logging.getLogger(name).setLevel(level)
    _configured_children.clear()
    _configured_children.update(children)


def initialize_logs() -> None:
    """Configure the ``pyicechunk`` logger from the ``ICECHUNK_LOG`` environment variable.

    Without ``ICECHUNK_LOG``, warnings and errors go to stderr (to stdout when
    ``ICECHUNK_LOG_TO_STDOUT`` is set). Setting ``ICECHUNK_NO_LOGS`` leaves logging untouched.
    Called when :mod:`pyicechunk` is imported.
    """
    if DISABLE_ENV_VAR in os.environ:
        return
    _apply(os.environ.get(ENV_VAR))


def set_logs_filter(log_filter_directive: str | None) -> None:
    """Change which log records pyicechunk emits.

    Parameters
    ----------
    log_filter_directive
        Comma-separated directives in the syntax of ``ICECHUNK_LOG``: a level (``"trace"``,
        ``"debug"``, ``"info"``, ``"warn"``, ``"error"``, ``"off"``, or ``0`` to ``5``) for
        everything, or ``target=level`` for a target (``icechunk``, ``pyicechunk`` or a
        submodule such as ``icechunk::session``). None reads ``ICECHUNK_LOG`` again. Invalid
        directives, and directives for targets pyicechunk does not log under, are reported on
        stderr and ignored; this function does not raise.
    """
    if log_filter_directive is None:
        log_filter_directive = os.environ.get(ENV_VAR)
    _apply(log_filter_directive)
