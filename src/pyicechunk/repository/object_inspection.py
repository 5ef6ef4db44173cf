"""The ``inspect_*`` methods and ``list_manifest_files`` of :class:`~pyicechunk.Repository`.

Debugging views of the stored objects as icechunk 2.x gives them: a dict per object with the
fields of its binary header (who wrote it, its spec version, file type and compression) and its
decoded content, with ids in their text form. ``inspect_repo_info`` needs a spec-2 repository;
the others work on both versions.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import numpy as np

from pyicechunk._sync import sync
from pyicechunk._time import micros_to_datetime
from pyicechunk.exceptions import IcechunkError, ObjectNotFoundError
from pyicechunk.format.flatbuf import ColumnReader
from pyicechunk.format.header import HEADER_SIZE, MAGIC, FileType, open_object
from pyicechunk.format.ids import decode_id, encode_id
from pyicechunk.format.manifest import decode_manifest
from pyicechunk.format.manifest.chunk_refs import INLINE, NATIVE, VIRTUAL
from pyicechunk.format.manifest.v2 import location_decompressor
from pyicechunk.format.repo_info import Update
from pyicechunk.format.snapshot import Snapshot
from pyicechunk.format.transaction_log import TransactionLog
from pyicechunk.history import combine_transaction_logs
from pyicechunk.ops_log import update_from_stored
from pyicechunk.repo_state import needs_spec2_error
from pyicechunk.repository.inspection import parse_snapshot_id
from pyicechunk.session.context import RepoContext
from pyicechunk.storage import keys
from pyicechunk.storage.byte_range import RangeByteRequest
from pyicechunk.types import ManifestFileInfo

__all__ = ["ObjectInspection"]

logger = logging.getLogger(__name__)

_FILE_TYPES: dict[int, str] = {
    FileType.SNAPSHOT: "snapshot",
    FileType.MANIFEST: "manifest",
    FileType.TRANSACTION_LOG: "transaction-log",
    FileType.REPO_INFO: "repo-info",
}
_COMPRESSIONS = {0: "none", 1: "zstd"}


def _header(data: bytes, key: str) -> dict[str, str]:
    """The fields of an object's binary header, as the reference reports them."""
    if len(data) < HEADER_SIZE or data[: len(MAGIC)] != MAGIC:
        raise IcechunkError(
            f"cannot read {key}: it is not an Icechunk object (bad or short header)",
            kind="invalid-file-format",
        )
    written_by = data[len(MAGIC) : 36].decode("ascii", "replace").rstrip(" ")
    app_name, _, app_version = written_by.partition("-")
    return {
        "written_by": written_by,
        "app_name": app_name,
        "app_version": app_version,
        "spec_version": f"{data[36]}.0",
        "file_type": _FILE_TYPES.get(data[37], str(data[37])),
        "compression": _COMPRESSIONS.get(data[38], str(data[38])),
    }


def _time(micros: int) -> str:
    return micros_to_datetime(micros).isoformat().replace("+00:00", "Z")


def _update(update: Update) -> dict[str, Any]:
    """An ops-log entry as ``inspect_repo_info`` lists it (the reference's serde names)."""
    kind = update_from_stored(update).kind
    name = type(kind).__name__
    # The reference's inspection keeps the Rust variant names ("NewCommitUpdate"), except for
    # FeatureFlagChanged, whose variant has no suffix.
    details: dict[str, Any] = {"type": name if name == "FeatureFlagChanged" else f"{name}Update"}
    for field in getattr(kind, "__dataclass_fields__", {}):
        value = getattr(kind, field)
        if field == "status":
            value = {
                "availability": value.availability.rust_name,
                "limited_availability_reason": value.limited_availability_reason,
                "set_at": value.set_at.isoformat().replace("+00:00", "Z"),
            }
        elif field in ("from_version", "to_version"):
            value = f"{value}.0"
        details[field] = value
    out: dict[str, Any] = {"update_type": details, "updated_at": _time(update.updated_at)}
    if update.backup_path is not None:
        out["backup_path"] = update.backup_path
    return out


