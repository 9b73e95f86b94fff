"""Small helpers about URLs, names and sockets, shared by the client, batch and the servers."""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import socket
import unicodedata
from urllib.parse import SplitResult, urlsplit

from ._errors import InvalidRequestError


def _parse(url: object, param: str) -> tuple[SplitResult, str]:
    """``url`` split, and its host as the resolver would see it (NFKC + IDNA, lower case, no
    trailing dot); an InvalidRequestError for anything an http(s) request could not be sent to.
    Answers for valid URLs are remembered (a batch often sends one image many times)."""
    if not isinstance(url, str):
        raise InvalidRequestError(f"{param} must be a string URL", param=param)
    if type(url) is not str:  # a str subclass may hash and compare as it likes: not remembered
        return _parse_str.__wrapped__(url, param)
    return _parse_str(url, param)


@functools.lru_cache(maxsize=1024)
def _parse_str(url: str, param: str) -> tuple[SplitResult, str]:
    shown = repr(url[:80])
    if url.isascii():  # no format or surrogate characters; controls are the unprintable ones
        bad = not url.isprintable() or " " in url
    else:
        bad = any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in url)
    if bad:
        raise InvalidRequestError(
            f"{param} must be a URL without spaces or control characters, got {shown}", param=param
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # an unclosed [ of an IPv6 address, a port out of range or not a number
        raise InvalidRequestError(f"{param} is not a valid URL ({exc}), got {shown}", param=param) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequestError(f"{param} must be an http(s) URL, got {shown}", param=param)
    if port == 0:
        raise InvalidRequestError(f"{param} has port 0, which nobody listens on: {shown}", param=param)
    host = normalize_host(parts.hostname)
    if host is None:
        raise InvalidRequestError(f"{param} has an invalid host name, got {shown}", param=param)
    return parts, host


def normalize_host(host: str) -> str | None:
    """``host`` as it is resolved: NFKC, then IDNA (``encodings.idna``, which also splits labels on
    the ideographic and fullwidth full stops), lower case, no trailing dot; None when not a valid
    name. IPv6 literals are returned as they are (lower case)."""
    h = host.strip("[]").lower()
    if ":" in h:  # an IPv6 literal (with or without a zone)
        return h
    h = unicodedata.normalize("NFKC", h)
    try:
        h = h.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    return h.lower().rstrip(".")


def check_http_url(url: str, *, param: str = "url") -> str:
    """Accept only absolute http(s) URLs with a valid host and port and no spaces or control
    characters; anything else is an InvalidRequestError, before any request is made."""
    _parse(url, param)
    return url


def safe_name(name: str, *, default: str = "item") -> str:
    """A file name that cannot leave its folder: letters, digits, ``-_.`` only, no leading dot."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120].lstrip(".")
    return cleaned or default


def unique_name(name: str, *, default: str = "item") -> str:
    """A file stem for ``name`` that no other name shares and that never carries a suffix.

    A plain name (letters, digits, ``-_``) is kept; any other (a dot, a slash, a leading dot...) is
    cleaned, its dots made ``_``, and tagged ``~`` plus a hash of the name: ``~`` is never in a
    plain name, so ``a.b``, ``a_b`` and ``a/b`` get three files."""
    stem = safe_name(name, default=default).replace(".", "_")
    if stem != name:
        stem = f"{stem}~{hashlib.sha256(name.encode()).hexdigest()[:10]}"
    return stem


def bound_port(site: object) -> int:
    """The port a started ``aiohttp.web.TCPSite`` listens on (useful after binding port 0)."""
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or ()
    for sock in sockets:
        return int(sock.getsockname()[1])
    raise RuntimeError("site is not listening")


def is_local_host(host: str) -> bool:
    """True for names and addresses only this machine can reach: loopback, unspecified, link-local
    (whatever the spelling: fullwidth letters and digits are compared as the resolver sees them)."""
    h = normalize_host(host)
    if h is None:
        return False
    if h in ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback") or h.endswith(".localhost"):
        return True
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(h.split("%", 1)[0])
    except ValueError:
        try:  # the forms the resolver also takes: 127.1, 0, 2130706433, 0x7f.1
            ip = ipaddress.IPv4Address(socket.inet_aton(h))
        except OSError:
            return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified or ip.is_link_local


def is_local_url(url: str, *, param: str = "url") -> bool:
    """Whether ``url``'s host is one only this machine can reach (see :func:`is_local_host`); an
    InvalidRequestError when ``url`` is not a valid http(s) URL."""
    return is_local_host(_parse(url, param)[1])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
