"""Repository.ops_log on pyicechunk and icechunk 2.3.0: every kind of entry, its fields, the
chain through overwritten/, sync and async iteration, and logs written by one read by the other.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from oracle import Both, InProcess, Oracle, raises

# Every kind but GCRan and ExpirationRan (their scenarios belong to the maintenance tests), with
# snapshot ids replaced by what they are, so both implementations give the same list.
SCENARIO = """
import datetime as dt
repo = icechunk.Repository.create(make_storage(where), spec_version=2)
ids = {repo.lookup_branch("main"): "initial"}
s = repo.writable_session("main")
zarr.create_array(s.store, name="a", shape=(4,), chunks=(2,), dtype="i4")[:] = 1
ids[s.commit("c1")] = "c1"
s = repo.writable_session("main")
zarr.open_array(s.store, path="a", mode="r+")[0] = 2
ids[s.commit("c2")] = "c2"
s = repo.writable_session("main")
zarr.open_array(s.store, path="a", mode="r+")[1] = 3
ids[s.amend("c2 amended")] = "amended"
s = repo.writable_session("main")
zarr.open_array(s.store, path="a", mode="r+")[2] = 4
ids[s.flush("detached")] = "detached"
repo.create_branch("dev", repo.lookup_branch("main"))
repo.reset_branch("dev", [k for k, v in ids.items() if v == "c1"][0])
repo.delete_branch("dev")
repo.create_tag("t1", repo.lookup_branch("main"))
repo.delete_tag("t1")
repo.set_metadata({"owner": "x"})
repo.set_feature_flag("delete_tag", False)
repo.set_feature_flag("delete_tag", None)
repo.set_feature_flag("move_node", True)
when = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc)
repo.set_status(icechunk.RepoStatus(icechunk.RepoAvailability.read_only, set_at=when,
                                    limited_availability_reason='maint "now"'))
repo.set_status(icechunk.RepoStatus(icechunk.RepoAvailability.online, set_at=when))
repo.save_config()
"""

DESCRIBE = """
FIELDS = ("name", "branch", "previous_snap_id", "new_snap_id", "from_version", "to_version",
          "id", "new_value")
def describe(u):
    kind = u.kind
    fields = {f: ids.get(getattr(kind, f), getattr(kind, f)) for f in FIELDS if hasattr(kind, f)}
    if hasattr(kind, "status"):
        st = kind.status
        fields["status"] = (repr(st.availability), st.set_at, st.limited_availability_reason)
    text = re.sub("[0-9A-Z]{20}", lambda m: ids.get(m.group(0), "?"), repr(kind))
    return (type(kind).__name__, fields, text, u.backup_path, u.updated_at)
import re
log = [describe(u) for u in repo.ops_log()]
log
"""

BACKUP = re.compile(r"repo\.\d{14}\.[0-9A-Z]{20}")


def _check_times_and_backups(log: list[Any]) -> None:
    times = [entry[4] for entry in log]
    assert times == sorted(times, reverse=True) and len(set(times)) == len(times)
    assert log[0][3] is None  # the newest entry's state is the current repo
    assert all(BACKUP.fullmatch(entry[3]) for entry in log[1:])
    assert len({entry[3] for entry in log[1:]}) == len(log) - 1


def test_every_kind_of_entry_with_its_fields(both: Both, storage_spec: Callable[..., Any]) -> None:
    ours = both.ours.run(SCENARIO + DESCRIBE, where=storage_spec("local"))
    ref = both.reference.run(SCENARIO + DESCRIBE, where=storage_spec("local"))
    for log in (ours, ref):
        _check_times_and_backups(log)
    assert [entry[:3] for entry in ours] == [entry[:3] for entry in ref]
    kinds = [entry[0] for entry in ours]
    assert kinds == [
        "ConfigChanged",
        "RepoStatusChanged",
        "RepoStatusChanged",
        "FeatureFlagChanged",
        "FeatureFlagChanged",
        "FeatureFlagChanged",
        "MetadataChanged",
        "TagDeleted",
        "TagCreated",
        "BranchDeleted",
        "BranchReset",
        "BranchCreated",
        "NewDetachedSnapshot",
        "CommitAmended",
        "NewCommit",
        "NewCommit",
        "RepoInitialized",
    ]
    by_kind = {entry[0]: entry for entry in ours}  # the oldest of each kind
    assert by_kind["CommitAmended"][1] == {
        "branch": "main",
        "previous_snap_id": "c2",
        "new_snap_id": "amended",
    }
    assert by_kind["RepoStatusChanged"][2] == (
        "icechunk.ops.UpdateType.RepoStatusChanged(status=RepoStatus(availability=ReadOnly, "
        'set_at=2026-01-02T03:04:05.678Z, limited_availability_reason=Some("maint \\"now\\""))'
        ")"
    )
    assert by_kind["BranchReset"][1] == {"name": "dev", "previous_snap_id": "amended"}


def test_async_iteration_and_a_chain_through_overwritten(
    impl: InProcess | Oracle, storage_spec: Callable[..., Any]
) -> None:
    log = impl.run(
        """
