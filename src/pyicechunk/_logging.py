"""Log configuration driven by the ``ICECHUNK_LOG`` environment variable.

icechunk 1.1 configures its Rust ``tracing`` subscriber from ``ICECHUNK_LOG``, a comma-separated
list of EnvFilter directives (``"info"``, ``"icechunk=debug,warn"``, ``"icechunk::session=trace"``).
We accept the same strings and apply them to Python's :mod:`logging`: targets ``icechunk`` and
``pyicechunk`` both mean our ``pyicechunk`` logger, and ``icechunk::a::b`` means the logger
``pyicechunk.a.b``. Directives for other targets are valid but configure nothing of ours.

Records still propagate to the root logger, so applications that configure :mod:`logging`
themselves see them too.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["initialize_logs", "set_logs_filter"]

LOGGER_NAME = "pyicechunk"
ENV_VAR = "ICECHUNK_LOG"
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

logging.addLevelName(TRACE, "TRACE")

# Child loggers whose level an earlier directive set, so that the next one can reset them.
_configured_children: set[str] = set()


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time of each record.

    Looking the stream up late keeps output going to the right place when ``sys.stderr`` is
    replaced after import (pytest's capture, notebooks).
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def _handler() -> logging.Handler:
    logger = logging.getLogger(LOGGER_NAME)
    for handler in logger.handlers:
        if isinstance(handler, _StderrHandler):
            return handler
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)5s %(name)s: %(message)s"))
    logger.addHandler(handler)
    return handler


def _parse_level(text: str) -> int | None:
    text = text.strip().lower()
    return _LEVELS.get(text, _NUMERIC_LEVELS.get(text))


def _logger_for_target(target: str) -> str | None:
    """Our logger name for a tracing target, or None if the target is not ours."""
    head, *rest = target.split("::")
    if head not in _OUR_TARGETS or any(not part for part in rest):
        return None
    return ".".join([LOGGER_NAME, *rest])


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
                if name is not None:
                    targets[name] = TRACE
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
        if name is not None:
            targets[name] = level
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

    Without ``ICECHUNK_LOG``, warnings and errors go to stderr. Setting ``ICECHUNK_NO_LOGS``
    leaves logging untouched. Called when :mod:`pyicechunk` is imported.
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
        directives are reported on stderr and ignored; this function does not raise.
    """
    if log_filter_directive is None:
        log_filter_directive = os.environ.get(ENV_VAR)
    _apply(log_filter_directive)
