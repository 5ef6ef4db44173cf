"""The oracle process: runs snippets with icechunk 2.3.0, one JSON request per line on stdin.

Started by the test process under the oracle venv's Python (``python server.py``). It answers
first with a hello line (versions, or the import error when the venv is broken), then one line
per request, in order:

- ``{"op": "run", "code": str, "params": {...}}`` -> ``{"value": ...}`` or
  ``{"error": {...}, "where": "snippet" | "result"}``;
- ``{"op": "reset", "params": {...}}`` -> ``{"value": null}``: a fresh namespace, ``params``
  bound in it;
- end of input: exit.

The protocol owns the original stdout; file descriptor 1 is pointed at stderr, so that a print
in a snippet, or the reference's own console logging, cannot corrupt it.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import traceback
from typing import Any, TextIO


def _send(out: TextIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def main() -> int:
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    try:
        import icechunk
        import numpy
        import zarr
        from snippets import Namespace  # type: ignore[import-not-found]  # beside this script
    except Exception:
        _send(out, {"hello": None, "import_error": traceback.format_exc()})
        return 3
    _send(
        out,
        {
            "hello": {
                "icechunk": icechunk.__version__,
                "zarr": zarr.__version__,
                "numpy": numpy.__version__,
                "python": platform.python_version(),
                "pid": os.getpid(),
            }
        },
    )
    namespace = Namespace(icechunk, "icechunk2")
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "run":
            response = namespace.respond(request)
        elif request["op"] == "reset":
            namespace.close()
            namespace = Namespace(icechunk, "icechunk2")
            response = namespace.respond({"code": "", "params": request.get("params", {})})
        else:
            response = {"protocol_error": f"unknown op {request['op']!r}"}
        _send(out, response)
    return 0  # end of input: the test process is done with us


if __name__ == "__main__":
    status = main()
    # Skip the interpreter's orderly shutdown: the reference's runtime takes a third of a
    # second to wind down, paid by every xdist worker's teardown, and nothing is pending.
    sys.stderr.flush()
    os._exit(status)
