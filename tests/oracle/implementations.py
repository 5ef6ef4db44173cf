"""The implementations a scenario runs on: pyicechunk in this process, icechunk 2.3.0 in another.

Both have the same interface, so a scenario is written once::

    impl.run("repo = icechunk.Repository.create(make_storage(where))", where=spec)
    impl.run("sorted(repo.list_branches())")  # -> ["main"]

``run(code, /, timeout=None, **params)`` binds ``params`` in the implementation's persistent
namespace (see :mod:`oracle.snippets`), runs ``code`` and returns the value of its last
expression, sent through the codec on both sides so that results compare equal exactly when the
implementations agree. A snippet's exception arrives as :class:`~oracle.errors.ImplError`.

:class:`Oracle` keeps one icechunk 2.3.0 process (started on first use, reused until
:meth:`Oracle.close`); a call that gets no answer within its timeout kills the process and fails,
and the next call starts a new one.
"""

from __future__ import annotations

import json
import os
import platform
import select
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import codec
from .environment import ICECHUNK_VERSION, OracleUnavailable, ensure_venv
from .errors import ImplError, OracleCrashed, OracleError, OracleTimeout
from .snippets import Namespace

SERVER = Path(__file__).with_name("server.py")
DEFAULT_TIMEOUT = 60.0  # seconds per call: far above any scenario, far below a hung suite
START_TIMEOUT = 120.0  # importing icechunk, zarr and numpy on a loaded machine
_LOG_TAIL = 4000


def _through_the_wire(value: Any, where: str) -> Any:
    """``value`` as the other side of the process boundary would see it."""
    return codec.decode(json.loads(json.dumps(codec.encode(value, where))))


class InProcess:
    """pyicechunk, run in this process with the same interface and encoding as the oracle.

    ``timeout`` is accepted for symmetry and not enforced: an in-process call cannot be
    interrupted.
    """

    name = "pyicechunk"

    def __init__(self, **params: Any) -> None:
        import numpy
        import zarr

        import pyicechunk

        self._module = pyicechunk
        self.versions = {
            "pyicechunk": pyicechunk.__version__,
            "zarr": zarr.__version__,
            "numpy": numpy.__version__,
            "python": platform.python_version(),
        }
        self._namespace = Namespace(pyicechunk, self.name)
        self._namespace.globals.update(_through_the_wire(params, "params"))

    def run(self, code: str, /, timeout: float | None = None, **params: Any) -> Any:
        """Run ``code`` with ``params`` bound; see the module docstring."""
        decoded = _through_the_wire(params, "params")
        try:
            value = self._namespace.run(code, decoded)
        except Exception as exc:
            raise ImplError(self.name, codec.error_record(exc)) from exc
        return _through_the_wire(value, "the snippet's result")

    def reset(self, **params: Any) -> None:
        """Forget everything bound so far, then bind ``params``."""
        self._namespace.close()
        self._namespace = Namespace(self._module, self.name)
        self._namespace.globals.update(_through_the_wire(params, "params"))

    def close(self) -> None:
        """Release the namespace's event loop."""
        self._namespace.close()


