"""Who is using a repository: :class:`Attribution` labels, and :func:`user_agent`.

icechunk 2.x appends these labels to the User-Agent of a repository's storage requests, so an
operator reading access logs can tell clients, workloads and principals apart. pyicechunk
validates and keeps them as the reference does (``Repository.attribution``); its storage
requests carry the HTTP client's own User-Agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyicechunk._version import __version__
from pyicechunk.config import rust_debug_str

__all__ = ["Attribution", "user_agent"]

_MAX_BYTES = 128
# RFC 9110 token characters, the only ones a product token may hold.
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_FORBIDDEN = frozenset('()\\;="')


def user_agent() -> str:
    """This library's name and version as one User-Agent product token."""
    return f"pyicechunk-{__version__}"


def _check_str(field: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"'{type(value).__name__}' object is not an instance of 'str'")
    if len(value.encode()) > _MAX_BYTES:
        raise ValueError(f"attribution `{field}` is longer than {_MAX_BYTES} bytes")
    return value


def _check_client(value: Any) -> str | None:
    checked = _check_str("client", value)
    if checked is None:
        return None
    parts = checked.split("/")
    if len(parts) > 2 or not all(part and set(part) <= _TOKEN for part in parts):
        raise ValueError(
            "attribution `client` must be `name` or `name/version` in token characters, "
            f"got {rust_debug_str(checked)}"
        )
    return checked


def _check_label(field: str, value: Any) -> str | None:
    checked = _check_str(field, value)
    for ch in checked or "":
        if ch in _FORBIDDEN or not " " <= ch <= "~":
            raise ValueError(f"attribution `{field}` contains the forbidden character '{ch}'")
    return checked


@dataclass(frozen=True, slots=True, init=False)
class Attribution:
    """Labels naming who uses a repository (pass to ``Repository.create`` / ``open``).

    Parameters
    ----------
    client
        The application: ``name`` or ``name/version``, in HTTP token characters.
    workload
        What it is doing (a job or pipeline name): printable ASCII without ``( ) \\ ; = "``.
    principal
        On whose behalf: the same characters as ``workload``.

    Each is at most 128 bytes.

    Raises
    ------
    TypeError
        A label is not a str.
    ValueError
        A label is too long or contains a character it may not.
    """

    client: str | None
    workload: str | None
    principal: str | None

    def __init__(
        self,
        *,
        client: str | None = None,
        workload: str | None = None,
        principal: str | None = None,
    ) -> None:
        object.__setattr__(self, "client", _check_client(client))
        object.__setattr__(self, "workload", _check_label("workload", workload))
        object.__setattr__(self, "principal", _check_label("principal", principal))

    def __repr__(self) -> str:
        def show(value: str | None) -> str:
            return "None" if value is None else rust_debug_str(value)

        return (
            f"icechunk.Attribution(\n    client={show(self.client)},\n"
            f"    workload={show(self.workload)},\n    principal={show(self.principal)},\n)"
        )

    def __str__(self) -> str:
        return (
            f"<icechunk.Attribution>\nclient: {self.client}\nworkload: {self.workload}\n"
            f"principal: {self.principal}"
        )
