"""`Storage`: the user-facing handle on the storage that holds a repository.

Users get one from a constructor (:mod:`pyicechunk.storage.constructors`) or a ``Storage.new_*``
class method and pass it to ``Repository.create`` / ``Repository.open``; the repository and the
rest of pyicechunk reach the backend behind it through :attr:`Storage.backend`. Backends are
imported on first use, so a handle on local storage never loads an object-store SDK.
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyicechunk._repr import Block, Shown, qualified
from pyicechunk._sync import sync

if TYPE_CHECKING:
    from types import ModuleType

    from pyicechunk.config import S3Options, StorageSettings
    from pyicechunk.credentials import AnyAzureCredential, AnyGcsCredential, AnyS3Credential
    from pyicechunk.storage import StorageBackend
    from pyicechunk.storage.object_store import ObjectStoreSpec

__all__ = ["Storage", "StorageObjectInfo"]

_NO_INIT_MESSAGE = (
    "cannot create 'Storage' instances; use a constructor such as local_filesystem_storage(path)"
)


def _object_store_module() -> ModuleType:
    # Imported on first use: it is the only module that needs obstore.
    return importlib.import_module("pyicechunk.storage.object_store")


@dataclass(frozen=True, slots=True)
class StorageObjectInfo:
    """One object a listing found: its key (relative to the listed prefix), size and time.

    Parameters
    ----------
    key
        The key, relative to the prefix listed.
    size_bytes
        Its size.
    created_at
        When it was written (timezone-aware UTC).
    """

    key: str
    size_bytes: int
    created_at: dt.datetime

    def __repr__(self) -> str:
        from pyicechunk.repo_status import py_datetime

        return (
            f"<icechunk.storage.StorageObjectInfo>\nkey: {self.key}\n"
            f"size_bytes: {self.size_bytes}\ncreated_at: {py_datetime(self.created_at)}\n"
        )


class Storage(Shown):
    """A handle on the object storage that holds a repository.

    Create it with a constructor such as :func:`in_memory_storage` or
    :func:`local_filesystem_storage`, then pass it to ``Repository.create`` or ``Repository.open``.
    """

    __slots__ = ("_backend",)

    _backend: StorageBackend

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError(_NO_INIT_MESSAGE)

    @classmethod
    def from_backend(cls, backend: StorageBackend) -> Storage:
        """A handle on any :class:`~pyicechunk.storage.StorageBackend` (custom or wrapped).

        Parameters
        ----------
        backend
            The backend that stores the objects.

        Returns
        -------
        Storage
        """
        storage = cls.__new__(cls)
        storage._backend = backend
        return storage

    @property
    def backend(self) -> StorageBackend:
        """The backend this handle stores objects with."""
        return self._backend

    @classmethod
    def new_in_memory(cls) -> Storage:
        """Storage in this process's memory; see :func:`in_memory_storage`."""
        from pyicechunk.storage.memory import InMemoryBackend

        return cls.from_backend(InMemoryBackend())

    @classmethod
    def new_local_filesystem(cls, path: str, *, durable: bool | None = None) -> Storage:
        """Storage in a local directory; see :func:`local_filesystem_storage`."""
        from pyicechunk.storage.local import LocalFileSystemBackend

        return cls.from_backend(LocalFileSystemBackend(path, durable))

    @classmethod
    def new_s3(
        cls,
        config: S3Options,
        bucket: str,
        prefix: str | None,
        credentials: AnyS3Credential | None = None,
        *,
        read_headers: dict[str, str] | None = None,
        write_headers: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Storage:
        """Storage in an S3 or S3-compatible bucket; see :func:`s3_storage`."""
        spec = _object_store_module().s3_compatible_spec("s3", config, bucket, prefix, credentials)
        return cls._object_store(spec, headers, read_headers, write_headers)

    @classmethod
    def new_hf(
        cls,
        config: S3Options,
        bucket: str,
        prefix: str | None,
        namespace: str,
        credentials: AnyS3Credential | None = None,
        legacy_rooted_keys: bool | None = None,
        *,
        read_headers: dict[str, str] | None = None,
        write_headers: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Storage:
        """Storage in a Hugging Face Storage Bucket; see :func:`hf_storage`."""
        if legacy_rooted_keys:
            raise ValueError(
                "pyicechunk reads no leading-slash key layout; leave legacy_rooted_keys unset"
            )
        if not isinstance(namespace, str) or not namespace or "/" in namespace:
            raise ValueError(
                f"namespace must be a Hugging Face user or organization name, got {namespace!r}"
            )
        # Hugging Face's S3 gateway: one endpoint per namespace, path-style, one region.
        options = copy.deepcopy(config)
        options.region = "us-east-1"
        options.endpoint_url = f"https://s3.hf.co/{namespace}"
        options.force_path_style = True
        return cls.new_s3(
            options,
            bucket,
            prefix,
            credentials,
            read_headers=read_headers,
            write_headers=write_headers,
            headers=headers,
        )

    @classmethod
    def new_http(
        cls,
        base_url: str,
        config: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Storage:
        """Read-only storage over HTTP(S); see :func:`http_storage`."""
        from pyicechunk.storage.http import HttpBackend

        if config:
            raise ValueError(
                f"pyicechunk's HTTP storage takes no client options, got {sorted(config)}"
            )
        return cls.from_backend(HttpBackend(base_url, headers))

    @classmethod
    def new_redirect(cls, base_url: str) -> Storage:
        """Read-only storage found by following ``base_url``'s redirect; see
        :func:`redirect_storage`."""
        from pyicechunk.storage.redirect import RedirectBackend

        return cls.from_backend(RedirectBackend(base_url))

    @classmethod
    def new_s3_object_store(
        cls,
        config: S3Options,
        bucket: str,
        prefix: str | None,
        credentials: AnyS3Credential | None = None,
        *,
        read_headers: dict[str, str] | None = None,
        write_headers: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Storage:
        """S3 storage through the generic object-store backend; see ``s3_object_store_storage``."""
        spec = _object_store_module().s3_compatible_spec(
            "s3_object_store", config, bucket, prefix, credentials
        )
        return cls._object_store(spec, headers, read_headers, write_headers)

    @classmethod
    def new_tigris(
        cls,
        config: S3Options,
        bucket: str,
        prefix: str | None,
        use_weak_consistency: bool,
        credentials: AnyS3Credential | None = None,
        *,
        read_headers: dict[str, str] | None = None,
        write_headers: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Storage:
        """Storage in a Tigris bucket; see :func:`tigris_storage`."""
        spec = _object_store_module().tigris_spec(
            config, bucket, prefix, use_weak_consistency, credentials
        )
        return cls._object_store(spec, headers, read_headers, write_headers)

    @classmethod
    def new_r2(
        cls,
        bucket: str | None,
        prefix: str | None,
        account_id: str | None,
        credentials: AnyS3Credential | None = None,
        *,
        config: S3Options,
        read_headers: dict[str, str] | None = None,
        write_headers: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Storage:
        """Storage in a Cloudflare R2 bucket; see :func:`r2_storage`."""
        spec = _object_store_module().r2_spec(config, bucket, prefix, account_id, credentials)
        return cls._object_store(spec, headers, read_headers, write_headers)

    @classmethod
    def new_gcs(
        cls,
        bucket: str,
        prefix: str | None,
        credentials: AnyGcsCredential | None = None,
        *,
        config: dict[str, str] | None = None,
        read_headers: dict[str, str] | None = None,
        write_headers: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Storage:
        """Storage in a Google Cloud Storage bucket; see :func:`gcs_storage`."""
        spec = _object_store_module().blob_spec("gcs", bucket, prefix, credentials, config)
        return cls._object_store(spec, headers, read_headers, write_headers)

    @classmethod
    def new_azure_blob(
        cls,
        account: str,
        container: str,
        prefix: str,
        credentials: AnyAzureCredential | None = None,
        *,
        config: dict[str, str] | None = None,
    ) -> Storage:
        """Storage in an Azure Blob Storage container; see :func:`azure_storage`."""
        spec = _object_store_module().blob_spec(
            "azure", container, prefix, credentials, config, account
        )
        return cls._object_store(spec)

    @classmethod
    def _object_store(
        cls,
        spec: ObjectStoreSpec,
        headers: dict[str, str] | None = None,
        read_headers: dict[str, str] | None = None,
        write_headers: dict[str, str] | None = None,
    ) -> Storage:
        module = _object_store_module()
        spec = module.with_request_headers(spec, headers, read_headers, write_headers)
        return cls.from_backend(module.ObjectStoreBackend(spec))

    def default_settings(self) -> StorageSettings:
        """The storage settings this storage uses where the repository config sets none.

        Returns
        -------
        StorageSettings
            The backend's defaults (concurrency, retries and conditional-write switches).
        """
        return self._backend.default_settings()

    def list_objects_metadata(
        self, settings: StorageSettings | None = None, prefix: str | None = None
    ) -> list[StorageObjectInfo]:
        """Every object under ``prefix`` (a folder of the repository; None: all), with its key
        relative to that folder, its size and when it was written.

        Parameters
        ----------
        settings
            Storage settings for the listing, over the backend's defaults.
        prefix
            The folder to list, such as ``"snapshots"``.
        """
        folder = "" if not prefix else prefix.rstrip("/") + "/"
        backend = self._backend
        if settings is not None:
            backend = backend.with_settings(settings.merged_over(self.default_settings()))
        found = sync(backend.list(folder))
        return [
            StorageObjectInfo(info.key[len(folder) :], info.size, info.last_modified)
            for info in found
        ]

    def list_objects(
        self, settings: StorageSettings | None = None, prefix: str | None = None
    ) -> list[tuple[str, int]]:
        """Every object under ``prefix`` as (key relative to it, size in bytes).

        Kept for icechunk 2.x code, which documents it as superseded by
        :meth:`list_objects_metadata`.
        """
        return [(o.key, o.size_bytes) for o in self.list_objects_metadata(settings, prefix)]

    def _block(self) -> Block:
        return Block(qualified("Storage"), self._backend._storage_fields())

    def __reduce__(self) -> tuple[Any, ...]:
        return (Storage.from_backend, (self._backend,))
