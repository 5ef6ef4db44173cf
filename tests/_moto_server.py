"""Run moto's S3 server with writes that are atomic with respect to their preconditions.

moto serves each request on its own thread and checks ``If-Match`` / ``If-None-Match`` before
it stores the object, without a lock between the two steps. Two compare-and-swap PUTs with the
same ETag can then both pass the check and both succeed, which real S3 never allows; on a
loaded machine (the GIL switches threads inside that window) that made the S3 conformance
test of concurrent compare-and-swap lose an increment now and then. Serialising object writes
and deletes in the server closes the window; reads stay concurrent.

Usage: ``python tests/_moto_server.py -H 127.0.0.1 -p PORT`` (the arguments of moto.server).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.s3.responses import S3Response
from moto.server import main

_WRITE_LOCK = threading.Lock()


def _serialised(method: Any) -> Any:
    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _WRITE_LOCK:
            return method(self, *args, **kwargs)

    return locked


for _name in ("put_object", "delete_object"):
    setattr(S3Response, _name, _serialised(getattr(S3Response, _name)))

if __name__ == "__main__":
    main()
