"""obstore clients for object-store backends: store config, credentials, HTTP options, retries.

An :class:`~pyicechunk.storage.object_store.ObjectStoreSpec` says which service, bucket and
credentials; the builders here turn it and the effective storage settings into an obstore
store: S3 (also behind Tigris, R2 and the S3 object-store variant), GCS or Azure. obstore is
imported on first use only (:func:`load_obstore`), so the rest of pyicechunk works without it.
The reference hands every key of a GCS or Azure config to the store's builder, which accepts
the HTTP client's keys (``allow_http``, ``timeout``, ``proxy_url``...) among the store's own;
obstore takes them apart, so they are split out here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pyicechunk.config import ChecksumAlgorithm, S3Options
from pyicechunk.credentials import (
    AzureCredentials,
    AzureRefreshableCredential,
    AzureStaticCredentials,
    GcsBearerCredential,
    GcsCredentials,
    GcsStaticCredentials,
    S3Credentials,
    S3StaticCredentials,
)
from pyicechunk.exceptions import IcechunkError
from pyicechunk.storage import obstore_exit

if TYPE_CHECKING:
    from pyicechunk.config import EffectiveStorageSettings
    from pyicechunk.storage.object_store import ObjectStoreSpec


_obstore: Any = None


def load_obstore() -> Any:
    global _obstore
    if _obstore is not None:
        return _obstore
    try:
        import obstore
    except ImportError:  # pragma: no cover - depends on the installation
        raise IcechunkError(
            "cloud object storage needs the obstore package: pip install 'pyicechunk[s3]'",
            kind="storage-config",
        ) from None
    # obstore's runtime threads enter Python; exit waits for them to leave (see obstore_exit).
    obstore_exit.watch(_RefreshingProvider.__call__)
    _obstore = obstore
    return obstore


class _RefreshingProvider:
    """obstore credential provider around a pickled getter from refreshable credentials.

    obstore caches what this returns until shortly before ``expires_at`` and then calls it
    again; the credential scattered at construction is served first while still valid.
    """

    def __init__(
        self,
        refreshable: S3Credentials.Refreshable
        | GcsCredentials.Refreshable
        | AzureCredentials.Refreshable,
    ):
        self._refreshable = refreshable
        self._current = refreshable.current

    def __call__(self) -> dict[str, Any]:
        cred = self._current
        self._current = None
        if cred is None or _expired(cred.expires_after):
            cred = self._refreshable.getter()()
        if isinstance(cred, S3StaticCredentials):
            return {
                "access_key_id": cred.access_key_id,
                "secret_access_key": cred.secret_access_key,
                "token": cred.session_token,
                "expires_at": aware(cred.expires_after),
            }
        if isinstance(cred, GcsBearerCredential | AzureRefreshableCredential.BearerToken):
            return {"token": cred.bearer, "expires_at": aware(cred.expires_after)}
        if isinstance(cred, AzureRefreshableCredential.AccessKey):
            return {"access_key": cred.key, "expires_at": aware(cred.expires_after)}
        if isinstance(cred, AzureRefreshableCredential.SasToken):
            return {"sas_token": cred.token, "expires_at": aware(cred.expires_after)}
        raise IcechunkError(
            f"the credentials callable returned {type(cred).__name__}; it must return "
            "S3StaticCredentials (S3), GcsBearerCredential (GCS) or an "
            "AzureRefreshableCredential variant (Azure)",
            kind="invalid-credentials",
        )


def aware(when: datetime | None) -> datetime | None:
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=UTC)


def _expired(when: datetime | None) -> bool:
    found = aware(when)
    return found is not None and found <= datetime.now(UTC)


# The write checksums obstore's S3 client computes, by its names. icechunk 2.x's AWS SDK also
# offers CRC32, CRC32C and SHA-1, which this client cannot send.
_CHECKSUMS = {ChecksumAlgorithm.Sha256: "sha256", ChecksumAlgorithm.Crc64Nvme: "crc64nvme"}


def checksum_setting(algorithm: ChecksumAlgorithm | None) -> str | None:
    """obstore's ``checksum_algorithm`` value for ``algorithm`` (None: no checksum).

    Raises
    ------
    IcechunkError
        For an algorithm the S3 client cannot compute (kind ``storage-config``).
    """
    if algorithm is None:
        return None
    found = _CHECKSUMS.get(algorithm)
    if found is None:
        names = " or ".join(f"ChecksumAlgorithm.{a.name}" for a in _CHECKSUMS)
        raise IcechunkError(
            f"storage configuration error: pyicechunk's S3 client cannot send "
            f"ChecksumAlgorithm.{algorithm.name} checksums; use {names}, or leave "
            "checksum_algorithm unset to send none",
            kind="storage-config",
        )
    return found


def build_s3_store(spec: ObjectStoreSpec, eff: EffectiveStorageSettings) -> Any:
    opts = spec.options or S3Options()
    config: dict[str, Any] = {"conditional_put": "etag"}
    checksum = checksum_setting(opts.checksum_algorithm)
    if checksum is not None:
        # object_store sends the payload's x-amz-checksum-<algorithm> header on every PUT.
        config["checksum_algorithm"] = checksum
    if opts.region is not None:
        config["region"] = opts.region
    if opts.endpoint_url is not None:
        config["endpoint"] = opts.endpoint_url
    if opts.force_path_style:
        config["virtual_hosted_style_request"] = False
    if opts.requester_pays:
        config["request_payer"] = True
    provider = None
    creds = spec.credentials
    if opts.anonymous or isinstance(creds, S3Credentials.Anonymous):
        config["skip_signature"] = True
    elif isinstance(creds, S3Credentials.Static):
        c = creds.credentials
        config["access_key_id"] = c.access_key_id
        config["secret_access_key"] = c.secret_access_key
        if c.session_token is not None:
            config["session_token"] = c.session_token
    elif isinstance(creds, S3Credentials.Refreshable):
        provider = _RefreshingProvider(creds)
    return _open_store(
        "S3Store",
        spec,
        eff,
        config,
        _client_options(spec, opts.allow_http, opts.network_stream_timeout_seconds),
        provider,
    )


# Where each fixed GCS or Azure credential goes: the store's config key, and the attribute of
# the credential that holds its value.
_STATIC_CONFIG: dict[type, tuple[str, str]] = {
    GcsStaticCredentials.ServiceAccount: ("service_account", "path"),
    GcsStaticCredentials.ServiceAccountKey: ("service_account_key", "key"),
    GcsStaticCredentials.ApplicationCredentials: ("application_credentials", "path"),
    GcsStaticCredentials.BearerToken: ("bearer_token", "token"),
    AzureStaticCredentials.AccessKey: ("account_key", "key"),
    AzureStaticCredentials.SasToken: ("sas_key", "token"),
    AzureStaticCredentials.BearerToken: ("token", "token"),
}


def _blob_credentials(creds: Any, config: dict[str, Any]) -> _RefreshingProvider | None:
    """Put GCS or Azure credentials into the store's ``config``; the provider of refreshable ones.

    Credentials from the environment (and none) add nothing: the store reads the environment.
    """
    if isinstance(creds, GcsCredentials.Anonymous | AzureCredentials.Anonymous):
        config["skip_signature"] = True
    elif isinstance(creds, GcsCredentials.Static | AzureCredentials.Static):
        fixed = creds.credentials
        found = _STATIC_CONFIG.get(type(fixed))
        if found is None:
            raise IcechunkError(
                f"{type(fixed).__name__} is not a fixed GCS or Azure credential; pass a "
                "GcsStaticCredentials or AzureStaticCredentials variant",
                kind="invalid-credentials",
            )
        key, attribute = found
        config[key] = getattr(fixed, attribute)
    elif isinstance(creds, GcsCredentials.Refreshable | AzureCredentials.Refreshable):
        return _RefreshingProvider(creds)
    return None


def build_gcs_store(spec: ObjectStoreSpec, eff: EffectiveStorageSettings) -> Any:
    config, client = _split_config(spec.config)
    provider = _blob_credentials(spec.credentials, config)
    return _open_store(
        "GCSStore", spec, eff, config, _client_options(spec, False, None, client), provider
    )


def build_azure_store(spec: ObjectStoreSpec, eff: EffectiveStorageSettings) -> Any:
    store_config, client = _split_config(spec.config)
    config: dict[str, Any] = {"account_name": spec.account, **store_config}
    provider = _blob_credentials(spec.credentials, config)
    return _open_store(
        "AzureStore", spec, eff, config, _client_options(spec, False, None, client), provider
    )


# The HTTP client's options (object_store's ClientConfigKey names). The reference passes every
# entry of a GCS or Azure config to the store's builder, which takes these as client options;
# obstore wants them apart from the store's own keys (in its config they are silently ignored).
_CLIENT_KEYS = frozenset(
    {
        "allow_http",
        "allow_invalid_certificates",
        "connect_timeout",
        "default_content_type",
        "http1_only",
        "http2_only",
        "http2_keep_alive_interval",
        "http2_keep_alive_timeout",
        "http2_keep_alive_while_idle",
        "http2_max_frame_size",
        "pool_idle_timeout",
        "pool_max_idle_per_host",
        "proxy_url",
        "proxy_ca_certificate",
        "proxy_excludes",
        "randomize_addresses",
        "timeout",
        "user_agent",
    }
)


def _split_config(config: dict[str, str] | None) -> tuple[dict[str, Any], dict[str, str]]:
    """A GCS or Azure config as (the store's own keys, the HTTP client's options)."""
    store: dict[str, Any] = {}
    client: dict[str, str] = {}
    for key, value in (config or {}).items():
        (client if key in _CLIENT_KEYS else store)[key] = value
    return store, client


def _client_options(
    spec: ObjectStoreSpec,
    allow_http: bool,
    timeout: int | None,
    configured: dict[str, str] | None = None,
) -> Any:
    options: dict[str, Any] = {"allow_http": allow_http}
    if timeout:  # 0 disables the stalled-stream timeout
        options["read_timeout"] = timedelta(seconds=timeout)
    if spec.extra_headers:
        options["default_headers"] = dict(spec.extra_headers)
    options.update(configured or {})
    return options


def _retry_config(eff: EffectiveStorageSettings) -> Any:
    return {
        "max_retries": eff.max_tries - 1,
        "backoff": {
            "init_backoff": timedelta(milliseconds=eff.initial_backoff_ms),
            "max_backoff": timedelta(milliseconds=max(eff.max_backoff_ms, 1)),
            "base": 2.0,
        },
    }


def _open_store(
    store_class: str,
    spec: ObjectStoreSpec,
    eff: EffectiveStorageSettings,
    config: dict[str, Any],
    client_options: Any,
    provider: _RefreshingProvider | None,
) -> Any:
    """obstore's ``store_class`` on the spec's bucket and prefix, retrying as ``eff`` says."""
    return getattr(load_obstore().store, store_class)(
        spec.bucket,
        prefix=spec.prefix or None,
        config=config,
        client_options=client_options,
        retry_config=_retry_config(eff),
        credential_provider=provider,
    )


_BUILDERS = {
    "s3": build_s3_store,
    "s3_object_store": build_s3_store,
    "gcs": build_gcs_store,
    "azure": build_azure_store,
}


def build_store(spec: ObjectStoreSpec, eff: EffectiveStorageSettings) -> Any:
    """The obstore client for ``spec``, with the effective storage settings ``eff``."""
    return _BUILDERS[spec.kind](spec, eff)
