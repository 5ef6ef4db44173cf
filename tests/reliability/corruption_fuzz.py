"""Corruption fuzz: damage one metadata object of a repository, then use the repository.

A small repository (spec 1, or spec 2 with ``--spec 2``) is written by pyicechunk on the local
filesystem: two branches, two tags and a deleted tag, a group with attributes, arrays with
inline chunks (zarr's default codecs) and with native chunks (uncompressed), a nested 2-d array
and a deletion. Each iteration copies it, damages ONE metadata object (a snapshot, manifest,
transaction log, ref file, tag tombstone or ``config.yaml``; on spec 2 ``repo`` or one of its
``overwritten/`` copies instead of the refs and the config) in one of these ways::

    bitflip     1 to 3 random bits flipped
    truncate    cut to a random length
    zero        a random range overwritten with zero bytes
    append      1 to 64 random bytes appended
    swap-same   replaced by the bytes of another object of the same kind
    swap-other  replaced by the bytes of an object of another kind

and then opens the repository, lists branches and tags, walks every ref's ancestry, reads
every key of the store and every array through zarr at every ref, diffs each commit against
its parent, reads the ops log (spec 2) and commits to ``main`` (reading the commit back). Each
step must give the correct result or raise an IcechunkError, and nothing before the commit may
change a file. Correct means equal to what the undamaged repository gives for the same
snapshot id: a damaged ref file may point a ref at another snapshot (a ref has no content of
its own to check), but whatever is read at a snapshot id must be that snapshot's data. On spec
2, swapping ``repo`` for one of its copies (``swap-same``) is going back to that earlier state,
whose refs and ops log are then the correct ones. Anything else is a bug: another exception
type, different data without an error, or a step that does not finish (a watchdog ends the
process and names the case). The spec-2 repository keeps 4 ops-log entries per file, so the
log is a chain through ``overwritten/`` and its copies are read.

One kind of wrong result is counted apart, as ``silent``: the damaged object still
decompresses, to different content that breaks no rule a reader can check (a flipped byte of
an inline chunk or of a commit message). The objects carry no content checksum, so no reader
can notice such damage; a checksum in the zstd frame would. ``PYICECHUNK_FUZZ_STRICT=1``
makes those failures too.

Run it directly for long campaigns; it prints a JSON report (counts per damage class and
outcome, and the first bugs with the seed and iteration that reproduce them)::

    python tests/reliability/corruption_fuzz.py --iterations 5000 --seed 7
    python tests/reliability/corruption_fuzz.py --iterations 5000 --seed 7 --spec 2
    python tests/reliability/corruption_fuzz.py --seed 7 --only 1234   # replay one case
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import faulthandler
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
import zstandard
from zarr.core.buffer import default_buffer_prototype

import pyicechunk as icechunk
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.header import HEADER_SIZE, MAGIC

DAMAGES = ("bitflip", "truncate", "zero", "append", "swap-same", "swap-other")
STEP_SECONDS = 60.0
PROTO = default_buffer_prototype()
SMALL = np.arange(6, dtype="i4")
BIG = np.arange(4 * 300, dtype="f8").reshape(4, 300)
NESTED = np.arange(9, dtype="i2").reshape(3, 3)
# Ops-log entries per file on spec 2: small, so that the log chains through several copies.
OPS_LOG_WINDOW = 4


# -- the repository ----------------------------------------------------------------------------


def build(path: Path, spec: int) -> None:
    """Write the pristine repository."""
    window = OPS_LOG_WINDOW if spec == 2 else None
    config = icechunk.RepositoryConfig(
        inline_chunk_threshold_bytes=512, num_updates_per_repo_info_file=window
    )
    storage = icechunk.local_filesystem_storage(str(path))
    repo = icechunk.Repository.create(storage, config, spec_version=spec)
    session = repo.writable_session("main")
    root = zarr.group(session.store, attributes={"title": "fuzz"})
    root.create_array("small", shape=(6,), chunks=(2,), dtype="i4")[:] = SMALL
    root.create_array("big", shape=(4, 300), chunks=(1, 300), dtype="f8", compressors=None)[:] = BIG
    c1 = session.commit("c1: small (inline) and big (native)")
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="big", mode="r+")[0] = -1.0
    group = zarr.open_group(session.store, mode="r+").create_group("g", attributes={"k": [1]})
    group.create_array("z", shape=(3, 3), chunks=(2, 2), dtype="i2")[:] = NESTED
    c2 = session.commit("c2: big row 0, nested /g/z")
    session = repo.writable_session("main")
    zarr.open_group(session.store, mode="r+").__delitem__("small")
    session.commit("c3: delete small")
    repo.create_branch("dev", c1)
    session = repo.writable_session("dev")
    zarr.open_array(session.store, path="small", mode="r+")[4:6] = [40, 50]
    d1 = session.commit("d1: small on dev")
    repo.create_tag("v1", c1)
    repo.create_tag("v2", c2)
    repo.create_tag("gone", d1)
    repo.delete_tag("gone")


@dataclass
class Oracle:
    """What the undamaged repository gives, by ref and by snapshot id."""

    branches: dict[str, str]
    tags: dict[str, str]
    parents: dict[str, str | None]
    messages: dict[str, str]
    keys: dict[str, dict[str, bytes]]
    arrays: dict[str, dict[str, np.ndarray]]
    attributes: dict[str, dict[str, dict[str, Any]]]
    diffs: dict[tuple[str, str], Any]
    ops_log: list[str] | None  # spec 2: the entries' reprs, newest first
    earlier: dict[bytes, Refs]  # spec 2: each overwritten/ copy's bytes -> the refs it holds


@dataclass(frozen=True)
class Refs:
    """What a state of the refs gives: branch and tag names, and the ops log (spec 2)."""

    branches: frozenset[str]
    tags: frozenset[str]
    ops_log: tuple[str, ...] | None
    # False: a chained copy was swapped for another one, which no reader can tell from the
    # history when it is older (nothing ties a chain file's name to its content, as nothing
    # ties a spec-1 ref file to its target); the log must then be the known entries, in
    # order, with gaps.
    exact_log: bool = True


def read_store(store: Any) -> dict[str, bytes]:
    async def go() -> dict[str, bytes]:
        keys = [k async for k in store.list()]
        values = await asyncio.gather(*(store.get(k, PROTO) for k in keys))
        missing = [k for k, v in zip(keys, values, strict=True) if v is None]
        expect(not missing, f"listed keys {missing[:5]} cannot be read")
        return {k: v.to_bytes() for k, v in zip(keys, values, strict=True)}

    result: dict[str, bytes] = zarr.core.sync.sync(go())
    return result


def read_arrays(store: Any) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    if not zarr.core.sync.sync(store.exists("zarr.json")):
        return {}, {}  # the initial snapshot: not even a root group
    root = zarr.open_group(store, mode="r")
    arrays: dict[str, np.ndarray] = {}
    attributes: dict[str, dict[str, Any]] = {"/": dict(root.attrs)}
    for name, member in root.members(max_depth=None):
        if isinstance(member, zarr.Array):
            arrays[name] = member[...]
        else:
            attributes[name] = dict(member.attrs)
    return arrays, attributes


def read_ops_log(repo: Any) -> list[str] | None:
    if repo.spec_version < 2:
        return None
    return [repr(update) for update in repo.ops_log()]


def refs_of(repo: Any) -> Refs:
    ops_log = read_ops_log(repo)
    return Refs(
        frozenset(repo.list_branches()),
        frozenset(repo.list_tags()),
        None if ops_log is None else tuple(ops_log),
    )


def earlier_states(path: Path, workdir: Path) -> dict[bytes, Refs]:
    """Spec 2: what each copy in ``overwritten/`` gives when it is put in place of ``repo``."""
    out: dict[bytes, Refs] = {}
    copies = path / "overwritten"
    for name in sorted(os.listdir(copies)) if copies.is_dir() else ():
        trial = workdir / "earlier"
        shutil.copytree(path, trial)
        shutil.copyfile(copies / name, trial / "repo")
        out[(copies / name).read_bytes()] = refs_of(
            icechunk.Repository.open(icechunk.local_filesystem_storage(str(trial)))
        )
        shutil.rmtree(trial)
    return out


def make_oracle(path: Path, workdir: Path) -> Oracle:
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))
    branches = {b: repo.lookup_branch(b) for b in repo.list_branches()}
    tags = {t: repo.lookup_tag(t) for t in repo.list_tags()}
    parents: dict[str, str | None] = {}
    messages: dict[str, str] = {}
    for tip in (*branches.values(), *tags.values()):
        for info in repo.ancestry(snapshot_id=tip):
            parents[info.id] = info.parent_id
            messages[info.id] = info.message
    keys, arrays, attributes = {}, {}, {}
    for sid in parents:
        store = repo.readonly_session(snapshot_id=sid).store
        keys[sid] = read_store(store)
        arrays[sid], attributes[sid] = read_arrays(store)
    diffs = {
        (parent, child): repo.diff(from_snapshot_id=parent, to_snapshot_id=child)
        for child, parent in parents.items()
        if parent is not None
    }
    oracle = Oracle(
        branches,
        tags,
        parents,
        messages,
        keys,
        arrays,
        attributes,
        diffs,
        read_ops_log(repo),
        earlier_states(path, workdir),
    )
    # The oracle itself is checked against what was written.
    c3 = branches["main"]
    assert set(arrays[c3]) == {"big", "g/z"} and arrays[c3]["big"][0, 0] == -1.0
    np.testing.assert_array_equal(arrays[branches["dev"]]["small"], [0, 1, 2, 3, 40, 50])
    np.testing.assert_array_equal(arrays[tags["v1"]]["big"], BIG)
    np.testing.assert_array_equal(arrays[tags["v2"]]["g/z"], NESTED)
    assert set(tags) == {"v1", "v2"}
    return oracle


def metadata_objects(path: Path, spec: int) -> dict[str, list[str]]:
    """Metadata object keys by kind."""
    kinds: dict[str, list[str]] = collections.defaultdict(list)
    for prefix, kind in (
        ("snapshots", "snapshot"),
        ("manifests", "manifest"),
        ("transactions", "transaction"),
    ):
        kinds[kind] = sorted(f"{prefix}/{name}" for name in os.listdir(path / prefix))
    if spec == 2:
        kinds["repo"] = ["repo"]
        kinds["backup"] = sorted(f"overwritten/{n}" for n in os.listdir(path / "overwritten"))
        return dict(kinds)
    for ref in sorted(os.listdir(path / "refs")):
        for name in sorted(os.listdir(path / "refs" / ref)):
            kinds["tombstone" if name.endswith(".deleted") else "ref"].append(f"refs/{ref}/{name}")
    kinds["config"] = ["config.yaml"]
    return dict(kinds)


# -- damage ------------------------------------------------------------------------------------


def damage(
    rng: random.Random, kind: str, key: str, objects: dict[str, list[str]], path: Path
) -> bytes:
    data = (path / key).read_bytes()
    if kind == "bitflip":
        if not data:
            return b"\x01"
        out = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        return bytes(out)
    if kind == "truncate":
        return data[: rng.randrange(len(data))] if data else data
    if kind == "zero":
        if not data:
            return b"\x00"
        start = rng.randrange(len(data))
        end = rng.randint(start + 1, min(len(data), start + rng.choice((1, 8, 64, len(data)))))
        return data[:start] + bytes(end - start) + data[end:]
    if kind == "append":
        return data + rng.randbytes(rng.randint(1, 64))
    own = next(k for k, keys in objects.items() if key in keys)
    # On spec 2, repo and its copies are one kind of object: a copy over repo is the swapped
    # backup case, repo or another copy over a chained copy a chain file of another state.
    family = ("repo", "backup") if own in ("repo", "backup") else (own,)
    if kind == "swap-same":
        pool = [k for f in family for k in objects[f] if k != key]
    else:
        pool = [k for kind_, keys in objects.items() if kind_ not in family for k in keys]
    if not pool:
        return data
    return (path / rng.choice(pool)).read_bytes()


def survives_zstd(original: bytes, damaged: bytes) -> bool:
    """Whether the damage passed through zstd: the body still decompresses, to other bytes.

    The format's objects carry no content checksum, so such damage can only be noticed where
    it breaks a rule of the content; a checksum in the zstd frame would reject all of it.
    """
    if len(original) <= HEADER_SIZE or len(damaged) <= HEADER_SIZE:
        return False
    if original[: len(MAGIC)] != MAGIC:
        return False

    def body(data: bytes) -> bytes | None:
        try:
            frame = zstandard.ZstdDecompressor().decompressobj()
            out = frame.decompress(data[HEADER_SIZE:])
            return out if frame.eof and not frame.unused_data else None
        except zstandard.ZstdError:
            return None

    before, after = body(original), body(damaged)
    return before is not None and after is not None and before != after


# -- checking ----------------------------------------------------------------------------------


class Bug(Exception):
    """A step gave a wrong result without an IcechunkError."""


@dataclass
class Outcome:
    errors: list[str] = field(default_factory=list)
    bugs: list[str] = field(default_factory=list)


def step(outcome: Outcome, name: str, fn: Callable[[], Any]) -> Any:
    """Run one step; an IcechunkError is a detection, anything else but success a bug."""
    try:
        return fn()
    except IcechunkError as e:
        outcome.errors.append(f"{name}: {e.message[:160]}")
    except Bug as e:
        outcome.bugs.append(f"{name}: wrong result without an error: {e}")
    except Exception as e:
        outcome.bugs.append(
            f"{name}: {type(e).__name__}: {e!s:.300}\n{traceback.format_exc(limit=-6)}"
        )
    return None


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise Bug(what)


def same_arrays(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> bool:
    return set(got) == set(want) and all(np.array_equal(got[k], want[k]) for k in want)


def check_snapshot(repo: Any, oracle: Oracle, sid: str, outcome: Outcome) -> None:
    """Read everything at one snapshot id (unknown ids must fail)."""
    known = sid in oracle.keys

    def session() -> Any:
        s = repo.readonly_session(snapshot_id=sid)
        expect(known, f"opened unknown snapshot {sid}")
        return s

    opened = step(outcome, f"session {sid}", session)
    if opened is None:
        return
    store = opened.store

    def keys() -> None:
        got = read_store(store)
        want = oracle.keys[sid]
        expect(set(got) == set(want), f"keys at {sid}: {sorted(set(got) ^ set(want))[:5]}")
        bad = [k for k in want if got[k] != want[k]]
        expect(not bad, f"bytes of {bad[:5]} at {sid} differ")

    def arrays() -> None:
        got, attributes = read_arrays(store)
        expect(same_arrays(got, oracle.arrays[sid]), f"array data at {sid} differ")
        expect(attributes == oracle.attributes[sid], f"attributes at {sid} differ")

    step(outcome, f"keys {sid}", keys)
    step(outcome, f"arrays {sid}", arrays)


def check_ref(repo: Any, oracle: Oracle, kind: str, name: str, outcome: Outcome) -> str | None:
    def lookup() -> str:
        return repo.lookup_branch(name) if kind == "branch" else repo.lookup_tag(name)

    target = step(outcome, f"lookup {kind} {name}", lookup)
    if target is None:
        return None

    def ancestry() -> None:
        chain = [(i.id, i.parent_id, i.message) for i in repo.ancestry(snapshot_id=target)]
        expect(all(i in oracle.parents for i, _, _ in chain), f"ancestry of {target}: unknown")
        expect(chain[-1][1] is None, "ancestry does not end at a root")
        for sid, parent, message in chain:
            expect(oracle.parents[sid] == parent, f"parent of {sid}")
            expect(oracle.messages[sid] == message, f"message of {sid}")

    step(outcome, f"ancestry {name}", ancestry)
    return str(target)


def check_commit(repo: Any, oracle: Oracle, outcome: Outcome) -> None:
    def commit() -> None:
        session = repo.writable_session("main")
        base = session.snapshot_id
        expect(base in oracle.arrays, f"main is at unknown snapshot {base}")
        if "big" not in oracle.arrays[base]:
            return  # main at the initial snapshot (an earlier repo on spec 2): nothing to edit
        zarr.open_array(session.store, path="big", mode="r+")[3] = 7.0
        new = session.commit("fuzz commit")
        want = dict(oracle.arrays[base])
        want["big"] = want["big"].copy()
        want["big"][3] = 7.0
        got, attributes = read_arrays(repo.readonly_session(snapshot_id=new).store)
        expect(same_arrays(got, want), "data after the commit differ")
        expect(attributes == oracle.attributes[base], "attributes after the commit differ")
        expect(repo.lookup_branch("main") == new, "main did not move to the new commit")

    step(outcome, "commit", commit)


def files(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def exercise(path: Path, oracle: Oracle, refs: Refs) -> Outcome:
    """Use the damaged copy at ``path``; ``refs`` is what its refs should give."""
    outcome = Outcome()
    before = files(path)
    repo = step(
        outcome,
        "open",
        lambda: icechunk.Repository.open(icechunk.local_filesystem_storage(str(path))),
    )
    if repo is None:
        return outcome

    def branches() -> set[str]:
        got = repo.list_branches()
        expect(got == refs.branches, f"branches {sorted(got)}")
        return set(got)

    def tags() -> set[str]:
        got = repo.list_tags()
        expect(got == refs.tags, f"tags {sorted(got)}")
        return set(got)

    def ops_log() -> None:
        got = read_ops_log(repo)
        want = None if refs.ops_log is None else list(refs.ops_log)
        if refs.exact_log or got is None or want is None:
            expect(got == want, "ops log differs")
            return
        # The newest entry of a chain file names the file: compare without backup paths.
        known = iter(entry.split("backup_path")[0] for entry in want)
        expect(
            all(entry.split("backup_path")[0] in known for entry in got),
            "ops log holds unknown entries or is out of order",
        )

    listed = [("branch", b) for b in step(outcome, "list branches", branches) or ()]
    listed += [("tag", t) for t in step(outcome, "list tags", tags) or ()]
    targets = {check_ref(repo, oracle, kind, name, outcome) for kind, name in listed}
    for sid in sorted(t for t in targets if t is not None):
        check_snapshot(repo, oracle, sid, outcome)
    for (parent, child), want in oracle.diffs.items():

        def diff(parent: str = parent, child: str = child, want: Any = want) -> None:
            got = repo.diff(from_snapshot_id=parent, to_snapshot_id=child)
            expect(got == want, f"diff {parent}..{child}: {got!r}")

        step(outcome, f"diff {parent}..{child}", diff)
    step(outcome, "ops log", ops_log)

    def unchanged() -> None:
        changed = sorted(
            set(before) ^ set(after) | {k for k in before if before[k] != after.get(k)}
        )
        expect(not changed, f"reading changed {changed[:5]}")

    after = files(path)
    step(outcome, "reads change nothing", unchanged)
    check_commit(repo, oracle, outcome)
    return outcome


# -- the campaign ------------------------------------------------------------------------------


class Watchdog:
    """Ends the process, naming the case, if one step runs longer than allowed."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._case = ""
        self._deadline = float("inf")
        self._lock = threading.Lock()
        threading.Thread(target=self._watch, daemon=True).start()

    def arm(self, case: str) -> None:
        with self._lock:
            self._case, self._deadline = case, time.monotonic() + self._seconds

    def disarm(self) -> None:
        with self._lock:
            self._deadline = float("inf")

    def _watch(self) -> None:
        while True:
            time.sleep(0.5)
            with self._lock:
                late = time.monotonic() > self._deadline
                case = self._case
            if late:
                print(json.dumps({"hang": case}), flush=True)
                faulthandler.dump_traceback(all_threads=True)
                os._exit(3)


