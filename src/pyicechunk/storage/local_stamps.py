"""Write ids on local files: the extended attribute ``user.icechunkwriteid`` (see
:mod:`pyicechunk.storage.local`), set on a temporary file before it gets its name and read back
to see whether a conditional write landed.
"""

from __future__ import annotations

import errno
import os

from pyicechunk.storage import _WRITE_ID_KEY, logger
from pyicechunk.storage.local_reads import _NOT_FOUND

_WRITE_ID_XATTR = f"user.{_WRITE_ID_KEY}"
_XATTRS = hasattr(os, "setxattr")  # Linux only
_NO_XATTRS = (errno.ENOTSUP, errno.EOPNOTSUPP)
_warned_unstamped = False


def _warn_unstamped_once(where: str) -> None:
    global _warned_unstamped
    if not _warned_unstamped:
        _warned_unstamped = True
        logger.warning(
            "conditional writes under %s carry no write id (no user extended attributes "
            "there): a conditional write whose response is lost surfaces as a conflict",
            where,
        )


def _stamp(fd: int, path: str, write_id: str) -> None:
    try:
        os.setxattr(fd, _WRITE_ID_XATTR, write_id.encode("ascii"))
    except OSError as e:
        if e.errno not in _NO_XATTRS:
            raise
        _warn_unstamped_once(os.path.dirname(path))


def _read_stamp(path: str) -> str | None:
    try:
        value = os.getxattr(path, _WRITE_ID_XATTR)
    except _NOT_FOUND:
        return None
    except OSError as e:
        if e.errno in (errno.ENODATA, *_NO_XATTRS):
            return None
        raise
    return value.decode("ascii", "replace")
