"""Manifest maintenance: commit a rewrite of every array's manifests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyicechunk import progress
from pyicechunk.config import ManifestConfig, RepositoryConfig
from pyicechunk.exceptions import ConflictError, IcechunkError
from pyicechunk.format.config_flex import tagged_as_maps
from pyicechunk.format.config_serde import config_to_tree
from pyicechunk.format.header import SPEC_V1
from pyicechunk.session.context import RepoContext, check_metadata, with_reserved
from pyicechunk.session.core import SessionCore
from pyicechunk.session.splitting import configured_splitting

__all__ = ["rewrite_manifests"]

# The JSON the reference records for its default splitting config (every array in one manifest
# per split of 2**32 - 1 chunks along every axis, i.e. one manifest per array).
_DEFAULT_SPLITTING_CONFIG: dict[str, Any] = {
    "split_sizes": [
        [{"path_matches": {"regex": ".*"}}, [{"num_chunks": 4_294_967_295, "condition": "Any"}]]
    ]
}


_COMMIT_METHODS = ("new_commit", "amend")


def _splitting_json(ctx: RepoContext) -> dict[str, Any]:
    """The JSON form of the splitting config the rewrite applies (serde's, as the reference)."""
    splitting = configured_splitting(ctx.config)
    if splitting is None or splitting.split_sizes is None:
        return _DEFAULT_SPLITTING_CONFIG
    tree = config_to_tree(RepositoryConfig(manifest=ManifestConfig(splitting=splitting)))
    return tagged_as_maps(tree["manifest"]["splitting"])  # type: ignore[no-any-return]


def _with_splitting_config(ctx: RepoContext, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """The commit metadata, plus the splitting config where the repository's version puts it:
    top-level ``splitting_config`` in spec 1 (icechunk 1.1), under ``__icechunk`` in spec 2
    (icechunk 2, keeping the user's own keys there)."""
    properties = check_metadata(metadata)
    splitting = _splitting_json(ctx)
    if ctx.spec_version == SPEC_V1:
        return {**properties, "splitting_config": splitting}
    return with_reserved(properties, "splitting_config", splitting)


@progress.operation("rewriting manifests")
async def rewrite_manifests(
    ctx: RepoContext,
    branch: str,
    message: str,
    metadata: Mapping[str, Any] | None,
    commit_method: str = "new_commit",
) -> str:
    """Commit to ``branch`` a snapshot identical to its tip but with rewritten manifests.

    Carrying an array over normally reuses its manifests; here each array's chunk refs are
    read from its old manifests and written into new ones, split by the repository's current
    splitting config, so the commit changes the manifest layout while every node and chunk
    stays the same. With ``commit_method="amend"``
    (spec 2 only, as in icechunk 2) the new snapshot replaces the tip instead.

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
    commit_method
        ``"new_commit"`` or ``"amend"``.

    Returns
    -------
    str
        The new snapshot id.

    Raises
    ------
    ValueError
        ``commit_method`` is neither of the two.
    IcechunkError
        The branch does not exist, the commit failed (also when the branch moved while the
        manifests were being rewritten, as in the reference), or an amend was asked of a
        spec-1 repository (kind ``unsupported-operation-for-version``).
    """
    if commit_method not in _COMMIT_METHODS:
        raise ValueError(
            f"Invalid commit method: {commit_method!r}. Expected 'new_commit' or 'amend'."
        )
    if commit_method == "amend" and ctx.spec_version == SPEC_V1:
        raise IcechunkError(
            "amend is not supported for spec version 1 repositories, use new commit instead",
            kind="unsupported-operation-for-version",
        )
    properties = _with_splitting_config(ctx, metadata)
    try:
        base = await ctx.assets.fetch_snapshot(await ctx.state.branch_tip(branch))
        session = SessionCore(ctx, base, branch=branch, read_only=False)
        # Nothing changed in the session, so the transaction log has every list empty.
        return await session.commit(
            message,
            properties,
            allow_empty=True,
            rewrite_manifests=True,
            amend=commit_method == "amend",
        )
    except (IcechunkError, ConflictError) as e:
        raise IcechunkError(f"error rewriting manifests: {e}", getattr(e, "kind", None)) from e
