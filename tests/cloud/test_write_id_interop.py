"""Write ids (lost-response recovery, FORMAT-V2 §14) shared with icechunk 2.3.0.

Both implementations stamp every conditional write with a write id and, when a conditional
write fails its precondition or loses its response, read the stamp back: their own id means the
write landed, anything else means it did not. On a repository both write to, each must read the
other's stamps as "not mine", and a lost response to either's write must still count as a
success. What 2.3.0 does was watched on the wire: on S3 it sends the user metadata
``x-amz-meta-icechunkwriteid: <UUID4, lower-case hyphenated>`` on every conditional PUT
(``refs/*/ref.json`` and ``config.yaml`` on spec 1, ``repo`` on spec 2; its ``overwritten/``
copies keep the stamp of the ``repo`` they copied) and nothing on unconditional ones; on a local
filesystem it stamps nothing (with ``unsafe_use_metadata`` on, its local storage refuses every
write). These tests run 2.3.0 (the ``ic2`` oracle) and pyicechunk on one moto bucket, and on
one local directory, on spec 1 and spec 2. A proxy in front of the S3 server loses responses,
records read-backs (HEAD requests) and lets the other implementation write at the moment a
conditional write is on its way, so that it fails its precondition against the other's stamp.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import zarr
from _failing_proxy import Action, FailingProxy, Rule
from oracle import Oracle, raises

import pyicechunk
from pyicechunk.config import StorageRetriesSettings, StorageSettings
from pyicechunk.storage import Storage, local_filesystem_storage, s3_storage

SPECS = pytest.mark.parametrize("spec", [1, 2], ids=["spec1", "spec2"])
# (proxy action, our tries): resent after a gateway's 503, or a connection cut and no resend
SHAPES = pytest.mark.parametrize(
    ("action", "tries"), [("lose", 3), ("drop", 1)], ids=["gateway-timeout", "connection-cut"]
)
WRITE_ID = "icechunkwriteid"
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")

# icechunk 2.3.0 on a location: stamps on, quick retries, both repositories kept in the namespace
REFERENCE_SETUP = """
cfg = icechunk.RepositoryConfig(storage=icechunk.StorageSettings(
    unsafe_use_metadata=True,
    retries=icechunk.StorageRetriesSettings(max_tries=3, initial_backoff_ms=10, max_backoff_ms=20),
))
def open_direct():
    return icechunk.Repository.open(make_storage(where), config=cfg)
def open_proxied():
    return icechunk.Repository.open(make_storage(proxied), config=cfg)
def commit(repo, value, message):
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[:] = value
    return session.commit(message)
