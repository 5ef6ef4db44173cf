"""Virtual chunk locations: written in the reference's form, read into one parsed value.

A location is text in a manifest, and a manifest can come from anyone able to write to the
repository. Reading a virtual chunk must never touch anything outside the virtual chunk
containers the user authorized, and the way to guarantee that is to have exactly one meaning
for a location: :func:`parse_location` turns the stored text into a :class:`VirtualLocation`
(scheme, host, port, decoded path segments) once, and container matching
(:meth:`VirtualLocation.within`) and every fetcher use that value and never the text again. If
matching looked at one reading of the text and the fetch at another, a location could pass the
check for one place and be fetched from another (``file://%2Fdata%2F/etc/passwd`` matched
``file:///data/`` once percent-decoded, but read ``/etc/passwd``).

Whatever cannot be reduced to one unambiguous value is refused, so it never reaches a container
lookup, let alone a fetcher:

* user info (``user:password@host``): credentials come from ``authorize_virtual_chunk_access``,
  and a ``@`` in an authority is how a second host hides behind the first;
* hosts that are not plain: percent escapes are decoded once and the result must be an ASCII
  domain name, an IPv4 address (written any way the URL standard allows; compared in dotted
  form) or a bracketed IPv6 address for ``http(s)``/``file``, and a bucket or container name
  (letters, digits, ``.``, ``-``, ``_``) for the object stores; a ``file://`` location names no
  host at all;
* ports anywhere but ``http(s)``, where they are kept (the default port counts as none);
* path segments that do not name one file or key once percent-decoded: containing ``/``
  (``%2F``), a backslash, or a control character such as NUL; ``.`` and ``..`` (also written
  ``%2e``) are resolved first, and a ``..`` above the root is refused;
* control characters anywhere, and anything that is not ``scheme://authority/path``.

The query and fragment are dropped, as icechunk 1.1.21 does when it re-reads a stored location.

Writers store the form icechunk 1.1.21 writes (:func:`normalize_location`, FORMAT-V1 §5.2), so
that both implementations store the same bytes for the same call; the write-time container check
then parses that stored text with :func:`parse_location`, exactly as a later read will.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import string
import urllib.parse
from dataclasses import dataclass
from typing import Final

from pyicechunk.config import rust_debug_str
from pyicechunk.exceptions import IcechunkError

__all__ = ["VirtualLocation", "normalize_location", "parse_container_prefix", "parse_location"]

_SCHEME_RE: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_ESCAPE_RE: Final = re.compile(rb"%([0-9A-Fa-f]{2})")
# Schemes the WHATWG URL standard treats specially: "\" is a path separator, hosts are domains
# (percent-decoded, lower-cased, IPv4 numbers read), and an authority is implied.
_SPECIAL: Final = frozenset({"http", "https", "ws", "wss", "ftp", "file"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}
# The only fetchers for which a port means something.
_PORT_SCHEMES: Final = frozenset({"http", "https"})
# Characters the URL path percent-encode set escapes (besides controls and non-ASCII).
_PATH_ESCAPE: Final = frozenset(' "<>`{}')
_CONTROLS: Final = frozenset(chr(c) for c in (*range(0x20), 0x7F))
_FORBIDDEN_HOST: Final = frozenset("\0\t\n\r #/:<>?@[\\]^|")
_FORBIDDEN_DOMAIN: Final = _FORBIDDEN_HOST | _CONTROLS | {"%"}
_BUCKET_CHARS: Final = frozenset(string.ascii_letters + string.digits + ".-_")
_DECIMAL: Final = frozenset(string.digits)
_OCTAL: Final = frozenset(string.octdigits)
_HEX: Final = frozenset(string.hexdigits)
# Characters shown as they are when a parsed location is printed; everything else is escaped,
# so that the printed form reads back to the same value.
_SHOWN: Final = "!$&'()*+,;=:@~"


class _Invalid(ValueError):
    """Why a location cannot be parsed (wrapped into an IcechunkError by the entry points)."""


@dataclass(frozen=True, slots=True)
class VirtualLocation:
    """A virtual chunk location, parsed once: what is matched is what is fetched.

    Attributes
    ----------
    scheme
        Lower-cased, e.g. ``s3``, ``file``, ``https``.
    host
        The bucket, container or host name, percent-decoded; ``""`` for ``file``.
    port
        An explicit non-default port (``http(s)`` only), else None.
    segments
        The decoded path segments, none empty, ``.`` or ``..``, none containing ``/``, ``\\``
        or a control character.
    """

    scheme: str
    host: str
    port: int | None
    segments: tuple[str, ...]

    @property
    def key(self) -> str:
        """The object's path below the host: its key in a bucket, its path on a filesystem."""
        return "/".join(self.segments)

    @property
    def authority(self) -> str:
        """``host`` or ``host:port``."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def within(self, prefix: VirtualLocation) -> bool:
        """Whether this location names an object below ``prefix`` (a container's url prefix).

        Segment by segment, so ``s3://b/data/`` holds ``s3://b/data/x`` but not
        ``s3://b/database/x``, and never the prefix itself.
        """
        n = len(prefix.segments)
        return (
            self.scheme == prefix.scheme
            and self.host == prefix.host
            and self.port == prefix.port
            and len(self.segments) > n
            and self.segments[:n] == prefix.segments
        )

    def __str__(self) -> str:
        path = "/".join(urllib.parse.quote(s, safe=_SHOWN) for s in self.segments)
        return f"{self.scheme}://{self.authority}/{path}"


# --- pieces shared by writing and reading -------------------------------------------------------


def _percent_decode(text: str) -> str:
    """Decode ``%XX`` escapes once; a ``%`` not followed by two hex digits stays as it is."""
    if "%" not in text:
        return text
    raw = _ESCAPE_RE.sub(lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8"))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Invalid(f"{text!r} is not UTF-8 once percent-decoded") from None


def _dot_kind(segment: str) -> int:
    """1 for a "." segment, 2 for "..", 0 otherwise (percent-encoded dots count)."""
    lowered = segment.lower()
    if lowered in (".", "%2e"):
        return 1
    if lowered in ("..", ".%2e", "%2e.", "%2e%2e"):
        return 2
    return 0


def _split_host_port(host_port: str) -> tuple[str, str]:
    """An authority without user info, split into host and port text."""
    if host_port.startswith("["):
        end = host_port.find("]")
        if end == -1:
            raise _Invalid("invalid IPv6 address")
        rest = host_port[end + 1 :]
        if rest and not rest.startswith(":"):
            raise _Invalid("invalid IPv6 address")
        return host_port[: end + 1], rest[1:]
    host, _, port = host_port.partition(":")
    return host, port


def _port(text: str, scheme: str) -> int | None:
    """The port an authority names, None for none or the scheme's default one."""
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) > 0xFFFF:
        raise _Invalid("invalid port number")
    port = int(text)
    return None if _DEFAULT_PORTS.get(scheme) == port else port


