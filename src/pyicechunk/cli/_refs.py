"""Refs as people type them: branches, tags, snapshot ids and their unique prefixes, ``REF~N``.

Short ids work as git's: any unique prefix of at least :data:`MIN_PREFIX` characters names a
snapshot, and every id the command line prints is the shortest prefix of at least
:data:`SHORT` characters that no other snapshot of the repository shares.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from pyicechunk.cli._output import CliError

__all__ = ["MIN_PREFIX", "SHORT", "Ref", "Snapshots", "current_snapshots", "resolve"]

MIN_PREFIX = 4
SHORT = 8
_ID_LENGTH = 20
# Crockford base32, as snapshot ids are spelled (upper case; we accept lower case too).
_BASE32 = re.compile(r"[0-9A-HJKMNP-TV-Z]+")


@dataclass(frozen=True)
class Ref:
    """What a ref argument named: the snapshot, and how (``branch``, ``tag`` or ``snapshot``)."""

    snapshot_id: str
    kind: str
    name: str

    def selector(self) -> dict[str, str]:
        """Keyword arguments naming this ref for the library (``branch=...`` etc.)."""
        if self.kind in ("branch", "tag") and self.name:
            return {self.kind: self.name}
        return {"snapshot_id": self.snapshot_id}


class Snapshots:
    """Everything the command line needs to know about a repository's snapshots and refs."""

    def __init__(self, repo: Any) -> None:
        self.repo = repo
        self._refs: tuple[dict[str, str], dict[str, str]] | None = None
        self._all: dict[str, Any] | None = None

    async def _read_refs(self) -> tuple[dict[str, str], dict[str, str]]:
        repo = self.repo
        branches, tags = await asyncio.gather(repo.list_branches_async(), repo.list_tags_async())
        branch_ids = await asyncio.gather(*(repo.lookup_branch_async(b) for b in branches))
        tag_ids = await asyncio.gather(*(repo.lookup_tag_async(t) for t in tags))
        return dict(zip(branches, branch_ids, strict=True)), dict(zip(tags, tag_ids, strict=True))

    def _branches_and_tags(self) -> tuple[dict[str, str], dict[str, str]]:
        if self._refs is None:
            self._refs = _run(self._read_refs())
        return self._refs

    @property
    def branches(self) -> dict[str, str]:
        """Branch name → tip id."""
        return self._branches_and_tags()[0]

    @property
    def tags(self) -> dict[str, str]:
        """Tag name → snapshot id."""
        return self._branches_and_tags()[1]

    def all(self) -> dict[str, Any]:
        """Every snapshot reachable from a branch or a tag, by id (SnapshotInfo values)."""
        if self._all is None:
            found: dict[str, Any] = {}

            async def walk(**start: str) -> None:
                async for info in self.repo.ancestry(**start):
                    if info.id in found:
                        break  # the rest of this history is known already
                    found[info.id] = info

            async def everything() -> None:
                for name in sorted(self.branches):
                    await walk(branch=name)
                for name in sorted(self.tags):
                    await walk(tag=name)

            _run(everything())
            self._all = found
        return self._all

    def labels(self, snapshot_id: str) -> tuple[list[str], list[str]]:
        """The branches ("main" first) and tags pointing at ``snapshot_id``."""
        branches = sorted(
            (b for b, sid in self.branches.items() if sid == snapshot_id),
            key=lambda b: (b != "main", b),
        )
        tags = sorted(t for t, sid in self.tags.items() if sid == snapshot_id)
        return branches, tags

    def short(self, snapshot_id: str) -> str:
        """The shortest prefix of at least :data:`SHORT` characters that is unique here."""
        others = self.all()
        for length in range(SHORT, _ID_LENGTH):
            prefix = snapshot_id[:length]
            if sum(1 for other in others if other.startswith(prefix)) <= 1:
                return prefix
        return snapshot_id

    def resolve(self, text: str) -> Ref:
        """The snapshot ``text`` names; see :func:`resolve`."""
        return resolve(self, text)


def current_snapshots() -> Snapshots:
    """The :class:`Snapshots` of the repository this invocation names (made once)."""
    from pyicechunk.cli._app import options
    from pyicechunk.cli._location import open_repository

    opts = options()
    found = opts.cache.get("snapshots")
    if found is None:
        found = opts.cache["snapshots"] = Snapshots(open_repository(opts))
    assert isinstance(found, Snapshots)
    return found


def _run(coro: Any) -> Any:
    from pyicechunk._sync import sync

    return sync(coro)


def _base(snapshots: Snapshots, text: str) -> Ref:
    if text in snapshots.branches:
        return Ref(snapshots.branches[text], "branch", text)
    if text in snapshots.tags:
        return Ref(snapshots.tags[text], "tag", text)
    candidate = text.upper()
    if not _BASE32.fullmatch(candidate) or len(candidate) > _ID_LENGTH:
        raise CliError(
            f"unknown ref {text!r}: it is not a branch, a tag or a snapshot id (list them with "
            "`pyicechunk branch`, `pyicechunk tag` and `pyicechunk log --all`)"
        )
    if len(candidate) == _ID_LENGTH:
        try:
            snapshots.repo.lookup_snapshot(candidate)
        except Exception as e:  # the library's not-found error, whatever its class
            raise CliError(f"snapshot {candidate} not found in this repository") from e
        return Ref(candidate, "snapshot", candidate)
    if len(candidate) < MIN_PREFIX:
        raise CliError(
            f"unknown ref {text!r}: not a branch or tag, and too short for a snapshot id "
            f"prefix (give at least {MIN_PREFIX} characters)"
        )
    matches = sorted(sid for sid in snapshots.all() if sid.startswith(candidate))
    if not matches:
        raise CliError(
            f"unknown ref {text!r}: no branch, tag or snapshot reachable from one starts with it"
        )
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise CliError(
            f"short snapshot id {text!r} is ambiguous: {len(matches)} snapshots start with it "
            f"({shown}); give more characters"
        )
    return Ref(matches[0], "snapshot", matches[0])


def resolve(snapshots: Snapshots, text: str) -> Ref:
    """The snapshot ``text`` names: a branch, a tag, a snapshot id or a unique prefix of one
    (at least :data:`MIN_PREFIX` characters), each optionally followed by ``~N`` (its N-th
    ancestor).

    Raises
    ------
    CliError
        Nothing has that name, the prefix is ambiguous, or the history is shorter than N.
    """
    name, tilde, steps_text = text.partition("~")
    if not name:
        raise CliError("an empty ref names nothing: give a branch, a tag or a snapshot id")
    steps = 0
    if tilde:
        if steps_text and not steps_text.isdigit():
            raise CliError(f"bad ref {text!r}: ~ must be followed by a number of steps")
        steps = int(steps_text) if steps_text else 1
    ref = _base(snapshots, name)
    if steps == 0:
        return ref
    history = snapshots.repo.ancestry(snapshot_id=ref.snapshot_id)
    for n, info in enumerate(history):
        if n == steps:
            return Ref(info.id, "snapshot", info.id)
    raise CliError(f"{name} has fewer than {steps} ancestors: {text} names nothing")
