"""Virtual chunk containers: which URL prefixes virtual references may point into.

A container pairs a URL prefix with the object store config that fetches it, and may have a
name (icechunk 2), which ``vcc://<name>/<path>`` locations refer to. A prefix must suit its
store (``s3://`` for S3, ``file://`` for a local filesystem, ...) and a name must be usable in
such a location, which ``_validate_container`` checks with the reference's messages.
"""

from __future__ import annotations

import re

from ._checks import _instance, _opt_str, _str
from ._object_store import ObjectStoreConfig, _OscLocalFileSystem
from ._record import _field, _Record


def _store(name: str, value: object) -> ObjectStoreConfig:
    return _instance(name, value, ObjectStoreConfig)


class VirtualChunkContainer(_Record):
    """Permission for virtual references under a URL prefix, and how to fetch them.

    Parameters
    ----------
    url_prefix
        The URL prefix this container serves; must end in ``/`` (checked when the container
        is added to a :class:`RepositoryConfig`).
    store
        One of the ``ObjectStoreConfig`` variants.
    name
        A name for ``vcc://<name>/<path>`` locations relative to ``url_prefix``; not empty, no
        ``/`` (checked when the container is added to a :class:`RepositoryConfig`).
    """

    _ORDER = ("name", "url_prefix", "store")

    url_prefix: str = _field(_str)
    # icechunk 2 refuses None here (1.1 accepted it on assignment).
    store: ObjectStoreConfig = _field(_store)
    name: str | None = _field(_opt_str, default=None)


_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):(.*)$", re.DOTALL)


def _validate_container(cont: VirtualChunkContainer) -> None:
    """Raise ValueError (with the reference's messages) if the container cannot be used."""
    if cont.name is not None and (not cont.name or "/" in cont.name):
        raise ValueError("VirtualChunkContainer name must be non-empty and not contain '/'")
    prefix = cont.url_prefix
    if not prefix.endswith("/"):
        raise ValueError("VirtualChunkContainer url_prefix must end in a / character")
    match = _SCHEME_RE.match(prefix)
    if match is None:
        raise ValueError("relative URL without a base")
    scheme, rest = match.group(1).lower(), match.group(2)
    host = ""
    path = rest
    if rest.startswith("//"):
        authority_end = len(rest)
        for sep in "/?#":
            pos = rest.find(sep, 2)
            if pos != -1:
                authority_end = min(authority_end, pos)
        host = rest[2:authority_end]
        path = rest[authority_end:]
    store = cont.store
    if scheme not in store._SCHEMES:
        raise ValueError(
            f"Invalid url prefix scheme ({scheme}) for this object store config: "
            f"({store._rust_debug()})"
        )
    if isinstance(store, _OscLocalFileSystem):
        if not host and len(path) < 2:
            raise ValueError("Url prefix for file:// containers must include a path")
        if any(segment in (".", "..") for segment in path.split("/")):
            raise ValueError("Url prefix for file:// containers must be a canonical url")
    elif not host:
        label = store._HOST_LABEL or f"{scheme}://"
        raise ValueError(f"Url prefix for {label} containers must include a host")