"""
REFERENCE_CREATE = """
repo = icechunk.Repository.create(make_storage(where), config=cfg, spec_version=spec)
session = repo.writable_session("main")
zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i8")
base = session.commit("base")
base
"""


def _statuses(rule: Rule) -> list[int]:
    """The HTTP status codes the server answered the requests ``rule`` matched with."""
    return [int(answer.split()[1]) for answer in rule.answers]


def conditional_key(spec: int, ref: str) -> str:
    """The object a conditional write of ``ref`` (``branch.main``, ``tag.v1``) replaces."""
    return f"refs/{ref}/ref.json" if spec == 1 else "repo"


@pytest.fixture
def s3_proxy(s3_server: Any) -> Iterator[FailingProxy]:
    proxy = FailingProxy(urlparse(s3_server.endpoint_url).port or 80)
    yield proxy
    proxy.close()


class Shared:
    """One S3 prefix that pyicechunk and icechunk 2.3.0 both write, directly and via a proxy."""

    def __init__(
        self, s3_server: Any, bucket: str, proxy: FailingProxy, ic2: Oracle, spec: int
    ) -> None:
        self.server = s3_server
        self.bucket = bucket
        self.proxy = proxy
        self.ic2 = ic2
        self.spec = spec
        self.prefix = f"shared{spec}"
        proxied = f"http://127.0.0.1:{proxy.port}"
        ic2.run(
            REFERENCE_SETUP, where=self._spec(s3_server.endpoint_url), proxied=self._spec(proxied)
        )
        self.direct = self._storage(s3_server.endpoint_url)
        self.through_proxy = self._storage(proxied)

    def _spec(self, endpoint: str) -> dict[str, Any]:
        server = self.server
        return {
            "kind": "s3",
            "bucket": self.bucket,
            "prefix": self.prefix,
            "endpoint_url": endpoint,
            "region": server.region,
            "access_key_id": server.access_key_id,
            "secret_access_key": server.secret_access_key,
        }

    def _storage(self, endpoint: str) -> Storage:
        server = self.server
        return s3_storage(
            bucket=self.bucket,
            prefix=self.prefix,
            endpoint_url=endpoint,
            allow_http=True,
            force_path_style=True,
            access_key_id=server.access_key_id,
            secret_access_key=server.secret_access_key,
            region=server.region,
        )

    def path(self, ref: str) -> str:
        """The request path of ``ref``'s conditional write, for proxy rules."""
        return f"/{self.bucket}/{self.prefix}/{conditional_key(self.spec, ref)}"

    def rule(
        self,
        method: str,
        ref: str,
        action: Action,
        count: int = 1,
        before: Callable[[], object] | None = None,
    ) -> Rule:
        """A proxy rule on ``ref``'s conditional object (see :class:`Rule`)."""
        rule = Rule(method, self.path(ref), count, action, before)
        self.proxy.rules.append(rule)
        return rule

    def metadata(self, key: str) -> dict[str, str]:
        head = self.server.client().head_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")
        found: dict[str, str] = head["Metadata"]
        return found

    def etag(self, key: str) -> str:
        head = self.server.client().head_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")
        tag: str = head["ETag"]
        return tag

    def open(self, *, proxied: bool, tries: int = 3) -> pyicechunk.Repository:
        retries = StorageRetriesSettings(max_tries=tries, initial_backoff_ms=10, max_backoff_ms=20)
        config = pyicechunk.RepositoryConfig(storage=StorageSettings(retries=retries))
        storage = self.through_proxy if proxied else self.direct
        return pyicechunk.Repository.open(storage, config=config)


def _commit(repo: pyicechunk.Repository, value: int, message: str) -> str:
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[:] = value
    return session.commit(message)


def _create(storage: Storage, spec: int) -> str:
    """A new pyicechunk repository of ``spec`` with one commit (``base``) of array ``a``."""
    repo = pyicechunk.Repository.create(storage, spec_version=spec)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i8")
    return session.commit("base")


@pytest.fixture
def shared(request: pytest.FixtureRequest, ic2: Oracle, s3_proxy: FailingProxy) -> Shared:
    return Shared(
        request.getfixturevalue("s3_server"),
        request.getfixturevalue("s3_bucket"),
        s3_proxy,
        ic2,
        request.node.callspec.params["spec"],
    )


