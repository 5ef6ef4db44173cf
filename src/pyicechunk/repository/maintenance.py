"""Repository maintenance: the facade over :mod:`pyicechunk.ops` that ``Repository`` inherits.

Statistics, snapshot expiration, garbage collection and manifest rewrites are whole-repository
operations; their algorithms live in ``ops/`` and these methods give them icechunk's API.
"""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

from pyicechunk._sync import blocking_twin
from pyicechunk._time import datetime_to_micros
from pyicechunk.repo_state.repo_object import RetrySchedule
from pyicechunk.session.context import RepoContext
from pyicechunk.types import ChunkStorageStats, GCSummary

__all__ = ["Maintenance"]


def _check_limits(**limits: int | None) -> None:
    """Refuse the limits icechunk's unsigned non-zero parameters cannot hold (None: unset)."""
    for name, value in limits.items():
        if value is None:
            continue
        if value < 0:
            raise OverflowError(f"{name}: number too small to fit in target type ({value})")
        if value == 0:
            raise ValueError(f"invalid zero value for {name}")


def _check_manifest_limits(snapshots: int, compressed: int, decoded: int, fetches: int) -> None:
    """:func:`_check_limits` for the limits of every operation that reads all manifests."""
    _check_limits(
        max_snapshots_in_memory=snapshots,
        max_compressed_manifest_mem_bytes=compressed,
        max_decoded_manifest_mem_bytes=decoded,
        max_concurrent_manifest_fetches=fetches,
    )


