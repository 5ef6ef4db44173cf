"""The spec-2 interop matrix: a varied history, and snippets that describe a repository.

Everything here is snippet source that runs unchanged on pyicechunk, on icechunk 2.3.0 and (for
the spec-1 histories) on icechunk 1.1.21, plus the scenario's data classes (a uniquely named
module: test folders cannot share "conftest" imports).

:data:`BUILD` writes, with the implementation it runs on, at ``where`` (a location spec):
nested groups; several dtypes with 0-d arrays (float32, float16 NaN) and complex; a sharded
array; inline, native and virtual chunks, with 1024 virtual refs in one array so that spec-2
writers compress their locations (FORMAT-V2 §8.2), some with a last-modified checksum, pointing
at local files and, on S3, also at an object in the test bucket (with its etag); a deleted
chunk, resizes, deleted nodes; five commits with metadata on ``main``; a second branch ``dev``;
tags and a deleted tag; a flush, a branch that goes away and a reset (snapshots no ref reaches);
a stored config. On spec 2 also: a 4-entry ops-log window (the log spans a chain of files in
``overwritten/``), a ``vcc://`` ref to a named container, a branch name with a slash, an empty
commit, a saved config, and where the writer offers them repository metadata, status and
feature-flag changes, and (icechunk 2.3.0 only) a move.

:data:`VIEW` is what a reader sees; :data:`ON_TOP` is the other implementation's work on top
(a commit that rewrites the many-refs manifest, an amend, a tag, a deleted branch);
:data:`PENDING` and :data:`COMMIT_PENDING` a session of the first implementation that rebases
over that work.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from oracle import InProcess, Oracle

VIRTUAL_FILES = 12  # the many-refs array spreads its refs over this many local files
MANY = 1024  # virtual refs in one manifest: above the 1000 of the compression threshold
VALUES = np.arange(100, 116, dtype="<i4")  # the small virtual array's source file
S3_VALUES = np.arange(-50, -34, dtype="<i4")  # its S3 twin's


@dataclass(frozen=True)
class Virtual:
    """Where virtual chunks live: a local directory and, on S3, an object in the bucket."""

    directory: Path
    s3: dict[str, Any] | None = None  # bucket, key, endpoint_url, region, keys

    @property
    def params(self) -> dict[str, Any]:
        """The snippets' view of it (plain data)."""
        return {"vdir": str(self.directory), "vs3": self.s3, "many": MANY, "n_files": VIRTUAL_FILES}


def write_virtual_sources(directory: Path, server: Any | None, bucket: str | None) -> Virtual:
    """The files the virtual refs point at: local ones, and one S3 object if ``server`` is given."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "values.bin").write_bytes(VALUES.tobytes())
    for k in range(VIRTUAL_FILES):
        (directory / f"part-{k:02d}.bin").write_bytes(bytes((k * 7 + i) % 251 for i in range(128)))
    if server is None or bucket is None:
        return Virtual(directory)
    key = f"virtual-{uuid.uuid4().hex[:8]}/values.bin"
    client = server.client()
    client.put_object(Bucket=bucket, Key=key, Body=S3_VALUES.tobytes())
    s3 = {
        "bucket": bucket,
        "key": key,
        "etag": client.head_object(Bucket=bucket, Key=key)["ETag"],
        "endpoint_url": server.endpoint_url,
        "region": server.region,
        "access_key_id": server.access_key_id,
        "secret_access_key": server.secret_access_key,
    }
    return Virtual(directory, s3)


Impl = InProcess | Oracle

MIGRATE = """
migrated = icechunk.upgrade_icechunk_repository(
    icechunk.Repository.open(make_storage(where)), dry_run=False
)
int(migrated.spec_version)
"""


@dataclass(frozen=True)
class Kind:
    """Who writes the history (and in which spec version), who migrates it, who reads it."""

    writer: str  # "pyicechunk", "icechunk2", or "icechunk1" (1.1.21, in this process)
    spec_version: int | None  # None: the writer's default (1.1.21 writes spec 1 only)
    migrator: str | None  # who upgrades the spec-1 history, or None
    first: str  # the implementation the repository belongs to: writer or migrator
    other: str  # the one that must see the same and work on top


KINDS = {
    "pyicechunk-v2": Kind("pyicechunk", 2, None, "pyicechunk", "icechunk2"),
    "icechunk2-v2": Kind("icechunk2", 2, None, "icechunk2", "pyicechunk"),
    "pyicechunk-migrated": Kind("pyicechunk", 1, "pyicechunk", "pyicechunk", "icechunk2"),
    # Spec 1 written by icechunk 1.1.21 on the local filesystem and by pyicechunk on S3 (see
    # the fixture): both are histories users migrate.
    "icechunk2-migrated": Kind("icechunk1", None, "icechunk2", "icechunk2", "pyicechunk"),
}


@dataclass
class Scenario:
    """A built repository and the two implementations around it."""

    kind: Kind
    storage: str
    where: dict[str, Any]
    params: dict[str, Any]  # what the snippets need: location, virtual sources, sizes
    impls: dict[str, Impl]
    built: dict[str, Any]
    # pyicechunk's view of the spec-1 history before the migration (migrated kinds only)
    before: dict[str, Any] | None = None

    @property
    def first(self) -> Impl:
        """The implementation that wrote (or migrated) the repository."""
        return self.impls[self.kind.first]

    @property
    def other(self) -> Impl:
        """The other one."""
        return self.impls[self.kind.other]

    def run(self, impl: Impl, code: str, **extra: Any) -> Any:
        """Run ``code`` on ``impl`` with the scenario's parameters bound."""
        return impl.run(code, **self.params, **extra)


