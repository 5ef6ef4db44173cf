"""Storage settings over a backend's defaults, and their effective values."""

from __future__ import annotations

import pyicechunk.config as pc


def test_storage_settings_merged_over_backend_defaults() -> None:
    local_fs_defaults = pc.StorageSettings(
        concurrency=pc.StorageConcurrencySettings(5, 4096),
        retries=pc.StorageRetriesSettings(1, 0, 0),
        unsafe_use_conditional_update=False,
        unsafe_use_metadata=False,
    )
    mine = pc.StorageSettings(
        retries=pc.StorageRetriesSettings(max_tries=4), unsafe_use_metadata=True, storage_class="S"
    )
    eff = mine.merged_over(local_fs_defaults)._effective()
    assert (eff.max_concurrent_requests_for_object, eff.ideal_concurrent_request_size) == (5, 4096)
    assert (eff.max_tries, eff.initial_backoff_ms, eff.max_backoff_ms) == (4, 0, 0)
    assert eff.unsafe_use_conditional_update is False
    assert eff.unsafe_use_conditional_create is True
    assert eff.unsafe_use_metadata is True
    assert (eff.storage_class, eff.metadata_storage_class, eff.chunks_storage_class) == ("S",) * 3
    plain_eff = pc.StorageSettings()._effective()
    assert (
        plain_eff.max_concurrent_requests_for_object,
        plain_eff.ideal_concurrent_request_size,
    ) == (
        18,
        12 * 2**20,
    )
    assert (plain_eff.max_tries, plain_eff.initial_backoff_ms, plain_eff.max_backoff_ms) == (
        10,
        100,
        180_000,
    )
    assert plain_eff.minimum_size_for_multipart_upload == 100 * 2**20
    assert local_fs_defaults.unsafe_use_metadata is False  # inputs unchanged


def test_timeouts_merge_field_by_field_and_default_to_the_client() -> None:
    eff = pc.StorageSettings()._effective()
    timeouts = ("connect_timeout_ms", "read_timeout_ms", "operation_timeout_ms")
    assert [getattr(eff, t) for t in (*timeouts, "operation_attempt_timeout_ms")] == [None] * 4
    backend = pc.StorageSettings(timeouts=pc.StorageTimeoutSettings(1, 7))
    mine = pc.StorageSettings(timeouts=pc.StorageTimeoutSettings(connect_timeout_ms=5))
    eff = mine.merged_over(backend)._effective()
    assert [getattr(eff, t) for t in timeouts] == [5, 7, None]
    assert backend.timeouts == pc.StorageTimeoutSettings(1, 7)  # inputs unchanged
