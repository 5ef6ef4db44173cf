"""Branches and tags on top of the storage's conditional writes.

Keys (FORMAT-V1 §2, §7): ``refs/branch.<name>/ref.json`` (moved by conditional update),
``refs/tag.<name>/ref.json`` (created once) and ``refs/tag.<name>/ref.json.deleted`` (an empty
tombstone; a deleted tag's name can never be reused).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyicechunk.exceptions import IcechunkError, ObjectNotFoundError
from pyicechunk.format.ids import decode_id, encode_id
from pyicechunk.format.refs import decode_ref, encode_ref
from pyicechunk.storage import ObjectVersion, StorageBackend

__all__ = [
    "BranchConflict",
    "branch_key",
    "create_tag",
    "delete_branch",
    "delete_tag",
    "fetch_branch",
    "fetch_branch_versioned",
    "fetch_tag",
    "list_refs",
    "parse_snapshot_id",
    "tag_key",
    "update_branch",
    "validate_ref_name",
]


class BranchConflict(Exception):
    """A branch was not where the caller expected it (internal; callers translate it)."""

    def __init__(self, expected: bytes | None, actual: bytes | None) -> None:
        super().__init__(expected, actual)
        self.expected = expected
        self.actual = actual

    def describe(self) -> str:
        def some(v: bytes | None) -> str:
            return "None" if v is None else f"Some({encode_id(v)})"

        return f"branch update conflict: `({some(self.expected)}) != ({some(self.actual)})`"


def _invalid_name(name: str, why: str) -> IcechunkError:
    return IcechunkError(f"invalid ref name `{name}`: {why}")


def _check_component(name: str) -> None:
    """Refuse a name that would not be exactly one component of a storage key.

    A ref's name is spliced into ``refs/branch.<name>/``; with a separator (``/``, or ``\\``
    on Windows) or a NUL in it, the key would reach another directory or be cut short. Every
    key function checks this, so no lookup, update or delete can address anything but the
    ref's own directory, whatever name it is given.
    """
    if not isinstance(name, str):
        raise TypeError(f"ref names must be str, not {type(name).__name__}")
    if "/" in name or "\\" in name or "\0" in name:
        raise _invalid_name(name, "branch and tag names cannot contain '/', '\\' or NUL characters")


def branch_key(name: str) -> str:
    _check_component(name)
    return f"refs/branch.{name}/ref.json"


def tag_key(name: str) -> str:
    _check_component(name)
    return f"refs/tag.{name}/ref.json"


def _tombstone_key(name: str) -> str:
    return f"{tag_key(name)}.deleted"


def validate_ref_name(name: str) -> None:
    """Refuse a name for a new branch or tag that could not be stored and read back safely.

    On top of what every key function refuses (see ``_check_component``), a new ref may not be
    empty (the reference accepts ``""``; a nameless ref is a mistake, and would be the directory
    ``refs/branch.``), ``.`` or ``..``, hold control characters, or hold ``%``: icechunk's local
    filesystem storage percent-encodes file names and lists them back encoded (its branch
    ``%2F`` comes back as ``%252F``), so such a name would not survive a round trip.

    Raises
    ------
    IcechunkError
        For such a name, saying why.
    TypeError
        If ``name`` is not a str.
    """
    _check_component(name)
    if not name:
        raise _invalid_name(name, "branch and tag names cannot be empty")
    if name in (".", ".."):
        raise _invalid_name(name, "branch and tag names cannot be '.' or '..'")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise _invalid_name(name, "branch and tag names cannot contain control characters")
    if "%" in name:
        raise _invalid_name(
            name,
            "branch and tag names cannot contain '%' (icechunk's filesystem storage "
            "percent-encodes names, so such a name would not read back the same)",
        )


def parse_snapshot_id(text: str) -> bytes:
    """Decode a user-supplied snapshot id, with the reference's error text."""
    if not isinstance(text, str):
        raise TypeError(f"snapshot ids are str, not {type(text).__name__}")
    try:
        return decode_id(text, 12)
    except ValueError:
        raise IcechunkError(
            f"invalid snapshot id: `{text}` (expected 20 Crockford base32 characters)"
        ) from None


async def fetch_branch_versioned(
    backend: StorageBackend, name: str
) -> tuple[bytes | None, ObjectVersion | None]:
    """The branch's snapshot id and the ref object's version, or (None, None) if absent."""
    key = branch_key(name)
    try:
        data, version = await backend.get_versioned(key)
    except ObjectNotFoundError:
        return None, None
    return decode_ref(data, key), version


