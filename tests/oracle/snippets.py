"""Running scenario snippets: one persistent namespace per implementation.

A snippet is Python source run at the top level of a namespace that survives between calls, as
in a notebook. The value of its last statement, when that is an expression, is the result; a
snippet may ``await`` at the top level (it then runs on the namespace's own event loop). The
namespace starts with:

- ``icechunk``: the implementation under test (pyicechunk, or the real icechunk 2.3.0),
- ``zarr``, ``np`` / ``numpy``,
- ``IMPL``: ``"pyicechunk"`` or ``"icechunk2"``, for the rare scenario that must branch,
- ``make_storage(spec)``: a storage from a location spec (see :func:`make_storage`),

plus whatever the caller binds. Requests and responses are the JSON of the codec module, so this
module serves the oracle process and the in-process side alike. Stdlib, numpy and zarr only.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import linecache
import textwrap
from types import CodeType, ModuleType
from typing import Any

try:
    from . import codec
except ImportError:  # run by the oracle server as a top-level module, beside codec.py
    import codec  # type: ignore[no-redef, import-not-found]

_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


def make_storage(icechunk: ModuleType, spec: dict[str, Any]) -> Any:
    """A storage of implementation ``icechunk`` for a location ``spec``.

    ``spec`` is ``{"kind": "memory"}``, ``{"kind": "local", "path": ...}``, or
    ``{"kind": "s3", "bucket", "prefix", "endpoint_url", "region", "access_key_id",
    "secret_access_key"}`` for the test S3 server (plain HTTP, path-style addressing).
    """
    kind = spec["kind"]
    if kind == "memory":
        return icechunk.in_memory_storage()
    if kind == "local":
        return icechunk.local_filesystem_storage(str(spec["path"]))
    if kind == "s3":
        return icechunk.s3_storage(
            bucket=spec["bucket"],
            prefix=spec["prefix"],
            endpoint_url=spec["endpoint_url"],
            region=spec["region"],
            access_key_id=spec["access_key_id"],
            secret_access_key=spec["secret_access_key"],
            allow_http=True,
            force_path_style=True,
        )
    raise ValueError(f"unknown storage kind {kind!r}; use memory, local or s3")


def _compile(source: str) -> tuple[CodeType | None, CodeType | None]:
    """The snippet's statements and, when it ends with an expression, that expression apart."""
    name = codec.SNIPPET_FILE
    tree = ast.parse(source, name, "exec")
    last: ast.expr | None = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = tree.body[-1].value
        del tree.body[-1]
    body = compile(tree, name, "exec", flags=_FLAGS) if tree.body else None
    tail = None
    if last is not None:
        tail = compile(ast.Expression(last), name, "eval", flags=_FLAGS)
    return body, tail


class Namespace:
    """Where one implementation's snippets run; a fresh instance forgets everything bound."""

    def __init__(self, icechunk: ModuleType, impl: str) -> None:
        import numpy
        import zarr

        self._loop: asyncio.AbstractEventLoop | None = None
        self.globals: dict[str, Any] = {
            "__name__": "__snippet__",
            "icechunk": icechunk,
            "zarr": zarr,
            "np": numpy,
            "numpy": numpy,
            "IMPL": impl,
            "make_storage": lambda spec: make_storage(icechunk, spec),
        }

    def _eval(self, code: CodeType) -> Any:
        result = eval(code, self.globals)
        if code.co_flags & inspect.CO_COROUTINE:  # the snippet awaited at the top level
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            result = self._loop.run_until_complete(result)
        return result

    def run(self, code: str, params: dict[str, Any]) -> Any:
        """Bind ``params``, run ``code``, return its last expression's value (or None)."""
        self.globals.update(params)
        source = textwrap.dedent(code)
        # Tracebacks show the snippet's lines (the one running now is the one worth seeing).
        linecache.cache[codec.SNIPPET_FILE] = (len(source), None, source.splitlines(True), "")
        body, tail = _compile(source)
        if body is not None:
            self._eval(body)
        return None if tail is None else self._eval(tail)

    def respond(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer one ``{"code", "params"}`` request: ``{"value"}`` or ``{"error", "where"}``."""
        try:
            params = codec.decode(request.get("params", {}))
            value = self.run(request["code"], params)
        except Exception as exc:
            return {"error": codec.error_record(exc), "where": "snippet"}
        try:
            return {"value": codec.encode(value, "the snippet's result")}
        except codec.NotTransferable as exc:
            return {"error": codec.error_record(exc), "where": "result"}

    def close(self) -> None:
        """Close the event loop that top-level ``await`` created, if any."""
        if self._loop is not None:
            self._loop.close()
            self._loop = None
