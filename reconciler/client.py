"""The Lofty API client that ``apply`` and ``import`` drive: one pooled httpx client, paced and
retried, with every wait bounded, every read capped and the credential never shown.

Settings come from the environment (:func:`settings_from_env`): ``LOFTY_API_URL`` (default
``https://api.lofty.com``; plain http only to loopback) and a credential, ``LOFTY_ACCESS_TOKEN``
(sent as ``Authorization: Bearer ...``) or ``LOFTY_API_KEY`` (``Authorization: token ...``).
A proxy comes from ``HTTPS_PROXY``/``ALL_PROXY`` (``NO_PROXY`` honoured); a loopback API URL
never goes through one, so the credential never crosses a network in clear.

What :class:`LoftyClient` offers (use it as ``async with LoftyClient(settings) as client``):

* :meth:`~LoftyClient.check_access` -- one cheap authenticated request, made before a plan is
  shown for confirmation, so a wrong credential or URL is said at once.
* :meth:`~LoftyClient.update_lead` -- ``PUT /v1.0/leads/{leadId}``.
* :meth:`~LoftyClient.get_lead` -- ``GET /v1.0/leads/{leadId}``, the raw ``lead`` object.
* :meth:`~LoftyClient.list_leads` -- ``GET /v1.0/leads``, every matching raw lead across pages.
* ``stats`` -- requests sent (in all and per method), 429s and retries, for summaries and
  benchmarks.

Every request takes the same path: paced from the server's rate-limit headers
(:mod:`reconciler.pacing`); 429, 5xx, timeouts and dropped connections retried with jittered
exponential backoff, honouring ``Retry-After`` and ``X-RateLimit-Reset``, until ``max_attempts``
or ``lead_deadline``; no single wait longer than ``max_wait``; each attempt (request and whole
response) within ``attempt_deadline``; a response body read only up to a cap. Other answers fail
at once with the server's message:

* 401/403: :class:`~reconciler.errors.AuthError`, and every later call fails at once with it.
* 404 (or ``20006 LEAD_NOT_EXIST``) for a lead: :class:`~reconciler.errors.LeadNotFoundError`.
* No answer at all for ``unreachable_deadline``: :class:`~reconciler.errors.ApiUnreachableError`,
  and every later call fails at once with it.
* Anything else: :class:`~reconciler.errors.ApiError` (``status``/``code`` set when known).

Server text in a message is scrubbed of the credential (also base64 and URL-encoded forms, and
any run of 8 of its characters) *before* it is cut to length, and control characters are
escaped (:func:`reconciler.sanitize.clean`). A header that had to be capped or ignored is said
once, through ``notice``.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import ipaddress
import json
import logging
import math
import random
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx

from reconciler import __version__
from reconciler.errors import (
    ApiError,
    ApiUnreachableError,
    AuthError,
    ConfigError,
    LeadNotFoundError,
)
from reconciler.pacing import (
    DEFAULT_MAX_WAIT,
    HeaderProblem,
    Pacer,
    read_rate_limit,
    read_retry_after,
)
from reconciler.sanitize import clean

# httpx logs every request at INFO; keep that out of users' logs (and their CI output).
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.lofty.com"

#: The filters ``GET /v1.0/leads`` takes from :meth:`LoftyClient.list_leads`.
LIST_FILTERS = ("stage", "source", "segments", "anyTags", "allTags", "assignedUserId")
#: Lofty's largest page (``limit``) for the list endpoint.
MAX_PAGE_SIZE = 100
#: Lofty's code for a lead that does not exist or that the credential cannot see.
LEAD_NOT_EXIST = 20006

_AUTH_HINT = (
    "LOFTY_ACCESS_TOKEN is sent as `Authorization: Bearer …`, LOFTY_API_KEY as "
    "`Authorization: token …`; check which one you set and that it is current"
)

# Backoff before retry n (from 1) is uniform in [0, min(cap, base * 2**(n-1))] ("full jitter").
_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 10.0
# A 429 without a usable hint still pauses everyone briefly rather than letting the flock retry.
_MIN_HOLD_OFF_429 = 1.0
# Server text shown in a message: scrubbed within a window well past the cut, then cut.
_ERROR_TEXT_LIMIT = 200
_SCRUB_WINDOW = 4096
# An error body is only shown in part, so only its start is read.
_ERROR_BODY_LIMIT = 64 * 1024
_LEADING_CODE = re.compile(r"^\s*(\d+)\b")
# A list that keeps yielding pages: allow short pages (a quarter of the limit on average) before
# calling it endless; without a total, stop at a count no Lofty account comes near.
_PAGE_SLACK_FACTOR = 4
_PAGE_SLACK = 10
_MAX_LIST_LEADS = 1_000_000
_MAX_SCROLL_ID = 4096
_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")

_E = TypeVar("_E", bound=ApiError)


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


class _Scrubber:
    """Removes the credential from text in any form a server or proxy might echo it in.

    The forms: the secret itself, URL- and JSON-encoded, and base64 (standard and URL-safe) of
    the secret and of the whole header value at each of the three byte alignments -- only the
    characters that depend on nothing but the secret, so a surrounding byte cannot hide it. Any
    run of :data:`RUN` characters of a form is removed too, so a form cut short leaks nothing.
    """

    RUN = 8

    def __init__(self, credentials: Credentials) -> None:
        secret = credentials.secret
        quoted = urllib.parse.quote(secret, safe="")
        forms = {
            secret,
            quoted,
            re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quoted),
            urllib.parse.quote_plus(secret),
            json.dumps(secret)[1:-1],
        }
        for data in (secret.encode(), credentials.header().encode()):
            for shift in range(3):
                for encode in (base64.b64encode, base64.urlsafe_b64encode):
                    forms.add(_base64_core(data, shift, encode))
        self._secret = secret
        self._runs = {
            form[i : i + self.RUN]
            for form in forms
            if len(form) >= self.RUN
            for i in range(len(form) - self.RUN + 1)
        }

    def __call__(self, text: str) -> str:
        text = text.replace(self._secret, "***")  # however short the secret, the whole of it
        hits = bytearray(len(text))
        for i in range(len(text) - self.RUN + 1):
            if text[i : i + self.RUN] in self._runs:
                hits[i : i + self.RUN] = b"\x01" * self.RUN
        if not any(hits):
            return text
        out: list[str] = []
        for i, ch in enumerate(text):
            if not hits[i]:
                out.append(ch)
            elif i == 0 or not hits[i - 1]:
                out.append("***")
        return "".join(out)


def _base64_core(data: bytes, shift: int, encode: Callable[[bytes], bytes]) -> str:
    """The base64 characters of ``data`` that stay the same wherever ``data`` starts, mod 3."""
    encoded = encode(b"\0" * shift + data).decode()
    first = -(-8 * shift // 6)  # the first character made of data bits only
    end = 8 * (shift + len(data)) // 6  # past the last one
    return encoded[first:end]


@dataclass
class ClientStats:
    """Counters for summaries and benchmarks: every request sent, retries included."""

    requests_sent: int = 0
    responses_429: int = 0
    retries: int = 0
    requests_by_method: dict[str, int] = field(default_factory=dict)

    def count(self, method: str) -> None:
        """Count one request about to be sent."""
        self.requests_sent += 1
        self.requests_by_method[method] = self.requests_by_method.get(method, 0) + 1


class _RetryableAnswer(Exception):
    """A 429 or 5xx: worth another attempt, after ``wait_hint`` seconds at least."""

    def __init__(self, message: str, *, status: int, code: int | None, wait_hint: float) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.wait_hint = wait_hint


class _NoAnswer(Exception):
    """No (complete) answer: a connection failure or timeout; worth another attempt."""


@dataclass
class _Call:
    """One logical request and the book-keeping of its attempts."""

    method: Literal["GET", "PUT"]
    path: str
    what: str  # for logs: "lead 7", "page 2 of the lead list"
    expect: str  # the key a successful answer holds; without it, code/message is an error
    cap: int  # the largest successful response body read, in bytes
    body: Mapping[str, Any] | None = None
    params: Mapping[str, str] | None = None
    one_lead: bool = False  # a 404 means that lead does not exist
    probe: bool = False  # check_access: an answer that is not Lofty's means a wrong URL
    started: float | None = None  # clock time of the first attempt
    attempts: int = 0
    last: Exception | None = None  # the latest transient failure

    def elapsed(self, now: float) -> float:
        return 0.0 if self.started is None else now - self.started


@dataclass(frozen=True)
class _Answer:
    """An HTTP response, its body read up to a cap."""

    status: int
    reason: str
    headers: httpx.Headers
    body: bytes
    complete: bool  # False when the body was larger than the cap (and is cut off or empty)


class LoftyClient:
    """Async client for the Lofty lead API; use as ``async with LoftyClient(settings) as c``.

    One instance is shared by all of a command's tasks: it owns the connection pool, the pacing
    and the watches that end a run (unreachable endpoint, refused credential). ``transport``,
    ``sleep``, ``clock`` (monotonic) and ``wall`` (epoch) are injectable so tests need not wait
    or open sockets; ``notice`` receives the one-time remarks about implausible rate-limit
    headers (without it they are logged as warnings).
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        notice: Callable[[str], None] | None = None,
    ) -> None:
        self._settings = settings
        self._sleep = sleep
        self._clock = clock
        self._wall = wall
        self._notice = notice
        self._said: set[str] = set()
        self._scrub = _Scrubber(settings.credentials)
        self._random = random.Random()
        self.stats = ClientStats()
        self._pacer = Pacer(
            rate_limit_per_minute=settings.rate_limit_per_minute,
            sleep=sleep,
            clock=clock,
            wall=wall,
            max_wait=settings.max_wait,
            notice=self._header_notice,
        )
        # The pool would queue extra requests and time them out as if Lofty were down.
        self._slots = asyncio.Semaphore(settings.parallelism)
        self._http = httpx.AsyncClient(
            base_url=settings.base_url,
            headers={
                "Authorization": settings.credentials.header(),
                "Accept": "application/json",
                "User-Agent": f"reconciler/{__version__}",
            },
            timeout=httpx.Timeout(settings.timeout),
            transport=transport if transport is not None else _transport(settings),
            trust_env=False,  # proxies come from the settings, resolved and checked there
            follow_redirects=False,
        )
        self._last_answer: float | None = None  # clock time of the latest HTTP response
        self._silent_since: float | None = None  # start of the current run of no answers
        self._unreachable: str | None = None  # the error message, once declared unreachable
        self._refused: AuthError | None = None  # the first 401/403, which ends the run

    def __repr__(self) -> str:
        return (
            f"LoftyClient(base_url={self._settings.base_url!r}, "
            f"parallelism={self._settings.parallelism})"
        )

    async def __aenter__(self) -> LoftyClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # --- the API ------------------------------------------------------------------------------

    async def check_access(self) -> None:
        """Make one cheap authenticated request (``GET /v1.0/leads?limit=1``) and return if it
        worked: call it before showing a plan for confirmation.

        Raises :class:`AuthError` (with a hint on the credential's scheme) on 401/403, and
        :class:`ConfigError` when the answer shows ``LOFTY_API_URL`` is wrong (404, a redirect,
        something that is not JSON); otherwise as the other calls do.
        """
        call = _Call(
            "GET",
            "/v1.0/leads",
            what="the access check",
            expect="leads",
            cap=self._settings.max_page_bytes,
            params={"limit": "1"},
            probe=True,
        )
        _status, payload = await self._request(call)
        if not isinstance(payload, dict):
            raise self._wrong_url(f"answered with {_json_kind(payload)}, not an object")

    async def update_lead(self, lead_id: int, body: Mapping[str, Any]) -> None:
        """``PUT /v1.0/leads/{lead_id}`` with ``body`` as JSON; return once Lofty accepted it.

        Accepted means a 2xx whose ``leadId`` (a number or a numeric string) is ``lead_id``.
        Raises :class:`LeadNotFoundError` for a lead Lofty does not have, :class:`AuthError`,
        :class:`ApiUnreachableError`, or :class:`ApiError` when Lofty refuses the update,
        answers for another lead or with an error object, or retries run out.
        """
        call = _Call(
            "PUT",
            f"/v1.0/leads/{lead_id}",
            what=f"lead {lead_id}",
            expect="leadId",
            cap=self._settings.max_body_bytes,
            body=body,
            one_lead=True,
        )
        status, payload = await self._request(call)
        got = payload.get("leadId") if isinstance(payload, dict) else None
        if _lead_number(got) != lead_id:
            raise self._error(
                ApiError,
                f"HTTP {status} but the response names leadId {self._clip(repr(got), 60)}, "
                f"not {lead_id}; the update may have gone to another lead",
                status=status,
            )

    async def get_lead(self, lead_id: int) -> dict[str, Any]:
        """``GET /v1.0/leads/{lead_id}``: the raw ``lead`` object, in Lofty's shape.

        Keys are passed through as Lofty sent them (unknown ones included; the caller maps
        what it knows). Raises :class:`LeadNotFoundError` on 404, :class:`ApiError` when the
        answer holds no ``lead`` object or one for another lead, and as :meth:`update_lead`.
        """
        call = _Call(
            "GET",
            f"/v1.0/leads/{lead_id}",
            what=f"lead {lead_id}",
            expect="lead",
            cap=self._settings.max_body_bytes,
            one_lead=True,
        )
        status, payload = await self._request(call)
        lead = payload.get("lead") if isinstance(payload, dict) else None
        if not isinstance(lead, dict):
            raise self._error(
                ApiError,
                f"HTTP {status} but the response holds no `lead` object "
                f"(got {_json_kind(lead if isinstance(payload, dict) else payload)})",
                status=status,
            )
        got = lead.get("leadId")
        if got is not None and _lead_number(got) != lead_id:
            raise self._error(
                ApiError,
                f"HTTP {status} but the lead returned has leadId {self._clip(repr(got), 60)}, "
                f"not {lead_id}",
                status=status,
            )
        return lead

    def list_leads(
        self,
        filters: Mapping[str, str],
        *,
        return_fields: Sequence[str] | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every lead matching ``filters`` (keys from :data:`LIST_FILTERS`), as raw lead
        objects, page by page: ``async for lead in client.list_leads({"stage": "New"}): ...``.

        ``return_fields`` narrows what each lead carries (``leadId`` is always added);
        ``page_size`` is Lofty's ``limit``, 1 to 100. Pages follow ``scrollId`` when Lofty gives
        one, else ``offset``; a short page does not end the list, only an empty page or reaching
        the metadata's ``total`` does. A lead seen on an earlier page is not yielded again.
        Raises :class:`ConfigError` here for bad arguments; while iterating, :class:`ApiError`
        for a malformed page or a list that never ends (a page with nothing new, or far more
        pages than ``total`` needs), and as :meth:`get_lead`.
        """
        params = _list_params(filters, return_fields, page_size)
        return self._pages(params, page_size)

    # --- paging -------------------------------------------------------------------------------

    async def _pages(self, params: dict[str, str], page_size: int) -> AsyncIterator[dict[str, Any]]:
        seen: set[int] = set()
        received = 0  # leads on the pages so far, repeats included: the next offset
        scroll: str | None = None
        most = 0  # the largest total the metadata gave, 0 while none did
        page = 0
        while True:
            page += 1
            where = f"page {page} of the lead list"
            query = {**params, **({"scrollId": scroll} if scroll else {"offset": str(received)})}
            call = _Call(
                "GET",
                "/v1.0/leads",
                what=where,
                expect="leads",
                cap=self._settings.max_page_bytes,
                params=query,
            )
            status, payload = await self._request(call)
            leads, total, next_scroll = self._page_parts(payload, where, status)
            if not leads:
                return
            fresh = 0
            for lead in leads:
                lead_id = _lead_number(lead.get("leadId"))
                if lead_id is None:
                    raise self._error(ApiError, f"{where} holds a lead without a numeric leadId")
                if lead_id not in seen:
                    seen.add(lead_id)
                    fresh += 1
                    yield lead
            if not fresh:
                asked = (
                    f"at offset {received}"
                    if scroll is None
                    else "by a scrollId "
                    + ("that came back again" if next_scroll == scroll else "")
                ).strip()
                raise self._error(
                    ApiError,
                    f"{where} ({asked}) holds only leads already read: Lofty is not moving on; "
                    "stopping rather than asking forever",
                )
            received += len(leads)
            most = max(most, total or 0)
            if total is not None and len(seen) >= total:
                return
            needed = _PAGE_SLACK_FACTOR * math.ceil(most / page_size) + _PAGE_SLACK
            if (most and page >= needed) or len(seen) >= _MAX_LIST_LEADS:
                raise self._error(
                    ApiError,
                    f"the lead list has not ended after {page} pages and {len(seen)} leads "
                    f"(total {total if total is not None else 'not given'}); stopping",
                )
            scroll = next_scroll

    def _page_parts(
        self, payload: Any, where: str, status: int
    ) -> tuple[list[dict[str, Any]], int | None, str | None]:
        """A page's leads, its total and its scrollId; :class:`ApiError` when malformed."""
        if not isinstance(payload, dict):
            raise self._error(
                ApiError, f"{where} is {_json_kind(payload)}, not an object", status=status
            )
        meta = payload.get("_metadata")
        if not isinstance(meta, dict):
            meta = payload.get("get_metadata")
        meta = meta if isinstance(meta, dict) else {}
        total = _count(meta.get("total"))
        leads = payload.get("leads")
        if leads is None and total == 0:
            leads = []
        if not isinstance(leads, list) or not all(isinstance(lead, dict) for lead in leads):
            raise self._error(
                ApiError,
                f"{where} has no list of lead objects under `leads` (got {_json_kind(leads)})",
                status=status,
            )
        scroll = meta.get("scrollId")
        if not isinstance(scroll, str) or not scroll:
            scroll = None
        elif len(scroll) > _MAX_SCROLL_ID:
            raise self._error(
                ApiError, f"{where} has a scrollId of {len(scroll)} characters", status=status
            )
        return leads, total, scroll

    # --- one request, retried -----------------------------------------------------------------

    async def _request(self, call: _Call) -> tuple[int, Any]:
        """Send ``call`` until it gets a final answer; return its status and decoded JSON."""
        self._check_open()
        while True:
            try:
                return await self._attempt(call)
            except (_RetryableAnswer, _NoAnswer) as failure:
                call.last = failure
                delay = self._backoff(call.attempts, failure)
                stop = self._stop_if_due(call, failure, delay)
                if stop is not None:
                    raise stop from None
                self.stats.retries += 1
                log.info(
                    "%s: %s; retrying in %.1f s (attempt %d of %d)",
                    call.what,
                    failure,
                    delay,
                    call.attempts + 1,
                    self._settings.max_attempts,
                )
                await self._sleep(delay)

    async def _attempt(self, call: _Call) -> tuple[int, Any]:
        async with self._slots:
            self._check_open()
            await self._pacer.acquire()
            headers: httpx.Headers | None = None
            try:
                self._check_open()  # the run may have ended while this one waited its turn
                answer = await self._send(call)
                headers = answer.headers
            finally:
                self._pacer.release(headers)
        self._last_answer, self._silent_since = self._clock(), None
        return self._judge(call, answer)

    async def _send(self, call: _Call) -> _Answer:
        sent = self._clock()
        if call.started is None:
            call.started = sent
        budget = min(
            self._settings.attempt_deadline, self._settings.lead_deadline - call.elapsed(sent)
        )
        if budget <= 0:  # pacing held this retry back until the deadline passed
            raise self._gave_up(call)
        call.attempts += 1
        self.stats.count(call.method)
        try:
            # httpx's timeouts are per read: a server dripping bytes would never trip them.
            async with asyncio.timeout(budget):
                return await self._exchange(call)
        except (httpx.TransportError, TimeoutError) as exc:
            # GET and PUT are idempotent, so a request that may have reached Lofty is safe
            # to repeat.
            self._note_silence(since=sent)
            raise _NoAnswer(self._describe(exc, budget)) from None
        except httpx.HTTPError as exc:  # e.g. a body that cannot be decoded: not transient
            raise self._error(ApiError, self._describe(exc, budget)) from None

    async def _exchange(self, call: _Call) -> _Answer:
        request = self._http.build_request(
            call.method, call.path, json=call.body, params=call.params
        )
        response = await self._http.send(request, stream=True)
        try:
            success = response.is_success
            body, complete = await _read_capped(
                response, call.cap if success else _ERROR_BODY_LIMIT, refuse_early=success
            )
        finally:
            await response.aclose()
        return _Answer(
            response.status_code, response.reason_phrase, response.headers, body, complete
        )

    # --- judging an answer --------------------------------------------------------------------

    def _judge(self, call: _Call, answer: _Answer) -> tuple[int, Any]:
        status = answer.status
        if status == 429 or status >= 500:
            raise self._retryable(answer)
        if not 200 <= status < 300:
            raise self._refusal(call, answer)
        if not answer.complete:
            size = f"{call.cap / 1024 / 1024:g} MiB" if call.cap >= 1024 * 1024 else f"{call.cap} B"
            if call.probe:
                raise self._wrong_url(f"answered with more than {size}")
            raise self._error(
                ApiError, f"HTTP {status} but the response is larger than {size}", status=status
            )
        payload = _decode(answer.body)
        if payload is _NOT_JSON:
            text = self._clip(answer.body.decode("utf-8", "replace"))
            if call.probe:
                raise self._wrong_url(f"answered with something that is not JSON: '{text}'")
            raise self._error(
                ApiError, f"HTTP {status} but the response is not JSON: '{text}'", status=status
            )
        if _is_error_object(payload, call.expect):
            detail, code = self._error_detail(answer)
            kind = LeadNotFoundError if call.one_lead and code == LEAD_NOT_EXIST else ApiError
            raise self._error(
                kind, f"HTTP {status} but Lofty answered: {detail}", status=status, code=code
            )
        return status, payload

    def _retryable(self, answer: _Answer) -> _RetryableAnswer:
        status = answer.status
        if status == 429:
            self.stats.responses_429 += 1
        detail, code = self._error_detail(answer)
        hint = self._wait_hint(answer)
        # Whatever the server asked of this request holds for every other one too.
        hold = max(hint, _MIN_HOLD_OFF_429) if status == 429 else hint
        if hold:
            self._pacer.hold_off(hold, rate_limited=status == 429)
        return _RetryableAnswer(
            f"HTTP {status}: {detail}", status=status, code=code, wait_hint=hint
        )

    def _refusal(self, call: _Call, answer: _Answer) -> Exception:
        """The error for a final non-2xx answer (other than 429/5xx)."""
        status = answer.status
        detail, code = self._error_detail(answer)
        if status in (401, 403):
            variable = self._settings.credentials.variable()
            refused = self._error(
                AuthError,
                f"HTTP {status}: {detail}; Lofty refused the credential in {variable}. "
                f"{_AUTH_HINT}",
                status=status,
                code=code,
            )
            if self._refused is None:  # later calls all end with the first refusal
                self._refused = refused
            return refused
        if 300 <= status < 400:
            location = answer.headers.get("location")
            if location is not None:
                detail = f"redirected to {self._clip(location)}"
                if call.probe:
                    return self._wrong_url(f"was {detail}")
                detail += "; set LOFTY_API_URL to the address the API really answers at"
        elif call.one_lead and (status == 404 or code == LEAD_NOT_EXIST):
            return self._error(
                LeadNotFoundError, f"HTTP {status}: {detail}", status=status, code=code
            )
        elif call.probe and status == 404:
            return self._wrong_url(f"answered HTTP 404: {detail}")
        return self._error(ApiError, f"HTTP {status}: {detail}", status=status, code=code)

    def _wrong_url(self, what: str) -> ConfigError:
        url = self._settings.base_url
        path = urllib.parse.urlsplit(url).path.rstrip("/").lower()
        if path.endswith("/v1.0"):
            hint = f"LOFTY_API_URL should be the host only, e.g. {DEFAULT_API_URL}"
        else:
            hint = f"Set it to the address of the Lofty API, e.g. {DEFAULT_API_URL}"
        return ConfigError(
            self._scrub(
                f"LOFTY_API_URL looks wrong: GET {url.rstrip('/')}/v1.0/leads {what}. {hint}"
            )
        )

    def _error_detail(self, answer: _Answer) -> tuple[str, int | None]:
        """The server's message and numeric code, from either error shape Lofty uses."""
        payload = _decode(answer.body)
        code: int | None = None
        if isinstance(payload, dict) and ("code" in payload or "message" in payload):
            raw_code, message = payload.get("code"), payload.get("message")
            detail = " ".join(str(part) for part in (raw_code, message) if part is not None)
            code = _count(raw_code)
        elif isinstance(payload, str):
            detail = payload
        else:
            detail = answer.body.decode("utf-8", "replace")
        detail = self._clip(detail.strip()) or answer.reason
        if code is None and (match := _LEADING_CODE.match(detail)):
            code = int(match.group(1)[:18])  # a bare string such as "20006 LEAD_NOT_EXIST"
        return detail, code

    def _wait_hint(self, answer: _Answer) -> float:
        """Seconds the server asked us to wait: Retry-After, else (for 429) until Reset."""
        now = self._wall()
        retry_after = answer.headers.get("retry-after")
        if retry_after is not None and retry_after.strip():
            seconds, problem = read_retry_after(
                retry_after, now=now, max_wait=self._settings.max_wait
            )
            if problem is not None:
                self._header_notice(problem)
            if problem is None or seconds > 0:
                return seconds
        if answer.status == 429:
            # The pacer reads (and remarks on) these headers too; a second remark is dropped.
            window, _problem = read_rate_limit(
                answer.headers, now=now, max_wait=self._settings.max_wait
            )
            if window is not None:  # the pacer adds its margin past Reset itself
                return max(window.reset - now, 0.0)
        return 0.0

    # --- when to stop -------------------------------------------------------------------------

    def _backoff(self, attempts: int, failure: Exception) -> float:
        jitter = self._random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (attempts - 1)))
        hint = failure.wait_hint if isinstance(failure, _RetryableAnswer) else 0.0
        return min(max(jitter, hint), self._settings.max_wait)

    def _stop_if_due(self, call: _Call, failure: Exception, delay: float) -> ApiError | None:
        """The error to end ``call`` with, if it must not be tried again after ``delay``."""
        now = self._clock()
        resumes = now + delay
        if self._unreachable is None and self._silent_since is not None:
            # Stop now if the next attempt could still be failing when the deadline passes.
            silent_for = resumes + self._settings.attempt_deadline - self._silent_since
            if silent_for >= self._settings.unreachable_deadline:
                self._unreachable = self._scrub(
                    f"Lofty at {self._settings.base_url} has not answered for "
                    f"{now - self._silent_since:.0f} s (last: {failure}); stopping. "
                    "Check LOFTY_API_URL and the network, then try again"
                )
        if self._refused is not None or self._unreachable is not None:
            return self._run_over()
        if (
            call.attempts >= self._settings.max_attempts
            or call.elapsed(resumes) >= self._settings.lead_deadline
        ):
            return self._gave_up(call)
        return None

    def _gave_up(self, call: _Call) -> ApiError:
        last = call.last
        attempts, elapsed = call.attempts, call.elapsed(self._clock())
        return self._error(
            ApiError,
            f"gave up after {attempts} attempt{'s' if attempts != 1 else ''} "
            f"in {elapsed:.0f} s; last: {last}",
            status=last.status if isinstance(last, _RetryableAnswer) else None,
            code=last.code if isinstance(last, _RetryableAnswer) else None,
        )

    def _note_silence(self, *, since: float) -> None:
        # A response that arrived after this request went out proves the server was up then.
        if self._last_answer is not None:
            since = max(since, self._last_answer)
        if self._silent_since is None:
            self._silent_since = since

    def _check_open(self) -> None:
        """Fail at once when an earlier answer already ended the run."""
        if self._refused is not None or self._unreachable is not None:
            raise self._run_over()

    def _run_over(self) -> ApiError:
        """The error every call ends with once the credential was refused or Lofty went silent."""
        if self._refused is not None:
            refused = self._refused
            return AuthError(str(refused), status=refused.status, code=refused.code)
        assert self._unreachable is not None
        return ApiUnreachableError(self._unreachable)

    # --- what users read ----------------------------------------------------------------------

    def _describe(self, failure: BaseException, budget: float) -> str:
        name = type(failure).__name__
        if isinstance(failure, TimeoutError):
            return f"no complete answer within {budget:.3g} s"
        if isinstance(failure, httpx.TimeoutException):
            return f"no answer within {self._settings.timeout:g} s ({name})"
        text = self._clip(str(failure))
        if isinstance(failure, httpx.ProxyError):
            return f"the proxy failed: {name}: {text}" if text else f"the proxy failed: {name}"
        if isinstance(failure, httpx.TransportError):
            return f"connection failed: {name}: {text}" if text else f"connection failed: {name}"
        return f"{name}: {text}"

    def _clip(self, text: str, limit: int = _ERROR_TEXT_LIMIT) -> str:
        """Server text made safe to show: credential scrubbed *before* it is cut, escaped."""
        text = self._scrub(clean(self._scrub(text[:_SCRUB_WINDOW])))
        return text if len(text) <= limit else text[: limit - 1] + "…"

    def _error(
        self,
        kind: type[_E],
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
    ) -> _E:
        # Every piece was scrubbed already; the whole is scrubbed once more as a last line.
        return kind(self._scrub(message), status=status, code=code)

    def _header_notice(self, problem: HeaderProblem) -> None:
        """Say once per header that its value was implausible and what was done instead."""
        if problem.header in self._said:
            return
        self._said.add(problem.header)
        text = f"Lofty's {problem.header} header '{self._clip(problem.value, 40)}' {problem.action}"
        if self._notice is not None:
            self._notice(text)
        else:
            log.warning("%s", text)


