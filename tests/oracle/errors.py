"""How errors come back from a snippet, and the assertion helper for them.

Whichever implementation ran the snippet, a failure arrives as one type, :class:`ImplError`,
that names the original exception's class and its bases, so that one test body asserts the same
thing of pyicechunk and of icechunk 2.3.0::

    with raises("RefNotFoundError", kind="ref-not-found", match="ref not found"):
        impl.run("repo.lookup_branch('nope')")

Problems of the oracle itself are not snippet errors, and :func:`raises` never accepts them: a
hang or a crash is an :class:`OracleError`, a missing Python 3.12 an ``OracleUnavailable``.
"""

from __future__ import annotations

import re
from types import TracebackType
from typing import Any


class ImplError(Exception):
    """A snippet raised: the original exception, described by names and texts.

    Attributes
    ----------
    impl : str
        ``"pyicechunk"`` or ``"icechunk2"``.
    type, module : str
        The original exception's class name and module.
    mro : tuple of str
        The class names of its method resolution order, itself first.
    kind : str or None
        Its ``.kind`` (icechunk 2.x errors have one), as a string.
    message : str
        Its ``.message`` if it has a string one, else ``str(exc)``.
    text : str
        ``str(exc)``.
    notes : tuple of str
        Its PEP 678 notes (icechunk 2.x puts the full report there).
    remote_traceback : str
        The formatted traceback where it was raised.
    """

    def __init__(self, impl: str, record: dict[str, Any]) -> None:
        self.impl = impl
        self.type: str = record["type"]
        self.module: str = record["module"]
        self.mro: tuple[str, ...] = tuple(record["mro"])
        self.kind: str | None = record["kind"]
        self.message: str = record["message"]
        self.text: str = record["text"]
        self.notes: tuple[str, ...] = tuple(record["notes"])
        self.remote_traceback: str = record["traceback"]
        super().__init__(self.summary)

    @property
    def summary(self) -> str:
        """``impl: Class [kind]: first line of the message``."""
        kind = f" [{self.kind}]" if self.kind is not None else ""
        return f"{self.impl}: {self.type}{kind}: {self.first_line}"

    @property
    def first_line(self) -> str:
        """The first line of :attr:`message` (icechunk 2.x appends context lines after it)."""
        return self.message.split("\n", 1)[0]

    def isa(self, name: str) -> bool:
        """``isinstance`` by class name: whether ``name`` is the class or one of its bases."""
        return name in self.mro

    def __str__(self) -> str:
        return f"{self.summary}\n--- raised in {self.impl} ---\n{self.remote_traceback}"


class OracleError(RuntimeError):
    """The oracle could not answer: unavailable, timed out, crashed, or broke the protocol."""


class OracleTimeout(OracleError, TimeoutError):
    """The oracle did not answer in time; it was killed and restarts on the next call."""


class OracleCrashed(OracleError):
    """The oracle process exited while a request was pending; it restarts on the next call."""


_UNCHECKED: Any = object()


class raises:  # lower case: used like pytest.raises
    """Assert that the block raises an :class:`ImplError` of class ``cls`` (or a subclass).

    Parameters
    ----------
    cls
        A class name looked up in the error's MRO, so ``"NotFoundError"`` accepts a
        ``RefNotFoundError`` and ``"KeyError"`` accepts both, as ``isinstance`` would.
    kind
        The expected ``.kind``; not checked when omitted, ``None`` means "has no kind".
    match
        A regular expression searched for in the message.

    The error is ``.value`` after the block.
    """

    def __init__(self, cls: str, *, kind: str | None = _UNCHECKED, match: str | None = None):
        self.cls = cls
        self.kind = kind
        self.match = match
        self.value: ImplError | None = None

    def __enter__(self) -> raises:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None:
            raise AssertionError(f"expected {self.cls} to be raised, but the snippet returned")
        if not isinstance(exc, ImplError):
            return False  # not a snippet's error (an oracle failure, a bug in the test): re-raise
        self.value = exc
        if not exc.isa(self.cls):
            raise AssertionError(f"expected {self.cls}, got {exc}") from exc
        if self.kind is not _UNCHECKED and exc.kind != self.kind:
            raise AssertionError(f"expected kind {self.kind!r}, got {exc}") from exc
        if self.match is not None and not re.search(self.match, exc.message):
            raise AssertionError(f"message does not match {self.match!r}: {exc}") from exc
        return True
