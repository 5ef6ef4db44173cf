"""Credentials for S3, GCS and Azure storage, with the same classes and helpers as icechunk 1.1.

The helpers (:func:`s3_credentials`, :func:`gcs_credentials`, :func:`azure_credentials`, ...)
pick a credential kind from their keyword arguments with the reference's rules, in the same
order, and raise the same ``ValueError`` texts. Refreshable credentials hold a *pickled* callable,
so that a repository pickled to another process takes its way of fetching credentials with it.

Nothing here prints a secret except :class:`S3StaticCredentials`, whose repr the reference
defines with its fields; storage reprs never include credentials.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

__all__ = [
    "AnyAzureCredential",
    "AnyAzureStaticCredential",
    "AnyCredential",
    "AnyGcsCredential",
    "AnyGcsStaticCredential",
    "AnyS3Credential",
    "AnyAzureRefreshableCredential",
    "AzureCredentials",
    "AzureRefreshableCredential",
    "AzureStaticCredentials",
    "Credentials",
    "GcsBearerCredential",
    "GcsCredentials",
    "GcsStaticCredentials",
    "S3Credentials",
    "S3StaticCredentials",
    "azure_anonymous_credentials",
    "azure_credentials",
    "azure_refreshable_credentials",
    "azure_from_env_credentials",
    "azure_static_credentials",
    "containers_credentials",
    "gcs_credentials",
    "gcs_from_env_credentials",
    "gcs_refreshable_credentials",
    "gcs_static_credentials",
    "s3_anonymous_credentials",
    "s3_credentials",
    "s3_from_env_credentials",
    "s3_refreshable_credentials",
    "s3_static_credentials",
]


@dataclass(slots=True, eq=False, repr=False)
class S3StaticCredentials:
    """An access key pair for S3, optionally with a session token and an expiry.

    Parameters
    ----------
    access_key_id
        The access key id.
    secret_access_key
        The secret access key.
    session_token
        A temporary session token.
    expires_after
        When the credentials stop being valid; None means never.
    """

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    expires_after: datetime | None = None

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.access_key_id, self.secret_access_key, self.session_token, self.expires_after)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        (self.access_key_id, self.secret_access_key, self.session_token, self.expires_after) = state

    def __repr__(self) -> str:
        # icechunk 1.1's layout, with icechunk 2's masking: secrets never reach a repr, a log
        # line or an error message; the first characters of the key id say which key it is.
        token = "None" if self.session_token is None else '"****"'
        expires = "None" if self.expires_after is None else str(self.expires_after)
        return (
            f'S3StaticCredentials(access_key_id="{self.access_key_id[:4]}****", '
            f'secret_access_key="****", session_token={token}, expires_after={expires})'
        )


class _Refreshable:
    """A pickled credential getter, plus the credential it last returned (if scattered)."""

    def __init__(self, pickled_function: bytes, current: Any = None) -> None:
        self.pickled_function = pickled_function
        self.current = current

    @classmethod
    def _fetched_by(
        cls, get_credentials: Callable[[], Any], scatter_initial_credentials: bool
    ) -> Self:
        """Credentials that ``get_credentials`` fetches, called once now if
        ``scatter_initial_credentials`` (the value travels with pickles).

        Raises
        ------
        pickle.PicklingError
            If ``get_credentials`` cannot be pickled.
        """
        current = get_credentials() if scatter_initial_credentials else None
        return cls(pickle.dumps(get_credentials), current)

    def getter(self) -> Callable[[], Any]:
        """The credential function, unpickled."""
        getter: Callable[[], Any] = pickle.loads(self.pickled_function)
        return getter


class S3Credentials:
    """The kinds of S3 credentials (namespace of classes, as in the reference)."""

    class FromEnv:
        """Take credentials from the environment (variables, profile, instance metadata)."""

    class Anonymous:
        """Send unsigned requests."""

    class Static:
        """Fixed credentials."""

        def __init__(self, credentials: S3StaticCredentials) -> None:
            self.credentials = credentials

    class Refreshable(_Refreshable):
        """Credentials fetched, and fetched again before they expire, by a pickled callable."""


class GcsBearerCredential:
    """A bearer token for Google Cloud Storage.

    Parameters
    ----------
    bearer
        The token.
    expires_after
        When the token stops being valid; None means never.
    """

    def __init__(self, bearer: str, *, expires_after: datetime | None = None) -> None:
        self.bearer = bearer
        self.expires_after = expires_after


class GcsStaticCredentials:
    """The kinds of fixed GCS credentials."""

    class ServiceAccount:
        """A service account JSON file."""

        def __init__(self, path: str) -> None:
            self.path = path

    class ServiceAccountKey:
        """A service account key, as JSON text."""

        def __init__(self, key: str) -> None:
            self.key = key

    class ApplicationCredentials:
        """An application default credentials file."""

        def __init__(self, path: str) -> None:
            self.path = path

    class BearerToken:
        """A fixed bearer token."""

        def __init__(self, token: str) -> None:
            self.token = token


class GcsCredentials:
    """The kinds of GCS credentials."""

    class Anonymous:
        """Send unsigned requests."""

    class FromEnv:
        """Take credentials from the environment."""

    class Static:
        """Fixed credentials."""

        def __init__(self, credentials: AnyGcsStaticCredential) -> None:
            self.credentials = credentials

    class Refreshable(_Refreshable):
        """Bearer tokens fetched, and fetched again before they expire, by a pickled callable."""


class AzureStaticCredentials:
    """The kinds of fixed Azure credentials."""

    class AccessKey:
        """A storage account access key."""

        def __init__(self, key: str) -> None:
            self.key = key

    class SasToken:
        """A shared access signature."""

        def __init__(self, token: str) -> None:
            self.token = token

    class BearerToken:
        """A bearer token."""

        def __init__(self, token: str) -> None:
            self.token = token


class AzureRefreshableCredential:
    """What the getter of refreshable Azure credentials returns: one credential, valid until
    ``expires_after`` (None: no expiry)."""

    class AccessKey:
        """A storage account access key."""

        def __init__(self, key: str, *, expires_after: datetime | None = None) -> None:
            self.key = key
            self.expires_after = expires_after

    class SasToken:
        """A shared access signature."""

        def __init__(self, token: str, *, expires_after: datetime | None = None) -> None:
            self.token = token
            self.expires_after = expires_after

    class BearerToken:
        """A bearer token."""

        def __init__(self, bearer: str, *, expires_after: datetime | None = None) -> None:
            self.bearer = bearer
            self.expires_after = expires_after


class AzureCredentials:
    """The kinds of Azure credentials."""

    class FromEnv:
        """Take credentials from the environment."""

    class Anonymous:
        """Send unsigned requests (public containers)."""

    class Static:
        """Fixed credentials."""

        def __init__(self, credentials: AnyAzureStaticCredential) -> None:
            self.credentials = credentials

    class Refreshable(_Refreshable):
        """Credentials fetched, and fetched again before they expire, by a pickled callable
        returning an :class:`AzureRefreshableCredential` variant."""


class Credentials:
    """Credentials for one virtual chunk container, tagged with their cloud."""

    class S3:
        """S3 credentials."""

        def __init__(self, credentials: AnyS3Credential) -> None:
            self.credentials = credentials

    class Gcs:
        """GCS credentials."""

        def __init__(self, credentials: AnyGcsCredential) -> None:
            self.credentials = credentials

    class Azure:
        """Azure credentials."""

        def __init__(self, credentials: AnyAzureCredential) -> None:
            self.credentials = credentials


AnyS3Credential = (
    S3Credentials.Static
    | S3Credentials.Anonymous
    | S3Credentials.FromEnv
    | S3Credentials.Refreshable
)
AnyGcsStaticCredential = (
    GcsStaticCredentials.ServiceAccount
    | GcsStaticCredentials.ServiceAccountKey
    | GcsStaticCredentials.ApplicationCredentials
    | GcsStaticCredentials.BearerToken
)
AnyGcsCredential = (
    GcsCredentials.Anonymous
    | GcsCredentials.FromEnv
    | GcsCredentials.Static
    | GcsCredentials.Refreshable
)
AnyAzureStaticCredential = (
    AzureStaticCredentials.AccessKey
    | AzureStaticCredentials.SasToken
    | AzureStaticCredentials.BearerToken
)
AnyAzureCredential = (
    AzureCredentials.FromEnv
    | AzureCredentials.Anonymous
    | AzureCredentials.Static
    | AzureCredentials.Refreshable
)
AnyAzureRefreshableCredential = (
    AzureRefreshableCredential.AccessKey
    | AzureRefreshableCredential.SasToken
    | AzureRefreshableCredential.BearerToken
)
AnyCredential = Credentials.S3 | Credentials.Gcs | Credentials.Azure


def s3_refreshable_credentials(
    get_credentials: Callable[[], S3StaticCredentials], scatter_initial_credentials: bool = False
) -> S3Credentials.Refreshable:
    """Credentials that a callable fetches, and fetches again shortly before they expire.

    Parameters
    ----------
    get_credentials
        Returns fresh :class:`S3StaticCredentials`. It must be picklable (no lambda or local
        function): it travels with pickled repositories and sessions.
    scatter_initial_credentials
        Call it once now and keep the result, so that pickled copies do not all call it again
        before that result expires. The result travels with the pickles.

    Returns
    -------
    S3Credentials.Refreshable

    Raises
    ------
    pickle.PicklingError
        If ``get_credentials`` cannot be pickled.
    """
    return S3Credentials.Refreshable._fetched_by(get_credentials, scatter_initial_credentials)


def s3_static_credentials(
    *,
    access_key_id: str,
    secret_access_key: str,
    session_token: str | None = None,
    expires_after: datetime | None = None,
) -> S3Credentials.Static:
    """Fixed S3 credentials.

    Parameters
    ----------
    access_key_id, secret_access_key
        The key pair.
    session_token
        A temporary session token.
    expires_after
        When they stop being valid.

    Returns
    -------
    S3Credentials.Static
    """
    return S3Credentials.Static(
        S3StaticCredentials(access_key_id, secret_access_key, session_token, expires_after)
    )


def s3_anonymous_credentials() -> S3Credentials.Anonymous:
    """Unsigned S3 requests, for public buckets."""
    return S3Credentials.Anonymous()


def s3_from_env_credentials() -> S3Credentials.FromEnv:
    """S3 credentials from the environment (variables, profile, instance metadata)."""
    return S3Credentials.FromEnv()


def s3_credentials(
    *,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    expires_after: datetime | None = None,
    anonymous: bool | None = None,
    from_env: bool | None = None,
    get_credentials: Callable[[], S3StaticCredentials] | None = None,
    scatter_initial_credentials: bool = False,
) -> AnyS3Credential:
    """Pick the kind of S3 credentials that the arguments describe.

    With no arguments the credentials come from the environment.

    Parameters
    ----------
    access_key_id, secret_access_key, session_token, expires_after
        Fixed credentials (key and secret both required).
    anonymous
        Send unsigned requests.
    from_env
        Take credentials from the environment.
    get_credentials
        A picklable callable returning :class:`S3StaticCredentials`, called again before expiry.
    scatter_initial_credentials
        See :func:`s3_refreshable_credentials`.

    Returns
    -------
    AnyS3Credential

    Raises
    ------
    ValueError
        If the arguments mix kinds (for example a key without a secret, or anonymous with
        from_env).
    """
    no_static = (
        access_key_id is None
        and secret_access_key is None
        and session_token is None
        and expires_after is None
    )
    if no_static and (from_env is None or from_env) and not anonymous and get_credentials is None:
        return s3_from_env_credentials()
    if no_static and anonymous and not from_env and get_credentials is None:
        return s3_anonymous_credentials()
    if no_static and get_credentials is not None and not from_env and not anonymous:
        return s3_refreshable_credentials(get_credentials, scatter_initial_credentials)
    if (
        access_key_id
        and secret_access_key
        and not from_env
        and not anonymous
        and get_credentials is None
    ):
        return s3_static_credentials(
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            session_token=session_token,
            expires_after=expires_after,
        )
    raise ValueError("Conflicting arguments to s3_credentials function")


def gcs_static_credentials(
    *,
    service_account_file: str | None = None,
    service_account_key: str | None = None,
    application_credentials: str | None = None,
    bearer_token: str | None = None,
) -> AnyGcsStaticCredential:
    """Fixed GCS credentials: the first argument given wins, in parameter order.

    Returns
    -------
    AnyGcsStaticCredential

    Raises
    ------
    ValueError
        If every argument is None.
    """
    if service_account_file is not None:
        return GcsStaticCredentials.ServiceAccount(service_account_file)
    if service_account_key is not None:
        return GcsStaticCredentials.ServiceAccountKey(service_account_key)
    if application_credentials is not None:
        return GcsStaticCredentials.ApplicationCredentials(application_credentials)
    if bearer_token is not None:
        return GcsStaticCredentials.BearerToken(bearer_token)
    raise ValueError("Conflicting arguments to gcs_static_credentials function")


def gcs_refreshable_credentials(
    get_credentials: Callable[[], GcsBearerCredential], scatter_initial_credentials: bool = False
) -> GcsCredentials.Refreshable:
    """Bearer tokens that a picklable callable fetches, and fetches again before expiry.

    Returns
    -------
    GcsCredentials.Refreshable

    Raises
    ------
    pickle.PicklingError
        If ``get_credentials`` cannot be pickled.
    """
    return GcsCredentials.Refreshable._fetched_by(get_credentials, scatter_initial_credentials)


def gcs_anonymous_credentials() -> GcsCredentials.Anonymous:
    """Unsigned GCS requests, for public buckets."""
    return GcsCredentials.Anonymous()


def gcs_from_env_credentials() -> GcsCredentials.FromEnv:
    """GCS credentials from the environment."""
    return GcsCredentials.FromEnv()


def gcs_credentials(
    *,
    service_account_file: str | None = None,
    service_account_key: str | None = None,
    application_credentials: str | None = None,
    bearer_token: str | None = None,
    from_env: bool | None = None,
    anonymous: bool | None = None,
    get_credentials: Callable[[], GcsBearerCredential] | None = None,
    scatter_initial_credentials: bool = False,
) -> AnyGcsCredential:
    """Pick the kind of GCS credentials that the arguments describe.

    With no arguments the credentials come from the environment.

    Returns
    -------
    AnyGcsCredential

    Raises
    ------
    ValueError
        If the arguments mix kinds.
    """
    if anonymous:
        return gcs_anonymous_credentials()
    has_static = (
        service_account_file is not None
        or service_account_key is not None
        or application_credentials is not None
        or bearer_token is not None
    )
    if not has_static and (from_env is None or from_env):
        return gcs_from_env_credentials()
    if has_static and not from_env:
        return GcsCredentials.Static(
            gcs_static_credentials(
                service_account_file=service_account_file,
                service_account_key=service_account_key,
                application_credentials=application_credentials,
                bearer_token=bearer_token,
            )
        )
    if get_credentials is not None:
        return gcs_refreshable_credentials(get_credentials, scatter_initial_credentials)
    raise ValueError("Conflicting arguments to gcs_credentials function")


def azure_static_credentials(
    *,
    access_key: str | None = None,
    sas_token: str | None = None,
    bearer_token: str | None = None,
) -> AnyAzureStaticCredential:
    """Fixed Azure credentials; exactly one argument must be given.

    Returns
    -------
    AnyAzureStaticCredential

    Raises
    ------
    ValueError
        If none or several arguments are given.
    """
    if [access_key, sas_token, bearer_token].count(None) != 2:
        raise ValueError("Conflicting arguments to azure_static_credentials function")
    if access_key is not None:
        return AzureStaticCredentials.AccessKey(access_key)
    if sas_token is not None:
        return AzureStaticCredentials.SasToken(sas_token)
    assert bearer_token is not None
    return AzureStaticCredentials.BearerToken(bearer_token)


def azure_from_env_credentials() -> AzureCredentials.FromEnv:
    """Azure credentials from the environment."""
    return AzureCredentials.FromEnv()


def azure_anonymous_credentials() -> AzureCredentials.Anonymous:
    """Azure credentials for unsigned requests (public containers)."""
    return AzureCredentials.Anonymous()


def azure_refreshable_credentials(
    get_credentials: Callable[[], AnyAzureRefreshableCredential],
    scatter_initial_credentials: bool = False,
) -> AzureCredentials.Refreshable:
    """Azure credentials fetched by ``get_credentials``, again whenever they expire.

    Parameters
    ----------
    get_credentials
        A picklable function returning an :class:`AzureRefreshableCredential` variant.
    scatter_initial_credentials
        Call it now and keep the result, so pickled copies of the repository or session start
        with it instead of each calling the function (the value travels with the pickle).
    """
    return AzureCredentials.Refreshable._fetched_by(get_credentials, scatter_initial_credentials)


def azure_credentials(
    *,
    access_key: str | None = None,
    sas_token: str | None = None,
    bearer_token: str | None = None,
    from_env: bool | None = None,
    anonymous: bool | None = None,
    get_credentials: Callable[[], AnyAzureRefreshableCredential] | None = None,
    scatter_initial_credentials: bool = False,
) -> AnyAzureCredential:
    """Pick the kind of Azure credentials that the arguments describe, in icechunk 2.x's order:
    anonymous, then a getter (refreshable), then the environment or fixed credentials.

    Returns
    -------
    AnyAzureCredential

    Raises
    ------
    ValueError
        If the arguments mix kinds.
    """
    if anonymous:
        return azure_anonymous_credentials()
    if get_credentials is not None:
        return azure_refreshable_credentials(get_credentials, scatter_initial_credentials)
    has_static = access_key is not None or sas_token is not None or bearer_token is not None
    if not has_static and (from_env is None or from_env):
        return azure_from_env_credentials()
    if has_static and not from_env:
        return AzureCredentials.Static(
            azure_static_credentials(
                access_key=access_key, sas_token=sas_token, bearer_token=bearer_token
            )
        )
    raise ValueError("Conflicting arguments to azure_credentials function")


def containers_credentials(
    m: Mapping[str, AnyS3Credential | AnyGcsCredential | AnyAzureCredential | None],
) -> dict[str, AnyCredential | None]:
    """Tag credentials for virtual chunk containers with their cloud.

    Parameters
    ----------
    m
        Container URL prefix -> credentials (None for anonymous/none).

    Returns
    -------
    dict
        Prefix -> ``Credentials.S3``/``Credentials.Gcs``/``Credentials.Azure`` or None.

    Raises
    ------
    ValueError
        If a value is not a credential.
    """
    res: dict[str, AnyCredential | None] = {}
    for name, cred in m.items():
        if cred is None:
            res[name] = None
        elif isinstance(cred, AnyS3Credential):
            res[name] = Credentials.S3(cred)
        elif isinstance(cred, AnyGcsCredential):
            res[name] = Credentials.Gcs(cred)
        elif isinstance(cred, AnyAzureCredential):
            res[name] = Credentials.Azure(cred)
        else:
            raise ValueError(f"Unknown credential type {type(cred)}")
    return res
