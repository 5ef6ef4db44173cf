"""Manifest maintenance: commit a rewrite of every array's manifests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyicechunk.exceptions import ConflictError, IcechunkError
from pyicechunk.session.context import RepoContext, check_metadata
from pyicechunk.session.core import SessionCore

__all__ = ["rewrite_manifests"]

# The JSON the reference records for its default splitting config (every array in one manifest
# per split of 2**32 - 1 chunks along every axis, i.e. one manifest per array). Splitting is not
# configurable here yet, so this is always the layout a rewrite produces.
_DEFAULT_SPLITTING_CONFIG: dict[str, Any] = {
    "split_sizes": [
        [{"path_matches": {"regex": ".*"}}, [{"num_chunks": 4_294_967_295, "condition": "Any"}]]
    ]
}


async def rewrite_manifests(
    ctx: RepoContext, branch: str, message: str, metadata: Mapping[str, Any] | None
) -> str:
    """Commit to ``branch`` a snapshot identical to its tip but with rewritten manifests.

    Carrying an array over normally reuses its manifests; here each array's chunk refs are
    read from its old manifests and written into one new manifest, so the commit changes the
    manifest layout while every node and chunk stays the same.

    Parameters
    ----------
    ctx
        The repository context the commit is made in (storage, config, default metadata).
    branch
        The branch to commit to.
    message
        The commit message.
    metadata
        Commit metadata; ``splitting_config`` is added, describing the layout written.

    Returns
    -------
    str
        The new snapshot id.

    Raises
    ------
    IcechunkError
        The branch does not exist, or the commit failed (also when the branch moved while the
        manifests were being rewritten, as in the reference).
    """
    properties = {**check_metadata(metadata), "splitting_config": _DEFAULT_SPLITTING_CONFIG}
    try:
        base = await ctx.assets.fetch_snapshot(await ctx.state.branch_tip(branch))
        session = SessionCore(ctx, base, branch=branch, read_only=False)
        # Nothing changed in the session, so the transaction log has every list empty.
        return await session.commit(message, properties, allow_empty=True, rewrite_manifests=True)
    except (IcechunkError, ConflictError) as e:
        raise IcechunkError(f"error rewriting manifests: {e}") from e