@SPECS
def test_both_stamp_the_same_key_and_value_format(shared: Shared, spec: int) -> None:
    """2.3.0's stamps and ours: one key, ``icechunkwriteid``, a fresh UUID4 per write, only on
    conditionally written objects; our read-back reads 2.3.0's stamp as stored."""
    base = shared.ic2.run(REFERENCE_CREATE, spec=spec)
    shared.ic2.run("repo.create_tag('v1', base)")
    backend = shared.direct.backend
    conditional = {conditional_key(spec, "branch.main"), conditional_key(spec, "tag.v1")}
    if spec == 1:
        conditional.add("config.yaml")
    theirs = {key: shared.metadata(key) for key in conditional}
    for key, metadata in theirs.items():
        assert [k for k in metadata if "write" in k] == [WRITE_ID]
        assert UUID4.fullmatch(metadata[WRITE_ID])
        assert asyncio.run(backend._read_write_id(key)) == metadata[WRITE_ID]
    stamps = [m[WRITE_ID] for m in theirs.values()]
    assert len(set(stamps)) == len(stamps)

    ours = pyicechunk.Repository.open(shared.direct)
    ours.create_tag("v2", base)
    _commit(ours, 1, "ours")
    ours.save_config()
    keys = [
        o["Key"] for o in shared.server.client().list_objects_v2(Bucket=shared.bucket)["Contents"]
    ]
    for full in keys:
        key = full.removeprefix(f"{shared.prefix}/")
        metadata = shared.metadata(key)
        written = [k for k in metadata if "write" in k]
        if key.startswith(("refs/", "config.yaml")) or key == "repo":
            assert written == [WRITE_ID], key
            assert UUID4.fullmatch(metadata[WRITE_ID]), key
        elif not key.startswith("overwritten/"):  # copies keep the stamp of what they copied
            assert written == [], key
    # ours replaced what 2.3.0 stamped, with ids of our own
    assert shared.metadata(conditional_key(spec, "branch.main"))[WRITE_ID] not in stamps
    assert shared.metadata(conditional_key(spec, "tag.v2"))[WRITE_ID] not in stamps


def _labels_by_kind(shared: Shared, prefix: str) -> dict[str, set[tuple[str, str]]]:
    """Every object's user metadata under ``prefix``, by kind (top directory, or ``repo``),
    without the client's name and the write ids, which differ by writer and by write."""
    client = shared.server.client()
    found: dict[str, set[tuple[str, str]]] = {}
    for listed in client.list_objects_v2(Bucket=shared.bucket, Prefix=f"{prefix}/")["Contents"]:
        key = listed["Key"]
        metadata = client.head_object(Bucket=shared.bucket, Key=key)["Metadata"]
        kind = key.removeprefix(f"{prefix}/").split("/")[0]
        labels = {(k, v) for k, v in metadata.items() if k not in ("icclient", WRITE_ID)}
        found.setdefault(kind, set()).update(labels)
    return found


@pytest.mark.parametrize("spec", [2], ids=["spec2"])
def test_spec2_objects_carry_the_reference_labels(shared: Shared, spec: int) -> None:
    """On spec 2 every metadata object (``repo`` and its ``overwritten/`` copies too) is
    labelled as 2.3.0 labels it: the same keys, letters only, and the same values."""
    shared.ic2.run(REFERENCE_CREATE, spec=spec)
    shared.ic2.run("repo.create_tag('v1', base)")
    ours = pyicechunk.Repository.create(
        s3_storage(
            bucket=shared.bucket,
            prefix="ours",
            endpoint_url=shared.server.endpoint_url,
            allow_http=True,
            force_path_style=True,
            access_key_id=shared.server.access_key_id,
            secret_access_key=shared.server.secret_access_key,
            region=shared.server.region,
        ),
        spec_version=spec,
    )
    session = ours.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i8")
    ours.create_tag("v1", session.commit("base"))
    theirs = _labels_by_kind(shared, shared.prefix)
    mine = _labels_by_kind(shared, "ours")
    assert set(theirs) == {"repo", "overwritten", "snapshots", "transactions"}
    assert mine == theirs
    assert ("icfiletype", "repo-info") in theirs["repo"]


