"""The constructors users call for a :class:`~pyicechunk.storage.Storage`, one per kind of store.

The S3 family (S3 and compatible stores, Tigris, R2) takes the same connection and credential
arguments; :func:`_s3_family` turns them into the options and the credential every one of them
passes on, so each constructor states only its own signature and defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pyicechunk.storage.handle import Storage

if TYPE_CHECKING:
    from pyicechunk.config import ChecksumAlgorithm, S3Options
    from pyicechunk.credentials import AnyS3Credential, GcsBearerCredential, S3StaticCredentials

__all__ = [
    "azure_storage",
    "gcs_storage",
    "hf_storage",
    "http_storage",
    "in_memory_storage",
    "local_filesystem_storage",
    "r2_storage",
    "redirect_storage",
    "s3_object_store_storage",
    "s3_storage",
    "tigris_storage",
]

# The S3-family constructors' arguments that choose the credential; the options are the others
# that S3Options takes.
_S3_CREDENTIAL_ARGS = (
    "access_key_id",
    "secret_access_key",
    "session_token",
    "expires_after",
    "anonymous",
    "from_env",
    "get_credentials",
    "scatter_initial_credentials",
)
# The arguments of gcs_storage and azure_storage that choose their credential.
_GCS_CREDENTIAL_ARGS = (
    "service_account_file",
    "service_account_key",
    "application_credentials",
    "bearer_token",
    "from_env",
    "anonymous",
    "get_credentials",
    "scatter_initial_credentials",
)
_AZURE_CREDENTIAL_ARGS = ("access_key", "sas_token", "bearer_token", "from_env", "anonymous")
# The extra-header arguments of the object-store constructors.
_HEADER_ARGS = ("read_headers", "write_headers", "headers")


def _pick(args: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The entries of ``args``, a constructor's ``locals()``, that ``names`` lists: the
    arguments it passes on. A name the constructor does not take is left out, so that the
    callee's default stands."""
    return {k: args[k] for k in names if k in args}


def _s3_family(args: Mapping[str, Any]) -> tuple[S3Options, AnyS3Credential]:
    """The options and the credential an S3-family constructor's arguments ``args`` describe.

    Raises
    ------
    ValueError
        If the credential arguments conflict.
    """
    from pyicechunk.config import S3_OPTION_ARGS, s3_options_from
    from pyicechunk.credentials import s3_credentials

    credentials = s3_credentials(**_pick(args, _S3_CREDENTIAL_ARGS))
    # ``anonymous`` chooses the credential here, it is not passed on as an option.
    options = s3_options_from(args, (n for n in S3_OPTION_ARGS if n not in _S3_CREDENTIAL_ARGS))
    return options, credentials


def in_memory_storage() -> Storage:
    """Create storage that keeps every object in this process's memory.

    Each call gives a new, empty store. It is for tests and experiments: nothing survives the
    process, and a pickled copy only shares the data when unpickled in the same process.

    Returns
    -------
    Storage
        The new storage.
    """
    return Storage.new_in_memory()


def local_filesystem_storage(path: str, *, durable: bool | None = None) -> Storage:
    """Create storage that keeps objects as files under a local directory.

    Unlike icechunk 1.1, several threads or processes may commit to the same repository safely:
    branch updates are compare-and-swap operations under an OS file lock.

    Parameters
    ----------
    path
        The repository directory. A relative path is resolved against the current directory
        now; missing directories are created when the first object is written.
    durable
        True: a commit is on disk (fsynced) before it returns, so it survives a power loss.
        False: nothing is synced, as in icechunk; a commit survives a crash of the process but
        maybe not of the machine. Commits stay atomic and safe to run concurrently either way.
        None (the default): the ``PYICECHUNK_DURABLE`` environment variable (``0`` or ``1``),
        else True.

    Returns
    -------
    Storage
        The new storage.
    """
    return Storage.new_local_filesystem(path, durable=durable)


