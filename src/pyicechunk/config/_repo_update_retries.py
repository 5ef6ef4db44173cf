"""Retries of conditional updates of a spec-2 repository's ``repo`` object."""

from __future__ import annotations

from ._checks import _opt_instance
from ._record import _field, _Record
from ._storage_settings import StorageRetriesSettings


def _default_retries() -> StorageRetriesSettings:
    # Many more, and quicker, tries than for a storage request: losing the race for ``repo``
    # to another writer is expected under concurrency, and the retry is cheap.
    return StorageRetriesSettings(max_tries=100, initial_backoff_ms=50, max_backoff_ms=30_000)


class RepoUpdateRetryConfig(_Record):
    """How often and how patiently an update of the ``repo`` object is retried on conflict.

    Parameters
    ----------
    default
        Retry settings for every kind of repo update. While unset, 100 tries with backoff from
        50 ms up to 30 s; fields left unset in a given value take the generic storage retry
        defaults (10 tries, 100 ms, 180 s), as in the reference.
    """

    default: StorageRetriesSettings | None = _field(
        _opt_instance(StorageRetriesSettings),
        default=None,
        nested=True,
        effective_factory=_default_retries,
    )
