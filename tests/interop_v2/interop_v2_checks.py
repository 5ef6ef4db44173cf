"""The checks of the matrix, shared by the four test modules (one per kind of repository).

Every test takes the module's ``scenario`` (see ``conftest.py``): the implementation the
repository belongs to (``first``) and the other one must describe it identically: branches,
tags, ancestry with ids, parents, messages, metadata and times (also of snapshots no ref
reaches), the data of every array where refs point, groups and their attributes, diffs, the
ops log, repository metadata and config. Then the other one commits (rewriting a manifest of
compressed locations), amends, tags and deletes a branch while a session of the first one is
open; that session rebases over all of it and commits; both must read everything back alike.

pyicechunk's ops log is also read through its repository state (``Spec2State.ops_log_file``)
and compared with what its public ``Repository.ops_log`` reports; where its public API lacks
a call (ops log, repository metadata), the internals stand in, so the comparison always covers
pyicechunk's readers.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from interop_v2_scenario import (
    COMMIT_PENDING,
    MANY,
    ON_TOP,
    PENDING,
    REUSE_DELETED_TAG,
    VIEW,
    VIRTUAL_FILES,
    Scenario,
    micros_to_datetime,
)
from oracle import ImplError, equal
from oracle.snippets import make_storage

import pyicechunk as ic
from pyicechunk._sync import sync
from pyicechunk.format.header import FileType, open_object
from pyicechunk.format.ids import encode_id
from pyicechunk.format.repo_info import (
    RepoAvailability,
    RepoInfo,
    RepoStatus,
    Update,
    unpack_repo_object,
)
from pyicechunk.storage import keys

ZSTD_DICTIONARY_MAGIC = b"\x37\xa4\x30\xec"
# What a migration changes or adds to a view of the spec-1 history (unreachable: a migration
# lists only the snapshots refs reach).
SPEC_2_ONLY = (
    "spec_version",
    "fetched_spec_version",
    "status",
    "flags",
    "ops_log",
    "metadata",
    "unreachable",
)

# --- what pyicechunk's internals read (until its public API has these calls) -----------------


def _backend(where: dict[str, Any]) -> Any:
    return make_storage(ic, where).backend


def _field(value: Any) -> Any:
    """A stored field of an ops-log entry as the VIEW snippet describes the reference's."""
    if isinstance(value, bytes):
        return encode_id(value)
    if isinstance(value, RepoStatus):
        availability = RepoAvailability(value.availability).name.lower()
        when = micros_to_datetime(value.set_at)
        return (f"RepoAvailability.{availability}", when, value.limited_availability_reason)
    return value


def _update_fields(update: Update) -> tuple[Any, ...]:
    """An ops-log entry as the VIEW snippet describes the reference's."""
    action = update.action
    fields = {f.name: _field(getattr(action, f.name)) for f in dataclasses.fields(action)}
    when = micros_to_datetime(update.updated_at)
    return (type(action).__name__, fields, when, update.backup_path)


def our_ops_log(where: dict[str, Any]) -> list[tuple[Any, ...]]:
    """pyicechunk's reading of the ops log, newest first, through its repository state."""
    repo = ic.Repository.open(make_storage(ic, where))

    state = repo._ctx.state

    async def collect() -> list[Update]:
        if not hasattr(state, "ops_log_file"):  # the reader before the public ops log
            return [u async for u in state.ops_log()]
        found: list[Update] = []
        entries, older = await state.ops_log_file(None)
        found.extend(entries)
        while older is not None:
            entries, older = await state.ops_log_file(older)
            found.extend(entries)
        return found

    return [_update_fields(u) for u in sync(collect())]


def _repo_info(where: dict[str, Any]) -> RepoInfo:
    return unpack_repo_object(sync(_backend(where).get(keys.REPO)))


def our_metadata(where: dict[str, Any]) -> dict[str, Any]:
    """The repository metadata as pyicechunk decodes the ``repo`` object."""
    found: dict[str, Any] = _repo_info(where).metadata_values()
    return found


def completed(view: dict[str, Any], where: dict[str, Any]) -> dict[str, Any]:
    """``view`` with what pyicechunk's public API lacks filled in from its internals."""
    if view["spec_version"] < 2:
        return view
    done = dict(view)
    if done["ops_log"] is None:
        done["ops_log"] = our_ops_log(where)
    if done["metadata"] is None:
        done["metadata"] = our_metadata(where)
    return done