# --- snippets -----------------------------------------------------------------------------------

SETUP = """
import datetime as _dt

local_prefix = f"file://{vdir}/"
s3_prefix = None if vs3 is None else f"s3://{vs3['bucket']}/"

def authorizations():
    found = {
        local_prefix: getattr(getattr(icechunk, "credentials", None), "LocalFileSystemAccess", None)
    }
    if vs3 is not None:
        static = icechunk.s3_credentials(
            access_key_id=vs3["access_key_id"], secret_access_key=vs3["secret_access_key"]
        )
        found.update(icechunk.containers_credentials({s3_prefix: static}))
    return found

def open_repo():
    return icechunk.Repository.open(
        make_storage(where), authorize_virtual_chunk_access=authorizations()
    )

def part_url(k):
    return f"file://{vdir}/part-{k:02d}.bin"

LATER = _dt.datetime(2100, 1, 1, tzinfo=_dt.timezone.utc)

def many_refs(offset):
    # Every third ref also says its file must not have changed since 2100 (a checksum field).
    n = n_files
    return [
        icechunk.VirtualChunkSpec(
            [i], part_url(i % n), (i // n + offset) % 128, 1,
            last_updated_at_checksum=LATER if i % 3 == 0 else None,
        )
        for i in range(many)
    ]
"""