@SPECS
def test_a_failed_precondition_against_the_reference_is_a_conflict(
    shared: Shared, spec: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our conditional write fails against an object 2.3.0 wrote: the read-back finds 2.3.0's
    stamp, so it is a genuine conflict; had the stamp been ours (a resent write of our own), the
    same failure would be a success."""
    base = shared.ic2.run(REFERENCE_CREATE, spec=spec)
    backend = shared.through_proxy.backend
    key = conditional_key(spec, "tag.v1")
    heads = shared.rule("HEAD", "tag.v1", "pass", count=0)
    if spec == 1:
        shared.ic2.run("repo.create_tag('v1', base)")
        attempt: Callable[[], bool] = lambda: asyncio.run(backend.put_if_absent(key, b"{}"))  # noqa: E731
    else:
        _, version = asyncio.run(backend.get_versioned(key))
        shared.ic2.run("repo.create_tag('v1', base)")  # moves repo after our read
        attempt = lambda: asyncio.run(backend.put_if_version(key, b"{}", version))  # noqa: E731
    before = shared.etag(key)
    assert attempt() is False
    assert len(heads.seen) == 1  # it was read back
    stamp = shared.metadata(key)[WRITE_ID]
    monkeypatch.setattr("pyicechunk.storage._new_write_id", lambda: stamp)
    assert attempt() is True  # the same failure, with the stamp as our own id
    assert len(heads.seen) == 2
    assert shared.etag(key) == before  # neither attempt wrote anything
    assert shared.ic2.run("open_direct().lookup_tag('v1')") == base


@SPECS
def test_our_writes_against_the_reference_in_flight(shared: Shared, spec: int) -> None:
    """2.3.0 writes between our read and our conditional write: ours fails its precondition
    against 2.3.0's stamp and ends as the conflict it is (a tag that exists, a branch that
    moved), or on spec 2, where ``repo`` holds every ref, as a retry on top of 2.3.0's change."""
    base = shared.ic2.run(REFERENCE_CREATE, spec=spec)
    repo = shared.open(proxied=True)
    heads = shared.rule("HEAD", "tag.v1", "pass", count=0)
    tag = shared.rule(
        "PUT", "tag.v1", "pass", before=lambda: shared.ic2.run("repo.create_tag('v1', base)")
    )
    if spec == 1:
        with pytest.raises(pyicechunk.IcechunkError, match="tag already exists"):
            repo.create_tag("v1", base)
        assert _statuses(tag) == [412]
        assert len(heads.seen) == 1
    else:
        # spec 2: the same object for every ref; a different name, so the retry can succeed
        repo.create_tag("mine", base)
        assert _statuses(tag) == [412]  # the retry was not intercepted
        assert len(heads.seen) >= 1
        assert sorted(shared.ic2.run("sorted(open_direct().list_tags())")) == ["mine", "v1"]
    shared.proxy.rules.clear()
    heads = shared.rule("HEAD", "branch.main", "pass", count=0)
    moved = shared.rule(
        "PUT",
        "branch.main",
        "pass",
        before=lambda: shared.ic2.run("theirs = commit(open_direct(), 2, 'theirs')"),
    )
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[:] = 1
    with pytest.raises(pyicechunk.ConflictError):
        session.commit("mine")
    assert _statuses(moved) == [412]
    assert len(heads.seen) >= 1
    theirs = shared.ic2.run("theirs")
    assert shared.ic2.run("open_direct().lookup_branch('main')") == theirs


@SPECS
def test_the_reference_reads_our_stamps_as_not_its_own(shared: Shared, spec: int) -> None:
    """The mirror image: pyicechunk writes while 2.3.0's conditional write is on its way.
    2.3.0 fails its precondition against our stamp, reads it back and takes it for another
    writer's: "tag already exists" on spec 1, a retry on top of our change on spec 2."""
    base = _create(shared.direct, spec)
    ours = pyicechunk.Repository.open(shared.direct)
    shared.ic2.run("repo = open_proxied(); base = b", b=base)
    heads = shared.rule("HEAD", "tag.v1", "pass", count=0)
    tag = shared.rule("PUT", "tag.v1", "pass", before=lambda: ours.create_tag("v1", base))
    if spec == 1:
        with raises("IcechunkError", match="tag already exists"):
            shared.ic2.run("repo.create_tag('v1', base)")
        assert _statuses(tag) == [412]
        assert len(heads.seen) == 1
    else:
        shared.ic2.run("repo.create_tag('theirs', base)")
        assert _statuses(tag) == [412]
        assert len(heads.seen) >= 1
        assert pyicechunk.Repository.open(shared.direct).list_tags() == {"theirs", "v1"}


