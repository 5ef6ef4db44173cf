"""The repository layout: every object key and prefix, spelled here and nowhere else.

Spec 1 (FORMAT-V1 §2) and spec 2 (FORMAT-V2 §1) share the immutable objects under
``snapshots/``, ``manifests/``, ``transactions/`` and ``chunks/``, each named by the Crockford
base32 text of its id. The mutable state differs: spec 1 keeps one ``ref.json`` per branch and
tag under ``refs/`` (a tombstone ``ref.json.deleted`` beside a deleted tag's) and the config in
``config.yaml``; spec 2 keeps everything in the one object ``repo``, copying each replaced
version to ``overwritten/`` first.
"""

from __future__ import annotations

from typing import Literal

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.ids import decode_id, encode_id

__all__ = [
    "CHUNKS",
    "CONFIG",
    "IMMUTABLE_PREFIXES",
    "MANIFESTS",
    "OVERWRITTEN",
    "REFS",
    "REPO",
    "SNAPSHOTS",
    "SPEC1_MAIN_BRANCH",
    "TRANSACTIONS",
    "RefKey",
    "backup_key",
    "branch_key",
    "chunk_key",
    "is_layout_directory",
    "is_layout_key",
    "manifest_key",
    "parse_ref_key",
    "snapshot_key",
    "tag_key",
    "tag_tombstone_key",
    "transaction_key",
]

SNAPSHOTS = "snapshots/"
MANIFESTS = "manifests/"
TRANSACTIONS = "transactions/"
CHUNKS = "chunks/"
REFS = "refs/"
CONFIG = "config.yaml"
REPO = "repo"
OVERWRITTEN = "overwritten/"

IMMUTABLE_PREFIXES = (SNAPSHOTS, MANIFESTS, TRANSACTIONS, CHUNKS)
"""The prefixes of the objects named by their id (chunks last)."""

_BRANCH = "branch."
_TAG = "tag."
_REF_FILE = "ref.json"
_TOMBSTONE_FILE = "ref.json.deleted"


def snapshot_key(snapshot_id: bytes) -> str:
    return SNAPSHOTS + encode_id(snapshot_id)


def manifest_key(manifest_id: bytes) -> str:
    return MANIFESTS + encode_id(manifest_id)


def transaction_key(snapshot_id: bytes) -> str:
    return TRANSACTIONS + encode_id(snapshot_id)


def chunk_key(chunk_id: bytes) -> str:
    return CHUNKS + encode_id(chunk_id)


def backup_key(name: str) -> str:
    """The key of the ``overwritten/`` copy called ``name`` (a bare name as ``repo`` stores it)."""
    return OVERWRITTEN + name


def _check_component(name: str) -> None:
    """Refuse a ref name that would not be exactly one component of a storage key.

    A ref's name is spliced into ``refs/branch.<name>/``; with a separator (``/``, or ``\\``
    on Windows) or a NUL in it, the key would reach another directory or be cut short. Every
    ref key function checks this, so no lookup, update or delete can address anything but the
    ref's own directory, whatever name it is given.
    """
    if not isinstance(name, str):
        raise TypeError(f"ref names must be str, not {type(name).__name__}")
    if "/" in name or "\\" in name or "\0" in name:
        raise IcechunkError(
            f"invalid ref name `{name}`: branch and tag names cannot contain '/', '\\' or NUL "
            "characters",
            kind="invalid-ref-name",
        )


def branch_key(name: str) -> str:
    """``refs/branch.<name>/ref.json`` (spec 1), for a name that is one key component."""
    _check_component(name)
    return f"{REFS}{_BRANCH}{name}/{_REF_FILE}"


def tag_key(name: str) -> str:
    """``refs/tag.<name>/ref.json`` (spec 1), for a name that is one key component."""
    _check_component(name)
    return f"{REFS}{_TAG}{name}/{_REF_FILE}"


def tag_tombstone_key(name: str) -> str:
    """``refs/tag.<name>/ref.json.deleted``: present once the tag was deleted (spec 1)."""
    _check_component(name)
    return f"{REFS}{_TAG}{name}/{_TOMBSTONE_FILE}"


SPEC1_MAIN_BRANCH = branch_key("main")
"""The object whose presence makes a location a spec-1 repository."""

RefKey = tuple[Literal["branch", "tag", "tombstone"], str]


def parse_ref_key(key: str) -> RefKey | None:
    """What a key under ``refs/`` is: a branch's or tag's ref file, or a tag's tombstone.

    Returns
    -------
    tuple or None
        ``(kind, name)``; None for any other object under ``refs/`` (including objects deeper
        in a ref's directory, which icechunk ignores as well).

    Raises
    ------
    IcechunkError
        If the key's first component below ``refs/`` is neither ``branch.<name>`` nor
        ``tag.<name>``: no ref can be listed while such an object is there.
    """
    ref_dir, _, leaf = key[len(REFS) :].partition("/")
    if ref_dir.startswith(_BRANCH):
        return ("branch", ref_dir[len(_BRANCH) :]) if leaf == _REF_FILE else None
    if ref_dir.startswith(_TAG):
        name = ref_dir[len(_TAG) :]
        if leaf == _REF_FILE:
            return ("tag", name)
        return ("tombstone", name) if leaf == _TOMBSTONE_FILE else None
    raise IcechunkError(
        f"unexpected object {key} under {REFS}: only `branch.<name>` and `tag.<name>` entries "
        f"may live there; remove it so that refs can be listed",
        kind="invalid-ref-type",
    )


def _is_id(name: str) -> bool:
    try:
        decode_id(name, 12)
    except ValueError:
        return False
    return True


def _is_backup_name(name: str) -> bool:
    # repo.<digits>.<id>
    prefix, _, rest = name.partition(".")
    time, _, random = rest.partition(".")
    return prefix == REPO and time.isascii() and time.isdigit() and _is_id(random)


def is_layout_directory(parts: tuple[str, ...]) -> bool:
    """Whether the directory ``a/b`` (as ``("a", "b")``) has a place in either layout."""
    match parts:
        case (top,):
            return f"{top}/" in (*IMMUTABLE_PREFIXES, REFS, OVERWRITTEN)
        case (refs, ref_dir) if f"{refs}/" == REFS:
            kind, dot, name = ref_dir.partition(".")
            return bool(dot and name) and f"{kind}." in (_BRANCH, _TAG)
    return False


def is_layout_key(key: str) -> bool:
    """Whether an object key has a place in the spec-1 or the spec-2 layout."""
    directory, _, name = key.rpartition("/")
    parts = tuple(directory.split("/")) if directory else ()
    match parts:
        case ():
            return name in (CONFIG, REPO)
        case (_, ref_dir) if is_layout_directory(parts):
            return name == _REF_FILE or (ref_dir.startswith(_TAG) and name == _TOMBSTONE_FILE)
        case (top,) if f"{top}/" == OVERWRITTEN:
            return _is_backup_name(name)
        case (top,) if f"{top}/" in IMMUTABLE_PREFIXES:
            return _is_id(name)
    return False