BUILD = (
    SETUP
    + """
rs = np.random.RandomState(11)
config = icechunk.RepositoryConfig.default()
config.inline_chunk_threshold_bytes = 64
v2 = spec_version == 2
# Spec 2: the local container has a name, so that refs may say vcc://local/<path>.
named = {"name": "local"} if v2 else {}
config.set_virtual_chunk_container(
    icechunk.VirtualChunkContainer(local_prefix, icechunk.local_filesystem_store(vdir), **named)
)
if vs3 is not None:
    config.set_virtual_chunk_container(
        icechunk.VirtualChunkContainer(
            s3_prefix,
            icechunk.s3_store(
                region=vs3["region"], endpoint_url=vs3["endpoint_url"], allow_http=True,
                force_path_style=True, s3_compatible=True,
            ),
        )
    )
if v2:
    # A small window: the ops log spans a chain of files in overwritten/ (FORMAT-V2 §10.3).
    config.num_updates_per_repo_info_file = 4
versioned = {} if spec_version is None else {"spec_version": spec_version}
repo = icechunk.Repository.create(
    make_storage(where), config, authorize_virtual_chunk_access=authorizations(), **versioned
)
# The ops-log entries this history makes, oldest first (spec 2; a migration makes its own).
built = {"main": [], "unreachable": [], "ops": ["RepoInitialized"]}

def commit(session, message, **metadata):
    sid = session.commit(message, metadata=metadata)
    built["main"].append(sid)
    built["ops"].append("NewCommit")
    return sid

s = repo.writable_session("main")
root = zarr.create_group(s.store, attributes={"title": "interop v2", "levels": [1, 2, 3]})
grp = root.create_group("grp", attributes={"nested": {"x": 1.5, "none": None}})
sub = grp.create_group("sub")
sub.create_group("leaf", attributes={"empty": True})
grp.create_array("f8", shape=(20, 30), chunks=(10, 7), dtype="f8", fill_value=-1.0)[:] = (
    rs.standard_normal((20, 30))
)
root.create_array("i2", shape=(9,), chunks=(4,), dtype="i2")[:] = rs.randint(-300, 300, 9)
grp.create_array("c8", shape=(5,), chunks=(2,), dtype="c8", fill_value=1j)[:4] = (
    rs.standard_normal(4) + 1j * rs.standard_normal(4)
)
sub.create_array("f2", shape=(), dtype="f2", fill_value=np.nan)
root.create_array("scalar", shape=(), dtype="f4", fill_value=0.0)[()] = np.float32(3.25)
root.create_array("flags", shape=(7, 3), chunks=(2, 2), dtype="bool")[:] = rs.rand(7, 3) > 0.5
grp.create_array("u8", shape=(50,), chunks=(10,), dtype="u8", dimension_names=["t"])[:] = (
    rs.randint(0, 2**40, size=50).astype("u8")
)
root.create_array(
    "sharded", shape=(16, 16), chunks=(4, 4), shards=(8, 8), dtype="i4", fill_value=0
)[:12, :] = rs.randint(1, 1000, size=(12, 16))
# Raw u1 chunks of 64 and 65 bytes: one inline, one a chunk object (threshold 64).
for n in (64, 65):
    sub.create_array(f"u1_{n}", shape=(2 * n,), chunks=(n,), dtype="u1", compressors=None)[:] = (
        rs.randint(1, 255, size=2 * n).astype("u1")
    )
root.create_array("virt", shape=(16,), chunks=(4,), dtype="<i4", compressors=None, fill_value=-1)
values_url = f"file://{vdir}/values.bin"
s.store.set_virtual_refs(
    "virt",
    [icechunk.VirtualChunkSpec([0], values_url, 48, 16),
     icechunk.VirtualChunkSpec([1], values_url, 0, 16)],
)
root.create_array("vmany", shape=(many,), chunks=(1,), dtype="u1", compressors=None, fill_value=0)
s.store.set_virtual_refs("vmany", many_refs(0))
if vs3 is not None:
    root.create_array(
        "vs3", shape=(8,), chunks=(4,), dtype="<i4", compressors=None, fill_value=-1
    )
    s3_url = f"s3://{vs3['bucket']}/{vs3['key']}"
    s.store.set_virtual_refs(
        "vs3",
        [icechunk.VirtualChunkSpec([0], s3_url, 32, 16, etag_checksum=vs3["etag"]),
         icechunk.VirtualChunkSpec([1], s3_url, 0, 16)],
    )
commit(s, "create hierarchy", step=1, who="A", f=0.25)

s = repo.writable_session("main")
f8 = zarr.open_array(s.store, path="grp/f8", mode="r+")
f8[0:10, 0:7] = -1.0  # the fill value everywhere: the chunk is deleted
f8[10:, 7:14] = rs.standard_normal((10, 7))
zarr.open_array(s.store, path="i2", mode="r+")[4:8] = rs.randint(-9, 9, size=4)
s.store.set_virtual_refs("virt", [icechunk.VirtualChunkSpec([3], values_url, 16, 16)])
if v2:
    vcc = [icechunk.VirtualChunkSpec([2], "vcc://local/values.bin", 4, 16)]
    s.store.set_virtual_refs("virt", vcc)
commit(s, "edit and drop a chunk", step=2, nested={"a": [1, None]})

s = repo.writable_session("main")
root = zarr.open_group(s.store, mode="r+")
root["grp/f8"].resize((15, 20))
root["sharded"].resize((8, 16))
root["grp/u8"].resize((60,))
root.attrs["title"] = "resized"
commit(s, "resize", step=3, big=2**40, neg=-3)

s = repo.writable_session("main")
root = zarr.open_group(s.store, mode="r+")
del root["grp/sub/leaf"]
del root["flags"]
commit(s, "delete nodes", step=4, ok=True)

s = repo.writable_session("main")
root = zarr.open_group(s.store, mode="r+")
root.create_array("late", shape=(3, 4), chunks=(3, 2), dtype="i8")[:] = rs.randint(
    0, 100, size=(3, 4)
)
root["grp/u8"][50:60] = 7
commit(s, "late additions", step=5, items=[1.5, "x"])
if v2 and hasattr(repo, "rearrange_session"):
    # A move (spec 2 only, and only icechunk 2.3.0 writes them): the transaction log's
    # moved_nodes; the subtree keeps its node ids and data under the new path.
    s = repo.rearrange_session("main")
    s.move("/grp/sub", "/moved")
    commit(s, "move a group", step=6)

repo.create_branch("dev", built["main"][2])
s = repo.writable_session("dev")
zarr.open_group(s.store, mode="r+").create_group("dev_only", attributes={"branch": "dev"})
zarr.open_array(s.store, path="i2", mode="r+")[:] = 1
built["dev"] = s.commit("dev work", metadata={"branch": "dev", "text": "é ✓ \\n"})
built["ops"] += ["BranchCreated", "NewCommit"]
if v2:
    s = repo.writable_session("dev")
    built["dev"] = s.commit("nothing changed", metadata={}, allow_empty=True)
    built["ops"].append("NewCommit")
built["branches"] = {"main": built["main"][-1], "dev": built["dev"]}
if v2:  # spec 2 allows "/" in branch names
    repo.create_branch("feature/x", built["main"][1])
    built["branches"]["feature/x"] = built["main"][1]
    built["ops"].append("BranchCreated")

built["tags"] = {"v1": built["main"][0], "v3": built["main"][2], "dev-tip": built["dev"]}
for name, target in built["tags"].items():
    repo.create_tag(name, target)
repo.create_tag("withdrawn", built["main"][1])
repo.delete_tag("withdrawn")
built["deleted_tag"] = ("withdrawn", built["main"][1])
built["ops"] += ["TagCreated"] * 4 + ["TagDeleted"]

# Snapshots no ref reaches: a flush, a deleted branch's commit, a commit reset away.
s = repo.writable_session("main")
zarr.open_array(s.store, path="i2", mode="r+")[0] = 99
built["unreachable"].append(s.flush("flushed, never committed"))
repo.create_branch("tmp", built["main"][-1])
s = repo.writable_session("tmp")
zarr.open_array(s.store, path="i2", mode="r+")[1] = 98
built["unreachable"].append(s.commit("on a branch that goes away"))
repo.delete_branch("tmp")
s = repo.writable_session("main")
zarr.open_array(s.store, path="i2", mode="r+")[2] = 97
built["unreachable"].append(s.commit("reset away"))
repo.reset_branch("main", built["main"][-1])
built["ops"] += [
    "NewDetachedSnapshot", "BranchCreated", "NewCommit", "BranchDeleted", "NewCommit",
    "BranchReset",
]

# What only spec 2 has, as far as the writer offers it.
built["metadata"] = {}
if v2:
    repo.save_config()
    built["ops"].append("ConfigChanged")
    if hasattr(repo, "set_metadata"):
        built["metadata"] = {"project": "interop", "n": 3, "nested": {"f": 0.5, "l": [1, "a"]}}
        repo.set_metadata(built["metadata"])
        built["ops"].append("MetadataChanged")
    if hasattr(repo, "set_status"):
        repo.set_status(
            icechunk.RepoStatus(
                icechunk.RepoAvailability.read_only, limited_availability_reason="maintenance"
            )
        )
        repo.set_status(icechunk.RepoStatus(icechunk.RepoAvailability.online))
        built["ops"] += ["RepoStatusChanged"] * 2
    if hasattr(repo, "set_feature_flag"):
        repo.set_feature_flag("delete_tag", False)
        repo.set_feature_flag("delete_tag", None)
        built["ops"] += ["FeatureFlagChanged"] * 2
built
"""
)


