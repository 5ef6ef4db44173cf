"""Storage settings: concurrency, retries, timeouts and the behaviour switches of a backend.

Unset fields fall back first to the backend's own defaults
(:meth:`StorageSettings.merged_over`), then to the generic effective defaults declared with
each field (:meth:`StorageSettings._effective`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._checks import _opt_bool, _opt_instance, _opt_str, _opt_uint
from ._record import _field, _Record


class StorageConcurrencySettings(_Record):
    """How one large object is fetched with several concurrent range requests.

    Parameters
    ----------
    max_concurrent_requests_for_object
        At most this many requests per object (>= 1); effective default 18.
    ideal_concurrent_request_size
        Preferred bytes per request (>= 1); effective default 12 MiB.
    """

    max_concurrent_requests_for_object: int | None = _field(
        _opt_uint(16, nonzero=True), default=None, effective=18
    )
    ideal_concurrent_request_size: int | None = _field(
        _opt_uint(64, nonzero=True), default=None, effective=12 * 2**20
    )


class StorageRetriesSettings(_Record):
    """Retries of failed storage requests, with exponential backoff.

    Parameters
    ----------
    max_tries
        Attempts per request (>= 1; 1 disables retries); effective default 10.
    initial_backoff_ms
        First backoff; effective default 100 ms.
    max_backoff_ms
        Largest backoff; effective default 180_000 ms.
    """

    max_tries: int | None = _field(_opt_uint(16, nonzero=True), default=None, effective=10)
    initial_backoff_ms: int | None = _field(_opt_uint(32), default=None, effective=100)
    max_backoff_ms: int | None = _field(_opt_uint(32), default=None, effective=180_000)


class StorageTimeoutSettings(_Record):
    """Timeouts of storage requests, in milliseconds; unset ones are the client's defaults.

    Parameters
    ----------
    connect_timeout_ms
        Establishing a connection.
    read_timeout_ms
        Waiting for response bytes.
    operation_timeout_ms
        A whole operation, retries included.
    operation_attempt_timeout_ms
        One attempt of an operation.
    """

    connect_timeout_ms: int | None = _field(_opt_uint(32), default=None)
    read_timeout_ms: int | None = _field(_opt_uint(32), default=None)
    operation_timeout_ms: int | None = _field(_opt_uint(32), default=None)
    operation_attempt_timeout_ms: int | None = _field(_opt_uint(32), default=None)


@dataclass(frozen=True)
class EffectiveStorageSettings:
    """Storage settings with every default applied (internal)."""

    max_concurrent_requests_for_object: int
    ideal_concurrent_request_size: int
    max_tries: int
    initial_backoff_ms: int
    max_backoff_ms: int
    unsafe_use_conditional_create: bool
    unsafe_use_conditional_update: bool
    unsafe_use_metadata: bool
    storage_class: str | None
    metadata_storage_class: str | None
    chunks_storage_class: str | None
    minimum_size_for_multipart_upload: int
    # None: the storage client's own default.
    connect_timeout_ms: int | None
    read_timeout_ms: int | None
    operation_timeout_ms: int | None
    operation_attempt_timeout_ms: int | None


class StorageSettings(_Record):
    """Settings of the storage backend; unset fields fall back to the backend's defaults.

    Parameters
    ----------
    concurrency
        Concurrent range requests for large objects.
    retries
        Retries of failed requests.
    unsafe_use_conditional_create
        Use conditional (if-absent) writes; effective default True.
    unsafe_use_conditional_update
        Use conditional (if-match) updates; effective default True.
    unsafe_use_metadata
        Store object metadata (content types); effective default True.
    storage_class
        Storage class for every object.
    metadata_storage_class
        Storage class for metadata objects; falls back to ``storage_class``.
    chunks_storage_class
        Storage class for chunk objects; falls back to ``storage_class``.
    minimum_size_for_multipart_upload
        Objects at least this large use multipart uploads; effective default 100 MiB.
    timeouts
        Request timeouts.
    """

    _ORDER = (
        "unsafe_use_conditional_create",
        "unsafe_use_conditional_update",
        "unsafe_use_metadata",
        "storage_class",
        "metadata_storage_class",
        "chunks_storage_class",
        "minimum_size_for_multipart_upload",
        "concurrency",
        "retries",
        "timeouts",
    )

    concurrency: StorageConcurrencySettings | None = _field(
        _opt_instance(StorageConcurrencySettings), default=None, nested=True
    )
    retries: StorageRetriesSettings | None = _field(
        _opt_instance(StorageRetriesSettings), default=None, nested=True
    )
    unsafe_use_conditional_create: bool | None = _field(_opt_bool, default=None, effective=True)
    unsafe_use_conditional_update: bool | None = _field(_opt_bool, default=None, effective=True)
    unsafe_use_metadata: bool | None = _field(_opt_bool, default=None, effective=True)
    storage_class: str | None = _field(_opt_str, default=None)
    metadata_storage_class: str | None = _field(_opt_str, default=None)
    chunks_storage_class: str | None = _field(_opt_str, default=None)
    minimum_size_for_multipart_upload: int | None = _field(
        _opt_uint(64), default=None, effective=100 * 2**20
    )
    timeouts: StorageTimeoutSettings | None = _field(
        _opt_instance(StorageTimeoutSettings), default=None, nested=True
    )

    def merged_over(self, backend_defaults: StorageSettings) -> StorageSettings:
        """Return ``backend_defaults`` overridden by the fields set here (internal).

        Parameters
        ----------
        backend_defaults
            The storage backend's default settings.

        Returns
        -------
        StorageSettings
            A new object; neither input changes.
        """
        return backend_defaults._merge(self)

    def _effective(self) -> EffectiveStorageSettings:
        own = self._resolved()
        # The nested settings are flattened into the effective record.
        concurrency = own.pop("concurrency") or StorageConcurrencySettings()
        retries = own.pop("retries") or StorageRetriesSettings()
        timeouts = own.pop("timeouts") or StorageTimeoutSettings()
        for specific in ("metadata_storage_class", "chunks_storage_class"):
            if own[specific] is None:
                own[specific] = own["storage_class"]
        return EffectiveStorageSettings(
            **concurrency._resolved(), **retries._resolved(), **timeouts._resolved(), **own
        )


def effective_storage_settings(settings: StorageSettings | None) -> EffectiveStorageSettings:
    """The effective record of ``settings`` (None: every default), for the storage backends."""
    return (settings or StorageSettings())._effective()