async def fetch_branch(backend: StorageBackend, name: str) -> bytes:
    snapshot_id, _ = await fetch_branch_versioned(backend, name)
    if snapshot_id is None:
        raise IcechunkError(f"ref not found `{name}`")
    return snapshot_id


async def update_branch(
    backend: StorageBackend,
    name: str,
    new_id: bytes,
    expected: bytes | None,
    *,
    conditional_create: bool = True,
    conditional_update: bool = True,
    known: tuple[bytes | None, ObjectVersion | None] | None = None,
    durable: Sequence[str] = (),
) -> None:
    """Point ``name`` at ``new_id`` if it currently points at ``expected`` (None: absent).

    ``known`` is the (snapshot id, version) the caller just read, saving one read; a stale value
    only costs a retry, because the write itself is conditional. ``durable`` names objects the
    new ref reaches: they are on disk before the ref moves.

    Raises
    ------
    BranchConflict
        The branch points somewhere else (or exists when it should not).
    """
    key = branch_key(name)
    payload = encode_ref(new_id)
    while True:
        if known is not None:
            # The caller read the ref moments ago: start from that instead of reading again.
            (current, version), known = known, None
        else:
            current, version = await fetch_branch_versioned(backend, name)
        if current != expected:
            raise BranchConflict(expected, current)
        if current is None:
            if not conditional_create:
                await backend.make_durable(durable)
                await backend.put(key, payload)
                return
            if await backend.put_if_absent(key, payload, durable=durable):
                return
        else:
            assert version is not None
            if not conditional_update:
                await backend.make_durable(durable)
                await backend.put(key, payload)
                return
            if await backend.put_if_version(key, payload, version, durable=durable):
                return
        # Someone else wrote in between: read again; the comparison above reports it.


async def delete_branch(backend: StorageBackend, name: str) -> None:
    if name == "main":
        raise IcechunkError("main branch cannot be deleted")
    if not await backend.exists(branch_key(name)):
        raise IcechunkError(f"ref not found `{name}`")
    await backend.delete(branch_key(name))


async def fetch_tag(backend: StorageBackend, name: str) -> bytes:
    key = tag_key(name)
    try:
        data = await backend.get(key)
    except ObjectNotFoundError:
        raise IcechunkError(f"ref not found `{name}`") from None
    if await backend.exists(_tombstone_key(name)):
        raise IcechunkError(f"ref not found `{name}`")
    return decode_ref(data, key)


async def create_tag(
    backend: StorageBackend, name: str, snapshot_id: bytes, *, conditional_create: bool = True
) -> None:
    key = tag_key(name)
    payload = encode_ref(snapshot_id)
    already = f"tag already exists, tags are immutable: `{name}`"
    if conditional_create:
        if not await backend.put_if_absent(key, payload):
            raise IcechunkError(already)
    else:
        if await backend.exists(key):
            raise IcechunkError(already)
        await backend.put(key, payload)


async def delete_tag(backend: StorageBackend, name: str) -> None:
    await fetch_tag(backend, name)
    if not await backend.put_if_absent(_tombstone_key(name), b""):
        raise IcechunkError(f"ref not found `{name}`")


@dataclass(frozen=True)
class RefListing:
    branches: set[str]
    tags: set[str]


async def list_refs(backend: StorageBackend) -> RefListing:
    """All branches and live tags (tags with a tombstone are left out)."""
    branches: set[str] = set()
    tag_files: set[str] = set()
    tombstones: set[str] = set()
    for info in await backend.list("refs/"):
        rest = info.key[len("refs/") :]
        ref_dir, _, leaf = rest.partition("/")
        if ref_dir.startswith("branch."):
            if leaf == "ref.json":
                branches.add(ref_dir[len("branch.") :])
        elif ref_dir.startswith("tag."):
            name = ref_dir[len("tag.") :]
            if leaf == "ref.json":
                tag_files.add(name)
            elif leaf == "ref.json.deleted":
                tombstones.add(name)
        else:
            raise IcechunkError(
                f"unexpected object {info.key} under refs/: only `branch.<name>` and "
                "`tag.<name>` entries may live there; remove it so that refs can be listed"
            )
    return RefListing(branches, tag_files - tombstones)
