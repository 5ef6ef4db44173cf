"""Helpers that run the same calls on icechunk 1.1.21 and on pyicechunk's config classes."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import icechunk as ic
import pytest

import pyicechunk.config as pc

# Both libraries run the same calls; outcomes (value or error type and message) must match.
BOTH = pytest.mark.parametrize("m", [ic, pc], ids=["reference", "ours"])


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """``("ok", value as plain data)``, or the error's class name and message."""
    try:
        value = call()
    except Exception as err:
        return type(err).__name__, str(err)
    # Compared as data: the reprs are icechunk 2.x's now (see tests/reprs2), not 1.1's.
    return "ok", plain(value)


FIELDS = {
    "RepositoryConfig": (
        "inline_chunk_threshold_bytes",
        "get_partial_values_concurrency",
        "compression",
        "max_concurrent_requests",
        "caching",
        "storage",
        "virtual_chunk_containers",
        "manifest",
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
    ),
    "StorageConcurrencySettings": (
        "max_concurrent_requests_for_object",
        "ideal_concurrent_request_size",
    ),
    "StorageRetriesSettings": ("max_tries", "initial_backoff_ms", "max_backoff_ms"),
    "ManifestConfig": ("preload", "splitting"),
    "ManifestPreloadConfig": ("max_total_refs", "preload_if"),
    "ManifestSplittingConfig": ("split_sizes",),
    "VirtualChunkContainer": ("name", "url_prefix", "store"),
    "S3Options": (
        "region",
        "endpoint_url",
        "allow_http",
        "anonymous",
        "force_path_style",
        "network_stream_timeout_seconds",
        "requester_pays",
    ),
}


def plain(value: Any) -> Any:
    """Either library's config objects as plain data, read only through public getters."""
    if type(value).__name__ == "CompressionAlgorithm":
        return repr(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, pathlib.PurePath):
        return value.as_posix()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    name = type(value).__name__
    if name in FIELDS:
        return {"type": name, **{f: plain(getattr(value, f)) for f in FIELDS[name]}}
    if isinstance(value, pc.ManifestPreloadCondition):
        return ("preload condition", as_reference_condition(value))
    if isinstance(value, ic.ManifestPreloadCondition):
        # The reference returns conditions read from Rust as bare base-class objects without
        # readable payloads, so these compare through the reference's own equality.
        return ("preload condition", value)
    # Variant classes: "PyManifestPreloadCondition_NumRefs" in the reference, "NumRefs" here.
    variant = name.rsplit("_", 1)[-1]
    payload: list[Any] = []
    if hasattr(value, "regex"):
        payload = [value.regex]
    elif variant == "NumRefs":
        payload = [getattr(value, "from"), value.to]
    elif hasattr(value, "_0"):
        payload = [value._0]
    base = next(
        c.__name__
        for c in type(value).__mro__
        if c.__name__
        in (
            "ObjectStoreConfig",
            "ManifestPreloadCondition",
            "ManifestSplitCondition",
            "ManifestSplitDimCondition",
        )
    )
    return {"variant": f"{base}.{variant}", "payload": plain(payload)}


def as_reference_condition(cond: pc.ManifestPreloadCondition) -> Any:
    """The reference's equivalent of one of our preload conditions."""
    P, R = pc.ManifestPreloadCondition, ic.ManifestPreloadCondition
    if isinstance(cond, P.And):
        return R.and_conditions([as_reference_condition(c) for c in cond._0])
    if isinstance(cond, P.Or):
        return R.or_conditions([as_reference_condition(c) for c in cond._0])
    if isinstance(cond, P.NameMatches):
        return R.name_matches(cond.regex)
    if isinstance(cond, P.PathMatches):
        return R.path_matches(cond.regex)
    if isinstance(cond, P.NumRefs):
        return R.num_refs(getattr(cond, "from"), cond.to)
    return R.true() if isinstance(cond, getattr(P, "True")) else R.false()


def build_rich(m: ModuleType, *, containers: bool = True) -> Any:
    """A config with every field set, nested conditions and every store kind."""
    P, S, D = m.ManifestPreloadCondition, m.ManifestSplitCondition, m.ManifestSplitDimCondition
    cfg = m.RepositoryConfig(
        inline_chunk_threshold_bytes=100,
        get_partial_values_concurrency=5,
        compression=m.CompressionConfig(m.CompressionAlgorithm.Zstd, 5),
        max_concurrent_requests=10,
        caching=m.CachingConfig(10, 20, 30, 40, 2**64 - 1),
        storage=m.StorageSettings(
            concurrency=m.StorageConcurrencySettings(3, 1000),
            retries=m.StorageRetriesSettings(4, 10, 100),
            unsafe_use_conditional_create=True,
            unsafe_use_conditional_update=False,
            unsafe_use_metadata=False,
            storage_class="STANDARD",
            metadata_storage_class="true",
            chunks_storage_class="a: b # c",
            minimum_size_for_multipart_upload=123,
        ),
        manifest=m.ManifestConfig(
            preload=m.ManifestPreloadConfig(
                7,
                P.or_conditions(
                    [
                        P.path_matches("^/x"),
                        P.name_matches("t: 'x'"),
                        P.num_refs(1, 10),
                        P.num_refs(None, None),
                        P.num_refs(0, 4294967295),
                        P.and_conditions([P.true(), P.false(), P.or_conditions([])]),
                        P.true() & (P.false() | P.name_matches("0x10")),
                    ]
                ),
            ),
            splitting=m.ManifestSplittingConfig(
                [
                    (
                        S.path_matches("temp.*"),
                        [(D.Axis(0), 10), (D.DimensionName("lat"), 5), (D.Any(), 2)],
                    ),
                    (S.or_conditions([S.name_matches("a"), S.AnyArray()]), [(D.Any(), 100)]),
                    (S.and_conditions([S.AnyArray() | S.path_matches("yes")]), []),
                    (S.AnyArray(), [(D.DimensionName("~"), 0), (D.Axis(2**20), 4294967295)]),
                ]
            ),
        ),
    )
    if containers:
        for prefix, store in [
            ("s3://bucket/", m.s3_store(region="us-east-1")),
            (
                "s3://other/p/",
                m.s3_store(
                    endpoint_url="http://localhost:9000",
                    allow_http=True,
                    anonymous=True,
                    s3_compatible=True,
                    force_path_style=True,
                    network_stream_timeout_seconds=0,
                    requester_pays=True,
                ),
            ),
            ("tigris://t/", m.ObjectStoreConfig.Tigris(m.S3Options(region="auto"))),
            ("gs://b/", m.gcs_store({})),
            ("gcs://c/", m.gcs_store({"service_account": "x", "n": "1"})),
            ("az://acc/", m.ObjectStoreConfig.Azure({"account": "acc"})),
            ("https://ex.com/", m.http_store({"timeout": "5s", "flag": "yes", "e": ""})),
            ("http://x.org/a/", m.http_store({})),
            ("file:///data/", m.local_filesystem_store("/data")),
            ("file:///with space/", m.local_filesystem_store("/with space")),
        ]:
            cfg.set_virtual_chunk_container(m.VirtualChunkContainer(prefix, store))
    return cfg