def _ipv6(text: str) -> str:
    inner = text[1:-1]
    if "%" in inner:  # a zone id names a local network interface, not a host
        raise _Invalid("invalid IPv6 address")
    try:
        return f"[{ipaddress.IPv6Address(inner).compressed}]"
    except ValueError:
        raise _Invalid("invalid IPv6 address") from None


def _ipv4_number(part: str) -> int | None:
    """A part of an IPv4 host in decimal, ``0x`` hex or ``0`` octal; None if it is not one."""
    if not part:
        return None
    digits, allowed, radix = part, _DECIMAL, 10
    if part[:2] in ("0x", "0X"):
        digits, allowed, radix = part[2:], _HEX, 16
    elif len(part) > 1 and part[0] == "0":
        digits, allowed, radix = part[1:], _OCTAL, 8
    if not digits:
        return 0
    if not set(digits) <= allowed:
        return None
    return int(digits, radix)


def _ipv4(host: str) -> str | None:
    """The dotted-quad form of a host the URL standard reads as IPv4 (``0x7f.1``), else None."""
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    last = parts[-1]
    if not (last and set(last) <= _DECIMAL) and _ipv4_number(last) is None:
        return None  # a domain name: its last label is not a number
    numbers = [_ipv4_number(p) for p in parts]
    if len(numbers) > 4 or None in numbers:
        raise _Invalid("invalid IPv4 address")
    values = [n for n in numbers if n is not None]
    if any(n > 255 for n in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        raise _Invalid("invalid IPv4 address")
    address = values[-1] + sum(n << (8 * (3 - i)) for i, n in enumerate(values[:-1]))
    return str(ipaddress.IPv4Address(address))


def _domain(text: str, scheme: str) -> str:
    """The host of a special-scheme URL, as the URL standard reads it (IDNA aside)."""
    if text.startswith("["):
        return _ipv6(text)
    name = _percent_decode(text)
    if not name.isascii():
        raise _Invalid(
            f"the host {name!r} is not ASCII; write an internationalised domain name in its "
            "ASCII (xn--) form"
        )
    name = name.lower()
    if any(ch in _FORBIDDEN_DOMAIN for ch in name):
        raise _Invalid("invalid domain character")
    if scheme == "file" and name == "localhost":
        return ""
    if not name:
        if scheme == "file":
            return ""
        raise _Invalid("empty host")
    return _ipv4(name) or name


# --- writing ------------------------------------------------------------------------------------


def _parse_error(location: str, cause: str) -> IcechunkError:
    return IcechunkError(
        f"error parsing virtual ref URL: {rust_debug_str(location)} ({cause}); virtual chunk "
        "locations must be absolute URLs such as s3://bucket/file.nc or file:///data/file.nc",
        kind="invalid-virtual-ref",
    )


def _escape_segment(segment: str) -> str:
    out = []
    for ch in segment:
        if ch in _PATH_ESCAPE or ord(ch) < 0x20 or ord(ch) >= 0x7F:
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "".join(out)


def _written_host(scheme: str, authority: str) -> str:
    """The host a writer keeps (user info and port are dropped, as the reference does)."""
    _, at, host_port = authority.rpartition("@")
    host, port = _split_host_port(host_port)
    if scheme == "file" and (at or port):
        raise _Invalid("file URLs cannot have a user name, password or port")
    _port(port, scheme)  # validated, not kept
    if scheme in _SPECIAL:
        return _domain(host, scheme)
    if host.startswith("["):
        return _ipv6(host)
    if any(ch in _FORBIDDEN_HOST for ch in host):
        raise _Invalid("invalid domain character")
    return host


def normalize_location(location: str) -> str:
    """Return a virtual chunk location in the form the format stores (FORMAT-V1 §5.2).

    The location is parsed as a URL, as icechunk 1.1.21 parses it; query, fragment, user info
    and port are dropped, ``.`` and ``..`` segments are resolved, empty path segments are
    removed, and the result is ``scheme://host/segments``. ``file`` URLs may have an empty host;
    others must have one. This is the text that is stored; reading it back goes through
    :func:`parse_location`, which refuses more.

    Parameters
    ----------
    location
        The location as the user gave it, e.g. ``s3://bucket//dir/file.nc``.

    Returns
    -------
    str
        The normalised location, e.g. ``s3://bucket/dir/file.nc``.

    Raises
    ------
    IcechunkError
        If the location is not an absolute URL, has no path, has an invalid host or port, or
        (not ``file``) has no host.
    """
    text = location.strip("".join(chr(c) for c in range(0x21)))
    text = text.replace("\t", "").replace("\n", "").replace("\r", "")
    match = _SCHEME_RE.match(text)
    if match is None:
        raise _parse_error(location, "relative URL without a base")
    scheme = match.group(1).lower()
    rest = text[match.end() :].split("#", 1)[0].split("?", 1)[0]
    special = scheme in _SPECIAL
    if special:
        rest = rest.replace("\\", "/")
    host: str | None = None
    try:
        if special and scheme != "file":
            # http:foo/bar means http://foo/bar for special schemes
            authority, slash, path = rest.lstrip("/").partition("/")
            host = _written_host(scheme, authority)
            path = slash + path
        elif rest.startswith("//"):
            authority, slash, path = rest[2:].partition("/")
            host = _written_host(scheme, authority)
            path = slash + path
        else:
            path = rest
    except _Invalid as e:
        raise _parse_error(location, str(e)) from None
    if scheme == "file":
        host = host or ""
        if not path.startswith("/"):
            path = "/" + path
    if not path.startswith("/"):
        raise IcechunkError(
            f"virtual reference has no path segments {location}: a location needs a path, "
            "e.g. s3://bucket/file.nc",
            kind="invalid-virtual-ref",
        )
    if not host and scheme != "file":
        raise IcechunkError(
            f"error parsing bucket name from virtual ref URL {location}: non-file locations "
            "need a host (bucket), e.g. s3://bucket/file.nc",
            kind="invalid-virtual-ref",
        )
    segments: list[str] = []
    raw = path[1:].split("/")
    for i, segment in enumerate(raw):
        kind = _dot_kind(segment)
        last = i == len(raw) - 1
        if kind == 2:
            if segments:
                segments.pop()
            if last:
                segments.append("")
        elif kind == 1:
            if last:
                segments.append("")
        else:
            segments.append(_escape_segment(segment))
    kept = "/".join(s for s in segments if s)
    return f"{scheme}://{host}/{kept}"


# --- reading ------------------------------------------------------------------------------------


def _bucket(text: str) -> str:
    """The bucket or container name an object-store location's host holds."""
    name = _percent_decode(text)
    if not name or not set(name) <= _BUCKET_CHARS:
        raise _Invalid(
            f"the host {name!r} is not a bucket or container name (letters, digits, '.', '-' "
            "and '_' only)"
        )
    return name


def _segments(path: str, prefix: bool) -> tuple[str, ...]:
    out: list[str] = []
    for raw in path.split("/"):
        if not raw:
            continue
        dots = _dot_kind(raw)
        if dots and prefix:
            raise _Invalid("a container url prefix cannot hold '.' or '..' segments")
        if dots == 1:
            continue
        if dots == 2:
            if not out:
                raise _Invalid("a '..' segment climbs above the root")
            out.pop()
            continue
        segment = _percent_decode(raw)
        for ch in segment:
            if ch in "/\\" or ch in _CONTROLS:
                what = "a control character" if ch in _CONTROLS else repr(ch)
                raise _Invalid(
                    f"the path segment {raw!r} holds {what} once decoded, so it does not name "
                    "one file or key"
                )
        out.append(segment)
    return tuple(out)


def _parse(text: str, prefix: bool) -> VirtualLocation:
    bad = next((ch for ch in text if ch in _CONTROLS), None)
    if bad is not None:
        raise _Invalid(f"it contains the control character {bad!r}")
    match = _SCHEME_RE.match(text)
    if match is None:
        raise _Invalid("it is not an absolute URL")
    scheme = match.group(1).lower()
    rest = text[match.end() :]
    special = scheme in _SPECIAL
    if special:
        rest = rest.replace("\\", "/")  # the URL standard's reading, as the reference's
    if not rest.startswith("//"):
        raise _Invalid(f"it does not start with {scheme}://")
    rest = rest[2:]
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i != -1), default=-1)
    if cut != -1:
        if prefix:
            raise _Invalid("a container url prefix cannot have a query or fragment")
        rest = rest[:cut]
    authority, _, path = rest.partition("/")
    if "@" in authority:
        raise _Invalid(
            "it has user info (user:password@); credentials belong in "
            "authorize_virtual_chunk_access, never in a location"
        )
    host_text, port_text = _split_host_port(authority)
    port = _port(port_text, scheme)
    if port is not None and scheme not in _PORT_SCHEMES:
        raise _Invalid(f"a port has no meaning in a {scheme}:// location")
    host = _domain(host_text, scheme) if special else _bucket(host_text)
    if scheme == "file" and host:
        raise _Invalid("a file:// location cannot name a host")
    segments = _segments(path, prefix)
    if not prefix and not segments:
        raise _Invalid("it names no object")
    return VirtualLocation(scheme, host, port, segments)