import asyncio
config = icechunk.RepositoryConfig(num_updates_per_repo_info_file=3)
repo = icechunk.Repository.create(make_storage(where), config=config, spec_version=2)
sid = repo.lookup_branch("main")
for i in range(6):
    repo.create_tag(f"t{i}", sid)
async def collect():
    return [(type(u.kind).__name__, getattr(u.kind, "name", None), u.backup_path)
            async for u in repo.ops_log_async()]
(asyncio.run(collect()), [u.kind.name for u in repo.ops_log() if hasattr(u.kind, "name")])
""",
        where=storage_spec("local"),
    )
    entries, names = log
    assert [e[0] for e in entries] == ["TagCreated"] * 6 + ["RepoInitialized"]
    assert [e[1] for e in entries[:6]] == [f"t{i}" for i in reversed(range(6))]
    assert names == [f"t{i}" for i in reversed(range(6))]
    assert entries[0][2] is None
    assert all(BACKUP.fullmatch(e[2]) for e in entries[1:])


@pytest.mark.parametrize("writer", ["pyicechunk", "icechunk2"])
def test_a_log_written_by_one_reads_the_same_in_the_other(
    both: Both, storage_spec: Callable[..., Any], writer: str
) -> None:
    write, read = (both.ours, both.reference)
    if writer == "icechunk2":
        write, read = read, write
    where = storage_spec("local")
    config = "icechunk.RepositoryConfig(num_updates_per_repo_info_file=4)"
    written = write.run(
        SCENARIO.replace("spec_version=2)", f"config={config}, spec_version=2)", 1) + DESCRIBE,
        where=where,
    )
    # The reader labels the writer's snapshot ids the same way, so the lists must be equal.
    seen = read.run(
        "repo = icechunk.Repository.open(make_storage(where))\nids = dict(known)\n" + DESCRIBE,
        where=where,
        known=write.run("ids"),
    )
    assert seen == written
    _check_times_and_backups(seen)


def test_spec1_repositories_have_no_ops_log(impl: InProcess | Oracle) -> None:
    impl.run("repo = icechunk.Repository.create(make_storage({'kind': 'memory'}), spec_version=1)")
    with raises(
        "FormatError", kind="unsupported-spec-version", match="requires a repository that is at"
    ):
        impl.run("repo.ops_log()")
    with raises("FormatError", kind="unsupported-spec-version"):
        impl.run("repo.ops_log_async()")


CHAIN = """
import os
config = icechunk.RepositoryConfig(num_updates_per_repo_info_file=2)
repo = icechunk.Repository.create(make_storage(where), config=config, spec_version=2)
sid = repo.lookup_branch("main")
for i in range(4):
    repo.create_tag(f"t{i}", sid)
older = repo.inspect_repo_info()["repo_before_updates"]
"""


def test_a_deleted_backup_ends_the_log_there(
    impl: InProcess | Oracle, storage_spec: Callable[..., Any]
) -> None:
    where = storage_spec("local")
    impl.run(CHAIN, where=where)
    impl.run("os.remove(os.path.join(where['path'], 'overwritten', older))", where=where)
    names = impl.run("[u.kind.name for u in repo.ops_log()]")
    assert names == ["t3", "t2"]


def test_a_damaged_backup_is_an_error(pyic: InProcess, storage_spec: Callable[..., Any]) -> None:
    where = storage_spec("local")
    pyic.run(CHAIN, where=where)
    pyic.run(
        "open(os.path.join(where['path'], 'overwritten', older), 'wb').write(b'junk')", where=where
    )
    with raises("IcechunkError", match="overwritten/repo"):
        pyic.run("list(repo.ops_log())")
