"""Hostile locations through the public write path: ``set_virtual_ref`` and ``set_virtual_refs``.

With container validation (the default) a location is only accepted if a later read would
fetch it from inside a container. Without it, a location is stored as icechunk 1.1.21 stores
it (or refused where the reference refuses it too), and reading it back fails before anything
outside the container is opened.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import icechunk
import pytest
import zarr
from security_helpers import CHUNK, FifoWatch

import pyicechunk
from pyicechunk.virtual import NO_CONTAINER_MESSAGE


@dataclass(frozen=True)
class Site:
    root: Path
    data: Path
    secret: FifoWatch

    @property
    def prefix(self) -> str:
        return f"file://{self.data}/"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("write-escapes")
    data = root / "data"
    data.mkdir()
    (data / "ok.bin").write_bytes(b"OKOKOKOK")
    secret = FifoWatch(root / "secret")
    try:
        yield Site(root, data, secret)
    finally:
        secret.close()


def _hostile(site: Site) -> list[str]:
    d, r = str(site.data), str(site.root)
    quoted = urllib.parse.quote(d + "/", safe="")
    return [
        f"file://{quoted}/etc/passwd",
        f"file://{quoted}{r}/secret",
        f"file://{d}/../secret",
        f"file://{d}/%2e%2e/secret",
        f"file://{d}/..%2Fsecret",
        f"file://{d}/a%2F..%2F..%2Fsecret",
        f"file://{d}/..\\secret",
        f"file://{d}/%5C..%5Csecret",
        f"FILE://{d}/../secret",
        f"file://evil{r}/secret",
        f"file://user@{d}/ok.bin",
        f"file://{d}/%00/../../secret",
        f"file:///../../..{r}/secret",
        f"file://{d}%2Fok.bin",
    ]


def _repo(ic: object, site: Site) -> object:
    config = ic.RepositoryConfig.default()  # type: ignore[attr-defined]
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer(site.prefix, ic.local_filesystem_store(str(site.data)))  # type: ignore[attr-defined]
    )
    return ic.Repository.create(  # type: ignore[attr-defined]
        ic.in_memory_storage(),  # type: ignore[attr-defined]
        config,
        authorize_virtual_chunk_access={site.prefix: None},
    )


def _array(session: object, n: int) -> zarr.Array:
    return zarr.create_array(
        session.store,  # type: ignore[attr-defined]
        name="a",
        shape=(CHUNK * n,),
        chunks=(CHUNK,),
        dtype="u1",
        compressors=None,
        fill_value=0,
    )


def test_validation_refuses_every_hostile_location(site: Site) -> None:
    hostile = _hostile(site)
    repo = _repo(pyicechunk, site)
    s = repo.writable_session("main")  # type: ignore[attr-defined]
    _array(s, len(hostile))
    unmatched = []
    for i, location in enumerate(hostile):
        with pytest.raises(pyicechunk.IcechunkError) as info:
            s.store.set_virtual_ref(f"a/c/{i}", location, offset=0, length=CHUNK)
        message = info.value.message
        assert message.startswith((NO_CONTAINER_MESSAGE, "error parsing virtual ref URL"))
        if message.startswith(NO_CONTAINER_MESSAGE):
            unmatched.append((i,))
    assert s.all_virtual_chunk_locations() == []
    # set_virtual_refs reports the same locations as failed (unparsable ones raise, as above)
    specs = [pyicechunk.VirtualChunkSpec([i], hostile[i], 0, CHUNK) for (i,) in unmatched]
    assert s.store.set_virtual_refs("a", specs) == unmatched
    assert s.all_virtual_chunk_locations() == []
    assert len(unmatched) == len(hostile) - 3


def test_unvalidated_writes_store_what_the_reference_stores(site: Site) -> None:
    """Without validation both implementations store the same text, or both refuse it."""
    hostile = _hostile(site)
    outcomes = []
    for ic in (pyicechunk, icechunk):
        s = _repo(ic, site).writable_session("main")  # type: ignore[attr-defined]
        _array(s, len(hostile))
        refused = []
        for i, location in enumerate(hostile):
            try:
                s.store.set_virtual_ref(
                    f"a/c/{i}", location, offset=0, length=CHUNK, validate_container=False
                )
            except ic.IcechunkError:
                refused.append(i)
        outcomes.append((refused, s.all_virtual_chunk_locations()))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == [0, 1, 10]  # the encoded hosts and the user info


def test_unvalidated_hostile_refs_fail_on_read_and_fetch_nothing(site: Site) -> None:
    hostile = _hostile(site)
    repo = _repo(pyicechunk, site)
    s = repo.writable_session("main")  # type: ignore[attr-defined]
    arr = _array(s, len(hostile))
    stored = []
    for i, location in enumerate(hostile):
        try:
            s.store.set_virtual_ref(
                f"a/c/{i}", location, offset=0, length=CHUNK, validate_container=False
            )
            stored.append(i)
        except pyicechunk.IcechunkError:
            pass
    s.commit("hostile refs")
    opened = site.secret.opens()
    arr = zarr.open_array(repo.readonly_session("main").store, path="a", mode="r")  # type: ignore[attr-defined]
    for i in stored:
        with pytest.raises(pyicechunk.IcechunkError) as info:
            arr[CHUNK * i : CHUNK * (i + 1)]
        message = str(info.value)
        assert (
            "no virtual chunk container" in message
            or "Nothing was fetched" in message
            or (
                # %00/.. normalises to <data>/secret, inside the container, which does not exist
                "error fetching virtual reference" in message and f"{site.data}/secret" in message
            )
        ), message
    assert site.secret.opens() == opened
