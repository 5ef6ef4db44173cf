"""Config objects as plain data, the same way for pyicechunk and icechunk 2.3.0.

Stdlib only and self-contained: tests run this module's source inside a snippet
(``impl.run(PLAIN)``), so that ``plain(config)`` turns either implementation's config into data
that crosses the oracle's process boundary and compares equal exactly when the configs agree.
Everything is read through public attributes only, except for one quirk of icechunk 2.3.0:
preload conditions it hands back from a stored config are bare base-class objects without
readable payloads. Their repr spells the constructor calls that would build them, but quotes
strings without escaping anything (a newline, a quote or ``")`` inside a regex appear as
themselves), so it is not Python and cannot be evaluated. :func:`rebuild` parses it, tries
every reading of where each string ends, and keeps the one the reference's own equality says
is the same condition.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Iterator
from typing import Any

# icechunk 2.3.0's fields of every config record, by class name.
CONFIG_FIELDS: dict[str, tuple[str, ...]] = {
    "RepositoryConfig": (
        "inline_chunk_threshold_bytes",
        "get_partial_values_concurrency",
        "compression",
        "max_concurrent_requests",
        "caching",
        "storage",
        "virtual_chunk_containers",
        "manifest",
        "repo_update_retries",
        "num_updates_per_repo_info_file",
        "max_concurrent_decodes",
        "previous_file",
    ),
    "CompressionConfig": ("algorithm", "level"),
    "CachingConfig": (
        "num_snapshot_nodes",
        "num_chunk_refs",
        "num_transaction_changes",
        "num_bytes_attributes",
        "num_bytes_chunks",
    ),
    "StorageSettings": (
        "concurrency",
        "retries",
        "unsafe_use_conditional_create",
        "unsafe_use_conditional_update",
        "unsafe_use_metadata",
        "storage_class",
        "metadata_storage_class",
        "chunks_storage_class",
        "minimum_size_for_multipart_upload",
        "timeouts",
    ),
    "StorageConcurrencySettings": (
        "max_concurrent_requests_for_object",
        "ideal_concurrent_request_size",
    ),
    "StorageRetriesSettings": ("max_tries", "initial_backoff_ms", "max_backoff_ms"),
    "StorageTimeoutSettings": (
        "connect_timeout_ms",
        "read_timeout_ms",
        "operation_timeout_ms",
        "operation_attempt_timeout_ms",
    ),
    "ManifestConfig": (
        "preload",
        "splitting",
        "virtual_chunk_location_compression",
        "max_concurrent_manifest_fetches_during_commit",
    ),
    "ManifestPreloadConfig": ("max_total_refs", "preload_if", "max_arrays_to_scan"),
    "ManifestSplittingConfig": ("split_sizes",),
    "ManifestVirtualChunkLocationCompressionConfig": (
        "min_num_chunks",
        "dictionary_max_training_samples",
        "dictionary_max_size_bytes",
        "compression_level",
    ),
    "RepoUpdateRetryConfig": ("default",),
    "VirtualChunkContainer": ("name", "url_prefix", "store"),
    "S3Options": (
        "region",
        "endpoint_url",
        "allow_http",
        "anonymous",
        "force_path_style",
        "network_stream_timeout_seconds",
        "requester_pays",
        "checksum_algorithm",
    ),
}

_ENUMS = ("CompressionAlgorithm", "ChecksumAlgorithm")
_FAMILIES = (
    "ObjectStoreConfig",
    "ManifestPreloadCondition",
    "ManifestSplitCondition",
    "ManifestSplitDimCondition",
)


def plain(value: Any) -> Any:
    """``value`` (a config, or anything inside one) as nested plain data."""
    name = type(value).__name__
    if name in _ENUMS:
        return f"{name}.{repr(value).rsplit('.', 1)[-1]}"
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, pathlib.PurePath):
        return value.as_posix()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if name in CONFIG_FIELDS:
        return {"type": name, **{f: plain(getattr(value, f)) for f in CONFIG_FIELDS[name]}}
    family = next(c.__name__ for c in type(value).__mro__ if c.__name__ in _FAMILIES)
    if name == family:
        return plain(rebuild(value))
    # Variant classes: "NumRefs", or "PyObjectStoreConfig_S3"-like names in older releases.
    variant = name.rsplit("_", 1)[-1]
    if hasattr(value, "regex"):
        payload: list[Any] = [value.regex]
    elif variant == "NumRefs":
        payload = [getattr(value, "from"), value.to]
    elif variant == "Http":
        payload = [value._0, value._1]
    elif hasattr(value, "_0"):
        payload = [value._0]
    else:
        payload = []
    return {"variant": f"{family}.{variant}", "payload": plain(payload)}


# One constructor call of a family: ``icechunk.config.<Family>.<constructor>(``.
_CALL = re.compile(r"icechunk\.(?:config\.)?([A-Za-z]\w*)\.([a-z][a-z_]*)\(")
_INT = re.compile(r"-?[0-9]+")


def rebuild(value: Any) -> Any:
    """The condition a bare base-class object of icechunk 2.3.0 stands for, from its repr.

    Raises
    ------
    ValueError
        If no reading of the repr builds a condition equal to ``value``.
    """
    text = repr(value)
    for rebuilt, end in _calls(text, 0, type(value)):
        if end == len(text) and rebuilt == value:
            return rebuilt
    raise ValueError(f"no reading of {text!r} builds an equal {type(value).__name__}")


def _calls(text: str, at: int, family: type) -> Iterator[tuple[Any, int]]:
    """Every way ``text[at:]`` starts with a call of ``family``'s constructors: (value, end)."""
    match = _CALL.match(text, at)
    if match is None or match.group(1) != family.__name__:
        return
    make = getattr(family, match.group(2), None)
    if make is None:
        return
    for args, end in _items(text, match.end(), ")", family):
        try:
            yield make(*args), end
        except (TypeError, ValueError, OverflowError):
            continue  # a misreading of where a string ends gave other arguments


def _items(text: str, at: int, close: str, family: type) -> Iterator[tuple[list[Any], int]]:
    """Every reading of ``value, value, ...`` then ``close`` at ``text[at:]``: (values, end)."""
    if text.startswith(close, at):
        yield [], at + 1
    for first, end in _values(text, at, family):
        if text.startswith(close, end):
            yield [first], end + 1
        if text.startswith(", ", end):
            for rest, after in _items(text, end + 2, close, family):
                if rest:
                    yield [first, *rest], after


def _values(text: str, at: int, family: type) -> Iterator[tuple[Any, int]]:
    """Every reading of one argument at ``text[at:]``: (value, end)."""
    if text.startswith('"', at):
        # Unescaped: the string may end at any later quote.
        end = text.find('"', at + 1)
        while end != -1:
            yield text[at + 1 : end], end + 1
            end = text.find('"', end + 1)
    elif text.startswith("[", at):
        yield from _items(text, at + 1, "]", family)
    elif text.startswith("None", at):
        yield None, at + 4
    elif (number := _INT.match(text, at)) is not None:
        yield int(number.group()), number.end()
    else:
        yield from _calls(text, at, family)
