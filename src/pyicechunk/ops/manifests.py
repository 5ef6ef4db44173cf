"""Manifest maintenance: commit a rewrite of every array's manifests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyicechunk.exceptions import ConflictError, IcechunkError
from pyicechunk.format.snapshot import ArrayNodeData, ManifestFileInfo, NodeSnapshot
from pyicechunk.refs import fetch_branch
from pyicechunk.session import RepoContext, _SessionCore, check_metadata

__all__ = ["rewrite_manifests"]

# The JSON the reference records for its default splitting config (every array in one manifest
# per split of 2**32 - 1 chunks along every axis, i.e. one manifest per array). Splitting is not
# configurable here yet, so this is always the layout a rewrite produces.
_DEFAULT_SPLITTING_CONFIG: dict[str, Any] = {
    "split_sizes": [
        [{"path_matches": {"regex": ".*"}}, [{"num_chunks": 4_294_967_295, "condition": "Any"}]]
    ]
}


class _RewritingSession(_SessionCore):
    """A writable session whose commit writes fresh manifests for every array.

    Carrying an array over normally reuses its manifests; here each array's chunk refs are read
    from its old manifests and written into one new manifest, so the commit changes the
    manifest layout while every node and chunk stays the same.
    """

    async def _carry_node(
        self, node: NodeSnapshot
    ) -> tuple[NodeSnapshot, tuple[ManifestFileInfo, ...]]:
        array = node.array
        if array is None:
            return await super()._carry_node(node)
        refs, infos = await self._rewrite_manifest(
            node.id, node.path, array.shape, array.manifests, None
        )
        data = ArrayNodeData(array.shape, array.dimension_names, refs)
        return NodeSnapshot(node.id, node.path, node.user_data, data), infos


async def rewrite_manifests(
    ctx: RepoContext, branch: str, message: str, metadata: Mapping[str, Any] | None
) -> str:
    """Commit to ``branch`` a snapshot identical to its tip but with rewritten manifests.

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
        tip = await fetch_branch(ctx.storage.backend, branch)
        base = await ctx.assets.fetch_snapshot(tip)
        session = _RewritingSession(ctx, base, branch=branch, read_only=False)
        # Nothing changed in the session, so the transaction log has every list empty.
        return await session.commit(message, properties, allow_empty=True)
    except (IcechunkError, ConflictError) as e:
        raise IcechunkError(f"error rewriting manifests: {e}") from e
