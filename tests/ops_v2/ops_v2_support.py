"""Shared pieces of the spec-2 maintenance tests (a uniquely named helper module: test folders
cannot share "conftest" imports).

:data:`PRELUDE` is run first in an implementation's namespace (pyicechunk or icechunk 2.3.0) and
gives the scenarios the same helpers on both: a spec-2 repository with every chunk stored as an
object, commits that each write one row of a 2-d array with values fixed by the commit's
position (so both implementations store the same data), and ``labels``, snapshot id -> the name
a scenario gave it, to compare histories whose ids differ. :func:`describe` reads what a
repository holds from its files (with pyicechunk's codec, whoever wrote them), by label.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyicechunk.format.ids import encode_id
from pyicechunk.format.repo_info import unpack_repo_object

PRELUDE = """
import datetime as dt
import os
import time
from pathlib import Path

INITIAL = "1CECHNKREP0F1RSTCMT0"
labels = {INITIAL: "init"}
ROWS, WIDTH = 8, 64


def utc_now():
    return dt.datetime.now(dt.timezone.utc)


def new_repo(path):
    config = icechunk.RepositoryConfig(inline_chunk_threshold_bytes=0)
    storage = icechunk.local_filesystem_storage(str(path))
    return icechunk.Repository.create(storage, config, spec_version=2)


def open_repo(path):
    return icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))


def values(n):
    return np.random.default_rng(n).random(WIDTH)


def commit(repo, label, row, *, branch="main", create=False, how="commit", session=None):
    s = session if session is not None else repo.writable_session(branch)
    if create:
        zarr.create_array(s.store, name="a", shape=(ROWS, WIDTH), chunks=(1, WIDTH),
                          dtype="f8", fill_value=0.0)
    if row is not None:
        zarr.open_array(s.store, path="a", mode="r+")[row] = values(len(labels))
    if how == "amend":
        sid = s.amend(label)
    elif how == "flush":
        sid = s.flush(label)
    else:
        sid = s.commit(label)
    labels[sid] = label
    time.sleep(0.003)  # distinct times, so a threshold can fall between two commits
    return sid


def written(repo, sid):
    return repo.lookup_snapshot(sid).written_at


def named(ids):
    return sorted(labels.get(i, i) for i in ids)


def ancestry(repo, **ref):
    return [labels.get(s.id, s.id) for s in repo.ancestry(**ref)]


def data(repo, **ref):
    return zarr.open_array(repo.readonly_session(**ref).store, path="a", mode="r")[:]


def summary(gc):
    fields = ("bytes_deleted", "chunks_deleted", "manifests_deleted", "snapshots_deleted",
              "attributes_deleted", "transaction_logs_deleted")
    return {f: getattr(gc, f) for f in fields}
"""

_KINDS = ("snapshots", "transactions", "manifests", "chunks", "overwritten")


def files(path: Path) -> dict[str, int]:
    """Every object under the repository's prefixes, ``kind/name`` -> size."""
    out: dict[str, int] = {}
    for kind in _KINDS:
        folder = path / kind
        if folder.is_dir():
            for name in os.listdir(folder):
                out[f"{kind}/{name}"] = (folder / name).stat().st_size
    return out


def describe(path: Path, labels: Mapping[str, str]) -> dict[str, Any]:
    """What the repository at ``path`` holds, with snapshot ids replaced by their labels.

    The snapshot list (parent and pruned logs of each entry), refs, which snapshot files and
    transaction logs exist, how many manifests, chunks and ``overwritten/`` copies exist, and
    the kinds of the newest ops-log entries.
    """

    def name(snapshot_id: bytes | str | None) -> str | None:
        if snapshot_id is None:
            return None
        text = snapshot_id if isinstance(snapshot_id, str) else encode_id(snapshot_id)
        return labels.get(text, text)

    info = unpack_repo_object((path / "repo").read_bytes(), "repo")
    present = files(path)

    def names(kind: str) -> list[str | None]:
        return sorted(name(k.split("/", 1)[1]) or "" for k in present if k.startswith(kind))

    return {
        "snapshots": {
            name(s.id): (name(s.parent_id), [name(p) for p in s.pruned_ancestor_tx_logs])
            for s in info.snapshots.values()
        },
        "branches": {b: name(t) for b, t in info.branches.items()},
        "tags": {t: name(s) for t, s in info.tags.items()},
        "deleted_tags": sorted(info.deleted_tags),
        "snapshot_files": names("snapshots/"),
        "transaction_logs": names("transactions/"),
        "manifests": sum(k.startswith("manifests/") for k in present),
        "chunks": sum(k.startswith("chunks/") for k in present),
        "overwritten": sum(k.startswith("overwritten/") for k in present),
        "ops_log": [type(u.action).__name__ for u in info.latest_updates[:3]],
    }


def deleted_bytes(before: Mapping[str, int], after: Mapping[str, int]) -> int:
    """Bytes of the objects present before and gone after."""
    return sum(size for key, size in before.items() if key not in after)


def run_scenario(impl: Any, code: str, path: Path, **params: Any) -> tuple[Any, dict[str, Any]]:
    """Run :data:`PRELUDE` and ``code`` (with ``path`` bound) on ``impl``; the scenario's result
    and :func:`describe` of the repository at ``path`` afterwards."""
    impl.run(PRELUDE)
    result = impl.run(code, path=str(path), **params)
    return result, describe(path, impl.run("labels"))