class Oracle:
    """icechunk 2.3.0 in a process of its own, under the cached Python >= 3.12 venv.

    Parameters
    ----------
    timeout
        Default seconds to wait for each answer.
    """

    name = "icechunk2"

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self.versions: dict[str, Any] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None
        self._pending = bytearray()
        self._unavailable: str | None = None

    # --- the public interface, shared with InProcess -------------------------------------

    def run(self, code: str, /, timeout: float | None = None, **params: Any) -> Any:
        """Run ``code`` with ``params`` bound in icechunk 2.3.0; see the module docstring.

        Raises
        ------
        ImplError
            The snippet raised.
        OracleTimeout, OracleCrashed
            No answer within ``timeout`` seconds, or the process died; it restarts next call.
        OracleUnavailable
            No Python >= 3.12 or no venv could be had; the message says how to get one.
        """
        request = {"op": "run", "code": code, "params": codec.encode(params, "params")}
        return self._unwrap(self._call(request, timeout, code))

    def reset(self, **params: Any) -> None:
        """A fresh namespace in the same process (quick), then bind ``params``."""
        request = {"op": "reset", "params": codec.encode(params, "params")}
        self._unwrap(self._call(request, None, "reset()"))

    def close(self) -> None:
        """End the process (it also exits by itself when this process goes away)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            assert proc.stdin is not None
            try:
                proc.stdin.close()
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None
        self._pending.clear()

    def restart(self) -> None:
        """A new process (for a test that changed process-wide state, such as logging)."""
        self.close()
        self.start()

    # --- the process ------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The oracle process's id while it runs."""
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        """Start the process unless it runs; rebuild the venv once if the reference won't import."""
        if self._proc is not None and self._proc.poll() is None:
            return
        self.close()
        if self._unavailable is not None:
            # Fail every later test at once instead of searching and building again each time.
            raise OracleUnavailable(self._unavailable)
        try:
            hello = self._spawn(ensure_venv())
            if hello is None:
                # The stamp said the venv was complete but the reference does not import.
                self.close()
                hello = self._spawn(ensure_venv(rebuild=True))
        except OracleUnavailable as exc:
            self._unavailable = str(exc)
            raise
        if hello is None:
            self._unavailable = (
                f"icechunk {ICECHUNK_VERSION} does not import in its freshly built venv:\n"
                f"{self._log_tail()}"
            )
            self.close()
            raise OracleUnavailable(self._unavailable)
        self.versions = hello

    def _spawn(self, python: Path) -> dict[str, Any] | None:
        """Start the server; its hello (versions), or None if the reference failed to import."""
        fd, log = tempfile.mkstemp(prefix="icechunk2-oracle-", suffix=".log")
        self._log = Path(log)
        # The test environment's Python settings would point a 3.12 interpreter at 3.11 packages.
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        try:
            self._proc = subprocess.Popen(
                [str(python), str(SERVER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=fd,
                env=env,
            )
        finally:
            os.close(fd)
        assert self._proc.stdin is not None
        os.set_blocking(self._proc.stdin.fileno(), False)
        hello = self._receive(time.monotonic() + START_TIMEOUT, "start-up")
        if hello.get("hello") is None:
            return None
        found: dict[str, Any] = hello["hello"]
        if found["icechunk"] != ICECHUNK_VERSION:
            return None  # something else was installed into the venv: treat it as broken
        return found

    def _call(self, request: dict[str, Any], timeout: float | None, what: str) -> dict[str, Any]:
        self.start()
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._send((json.dumps(request) + "\n").encode(), deadline, what)
        return self._receive(deadline, what)

    def _send(self, data: bytes, deadline: float, what: str) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        fd = self._proc.stdin.fileno()
        view = memoryview(data)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([], [fd], [], remaining)[1]:
                self._timed_out(what)
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                continue
            except BrokenPipeError:
                self._crashed(what)

    def _receive(self, deadline: float, what: str) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                self._timed_out(what)
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                self._crashed(what)
            self._pending += chunk
        end = self._pending.index(b"\n")
        line = bytes(self._pending[:end])
        del self._pending[: end + 1]
        message: dict[str, Any] = json.loads(line)
        return message

    def _unwrap(self, response: dict[str, Any]) -> Any:
        if "value" in response:
            return codec.decode(response["value"])
        if "error" in response:
            if response["where"] == "result":
                raise codec.NotTransferable(response["error"]["message"])
            raise ImplError(self.name, response["error"])
        raise OracleError(f"unexpected answer from the oracle: {response}")

    def _log_tail(self) -> str:
        try:
            return self._log.read_text(errors="replace")[-_LOG_TAIL:] if self._log else ""
        except OSError:
            return ""

    def _timed_out(self, what: str) -> None:
        assert self._proc is not None
        self._proc.kill()
        tail = self._log_tail()
        self.close()
        raise OracleTimeout(
            f"icechunk {ICECHUNK_VERSION} oracle gave no answer in time to:\n{what[:1000]}\n"
            f"The process was killed; the next call starts a new one. Its stderr:\n{tail}"
        )

    def _crashed(self, what: str) -> None:
        assert self._proc is not None
        try:
            code = self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        tail = self._log_tail()
        self.close()
        raise OracleCrashed(
            f"icechunk {ICECHUNK_VERSION} oracle exited (code {code}) while running:\n"
            f"{what[:1000]}\nThe next call starts a new one. Its stderr:\n{tail}"
        )


@dataclass(frozen=True)
class Outcome:
    """What one implementation did with a snippet: a value, or an error."""

    impl: str
    value: Any = None
    error: ImplError | None = None

    def __str__(self) -> str:
        return (
            f"{self.impl}: {self.error.summary}" if self.error else f"{self.impl} -> {self.value!r}"
        )


class Both:
    """pyicechunk and icechunk 2.3.0 side by side, for scenarios that compare them directly."""

    def __init__(self, ours: InProcess, reference: Oracle) -> None:
        self.ours = ours
        self.reference = reference

    def run(self, code: str, /, **params: Any) -> tuple[Outcome, Outcome]:
        """Run ``code`` on both; ``(ours, reference)``, each a value or an error."""
        outcomes = []
        for impl in (self.ours, self.reference):
            try:
                outcomes.append(Outcome(impl.name, value=impl.run(code, **params)))
            except ImplError as exc:
                outcomes.append(Outcome(impl.name, error=exc))
        return outcomes[0], outcomes[1]

    def same(self, code: str, /, *, messages: bool = False, **params: Any) -> Any:
        """Run ``code`` on both and assert they agree; the common value, or the common error.

        Agreeing means equal results (:func:`oracle.codec.equal`), or errors of the same class
        and kind (and first message line, with ``messages=True``); the common error is raised
        as pyicechunk's :class:`ImplError`, so ``with raises(...)`` can check it further.
        """
        ours, ref = self.run(code, **params)
        if ours.error is None and ref.error is None:
            assert codec.equal(ours.value, ref.value), f"results differ:\n  {ours}\n  {ref}"
            return ours.value
        assert ours.error is not None and ref.error is not None, (
            f"only one raised:\n  {ours}\n  {ref}"
        )
        assert (ours.error.type, ours.error.kind) == (ref.error.type, ref.error.kind), (
            f"different errors:\n  {ours}\n  {ref}"
        )
        if messages:
            assert ours.error.first_line == ref.error.first_line, (
                f"different messages:\n  {ours}\n  {ref}"
            )
        raise ours.error
