"""What the client is configured with (:class:`ClientSettings`), read from the environment
(:func:`settings_from_env`) and checked before anything is sent.

``LOFTY_API_URL`` (default ``https://api.lofty.com``) must be http(s) with a host, no
credentials, query or fragment, and plain http only to loopback. The credential is
``LOFTY_ACCESS_TOKEN`` (``Authorization: Bearer ...``) or ``LOFTY_API_KEY``
(``Authorization: token ...``). A proxy comes from ``HTTPS_PROXY``/``ALL_PROXY``
(``NO_PROXY`` honoured); a loopback API URL never goes through one, and a proxy that would see
the credential in clear on another machine is refused. A rejected value is never echoed beyond
its scheme and host: the rest may hold a secret.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import math
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from reconciler.errors import ConfigError
from reconciler.pacing import DEFAULT_MAX_WAIT

DEFAULT_API_URL = "https://api.lofty.com"

_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


@dataclass(frozen=True)
class Credentials:
    """How requests authenticate. ``repr``/``str`` never show the secret."""

    scheme: Literal["Bearer", "token"]
    secret: str = field(repr=False)

    def header(self) -> str:
        """The ``Authorization`` header value."""
        return f"{self.scheme} {self.secret}"

    def variable(self) -> str:
        """The environment variable this kind of credential comes from."""
        return "LOFTY_ACCESS_TOKEN" if self.scheme == "Bearer" else "LOFTY_API_KEY"

    def __repr__(self) -> str:
        return f"Credentials(scheme={self.scheme!r}, secret='***')"

    __str__ = __repr__


@dataclass(frozen=True)
class ClientSettings:
    """Everything the client needs; validated on construction (:class:`ConfigError`).

    The bounds default to what the contract promises (a lead gives up within about a minute,
    an unreachable endpoint ends the run within two, no wait over 65 s); tests shrink them.
    """

    base_url: str
    credentials: Credentials
    timeout: float = 10.0  # connect, read, write and pool timeouts, each
    parallelism: int = 4  # requests at once; also the connection pool size
    rate_limit_per_minute: float | None = None  # optional ceiling on top of the server's limit
    max_attempts: int = 8  # per request, first attempt included
    lead_deadline: float = 60.0  # seconds from a request's first attempt to giving up on it
    unreachable_deadline: float = 120.0  # seconds without any answer before the run stops
    attempt_deadline: float = 30.0  # seconds for one attempt: request and the whole response
    max_wait: float = DEFAULT_MAX_WAIT  # the longest single wait, whatever a header says
    max_body_bytes: int = 1024 * 1024  # largest response for one lead
    max_page_bytes: int = 8 * 1024 * 1024  # largest response for one page of the lead list
    proxy: str | None = field(default=None, repr=False)  # may hold the proxy's own password

    def __post_init__(self) -> None:
        _check_base_url(self.base_url)
        if self.proxy is not None:
            _check_proxy(self.proxy, "the proxy")
            _check_proxy_hop(self.base_url, self.proxy)
        if self.parallelism < 1:
            raise ConfigError(f"parallelism must be at least 1, not {self.parallelism}")
        if self.rate_limit_per_minute is not None and not self.rate_limit_per_minute > 0:
            raise ConfigError(
                f"--rate-limit must be a positive number of requests per minute, "
                f"not {self.rate_limit_per_minute}"
            )
        bounds = (
            self.timeout,
            self.lead_deadline,
            self.unreachable_deadline,
            self.attempt_deadline,
            self.max_wait,
        )
        if not (all(b > 0 and math.isfinite(b) for b in bounds) and self.max_attempts >= 1):
            raise ConfigError("the client's timeouts, deadlines and attempts must be positive")
        if min(self.max_body_bytes, self.max_page_bytes) < 1:
            raise ConfigError("the client's response size caps must be positive")


def settings_from_env(
    env: Mapping[str, str],
    *,
    parallelism: int = 4,
    rate_limit_per_minute: float | None = None,
) -> ClientSettings:
    """Build settings from ``LOFTY_API_URL``, ``LOFTY_ACCESS_TOKEN`` / ``LOFTY_API_KEY`` and the
    proxy variables.

    An access token wins when both credentials are set. Raises :class:`ConfigError` when there
    is no credential, the URL is malformed or plain http to a host other than loopback, or a
    proxy variable that applies holds something that cannot be used.
    """
    base_url = env.get("LOFTY_API_URL", "").strip() or DEFAULT_API_URL
    _check_base_url(base_url)
    credentials = _credentials(env, "LOFTY_ACCESS_TOKEN", "Bearer") or _credentials(
        env, "LOFTY_API_KEY", "token"
    )
    if credentials is None:
        raise ConfigError(
            "no Lofty credential: set LOFTY_ACCESS_TOKEN (an OAuth access token) "
            "or LOFTY_API_KEY (a personal API key)"
        )
    return ClientSettings(
        base_url=base_url,
        credentials=credentials,
        parallelism=parallelism,
        rate_limit_per_minute=rate_limit_per_minute,
        proxy=_proxy_from_env(env, base_url),
    )


def _credentials(
    env: Mapping[str, str], name: str, scheme: Literal["Bearer", "token"]
) -> Credentials | None:
    secret = env.get(name, "").strip()
    if not secret:
        return None
    # Anything else would corrupt the header (or be refused by httpx with the value in the text).
    if not all("!" <= ch <= "~" for ch in secret):
        raise ConfigError(f"{name} contains spaces or non-ASCII characters; check how it is set")
    return Credentials(scheme, secret)


def _check_base_url(url: str) -> None:
    # Never echo more of a rejected URL than scheme and host: the rest may hold a secret.
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        # The URL itself is not echoed: a mistyped one may carry a secret.
        raise ConfigError(
            f"LOFTY_API_URL is not an http(s) URL with a host (expected e.g. {DEFAULT_API_URL})"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            "LOFTY_API_URL must not contain credentials; "
            "use LOFTY_ACCESS_TOKEN or LOFTY_API_KEY instead"
        )
    if parts.query or parts.fragment:
        raise ConfigError("LOFTY_API_URL must not have a query string or fragment")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ConfigError(
            f"refusing plain http to {host}: the credential would cross the network "
            "unencrypted; use https (http is allowed only to loopback addresses)"
        )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _proxy_from_env(env: Mapping[str, str], base_url: str) -> str | None:
    """The proxy for ``base_url`` by the usual variables (lower case first), or None.

    Only https requests go through a proxy: the http ones are to loopback, which bypasses it,
    so a proxy never receives the credential outside TLS.
    """
    parts = urllib.parse.urlsplit(base_url)
    host = parts.hostname or ""
    if parts.scheme != "https" or _is_loopback(host) or _bypasses_proxy(env, host):
        return None
    for name in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        value = env.get(name, "").strip()
        if value:
            _check_proxy(value, name)
            return value
    return None


def _bypasses_proxy(env: Mapping[str, str], host: str) -> bool:
    """Whether ``NO_PROXY`` (``*``, domains with their subdomains, addresses, networks) says so."""
    raw = env.get("no_proxy", "").strip() or env.get("NO_PROXY", "").strip()
    for entry in (e.strip().lower() for e in raw.split(",")):
        if entry == "*":
            return True
        entry = entry.removeprefix("*").removeprefix(".")
        if entry and (host == entry or host.endswith("." + entry)):
            return True
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            pass
    return False


def _check_proxy(url: str, name: str) -> None:
    """Refuse a proxy URL httpx cannot use, showing at most its scheme and host."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        scheme, host = parts.scheme.lower(), parts.hostname
    except ValueError:
        scheme, host = "", None
    if scheme not in _PROXY_SCHEMES or not host:
        raise ConfigError(
            f"{name} is not a proxy URL this tool can use (expected e.g. "
            "http://proxy.example:3128, or socks5://...); its value is not shown as it may "
            "hold a password"
        )
    shown = f"{scheme}://{host}"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ConfigError(f"{name} ({shown}) has a port that is not a number from 1 to 65535")
    if scheme.startswith("socks") and importlib.util.find_spec("socksio") is None:
        raise ConfigError(
            f"{name} ({shown}) is a SOCKS proxy, which needs the socksio package: "
            "pip install 'httpx[socks]', or use an http(s) proxy"
        )


def _check_proxy_hop(base_url: str, proxy: str) -> None:
    """Refuse a proxy that would see the credential in clear on another machine."""
    api = urllib.parse.urlsplit(base_url)
    hop = urllib.parse.urlsplit(proxy.strip())
    if api.scheme == "http" and not _is_loopback(hop.hostname or ""):
        raise ConfigError(
            f"refusing to send the credential over plain http through the proxy "
            f"{hop.scheme}://{hop.hostname}; use https for LOFTY_API_URL, or reach the "
            "loopback API without a proxy"
        )
