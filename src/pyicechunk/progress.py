"""Progress of long operations: a bar on a terminal, a widget in Jupyter, nothing otherwise.

Garbage collection, snapshot expiration, manifest rewrites, the upgrade to spec 2 and commits
report their steps here (:func:`advance`) while they run inside an :func:`operation`. What the
user sees is decided when an operation starts, by the *mode*:

``"auto"`` (the default)
    Show progress when standard error is a terminal or the code runs in a Jupyter kernel, and
    only once the operation has run for :data:`AUTO_DELAY` seconds, so quick calls print
    nothing. Output that is not interactive (a pipe, a file, a CI log) gets nothing.
``"on"``
    Always show progress, from the start. Into a pipe or a file this prints each step's final
    state once, when the operation ends.
``"off"``
    Never show progress.

The mode comes from :func:`set_progress` or :func:`progress_mode` when code chose one, else
from the ``PYICECHUNK_PROGRESS`` environment variable (``auto``, ``on``/``1``/``true``,
``off``/``0``/``false``), else ``"auto"``. There is no ``progress=`` argument on the
repository's methods: their signatures stay those of icechunk, so code written for both runs
on either, and an environment variable switches progress off for a whole batch job without
touching its code.

Bars are drawn with Rich. In Jupyter, Rich draws into an ``ipywidgets`` output widget, which
is the optional extra ``pyicechunk[notebook]``; without it ``"on"`` raises an ImportError that
names the extra and ``"auto"`` warns once and shows nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import os
import sys
import threading
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = [
    "AUTO_DELAY",
    "ENV_VAR",
    "ProgressRecord",
    "StepRecord",
    "advance",
    "current_mode",
    "operation",
    "progress_mode",
    "set_progress",
    "tracked",
]

Mode = Literal["auto", "on", "off"]
ENV_VAR = "PYICECHUNK_PROGRESS"
AUTO_DELAY = 0.5
"""Seconds an operation runs before ``"auto"`` shows its progress."""

_WORDS: dict[str, Mode] = {
    "auto": "auto",
    "on": "on",
    "1": "on",
    "true": "on",
    "yes": "on",
    "off": "off",
    "0": "off",
    "false": "off",
    "no": "off",
}

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class StepRecord:
    """One step of a finished operation as its bar ended: ``completed`` of ``total``."""

    operation: str
    description: str
    completed: int
    total: int


@dataclass
class ProgressRecord:
    """The steps of the operations that showed progress under a :func:`progress_mode`."""

    steps: list[StepRecord] = field(default_factory=list)


@dataclass
class _Choice:
    mode: Mode
    record: ProgressRecord | None = None


# Module-wide, not a context variable: the operations run on zarr's event loop thread, which
# does not see context variables set by the thread that called them.
_chosen: _Choice | None = None
_choice_lock = threading.Lock()
_warned_notebook = False


def _parse(mode: str | bool | None, source: str) -> Mode:
    if isinstance(mode, bool):
        return "on" if mode else "off"
    if mode is None:
        return "auto"
    parsed = _WORDS.get(str(mode).strip().lower())
    if parsed is None:
        raise ValueError(f"{source} must be 'auto', 'on' or 'off' (or a bool), got {mode!r}")
    return parsed


def set_progress(mode: str | bool | None) -> None:
    """Choose whether long operations show progress, for the whole process.

    Parameters
    ----------
    mode
        ``"auto"``, ``"on"`` or ``"off"`` (True and False mean on and off); None forgets the
        choice, so ``PYICECHUNK_PROGRESS`` decides again.

    Raises
    ------
    ValueError
        ``mode`` is none of these.
    """
    global _chosen
    with _choice_lock:
        _chosen = None if mode is None else _Choice(_parse(mode, "mode"))


@contextlib.contextmanager
def progress_mode(mode: str | bool = "on") -> Iterator[ProgressRecord]:
    """Use ``mode`` for the operations run inside the ``with`` block, then restore the
    previous choice.

    Yields
    ------
    ProgressRecord
        Filled, as each operation ends, with the final state of every step it showed.

    Examples
    --------
    >>> with progress_mode("off"):  # doctest: +SKIP
    ...     repo.garbage_collect(cutoff)
    """
    global _chosen
    choice = _Choice(_parse(mode, "mode"), ProgressRecord())
    with _choice_lock:
        previous, _chosen = _chosen, choice
    try:
        assert choice.record is not None
        yield choice.record
    finally:
        with _choice_lock:
            _chosen = previous


def current_mode() -> Mode:
    """The mode an operation starting now would use (see the module's documentation).

    Raises
    ------
    ValueError
        ``PYICECHUNK_PROGRESS`` is set to something else than the documented values.
    """
    chosen = _chosen
    if chosen is not None:
        return chosen.mode
    return _parse(os.environ.get(ENV_VAR) or "auto", ENV_VAR)


def _console(mode: Mode) -> Console | None:
    """The console to draw on, or None when this mode shows nothing here."""
    global _warned_notebook
    # Nothing is shown off a terminal outside Jupyter (whose kernel always has IPython loaded):
    # decide that before importing Rich, which would cost a script's first commit ~20 ms.
    if mode == "auto" and not _isatty(sys.stderr) and "IPython" not in sys.modules:
        return None
    from rich.console import Console

    console = Console(file=sys.stderr)
    if console.is_jupyter:
        try:
            importlib.import_module("ipywidgets")
        except ImportError:
            message = (
                "progress bars in Jupyter need ipywidgets: pip install 'pyicechunk[notebook]' "
                f"(or set {ENV_VAR}=off)"
            )
            if mode == "on":
                raise ImportError(message, name="ipywidgets") from None
            if not _warned_notebook:
                _warned_notebook = True
                warnings.warn(message, stacklevel=4)
            return None
        return console
    # Not Rich's is_terminal, which FORCE_COLOR and the like turn on in CI logs.
    if mode == "auto" and not _isatty(sys.stderr):
        return None
    return console


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no such method, or closed
        return False


class _Display:
    """The bars of one running operation; each step (a description) is one bar."""

    def __init__(self, title: str, console: Console, delay: float, record: ProgressRecord | None):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.title = title
        self._record = record
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskID] = {}
        self._shown = False
        self._closed = False
        self._progress: Progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            # Other threads' prints must not be captured by a display started on the loop's.
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._timer: threading.Timer | None = None
        if delay > 0:
            self._timer = threading.Timer(delay, self._show)
            self._timer.daemon = True
            self._timer.start()
        else:
            self._show()

    def _show(self) -> None:
        with self._lock:
            if self._closed or self._shown:
                return
            self._shown = True
            self._progress.start()

    def advance(self, description: str, n: int, total: int | None) -> None:
        with self._lock:
            task = self._tasks.get(description)
            if task is None:
                task = self._progress.add_task(f"{self.title}: {description}", total=total)
                self._tasks[description] = task
            elif total is not None:
                self._progress.update(task, total=total)
            self._progress.advance(task, n)

    def close(self, finished: bool) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._closed = True
            for description, task_id in self._tasks.items():
                task = self._progress.tasks[task_id]
                if finished and task.total is None:
                    # A step whose size was not known ends where it got to.
                    self._progress.update(task_id, total=task.completed)
                if self._shown and self._record is not None:
                    self._record.steps.append(
                        StepRecord(
                            self.title,
                            description,
                            int(task.completed),
                            int(task.total if task.total is not None else task.completed),
                        )
                    )
            if self._shown:
                self._progress.stop()


_current: contextvars.ContextVar[_Display | None] = contextvars.ContextVar(
    "pyicechunk_progress", default=None
)


def operation(
    title: str,
) -> Callable[[Callable[P, Coroutine[Any, Any, T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Decorate an async operation so that its :func:`advance` calls show as progress.

    An operation that runs inside another (a commit inside a manifest rewrite) adds its steps
    to the outer one's display.
    """

    def decorate(
        func: Callable[P, Coroutine[Any, Any, T]],
    ) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(func)
        async def run(*args: P.args, **kwargs: P.kwargs) -> T:
            if _current.get() is not None:
                return await func(*args, **kwargs)
            chosen = _chosen
            mode = current_mode()
            console = None if mode == "off" else _console(mode)
            if console is None:
                return await func(*args, **kwargs)
            record = chosen.record if chosen is not None else None
            display = _Display(title, console, AUTO_DELAY if mode == "auto" else 0.0, record)
            token = _current.set(display)
            finished = False
            try:
                result = await func(*args, **kwargs)
                finished = True
                return result
            finally:
                _current.reset(token)
                display.close(finished)

        return run

    return decorate


def advance(description: str, n: int = 1, *, total: int | None = None) -> None:
    """Count ``n`` more units of the step ``description`` of the running operation.

    Does nothing outside an :func:`operation` or when progress is not shown, so the hooks in
    the operations cost a context-variable lookup.

    Parameters
    ----------
    description
        Names the step (one bar per description).
    n
        Units done since the last call.
    total
        The step's size, when known (None: keep the one known, or count without a bar).
    """
    display = _current.get()
    if display is not None:
        display.advance(description, n, total)


async def tracked(work: Awaitable[T], description: str, n: int, *, total: int | None = None) -> T:
    """Await ``work``, then :func:`advance` ``description`` by ``n`` (for batches run with
    ``asyncio.gather``, which counts each batch as it ends)."""
    result = await work
    advance(description, n, total=total)
    return result
