"""Invariants of a spec-2 repository's ``repo`` object, shared by the concurrency and fault tests.

:func:`check_repo` reads ``repo`` and everything it names straight from a backend (no faults,
no caches) and asserts what must hold after any sequence of updates, failed or not:

* ``repo`` decodes; every ref target is listed (the decoder refuses anything else) and every
  listed snapshot's file exists;
* the ops log, followed through its chain, has strictly decreasing times (newest first);
* every entry that names a backup names an object in ``overwritten/`` that decodes, and in
  that copy the same entry is the newest one: the copy is the state the entry produced;
* every object in ``overwritten/`` decodes (a copy left by an update that failed is unused,
  never damaged).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

from pyicechunk.format.repo_info import RepoInfo, Update, unpack_repo_object
from pyicechunk.repo_state.repo_object import RepoObject, read_repo_object
from pyicechunk.storage import StorageBackend, keys


@dataclass(frozen=True)
class RepoReport:
    """What :func:`check_repo` found."""

    info: RepoInfo
    ops_log: list[Update]
    backups: frozenset[str]
    unused_backups: frozenset[str]


async def read_ops_log(backend: StorageBackend) -> list[Update]:
    """Every ops-log entry, newest first, through the ``repo_before_updates`` chain."""
    repo = RepoObject(backend)
    entries, name = await repo.ops_log_file(None)
    out = list(entries)
    seen = set()
    while name is not None:
        assert name not in seen, f"the ops-log chain loops at {name}"
        seen.add(name)
        # (a missing chained copy ends the log quietly, as in the reference: never here)
        assert await backend.exists(keys.backup_key(name)), f"chained copy {name} is missing"
        entries, name = await repo.ops_log_file(name)
        out.extend(entries)
    return out


async def check_repo(backend: StorageBackend) -> RepoReport:
    """Assert the invariants of the module docstring; return what was read."""
    found = await read_repo_object(backend)
    assert found is not None, "there is no repo object"
    info = found.info
    for name, target in [*info.branches.items(), *info.tags.items()]:
        assert target in info.snapshots, f"ref {name} points at an unlisted snapshot"
    present = await asyncio.gather(
        *(backend.exists(keys.snapshot_key(sid)) for sid in info.snapshots)
    )
    missing = [sid for sid, there in zip(info.snapshots, present, strict=True) if not there]
    assert not missing, f"repo lists {len(missing)} snapshots whose files are missing"

    entries = await read_ops_log(backend)
    times = [entry.updated_at for entry in entries]
    assert all(a > b for a, b in itertools.pairwise(times)), "ops-log times not monotonic"

    listed = await backend.list(keys.OVERWRITTEN)
    names = frozenset(obj.key.removeprefix(keys.OVERWRITTEN) for obj in listed)
    datas = await asyncio.gather(*(backend.get(keys.backup_key(n)) for n in sorted(names)))
    copies = {
        name: unpack_repo_object(data, keys.backup_key(name))
        for name, data in zip(sorted(names), datas, strict=True)
    }
    # The newest entry of a chained file reports that file as its backup (RepoObject.ops_log);
    # its own copy is the file itself, where it is the newest entry too.
    named = set()
    for entry in entries:
        if entry.backup_path is None:
            continue
        named.add(entry.backup_path)
        copy = copies.get(entry.backup_path)
        assert copy is not None, f"ops log names missing backup {entry.backup_path}"
        newest = copy.latest_updates[0]
        assert (newest.action, newest.updated_at) == (entry.action, entry.updated_at), (
            f"backup {entry.backup_path} does not hold the state its entry produced"
        )
    if info.repo_before_updates is not None:
        named.add(info.repo_before_updates)
    return RepoReport(info, entries, names, frozenset(names - named))