def s3_storage(
    *,
    bucket: str,
    prefix: str | None,
    region: str | None = None,
    endpoint_url: str | None = None,
    allow_http: bool = False,
    checksum_algorithm: ChecksumAlgorithm | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    expires_after: datetime | None = None,
    anonymous: bool | None = None,
    from_env: bool | None = None,
    get_credentials: Callable[[], S3StaticCredentials] | None = None,
    scatter_initial_credentials: bool = False,
    force_path_style: bool = False,
    network_stream_timeout_seconds: int = 60,
    requester_pays: bool = False,
    read_headers: dict[str, str] | None = None,
    write_headers: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Storage:
    """Create storage in an S3 or S3-compatible bucket.

    Parameters
    ----------
    bucket
        The bucket.
    prefix
        The repository's key prefix inside the bucket (None: the bucket root).
    region, endpoint_url, allow_http, force_path_style
        Connection options; see :class:`~pyicechunk.S3Options`.
    network_stream_timeout_seconds, requester_pays
        More connection options; a timeout of 0 disables it.
    checksum_algorithm
        The checksum every write carries (``Sha256`` or ``Crc64Nvme``); None sends none.
    access_key_id, secret_access_key, session_token, expires_after
        Fixed credentials.
    anonymous, from_env, get_credentials, scatter_initial_credentials
        Other credential kinds; :func:`pyicechunk.credentials.s3_credentials` picks one.
    read_headers, write_headers, headers
        Extra HTTP headers for reads (GET, HEAD, list), for writes (PUT, DELETE), and for
        both; a role's own map wins on a name both give.

    Returns
    -------
    Storage

    Raises
    ------
    ValueError
        If the credential arguments conflict, or a header is not valid HTTP.
    """
    options, credentials = _s3_family(locals())
    return Storage.new_s3(options, bucket, prefix, credentials, **_pick(locals(), _HEADER_ARGS))


def hf_storage(
    *,
    bucket: str,
    prefix: str | None,
    namespace: str,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    expires_after: datetime | None = None,
    from_env: bool | None = None,
    get_credentials: Callable[[], S3StaticCredentials] | None = None,
    scatter_initial_credentials: bool = False,
    network_stream_timeout_seconds: int = 60,
    legacy_rooted_keys: bool | None = None,
    read_headers: dict[str, str] | None = None,
    write_headers: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Storage:
    """Create storage in a Hugging Face Storage Bucket, through its S3-compatible gateway.

    The gateway keeps no object metadata, where a conditional write records the id that tells a
    lost response apart from a conflict; a commit whose response is lost then reports a
    conflict that did not happen (as with icechunk 2.x), and retrying it is safe.

    Parameters
    ----------
    bucket
        The bucket's name, without the namespace.
    prefix
        The repository's key prefix inside the bucket.
    namespace
        The bucket's owner: a Hugging Face user or organization.
    access_key_id, secret_access_key, session_token, expires_after
        The S3 credentials generated from a Hugging Face access token.
    from_env, get_credentials, scatter_initial_credentials
        Other credential kinds; :func:`pyicechunk.credentials.s3_credentials` picks one.
    network_stream_timeout_seconds
        Timeout for stalled network streams; 0 disables it.
    legacy_rooted_keys
        icechunk 2.x's leading-slash key layout, which pyicechunk refuses when set.
    read_headers, write_headers, headers
        Extra HTTP headers for reads (GET, HEAD, list), for writes (PUT, DELETE), and for
        both; a role's own map wins on a name both give.

    Returns
    -------
    Storage

    Raises
    ------
    ValueError
        If the credential arguments conflict, the namespace is not a name, or an unsupported
        option is set.
    """
    options, credentials = _s3_family(locals())
    return Storage.new_hf(
        options,
        bucket,
        prefix,
        namespace,
        credentials,
        legacy_rooted_keys,
        read_headers=read_headers,
        write_headers=write_headers,
        headers=headers,
    )


def http_storage(
    base_url: str,
    opts: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Storage:
    """Create read-only storage for a repository published over HTTP(S).

    Any web server that serves the repository's files works: objects are read with GET and
    HEAD requests under ``base_url``. Every write is refused (kind ``read-only-storage``), and
    operations that list objects are not available.

    Parameters
    ----------
    base_url
        The repository's URL.
    opts
        icechunk 2.x's HTTP client options; pyicechunk takes none and refuses them.
    headers
        Sent with every request (an ``Authorization`` header, say).

    Returns
    -------
    Storage

    Raises
    ------
    ValueError
        The URL is not http(s), or client options were given.
    """
    return Storage.new_http(base_url, opts, headers)


def redirect_storage(base_url: str) -> Storage:
    """Create read-only storage at the location ``base_url`` redirects to.

    A GET of ``base_url`` must answer with a redirect (followed up to ten times) whose
    ``Location`` names the storage: ``s3://bucket/prefix?region=R``,
    ``r2://bucket/prefix?account_id=A``, ``tigris://bucket/prefix``, ``gs://bucket/prefix``
    (anonymous access), or ``http+icechunk://host/path`` (and ``https+icechunk://``,
    ``http+ic://``, ``https+ic://``) for a repository served over HTTP. It is resolved on first
    use.

    Returns
    -------
    Storage

    Raises
    ------
    ValueError
        ``base_url`` is not http(s).
    """
    return Storage.new_redirect(base_url)


def s3_object_store_storage(
    *,
    bucket: str,
    prefix: str | None,
    region: str | None = None,
    endpoint_url: str | None = None,
    allow_http: bool = False,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    expires_after: datetime | None = None,
    anonymous: bool | None = None,
    from_env: bool | None = None,
    force_path_style: bool = False,
    read_headers: dict[str, str] | None = None,
    write_headers: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Storage:
    """Create S3 storage through the generic object-store backend (see :func:`s3_storage`).

    Parameters
    ----------
    read_headers, write_headers, headers
        Extra HTTP headers for reads (GET, HEAD, list), for writes (PUT, DELETE), and for
        both; a role's own map wins on a name both give.

    Returns
    -------
    Storage

    Raises
    ------
    ValueError
        If the credential arguments conflict.
    """
    options, credentials = _s3_family(locals())
    return Storage.new_s3_object_store(
        options, bucket, prefix, credentials, **_pick(locals(), _HEADER_ARGS)
    )


def tigris_storage(
    *,
    bucket: str,
    prefix: str | None,
    region: str | None = None,
    endpoint_url: str | None = None,
    use_weak_consistency: bool = False,
    allow_http: bool = False,
    checksum_algorithm: ChecksumAlgorithm | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    expires_after: datetime | None = None,
    anonymous: bool | None = None,
    from_env: bool | None = None,
    get_credentials: Callable[[], S3StaticCredentials] | None = None,
    scatter_initial_credentials: bool = False,
    network_stream_timeout_seconds: int = 60,
    read_headers: dict[str, str] | None = None,
    write_headers: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Storage:
    """Create storage in a Tigris bucket (default endpoint ``https://t3.storage.dev``).

    Parameters
    ----------
    region
        Required unless ``use_weak_consistency``: requests pin it for consistent reads.
    use_weak_consistency
        Eventually consistent, read-only storage without a region (experts only).
    read_headers, write_headers, headers
        Extra HTTP headers for reads (GET, HEAD, list), for writes (PUT, DELETE), and for
        both; a role's own map wins on a name both give.

    Returns
    -------
    Storage

    Raises
    ------
    IcechunkError
        If there is no region and ``use_weak_consistency`` is false.
    ValueError
        If the credential arguments conflict.
    """
    options, credentials = _s3_family(locals())
    return Storage.new_tigris(
        options, bucket, prefix, use_weak_consistency, credentials, **_pick(locals(), _HEADER_ARGS)
    )


def r2_storage(
    *,
    bucket: str | None = None,
    prefix: str | None = None,
    account_id: str | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    allow_http: bool = False,
    checksum_algorithm: ChecksumAlgorithm | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    expires_after: datetime | None = None,
    anonymous: bool | None = None,
    from_env: bool | None = None,
    get_credentials: Callable[[], S3StaticCredentials] | None = None,
    scatter_initial_credentials: bool = False,
    network_stream_timeout_seconds: int = 60,
    read_headers: dict[str, str] | None = None,
    write_headers: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Storage:
    """Create storage in a Cloudflare R2 bucket.

    Parameters
    ----------
    bucket
        The bucket; without it the first segment of ``prefix`` names the bucket.
    account_id
        Gives the endpoint ``https://<account_id>.r2.cloudflarestorage.com``.
    endpoint_url
        An explicit endpoint; one of it and ``account_id`` is required.
    read_headers, write_headers, headers
        Extra HTTP headers for reads (GET, HEAD, list), for writes (PUT, DELETE), and for
        both; a role's own map wins on a name both give.

    Returns
    -------
    Storage

    Raises
    ------
    IcechunkError
        If neither ``endpoint_url`` nor ``account_id`` is given, or neither bucket nor prefix.
    ValueError
        If the credential arguments conflict.
    """
    options, credentials = _s3_family(locals())
    return Storage.new_r2(
        bucket, prefix, account_id, credentials, config=options, **_pick(locals(), _HEADER_ARGS)
    )


def gcs_storage(
    *,
    bucket: str,
    prefix: str | None,
    service_account_file: str | None = None,
    service_account_key: str | None = None,
    application_credentials: str | None = None,
    bearer_token: str | None = None,
    anonymous: bool | None = None,
    from_env: bool | None = None,
    config: dict[str, str] | None = None,
    get_credentials: Callable[[], GcsBearerCredential] | None = None,
    scatter_initial_credentials: bool = False,
    read_headers: dict[str, str] | None = None,
    write_headers: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Storage:
    """Create storage in a Google Cloud Storage bucket.

    Credentials are chosen by :func:`pyicechunk.credentials.gcs_credentials`; ``config``
    passes extra store options.

    Parameters
    ----------
    read_headers, write_headers, headers
        Extra HTTP headers for reads (GET, HEAD, list), for writes (PUT, DELETE), and for
        both; a role's own map wins on a name both give.

    Returns
    -------
    Storage

    Raises
    ------
    ValueError
        If the credential arguments conflict.
    """
    from pyicechunk.credentials import gcs_credentials

    credentials = gcs_credentials(**_pick(locals(), _GCS_CREDENTIAL_ARGS))
    return Storage.new_gcs(
        bucket, prefix, credentials, config=config, **_pick(locals(), _HEADER_ARGS)
    )


def azure_storage(
    *,
    account: str,
    container: str,
    prefix: str,
    access_key: str | None = None,
    sas_token: str | None = None,
    bearer_token: str | None = None,
    from_env: bool | None = None,
    anonymous: bool | None = None,
    config: dict[str, str] | None = None,
) -> Storage:
    """Create storage in an Azure Blob Storage container.

    Credentials are chosen by :func:`pyicechunk.credentials.azure_credentials`.

    Returns
    -------
    Storage

    Raises
    ------
    ValueError
        If the credential arguments conflict.
    """
    from pyicechunk.credentials import azure_credentials

    credentials = azure_credentials(**_pick(locals(), _AZURE_CREDENTIAL_ARGS))
    return Storage.new_azure_blob(account, container, prefix, credentials, config=config)