class Maintenance:
    """The maintenance methods of :class:`~pyicechunk.Repository`."""

    _ctx: RepoContext

    # -- maintenance --------------------------------------------------------------------------

    async def chunk_storage_stats_async(
        self,
        *,
        max_snapshots_in_memory: int = 50,
        max_compressed_manifest_mem_bytes: int = 512 * 1024 * 1024,
        max_decoded_manifest_mem_bytes: int = 4 * 1024 * 1024 * 1024,
        max_concurrent_manifest_fetches: int = 500,
    ) -> ChunkStorageStats:
        """Bytes of native, virtual and inline chunk data reachable from any branch or tag.

        The limits are icechunk's; only ``max_concurrent_manifest_fetches`` changes how this
        runs, the others are checked and accepted.

        Raises
        ------
        ValueError
            A limit is zero ("invalid zero value", as icechunk 2.3.0).
        OverflowError
            A limit is negative.
        """
        from pyicechunk.ops.stats import chunk_storage_stats

        _check_manifest_limits(
            max_snapshots_in_memory,
            max_compressed_manifest_mem_bytes,
            max_decoded_manifest_mem_bytes,
            max_concurrent_manifest_fetches,
        )
        return await chunk_storage_stats(
            self._ctx.state,
            self._ctx.assets,
            max_concurrent_manifest_fetches=max_concurrent_manifest_fetches,
        )

    # The blocking method, documented as its async implementation.
    chunk_storage_stats = blocking_twin(
        chunk_storage_stats_async, chunk_storage_stats_async.__doc__ or ""
    )

    def total_chunks_storage(self, **kwargs: int) -> int:
        """Deprecated: use :meth:`chunk_storage_stats` (this returns its ``native_bytes``)."""
        warnings.warn(
            "total_chunks_storage is deprecated, use chunk_storage_stats instead",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.chunk_storage_stats(**kwargs).native_bytes

    async def total_chunks_storage_async(self, **kwargs: int) -> int:
        """Deprecated: use :meth:`chunk_storage_stats_async`."""
        warnings.warn(
            "total_chunks_storage is deprecated, use chunk_storage_stats instead",
            DeprecationWarning,
            stacklevel=2,
        )
        return (await self.chunk_storage_stats_async(**kwargs)).native_bytes

    # -- expiration, garbage collection, manifest rewrite -------------------------------------

    async def expire_snapshots_async(
        self,
        older_than: dt.datetime,
        *,
        delete_expired_branches: bool = False,
        delete_expired_tags: bool = False,
    ) -> set[str]:
        """Cut snapshots older than ``older_than`` out of every branch's and tag's history.

        On a spec-2 repository the snapshots leave the ``repo`` object's snapshot list: each
        snapshot whose parent expired gets the root of its tree as parent and keeps the
        expired ancestors' transaction logs in its pruned list, so diffs, amends and rebases
        still see their changes; the ops log records ``ExpirationRan``. On spec 1, in each
        ref's history the oldest snapshot that is not expired is rewritten in place with the
        repository's first snapshot as its parent. Expired snapshots stay on storage until
        :meth:`garbage_collect` deletes them.

        Parameters
        ----------
        older_than
            Timezone-aware time; snapshots written strictly before it expire.
        delete_expired_branches
            Also delete branches (except ``main``) whose tip expired.
        delete_expired_tags
            Also delete tags whose snapshot expired.

        Returns
        -------
        set[str]
            Ids of the snapshots cut out of some history (on spec 1 other refs may still
            reach them; on spec 2 they are no longer listed).

        Raises
        ------
        TypeError
            ``older_than`` is a naive datetime.
        IcechunkError
            The storage or (spec 2) the repository's status is read-only, or a ref or
            snapshot cannot be read.
        """
        from pyicechunk.ops.expiration import expire_snapshots

        return await expire_snapshots(
            self._ctx.state,
            self._ctx.assets,
            datetime_to_micros(older_than, "older_than"),
            delete_expired_branches=delete_expired_branches,
            delete_expired_tags=delete_expired_tags,
        )

    expire_snapshots = blocking_twin(expire_snapshots_async, expire_snapshots_async.__doc__ or "")

    async def garbage_collect_async(
        self,
        delete_object_older_than: dt.datetime,
        *,
        dry_run: bool = False,
        max_snapshots_in_memory: int = 50,
        max_compressed_manifest_mem_bytes: int = 512 * 1024 * 1024,
        max_decoded_manifest_mem_bytes: int = 4 * 1024 * 1024 * 1024,
        max_concurrent_manifest_fetches: int = 500,
        max_concurrent_deletes: int = 10,
        max_consecutive_delete_failures: int = 50,
        max_concurrent_listings: int | None = None,
    ) -> GCSummary:
        """Delete objects that no branch or tag reaches and that are older than a threshold.

        On a spec-2 repository the snapshots no ref reaches, whose files are older than the
        threshold, first leave the ``repo`` object's snapshot list (the ops log records
        ``GCRan``; not in a dry run); transaction logs an expiration kept in a pruned list
        stay, and ``overwritten/`` is never touched.

        Parameters
        ----------
        delete_object_older_than
            Timezone-aware time; only objects last written strictly before it are deleted.
        dry_run
            Report what would be deleted without deleting anything.
        max_snapshots_in_memory, max_decoded_manifest_mem_bytes, max_concurrent_listings
            Accepted for compatibility with icechunk (checked, no effect here).
        max_compressed_manifest_mem_bytes
            Upper bound on the compressed size of manifests being read at once.
        max_concurrent_manifest_fetches
            Upper bound on concurrent manifest reads.
        max_concurrent_deletes
            Upper bound on delete requests in flight.
        max_consecutive_delete_failures
            Give up with an error after this many delete requests failed in a row; isolated
            failures are counted in the summary (``objects_failed_to_delete``,
            ``delete_errors``), and on spec 2 the later phases are then skipped
            (``skipped_phases``) so that a later run deletes in a safe order.

        Returns
        -------
        GCSummary
            Counts and bytes of the deleted chunks, manifests, snapshots and transaction logs.

        Raises
        ------
        TypeError
            ``delete_object_older_than`` is a naive datetime.
        ValueError, OverflowError
            A limit is zero or negative.
        IcechunkError
            Nothing may be written (read-only storage, or on spec 2 a read-only status), a
            ref, snapshot or manifest cannot be read, or (spec 2) concurrent changes made the
            collection start again too many times.
        """
        from pyicechunk.ops.gc import garbage_collect

        datetime_to_micros(delete_object_older_than, "delete_object_older_than")
        _check_manifest_limits(
            max_snapshots_in_memory,
            max_compressed_manifest_mem_bytes,
            max_decoded_manifest_mem_bytes,
            max_concurrent_manifest_fetches,
        )
        _check_limits(
            max_concurrent_deletes=max_concurrent_deletes,
            max_consecutive_delete_failures=max_consecutive_delete_failures,
            max_concurrent_listings=max_concurrent_listings,
        )
        return await garbage_collect(
            self._ctx.state,
            self._ctx.assets,
            delete_object_older_than,
            dry_run=dry_run,
            max_compressed_manifest_mem_bytes=max_compressed_manifest_mem_bytes,
            max_concurrent_manifest_fetches=max_concurrent_manifest_fetches,
            max_concurrent_deletes=max_concurrent_deletes,
            max_consecutive_delete_failures=max_consecutive_delete_failures,
            retries=RetrySchedule.from_config(self._ctx.config),
        )

    garbage_collect = blocking_twin(garbage_collect_async, garbage_collect_async.__doc__ or "")

    async def rewrite_manifests_async(
        self,
        message: str,
        *,
        branch: str,
        metadata: dict[str, Any] | None = None,
        commit_method: str = "new_commit",
    ) -> str:
        """Commit to ``branch`` a snapshot with the same data and freshly written manifests.

        Parameters
        ----------
        message
            The commit message.
        branch
            The branch to commit to.
        metadata
            Commit metadata; the splitting config is added (``splitting_config`` in spec 1,
            ``__icechunk.splitting_config`` in spec 2, as the references do).
        commit_method
            ``"new_commit"``, or ``"amend"`` to replace the tip (spec 2 only).

        Returns
        -------
        str
            The id of the snapshot that has the rewritten manifests.

        Raises
        ------
        ValueError
            ``commit_method`` is neither of the two.
        IcechunkError
            "error rewriting manifests": the branch does not exist or the commit failed; or
            an amend of a spec-1 repository (kind ``unsupported-operation-for-version``).
        """
        from pyicechunk.ops.manifests import rewrite_manifests

        return await rewrite_manifests(
            self._ctx.for_session(), branch, message, metadata, commit_method
        )

    rewrite_manifests = blocking_twin(
        rewrite_manifests_async, rewrite_manifests_async.__doc__ or ""
    )