def run(
    seed: int, iterations: int, workdir: Path, only: int | None, max_bugs: int, spec: int = 1
) -> dict:
    pristine = workdir / "pristine"
    build(pristine, spec)
    oracle = make_oracle(pristine, workdir)
    objects = metadata_objects(pristine, spec)
    current = Refs(
        frozenset(oracle.branches),
        frozenset(oracle.tags),
        None if oracle.ops_log is None else tuple(oracle.ops_log),
    )
    every = [(kind, key) for kind, keys in objects.items() for key in keys]
    counts: dict[str, collections.Counter[str]] = {d: collections.Counter() for d in DAMAGES}
    by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    bugs: list[dict[str, Any]] = []
    silent: list[dict[str, Any]] = []
    watchdog = Watchdog(STEP_SECONDS)
    cases = [only] if only is not None else range(iterations)
    for i in cases:
        rng = random.Random(f"{seed}:{i}")
        damage_kind = DAMAGES[i % len(DAMAGES)]
        if spec == 2:
            # repo is one object among many copies: pick the kind first, so it gets its share
            object_kind = rng.choice(sorted(objects))
            key = rng.choice(objects[object_kind])
        else:
            object_kind, key = rng.choice(every)
        copy = workdir / f"case-{i}"
        shutil.copytree(pristine, copy)
        damaged = damage(rng, damage_kind, key, objects, copy)
        silent_ok = survives_zstd((copy / key).read_bytes(), damaged)
        (copy / key).write_bytes(damaged)
        case = f"seed {seed} iteration {i}: {damage_kind} of {key}"
        watchdog.arm(case)
        want = oracle.earlier.get(damaged, current) if key == "repo" else current
        if damage_kind == "swap-same" and key.startswith("overwritten/"):
            want = dataclasses.replace(want, exact_log=False)
        outcome = exercise(copy, oracle, want)
        watchdog.disarm()
        shutil.rmtree(copy)
        if outcome.bugs:
            result = "silent" if silent_ok else "bug"
        else:
            result = "detected" if outcome.errors else "correct"
        counts[damage_kind][result] += 1
        by_kind[object_kind][result] += 1
        found = bugs if result == "bug" else silent
        if outcome.bugs and len(found) < max_bugs:
            found.append({"case": case, "bugs": outcome.bugs[:3]})
    return {
        "seed": seed,
        "spec": spec,
        "iterations": len(cases),
        "objects": {k: len(v) for k, v in objects.items()},
        "by_damage": {k: dict(v) for k, v in counts.items()},
        "by_object": {k: dict(v) for k, v in sorted(by_kind.items())},
        "bugs": bugs,
        "silent": silent,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", type=int, help="replay a single iteration")
    parser.add_argument("--workdir", type=Path, help="where the copies go (default: a temp dir)")
    parser.add_argument("--max-bugs", type=int, default=20, help="bugs to describe in full")
    parser.add_argument("--spec", type=int, choices=(1, 2), default=1, help="format version")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        report = run(args.seed, args.iterations, Path(tmp), args.only, args.max_bugs, args.spec)
    print(json.dumps(report, indent=1))
    strict = os.environ.get("PYICECHUNK_FUZZ_STRICT") == "1"
    return 1 if report["bugs"] or (strict and report["silent"]) else 0


if __name__ == "__main__":
    sys.exit(main())
