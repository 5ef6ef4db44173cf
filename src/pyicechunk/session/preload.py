"""Manifest preloading: the manifests a new session reads in the background, as the reference.

When a session opens, the arrays of its snapshot are scanned in path order (at most
``max_arrays_to_scan`` of them); each manifest of a scanned array is picked when the chunk
references picked so far plus its own stay within ``max_total_refs`` and the ``preload_if``
condition matches the array's path and the manifest's number of references (a manifest that
does not fit is skipped, and the scan goes on). The picked manifests are then read
concurrently into the repository's manifest cache by a task on the library's event loop, so
opening the session does not wait for them; a failed read is only logged, and the session
reads that manifest itself when it needs it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re

from zarr.core.sync import _get_loop

from pyicechunk.asset_manager import AssetManager
from pyicechunk.config import ManifestPreloadCondition, RepositoryConfig, effective_preload
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.ids import encode_id
from pyicechunk.format.snapshot import ManifestFileInfo, Snapshot

__all__ = ["manifests_to_preload", "start_preload"]

logger = logging.getLogger(__name__)

# The running preload tasks: the event loop keeps only weak references to its tasks.
_running: set[concurrent.futures.Future[None]] = set()

# ``True`` and ``False`` are keywords, so these two variants are reached with getattr.
_TRUE: type = getattr(ManifestPreloadCondition, "True")
_FALSE: type = getattr(ManifestPreloadCondition, "False")


def _search(regex: str, text: str) -> bool:
    # An invalid expression matches nothing, as in the reference (preloading never fails).
    try:
        return re.search(regex, text) is not None
    except re.error:
        return False


def _matches(cond: ManifestPreloadCondition, path: str, num_refs: int) -> bool:
    C = ManifestPreloadCondition
    if isinstance(cond, C.And):
        return all(_matches(c, path, num_refs) for c in cond._0)
    if isinstance(cond, C.Or):
        return any(_matches(c, path, num_refs) for c in cond._0)
    if isinstance(cond, C.NameMatches):
        return path != "/" and _search(cond.regex, path.rsplit("/", 1)[-1])
    if isinstance(cond, C.PathMatches):
        return _search(cond.regex, path)
    if isinstance(cond, C.NumRefs):
        low, high = getattr(cond, "from"), cond.to
        return (low is None or num_refs >= low) and (high is None or num_refs < high)
    return isinstance(cond, _TRUE)


def manifests_to_preload(config: RepositoryConfig, snapshot: Snapshot) -> list[ManifestFileInfo]:
    """The manifests of ``snapshot`` that a session opened on it preloads, in scan order.

    Parameters
    ----------
    config
        The repository's config (its ``manifest.preload`` part).
    snapshot
        The snapshot the session starts from.

    Returns
    -------
    list of ManifestFileInfo
        Each picked manifest once; empty when preloading is off (``max_total_refs`` 0 or the
        condition ``false``).
    """
    preload = config.manifest.preload if config.manifest is not None else None
    max_refs, max_arrays, condition = effective_preload(preload)
    if max_refs == 0 or isinstance(condition, _FALSE):
        return []
    picked: dict[bytes, ManifestFileInfo] = {}
    total = 0
    arrays = (node for node in snapshot.nodes if node.array is not None)
    for _, node in zip(range(max_arrays), arrays, strict=False):
        assert node.array is not None
        for ref in node.array.manifests:
            info = snapshot.manifest_info(ref.object_id)
            if (
                info is None
                or info.id in picked
                or total + info.num_chunk_refs > max_refs
                or not _matches(condition, node.path, info.num_chunk_refs)
            ):
                continue
            picked[info.id] = info
            total += info.num_chunk_refs
    return list(picked.values())


async def _load(assets: AssetManager, manifests: list[ManifestFileInfo]) -> None:
    async def one(info: ManifestFileInfo) -> None:
        try:
            await assets.fetch_manifest(info.id, info.size_bytes)
        except (IcechunkError, OSError) as e:
            logger.error("Failure pre-loading manifest %s: %s", encode_id(info.id), e)

    await asyncio.gather(*(one(info) for info in manifests))


def start_preload(assets: AssetManager, config: RepositoryConfig, snapshot: Snapshot) -> None:
    """Start reading the manifests a session on ``snapshot`` preloads, without waiting.

    Parameters
    ----------
    assets
        The repository's asset manager, whose manifest cache the reads fill.
    config
        The repository's config.
    snapshot
        The snapshot the new session starts from.
    """
    # The manifests a commit just wrote (the next session's base) are in the cache already:
    # handing the loop a task that only finds them there costs more than the check, and when
    # all of the snapshot's are there, so does resolving the preload config.
    if all(assets.has_manifest(m.id) for m in snapshot.manifest_files):
        return
    manifests = [m for m in manifests_to_preload(config, snapshot) if not assets.has_manifest(m.id)]
    if not manifests:
        return
    logger.debug("Preloading %d manifests", len(manifests))
    future = asyncio.run_coroutine_threadsafe(_load(assets, manifests), _get_loop())
    _running.add(future)
    future.add_done_callback(_running.discard)