VIEW = (
    SETUP
    + """
repo = open_repo()

def arrays_at(heavy, **ref):
    group = zarr.open_group(repo.readonly_session(**ref).store, mode="r")
    return {
        # arrays, 0-d too, so that values compare by their bytes (NaN included)
        path: np.asarray(member[...]) if heavy or path != "vmany" else member.shape
        for path, member in sorted(group.members(max_depth=None))
        if isinstance(member, zarr.Array)
    }

def groups_at(**ref):
    group = zarr.open_group(repo.readonly_session(**ref).store, mode="r")
    found = {"": dict(group.attrs)}
    for path, member in sorted(group.members(max_depth=None)):
        if isinstance(member, zarr.Group):
            found[path] = dict(member.attrs)
    return found

def history(**ref):
    return [
        (s.id, s.parent_id, s.message, s.metadata, s.written_at) for s in repo.ancestry(**ref)
    ]

def diff_fields(d):
    return {
        name: sorted(getattr(d, name)) if name != "updated_chunks" else {
            path: sorted(tuple(c) for c in coords) for path, coords in d.updated_chunks.items()
        }
        for name in (
            "new_groups", "new_arrays", "deleted_groups", "deleted_arrays",
            "updated_groups", "updated_arrays", "updated_chunks",
        )
    } | {"moved_nodes": list(d.moved_nodes)}

def reached(sid):
    try:
        return history(snapshot_id=sid)
    except Exception as e:
        return ("error", type(e).__name__, getattr(e, "kind", None) and str(e.kind))

def update_fields(u):
    kind = u.kind
    fields = {
        f: getattr(kind, f)
        for f in (
            "name", "branch", "previous_snap_id", "new_snap_id", "from_version", "to_version",
            "id", "new_value",
        )
        if hasattr(kind, f)
    }
    if hasattr(kind, "status"):
        status = kind.status
        fields["status"] = (
            str(status.availability), status.set_at, status.limited_availability_reason
        )
    return (type(kind).__name__, fields, u.updated_at, u.backup_path)

def config_fields(c):
    return {
        "inline_chunk_threshold_bytes": c.inline_chunk_threshold_bytes,
        "containers": sorted(
            (v.url_prefix, getattr(v, "name", None))
            for v in (c.virtual_chunk_containers or {}).values()
        ),
        "ops_log_window": getattr(c, "num_updates_per_repo_info_file", None),
    }

branches = sorted(repo.list_branches())
tags = sorted(repo.list_tags())
histories = {**{b: history(branch=b) for b in branches}, **{t: history(tag=t) for t in tags}}
listed = sorted({entry[0] for h in histories.values() for entry in h})
main = [entry[0] for entry in histories["main"]]
# Data where refs point (the history's steps are in the diffs), or at the snapshots given;
# the many-refs array only at main's tip (its reads dominate otherwise).
with_data = sorted(
    data_at or {repo.lookup_branch(b) for b in branches} | {repo.lookup_tag(t) for t in tags}
)
v2 = int(repo.spec_version) >= 2
diffs = [repo.diff(from_snapshot_id=old, to_snapshot_id=new) for new, old in zip(main, main[1:])]
{
    "spec_version": int(repo.spec_version),
    "branches": branches,
    "tips": {b: repo.lookup_branch(b) for b in branches},
    "tags": {t: repo.lookup_tag(t) for t in tags},
    "histories": histories,
    "listed": listed,
    "data": {sid: arrays_at(sid == main[0], snapshot_id=sid) for sid in with_data},
    "groups": {sid: groups_at(snapshot_id=sid) for sid in with_data},
    "diffs": [diff_fields(d) for d in diffs],
    # Snapshots no ref reaches: listed in `repo` on spec 2 (a migration leaves them out).
    "unreachable": {sid: reached(sid) for sid in unreachable},
    "config": config_fields(repo.config),
    "stored_config": config_fields(icechunk.Repository.fetch_config(make_storage(where))),
    # None where the implementation has no public call for it yet (the test reads its internals)
    "exists": icechunk.Repository.exists(make_storage(where)),
    "fetched_spec_version": int(icechunk.Repository.fetch_spec_version(make_storage(where))),
    "status": (
        str(repo.get_status().availability) if v2 and hasattr(repo, "get_status") else None
    ),
    "flags": (
        sorted((f.name, f.enabled, f.setting) for f in repo.feature_flags())
        if v2 and hasattr(repo, "feature_flags") else None
    ),
    "metadata": repo.get_metadata() if v2 and hasattr(repo, "get_metadata") else None,
    "ops_log": (
        [update_fields(u) for u in repo.ops_log()] if v2 and hasattr(repo, "ops_log") else None
    ),
}
"""
)