def _node(node: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": encode_id(node.id),
        "path": node.path,
        "node_type": "group" if node.array is None else "array",
    }
    array = node.array
    if array is not None:
        names = array.dimension_names or (None,) * len(array.shape)
        shape = []
        for dim, dim_name in zip(array.shape, names, strict=False):
            num_chunks = dim.num_chunks
            if num_chunks < 0:  # spec 1 stores the chunk length instead
                num_chunks = -(-dim.array_length // dim.chunk_length) if dim.chunk_length else 0
            described: dict[str, Any] = {} if dim_name is None else {"name": dim_name}
            described.update(array_length=dim.array_length, num_chunks=num_chunks)
            shape.append(described)
        entry["shape"] = shape
        entry["manifest_refs"] = [
            {"id": encode_id(m.object_id), "extents": [list(e) for e in m.extents]}
            for m in array.manifests
        ]
    return entry


class ObjectInspection:
    """The inspection methods (see the module docstring)."""

    _ctx: RepoContext

    async def _header_of(self, key: str) -> dict[str, str]:
        try:
            data = await self._ctx.assets.backend.get(key, RangeByteRequest(0, HEADER_SIZE))
        except ObjectNotFoundError:
            raise IcechunkError(f"object not found: {key}", kind="object-not-found") from None
        return _header(bytes(data), key)

    async def _listed_snapshot(self, snapshot_id: str) -> Snapshot:
        sid = parse_snapshot_id(snapshot_id)
        try:
            return await self._ctx.assets.fetch_snapshot(sid)
        except ObjectNotFoundError:
            kind = "snapshot-not-found" if self._ctx.spec_version >= 2 else "object-not-found"
            raise IcechunkError(f"snapshot not found: `{snapshot_id}`", kind=kind) from None

    # -- manifests of a snapshot --------------------------------------------------------------

    def list_manifest_files(self, snapshot_id: str) -> list[ManifestFileInfo]:
        """The manifest files a snapshot uses: id, size in bytes and number of chunk refs."""
        return sync(self.list_manifest_files_async(snapshot_id))

    async def list_manifest_files_async(self, snapshot_id: str) -> list[ManifestFileInfo]:
        """Async version of :meth:`list_manifest_files`."""
        snapshot = await self._listed_snapshot(snapshot_id)
        return [
            ManifestFileInfo(encode_id(m.id), m.size_bytes, m.num_chunk_refs)
            for m in snapshot.manifest_files
        ]

    # -- inspect_* ----------------------------------------------------------------------------

    def inspect_snapshot(self, snapshot_id: str, *, pretty: bool | None = None) -> Any:
        """A snapshot's header, commit message, metadata, manifests and every node.

        Keys: ``id``, ``header``, ``flushed_at``, ``commit_message``, ``metadata``,
        ``manifests``, ``nodes`` (array nodes with ``shape`` and ``manifest_refs``).

        Parameters
        ----------
        snapshot_id
            The snapshot.
        pretty
            Given, the result is icechunk 1.x's instead: a JSON text (indented when True)
            with ``parent_id`` and without ``header``.
        """
        return sync(self.inspect_snapshot_async(snapshot_id, pretty=pretty))

    async def inspect_snapshot_async(self, snapshot_id: str, *, pretty: bool | None = None) -> Any:
        """Async version of :meth:`inspect_snapshot`."""
        snapshot = await self._listed_snapshot(snapshot_id)
        doc: dict[str, Any] = {"id": encode_id(snapshot.id)}
        if pretty is None:
            doc["header"] = await self._header_of(keys.snapshot_key(snapshot.id))
        else:
            entry = await (await self._ctx.state.history()).entry(snapshot.id)
            if entry.parent_id is not None:
                doc["parent_id"] = encode_id(entry.parent_id)
        doc.update(
            flushed_at=_time(snapshot.flushed_at),
            commit_message=snapshot.message,
            metadata=snapshot.metadata,
            manifests=[
                {
                    "id": encode_id(m.id),
                    "size_bytes": m.size_bytes,
                    "num_chunk_refs": m.num_chunk_refs,
                }
                for m in snapshot.manifest_files
            ],
            nodes=[_node(node) for node in snapshot.nodes],
        )
        if pretty is None:
            return doc
        return json.dumps(doc, indent=2 if pretty else None)

    def inspect_manifest(self, manifest_id: str) -> dict[str, Any]:
        """A manifest's header, size and chunk-ref counts per array and kind.

        Keys: ``id``, ``header``, ``size_bytes`` (of its decompressed content),
        ``num_arrays``, ``total_chunk_refs``, ``total_inline``, ``total_native``,
        ``total_virtual``, ``arrays``, ``compression`` (of virtual chunk locations).
        """
        return sync(self.inspect_manifest_async(manifest_id))

    async def inspect_manifest_async(self, manifest_id: str) -> dict[str, Any]:
        """Async version of :meth:`inspect_manifest`."""
        if not isinstance(manifest_id, str):
            raise TypeError(f"manifest ids are str, not {type(manifest_id).__name__}")
        try:
            mid = decode_id(manifest_id, 12)
        except ValueError:
            raise IcechunkError(
                f"invalid manifest id: `{manifest_id}` (expected 20 Crockford base32 characters)",
                kind="invalid-key",
            ) from None
        key = keys.manifest_key(mid)
        try:
            data = await self._ctx.assets.backend.get(key)
        except ObjectNotFoundError:
            raise IcechunkError(f"object not found: {key}", kind="object-not-found") from None
        return await asyncio.to_thread(_describe_manifest, bytes(data), key)

    def inspect_transaction_log(self, snapshot_id: str) -> dict[str, Any]:
        """What a commit changed: node ids created, deleted and updated, chunks written and
        nodes moved.

        Keys: ``header``, ``new_groups``, ``new_arrays``, ``deleted_groups``,
        ``deleted_arrays``, ``updated_groups``, ``updated_arrays``, ``updated_chunks``,
        ``moved_nodes``.
        """
        return sync(self.inspect_transaction_log_async(snapshot_id))

    async def inspect_transaction_log_async(self, snapshot_id: str) -> dict[str, Any]:
        """Async version of :meth:`inspect_transaction_log`."""
        sid = parse_snapshot_id(snapshot_id)
        key = keys.transaction_key(sid)
        header = await self._header_of(key)
        tx = await self._ctx.assets.fetch_transaction_log_by_id(sid)
        composite = await self._with_pruned_logs(sid, tx)
        if composite is not None:
            tx = composite[0]

        def ids(values: list[bytes]) -> list[str]:
            return [encode_id(v) for v in values]

        doc: dict[str, Any] = {
            "header": header,
            "new_groups": ids(tx.new_groups),
            "new_arrays": ids(tx.new_arrays),
            "deleted_groups": ids(tx.deleted_groups),
            "deleted_arrays": ids(tx.deleted_arrays),
            "updated_groups": ids(tx.updated_groups),
            "updated_arrays": ids(tx.updated_arrays),
            "updated_chunks": [
                {"node_id": encode_id(node), "chunks": np.asarray(coords).tolist()}
                for node, coords in tx.updated_chunks.items()
            ],
            "moved_nodes": [{"from": m.from_path, "to": m.to_path} for m in tx.moved_nodes],
        }
        if composite is not None:
            doc["synthetic_composite"] = composite[1]
        return doc

    async def _with_pruned_logs(
        self, snapshot_id: bytes, own: TransactionLog
    ) -> tuple[TransactionLog, dict[str, Any]] | None:
        """The snapshot's log merged after those of the ancestors expiration collapsed into
        its step (spec 2.1), with the reference's description of the merge; None if none."""
        try:
            entry = await (await self._ctx.state.history()).entry(snapshot_id)
        except ObjectNotFoundError:
            return None  # expired itself: nothing was collapsed into it
        if not entry.pruned_tx_logs:
            return None
        found = await asyncio.gather(
            *(self._ctx.assets.fetch_transaction_log_by_id(i) for i in entry.pruned_tx_logs),
            return_exceptions=True,
        )
        merged: TransactionLog | None = None
        used, missing = [], []
        for pruned_id, log in zip(entry.pruned_tx_logs, found, strict=True):
            if isinstance(log, ObjectNotFoundError):
                # Likely deleted by an older garbage collection; the view is incomplete.
                logger.warning(
                    "the transaction log of %s, an expiration-pruned ancestor of %s, is missing",
                    encode_id(pruned_id),
                    encode_id(snapshot_id),
                )
                missing.append(encode_id(pruned_id))
                continue
            if isinstance(log, BaseException):
                raise log
            used.append(encode_id(pruned_id))
            merged = log if merged is None else combine_transaction_logs(merged, log, snapshot_id)
        result = own if merged is None else combine_transaction_logs(merged, own, snapshot_id)
        return result, {
            "note": (
                "Synthetic composite: this snapshot's ancestry was collapsed by expiration; the "
                "log below merges its pruned-ancestor logs with its own log. `header` describes "
                "this snapshot's own log only."
            ),
            "merged_pruned_ancestor_tx_logs": used,
            "missing_tx_logs": missing,
        }

    def inspect_repo_info(self) -> dict[str, Any]:
        """The ``repo`` object of a spec-2 repository: refs, snapshot list, metadata and the
        newest ops-log entries.

        Keys: ``header``, ``spec_version``, ``branches``, ``tags``, ``deleted_tags``,
        ``snapshots``, ``metadata``, ``latest_updates`` (and ``repo_before_updates`` when the
        log continues in an older file).

        Raises
        ------
        IcechunkError
            On a spec-1 repository (kind ``unsupported-spec-version``).
        """
        return sync(self.inspect_repo_info_async())

    async def inspect_repo_info_async(self) -> dict[str, Any]:
        """Async version of :meth:`inspect_repo_info`."""
        info = await self._ctx.state.repo_info() if self._ctx.spec_version >= 2 else None
        if info is None:
            raise needs_spec2_error()
        header = await self._header_of(keys.REPO)
        snapshots = []
        for snap in info.snapshots.values():
            entry: dict[str, Any] = {"id": encode_id(snap.id)}
            if snap.parent_id is not None:
                entry["parent_id"] = encode_id(snap.parent_id)
            entry.update(
                flushed_at=_time(snap.flushed_at),
                message=snap.message,
                metadata=snap.metadata_values(),
            )
            snapshots.append(entry)
        out: dict[str, Any] = {
            "header": header,
            "spec_version": f"{info.spec_version}.0",
            "branches": {name: encode_id(sid) for name, sid in sorted(info.branches.items())},
            "tags": {name: encode_id(sid) for name, sid in sorted(info.tags.items())},
            "deleted_tags": sorted(info.deleted_tags),
            "snapshots": snapshots,
            "metadata": info.metadata_values(),
            "latest_updates": [_update(u) for u in info.latest_updates],
        }
        if info.repo_before_updates is not None:
            out["repo_before_updates"] = info.repo_before_updates
        return out


def _describe_manifest(data: bytes, key: str) -> dict[str, Any]:
    opened = open_object(data, FileType.MANIFEST, key)
    manifest = decode_manifest(opened.content)
    arrays: list[dict[str, Any]] = []
    for array in manifest.arrays:
        kinds = np.asarray(array.columns().kind)
        counts = {k: int(np.count_nonzero(kinds == k)) for k in (INLINE, NATIVE, VIRTUAL)}
        arrays.append(
            {
                "node_id": encode_id(array.node_id),
                "num_chunk_refs": len(kinds),
                "num_inline": counts[INLINE],
                "num_native": counts[NATIVE],
                "num_virtual": counts[VIRTUAL],
            }
        )
    reader = ColumnReader(opened.content, "manifest")
    root = reader.tables(reader.root(), 4, "Manifest")
    compressed = location_decompressor(reader, root) is not None
    total_virtual = sum(a["num_virtual"] for a in arrays)
    # With a dictionary (root slot 2), every virtual location is compressed with it.
    compression: dict[str, Any] = {"uses_location_compression": compressed}
    if compressed:
        _, size = reader.vector(root.pos(2), 1, "Manifest.location_dictionary")
        compression["dictionary_size_bytes"] = int(size[0])
    compression["num_compressed_refs"] = total_virtual if compressed else 0
    return {
        "id": encode_id(manifest.id),
        "header": _header(data, key),
        "size_bytes": len(opened.content),
        "num_arrays": len(arrays),
        "total_chunk_refs": sum(a["num_chunk_refs"] for a in arrays),
        "total_inline": sum(a["num_inline"] for a in arrays),
        "total_native": sum(a["num_native"] for a in arrays),
        "total_virtual": total_virtual,
        "arrays": arrays,
        "compression": compression,
    }