def _transport(settings: ClientSettings) -> httpx.AsyncBaseTransport:
    """The real transport: pooled, through the settings' proxy, CA bundle from the environment."""
    limits = httpx.Limits(
        max_connections=settings.parallelism, max_keepalive_connections=settings.parallelism
    )
    try:
        # trust_env here only means SSL_CERT_FILE / SSL_CERT_DIR, as httpx does by default.
        return httpx.AsyncHTTPTransport(limits=limits, proxy=settings.proxy, trust_env=True)
    except (ValueError, ImportError, httpx.InvalidURL) as exc:
        raise ConfigError(
            f"the proxy setting cannot be used ({type(exc).__name__}); check HTTPS_PROXY and "
            "ALL_PROXY"
        ) from None
    except OSError as exc:  # ssl.SSLError included
        raise ConfigError(
            f"the CA certificates in SSL_CERT_FILE / SSL_CERT_DIR cannot be loaded "
            f"({type(exc).__name__}); fix or unset them"
        ) from None


async def _read_capped(
    response: httpx.Response, cap: int, *, refuse_early: bool
) -> tuple[bytes, bool]:
    """At most ``cap`` bytes of the (decoded) body, and whether that was all of it.

    With ``refuse_early``, a body whose declared length is over the cap is not read at all.
    """
    declared = response.headers.get("content-length", "")
    if refuse_early and declared.isdigit() and int(declared) > cap:
        return b"", False
    body = bytearray()
    async for chunk in response.aiter_bytes():
        room = cap - len(body)
        if len(chunk) > room:
            body += chunk[:room]
            return bytes(body), False
        body += chunk
    return bytes(body), True


