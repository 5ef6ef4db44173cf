"""``upgrade_icechunk_repository``: turn a spec-1 repository into a spec-2 one, in place.

The algorithm is :func:`pyicechunk.ops.migration.migrate_1_to_2`; this module gives it
icechunk's API: it takes and returns :class:`~pyicechunk.Repository` objects, and once the
repository on disk has become spec 2 it invalidates the object it was given, whose view of the
repository (spec-1 refs, ``config.yaml``) no longer holds.
"""

from __future__ import annotations

from typing import Any, NoReturn

from pyicechunk._sync import sync
from pyicechunk.config import StorageSettings
from pyicechunk.exceptions import IcechunkError
from pyicechunk.ops.migration import migrate_1_to_2
from pyicechunk.repository import Repository
from pyicechunk.session.context import RepoContext
from pyicechunk.storage import Storage, StorageBackend, keys

__all__ = ["upgrade_icechunk_repository", "upgrade_icechunk_repository_async"]

_INVALIDATED = (
    "This repository has been invalidated by upgrade_icechunk_repository(). Use the new "
    "Repository object returned by that function instead."
)


class _InvalidatedRepository(Repository):
    """What a migrated repository's old object becomes: every attribute access raises."""

    def __getattribute__(self, name: str) -> NoReturn:
        raise RuntimeError(_INVALIDATED)


def _invalidate(repo: Repository) -> None:
    repo.__dict__.clear()
    repo.__class__ = _InvalidatedRepository


async def _has_repo_object(backend: StorageBackend) -> bool:
    try:
        return await backend.exists(keys.REPO)
    except (IcechunkError, OSError):
        return False


def upgrade_icechunk_repository(
    repo: Repository,
    *,
    dry_run: bool,
    delete_unused_v1_files: bool = True,
    prefetch_concurrency: int | None = None,
) -> Repository:
    """Migrate a spec-1 repository (icechunk 1.x) to spec 2 (icechunk 2.x), as icechunk does.

    Only one object is written, ``repo``, holding the refs, the deleted tags, every snapshot
    reachable from a ref, the stored config and an operations log rebuilt from the history;
    snapshots, manifests and chunks are kept as they are. Snapshots that no branch or tag
    reaches are left out of the new history. Run it while nothing else uses the repository.

    Parameters
    ----------
    repo
        The repository to migrate.
    dry_run
        True: build everything but write nothing, and return the repository, still spec 1
        (``repo`` stays usable). False: migrate.
    delete_unused_v1_files
        Delete ``refs/`` and ``config.yaml`` after the migration (default). icechunk 1.x
        cannot open the repository afterwards either way.
    prefetch_concurrency
        How many snapshots to read at the same time (default 64); lower it when snapshots
        are large.

    Returns
    -------
    Repository
        The repository freshly opened, with its persisted config only. After a migration
        (``dry_run=False``) ``repo`` is invalidated: using it raises ``RuntimeError``.

    Raises
    ------
    IcechunkError
        The repository is spec 2 already ("invalid repository version (2.0) ..."), the storage
        is read-only, or reading or writing failed (see
        :func:`pyicechunk.ops.migration.migrate_1_to_2` for what is left on disk).
    ValueError
        If ``prefetch_concurrency`` is not a positive integer.
    """
    return sync(
        upgrade_icechunk_repository_async(
            repo,
            dry_run=dry_run,
            delete_unused_v1_files=delete_unused_v1_files,
            prefetch_concurrency=prefetch_concurrency,
        )
    )


async def upgrade_icechunk_repository_async(
    repo: Repository,
    *,
    dry_run: bool,
    delete_unused_v1_files: bool = True,
    prefetch_concurrency: int | None = None,
) -> Repository:
    """Async version of :func:`upgrade_icechunk_repository`."""
    if not isinstance(repo, Repository):
        raise TypeError(f"expected a Repository, got {type(repo).__name__}")
    storage, config = repo.storage, repo.config
    # The repository's view of the storage: backend defaults under its config's settings.
    settings = (config.storage or StorageSettings()).merged_over(storage.default_settings())
    ctx = RepoContext(
        storage=Storage.from_backend(storage.backend.with_settings(settings)),
        config=config,
        spec_version=1,
    )
    backend = ctx.storage.backend
    options: dict[str, Any] = {
        "dry_run": dry_run,
        "delete_unused_v1_files": delete_unused_v1_files,
        "prefetch_concurrency": prefetch_concurrency,
        "compression_level": ctx.assets.compression_level,
    }
    was_spec2 = await _has_repo_object(backend)
    try:
        await migrate_1_to_2(ctx.state, backend, **options)
    except (IcechunkError, OSError):
        # A failure after `repo` was kept (only the clean-up failed) still changed the version.
        if not dry_run and not was_spec2 and await _has_repo_object(backend):
            _invalidate(repo)
        raise
    if not dry_run:
        _invalidate(repo)
    return await Repository.open_async(storage)