@SPECS
@SHAPES
def test_lost_responses_on_a_repository_both_write(
    shared: Shared, spec: int, action: Action, tries: int
) -> None:
    """A repository 2.3.0 created and both write: a lost response to our conditional write is
    a success, exactly once, on top of 2.3.0's stamps; and 2.3.0's own lost response, on top of
    ours, is one for 2.3.0."""
    base = shared.ic2.run(REFERENCE_CREATE, spec=spec)
    repo = shared.open(proxied=True, tries=tries)
    rule = shared.rule("PUT", "tag.ours", action)
    repo.create_tag("ours", base)
    assert rule.answers == [b"HTTP/1.1 200 OK"]  # the server applied it; we never heard
    assert shared.ic2.run("sorted(open_direct().list_tags())") == ["ours"]

    rule = shared.rule("PUT", "branch.main", action)
    mine = _commit(repo, 1, "ours")
    assert rule.answers == [b"HTTP/1.1 200 OK"]
    history = shared.ic2.run("[s.message for s in open_direct().ancestry(branch='main')]")
    assert history[:2] == ["ours", "base"]  # exactly once
    assert shared.ic2.run("open_direct().lookup_branch('main')") == mine

    # 2.3.0 now replaces our stamped object and loses its response (its SDK resends either way)
    rule = shared.rule("PUT", "branch.main", action)
    theirs = shared.ic2.run("commit(open_proxied(), 2, 'theirs')")
    assert rule.answers == [b"HTTP/1.1 200 OK"]
    again = pyicechunk.Repository.open(shared.direct)
    assert again.lookup_branch("main") == theirs
    assert [s.message for s in again.ancestry(branch="main")][:3] == ["theirs", "ours", "base"]
    assert again.list_tags() == {"ours"}


def _local_stamp(path: Path) -> str | None:
    try:
        return os.getxattr(path, "user." + WRITE_ID).decode()
    except OSError:
        return None


@SPECS
def test_local_filesystem(ic2: Oracle, tmp_path: Path, spec: int, monkeypatch: Any) -> None:
    """On a local filesystem 2.3.0 stamps nothing; an object it replaces loses our stamp with
    the file it was on, so a failed precondition against it is a conflict, even for the id we
    stamped before; and our next conditional write stamps it again."""
    root = tmp_path / "repo"
    storage = local_filesystem_storage(str(root))
    base = _create(storage, spec)
    key = conditional_key(spec, "branch.main")
    ours = _local_stamp(root / key)
    assert ours is not None and UUID4.fullmatch(ours)
    backend = storage.backend
    _, version = asyncio.run(backend.get_versioned(key))
    ic2.run(
        """
        repo = icechunk.Repository.open(icechunk.local_filesystem_storage(path))
        session = repo.writable_session("main")
        zarr.open_array(session.store, path="a", mode="r+")[:] = 5
        theirs = session.commit("theirs")
        repo.create_tag("t", base)
        """,
        path=str(root),
        base=base,
    )
    assert _local_stamp(root / key) is None  # 2.3.0 wrote a new file, with no stamp
    assert asyncio.run(backend._read_write_id(key)) is None
    for file in root.rglob("*"):
        if file.is_file() and file.stat().st_mtime_ns >= (root / key).stat().st_mtime_ns:
            assert not [a for a in os.listxattr(file) if a.startswith("user.")], file
    monkeypatch.setattr("pyicechunk.storage._new_write_id", lambda: ours)
    assert asyncio.run(backend.put_if_version(key, b"{}", version)) is False
    monkeypatch.undo()
    again = pyicechunk.Repository.open(storage)
    assert again.lookup_branch("main") == ic2.run("theirs")
    _commit(again, 6, "ours again")
    stamp = _local_stamp(root / key)
    assert stamp is not None and stamp != ours
    assert ic2.run(
        "icechunk.Repository.open(icechunk.local_filesystem_storage(path)).list_tags()",
        path=str(root),
    ) == {"t"}