_NOT_JSON: Any = object()


def _decode(body: bytes) -> Any:
    """The JSON in ``body``, or ``_NOT_JSON`` (also for nesting too deep to parse)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _is_error_object(payload: Any, expected: str) -> bool:
    """A 2xx body that is Lofty's error shape rather than the answer (no ``expected`` key)."""
    return (
        isinstance(payload, dict)
        and expected not in payload
        and ("code" in payload or "message" in payload)
    )


def _json_kind(value: Any) -> str:
    if value is None:
        return "nothing"
    kind = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    return kind.get(type(value), "a number")


def _lead_number(value: Any) -> int | None:
    """A lead id as Lofty may spell it: a positive integer or a string of digits."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,19}", value):
        value = int(value)
    if type(value) is int and value > 0:
        return value
    return None


def _count(value: Any) -> int | None:
    """A non-negative integer from a number or a string of digits; None otherwise."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,18}", value):
        return int(value)
    if type(value) is int and value >= 0:
        return value
    return None


def _list_params(
    filters: Mapping[str, str], return_fields: Sequence[str] | None, page_size: int
) -> dict[str, str]:
    """The query of ``GET /v1.0/leads`` (without paging); :class:`ConfigError` when invalid."""
    unknown = sorted(clean(str(key))[:40] for key in filters if key not in LIST_FILTERS)
    if unknown:
        raise ConfigError(
            f"cannot list leads by {', '.join(unknown)}; the filters are {', '.join(LIST_FILTERS)}"
        )
    for key, value in filters.items():
        if not isinstance(value, str):
            raise ConfigError(f"the {key} filter must be text, not {_json_kind(value)}")
    user = filters.get("assignedUserId")
    if user is not None and not re.fullmatch(r"[0-9]{1,19}", user.strip()):
        raise ConfigError("the assignedUserId filter must be a user id (digits)")
    if type(page_size) is not int or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ConfigError(f"the page size must be from 1 to {MAX_PAGE_SIZE}, not {page_size!r}")
    params = {**filters, "limit": str(page_size)}
    if return_fields is not None:
        if isinstance(return_fields, str) or not all(
            isinstance(name, str) and name and "," not in name for name in return_fields
        ):
            raise ConfigError("return_fields must be a list of field names (no commas)")
        params["returnFields"] = ",".join(dict.fromkeys([*return_fields, "leadId"]))
    return params