@functools.lru_cache(maxsize=4096)
def parse_location(location: str) -> VirtualLocation:
    """Parse a stored virtual chunk location into the one value that is matched and fetched.

    Parameters
    ----------
    location
        The location as a manifest or the change set holds it.

    Returns
    -------
    VirtualLocation

    Raises
    ------
    IcechunkError
        If the location has user info, a host that is not plain, a port outside http(s), a
        path segment that does not name one file or key once decoded, a ``..`` above the root,
        a control character, or is not ``scheme://host/path`` (the module docstring says why).
    """
    try:
        return _parse(location, prefix=False)
    except _Invalid as e:
        raise IcechunkError(
            f"refusing the virtual chunk location {rust_debug_str(location)}: {e}. Nothing was "
            "fetched; a location must be a plain URL such as s3://bucket/dir/file.nc or "
            "file:///data/file.nc",
            kind="invalid-virtual-ref",
        ) from None


@functools.lru_cache(maxsize=256)
def parse_container_prefix(url_prefix: str) -> VirtualLocation:
    """Parse a virtual chunk container's ``url_prefix`` by the rules of :func:`parse_location`.

    A prefix may name no path segment (``s3://bucket/``) but cannot hold ``.`` or ``..``
    segments, a query or a fragment.

    Raises
    ------
    ValueError
        If the prefix cannot be parsed; such a container never matches anything.
    """
    return _parse(url_prefix, prefix=True)