ON_TOP = (
    SETUP
    + """
repo = open_repo()
tip = repo.lookup_branch("main")
s = repo.writable_session("main")
zarr.open_array(s.store, path="i2", mode="r+")[3] = 42
# Rewrites the many-refs manifest: this implementation compresses its locations now.
s.store.set_virtual_refs("vmany", many_refs(5)[:7])
first = s.commit("on top", metadata={"by": IMPL, "when": "after"})
s = repo.writable_session("main")
zarr.open_array(s.store, path="late", mode="r+")[0, 0] = -5
zarr.open_group(s.store, mode="r+").create_group("grp/added", attributes={"by": IMPL})
amended = s.amend("amended on top", metadata={"by": IMPL, "amended": True})
repo.create_tag("after", amended)
repo.delete_branch("dev")
metadata = None
if hasattr(repo, "update_metadata"):
    metadata = repo.update_metadata({"on_top": IMPL})
{"previous_tip": tip, "first": first, "amended": amended, "metadata": metadata}
"""
)


PENDING = (
    SETUP
    + """
pending = open_repo().writable_session("main")
zarr.open_array(pending.store, path="grp/u8", mode="r+")[0] = 12345
"""
)

COMMIT_PENDING = """
pending.commit(
    "rebased over the other's work", metadata={"by": IMPL}, rebase_with=icechunk.ConflictDetector()
)
"""

REUSE_DELETED_TAG = SETUP + "open_repo().create_tag(name, target)"


def micros_to_datetime(us: int) -> dt.datetime:
    """A µs timestamp as the tz-aware UTC datetime the reference's ops log reports."""
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)