def manifests(where: dict[str, Any]) -> dict[str, bool]:
    """Every manifest of the repository: whether its virtual locations are compressed with a
    zstd dictionary (FORMAT-V2 §8.2)."""
    backend = _backend(where)

    async def read() -> dict[str, bool]:
        found = {}
        for info in await backend.list(keys.MANIFESTS):
            content = open_object(await backend.get(info.key), FileType.MANIFEST, info.key).content
            # Plain, the 100 refs into part-00.bin would name it 100 times; compressed, only
            # the dictionary may hold a few copies.
            found[info.key] = (
                ZSTD_DICTIONARY_MAGIC in content and content.count(b"part-00.bin") < 10
            )
        return found

    return sync(read())


def many_values(directory: Path, offsets: list[int]) -> np.ndarray:
    """What the many-refs array holds when chunk ``i`` reads file ``i % n`` at its offset."""
    files = [(directory / f"part-{k:02d}.bin").read_bytes() for k in range(VIRTUAL_FILES)]
    return np.array(
        [files[i % VIRTUAL_FILES][(i // VIRTUAL_FILES + offsets[i]) % 128] for i in range(MANY)],
        dtype="u1",
    )


def assert_same(found: Any, expected: Any, where: str = "view") -> None:
    """Deep equality with the first differing place in the message (views are large)."""
    if isinstance(found, dict) and isinstance(expected, dict):
        assert sorted(found, key=repr) == sorted(expected, key=repr), f"{where}: keys differ"
        for key in expected:
            assert_same(found[key], expected[key], f"{where}[{key!r}]")
        return
    if isinstance(found, list | tuple) and isinstance(expected, list | tuple):
        assert type(found) is type(expected), f"{where}: {type(found)} != {type(expected)}"
        assert len(found) == len(expected), f"{where}: length {len(found)} != {len(expected)}"
        for i, (a, b) in enumerate(zip(found, expected, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
        return
    assert equal(found, expected), f"{where}: {found!r} != {expected!r}"


def _kinds(log: list[tuple[Any, ...]]) -> list[str]:
    return [entry[0] for entry in log]


def _views(scenario: Scenario, data_at: list[str] | None = None) -> tuple[Any, Any]:
    """What the first and the other implementation see; data where refs point or at ``data_at``."""
    if data_at is None and scenario.storage == "s3":
        # Reads on S3 cost the most: main's tip and the resize there, every ref on local.
        data_at = [scenario.built["main"][-1], scenario.built["main"][2]]
    first = completed(scenario.run(scenario.first, VIEW, data_at=data_at), scenario.where)
    other = completed(scenario.run(scenario.other, VIEW, data_at=data_at), scenario.where)
    return first, other


# --- the tests --------------------------------------------------------------------------------


def test_the_other_implementation_sees_the_same(scenario: Scenario) -> None:
    first, other = _views(scenario)
    assert_same(other, first)
    # pyicechunk's own reader of the ops log agrees with what its public call reports.
    assert_same(our_ops_log(scenario.where), first["ops_log"], "the ops log read by the state")
    built = scenario.built
    assert first["spec_version"] == first["fetched_spec_version"] == 2 and first["exists"]
    assert first["tips"] == built["branches"]
    assert first["tags"] == built["tags"]
    main_history = first["histories"]["main"]
    assert [e[0] for e in main_history][:-1] == built["main"][::-1]
    assert main_history[-2][2:4] == ("create hierarchy", {"step": 1, "who": "A", "f": 0.25})
    assert main_history[-1][1] is None
    assert not set(built["unreachable"]) & set(first["listed"])
    for sid, found in first["unreachable"].items():
        if scenario.kind.migrator is None:
            assert found[0][0] == sid, found
        else:
            assert found[0] == "error", found
    assert first["config"] == first["stored_config"]
    assert first["config"]["inline_chunk_threshold_bytes"] == 64
    assert len(first["config"]["containers"]) == (1 if scenario.storage == "local" else 2)
    tip = first["data"][built["main"][-1]]
    np.testing.assert_array_equal(
        tip["vmany"], many_values(Path(scenario.params["vdir"]), [0] * MANY)
    )
    assert len(first["diffs"]) == len(built["main"])
    # Spec-2 writers compress the locations of the 1024 refs; a migrated history keeps its
    # spec-1 manifests, which never are.
    compressed = [key for key, yes in manifests(scenario.where).items() if yes]
    assert len(compressed) == (0 if scenario.kind.migrator else 1)
    # Neither implementation lets a deleted tag's name be used again.
    name, target = built["deleted_tag"]
    with pytest.raises(ImplError) as caught:
        scenario.run(scenario.other, REUSE_DELETED_TAG, name=name, target=target)
    assert caught.value.kind == "tag-previously-deleted", caught.value.summary
    if scenario.kind.migrator is not None:
        assert scenario.before is not None
        for name, seen in scenario.before.items():
            if name in SPEC_2_ONLY:
                continue
            now = first[name]
            if name in ("data", "groups"):  # read at main's tip only
                now = {sid: now[sid] for sid in seen}
            assert_same(now, seen, f"before the migration[{name!r}]")
        assert _kinds(first["ops_log"])[0] == "RepoMigrated"
        assert first["metadata"] == built["metadata"] == {}
    else:
        assert first["metadata"] == built["metadata"]
        assert _kinds(first["ops_log"])[-1] == "RepoInitialized"
        # Every change the history made, in order: the snapshots no ref reaches included.
        assert _kinds(first["ops_log"])[::-1] == built["ops"]
        # ... most of them in the chain of older files (the config keeps 4 entries in `repo`).
        info = _repo_info(scenario.where)
        assert info.repo_before_updates is not None and len(info.latest_updates) <= 5


def test_work_on_top_reads_back(scenario: Scenario) -> None:
    first_impl = scenario.first
    # A session of the first implementation, open while the other one works; it rebases
    # over that work (reading the other's transaction logs) when it commits.
    scenario.run(first_impl, PENDING)
    before = manifests(scenario.where)
    done = scenario.run(scenario.other, ON_TOP)
    new = {key: yes for key, yes in manifests(scenario.where).items() if key not in before}
    # The commit rewrote the many-refs manifest: the other implementation compressed it.
    assert sorted(new.values()).count(True) == 1, new
    rebased = scenario.run(first_impl, COMMIT_PENDING)

    first, other = _views(scenario, [rebased, done["amended"]])
    assert_same(first, other)
    by = scenario.kind.other
    assert sorted(first["branches"]) == sorted(set(scenario.built["branches"]) - {"dev"})
    assert first["tags"]["after"] == done["amended"]
    assert first["tips"]["main"] == rebased
    main_history = first["histories"]["main"]
    assert main_history[0][:4] == (
        rebased,
        done["amended"],
        "rebased over the other's work",
        # 2.x records the rebases a commit with a solver took (FORMAT-V2 §6.2)
        {"by": scenario.kind.first, "__icechunk": {"rebase_attempts": 1}},
    )
    assert main_history[1][:4] == (
        done["amended"],
        done["previous_tip"],
        "amended on top",
        {"by": by, "amended": True},
    )
    assert done["first"] not in first["listed"]
    assert main_history[2][0] == done["previous_tip"] == scenario.built["main"][-1]
    for sid in (rebased, done["amended"]):
        data = first["data"][sid]
        assert data["i2"][3] == 42 and data["late"][0, 0] == -5
        assert first["groups"][sid]["grp/added"] == {"by": by}
    u8 = first["data"][rebased]["grp/u8"], first["data"][done["amended"]]["grp/u8"]
    assert u8[0][0] == 12345 != u8[1][0]
    offsets = [5] * 7 + [0] * (MANY - 7)
    np.testing.assert_array_equal(
        first["data"][rebased]["vmany"], many_values(Path(scenario.params["vdir"]), offsets)
    )
    log = first["ops_log"]
    ours = [k for k in _kinds(log) if k != "MetadataChanged"][:5]
    assert ours == ["NewCommit", "BranchDeleted", "TagCreated", "CommitAmended", "NewCommit"]
    assert log[0][1] == {"branch": "main", "new_snap_id": rebased}
    assert log[_kinds(log).index("CommitAmended")][1] == {
        "branch": "main",
        "previous_snap_id": done["first"],
        "new_snap_id": done["amended"],
    }
    expected_metadata = dict(scenario.built["metadata"])
    if done["metadata"] is not None:  # the other implementation has update_metadata
        expected_metadata["on_top"] = by
        assert done["metadata"] == expected_metadata
    assert first["metadata"] == expected_metadata
    times = [entry[2] for entry in log]
    assert times == sorted(times, reverse=True) and len(set(times)) == len(times)
