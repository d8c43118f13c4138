"""The Lofty API client that ``apply`` drives: one pooled httpx client, paced and retried.

Settings come from the environment (:func:`settings_from_env`): ``LOFTY_API_URL`` (default
``https://api.lofty.com``; plain http only to loopback) and a credential, ``LOFTY_ACCESS_TOKEN``
(sent as ``Authorization: Bearer ...``) or ``LOFTY_API_KEY`` (``Authorization: token ...``).
The credential never appears in a URL, log line, repr or exception message.

:meth:`LoftyClient.update_lead` sends one ``PUT /v1.0/leads/{leadId}``. Requests are paced from
the server's rate-limit headers (:mod:`reconciler.pacing`). 429, 5xx, timeouts and dropped
connections are retried with jittered exponential backoff, honouring ``Retry-After`` and
``X-RateLimit-Reset``, until ``max_attempts`` or ``lead_deadline``; any other 4xx fails that lead
at once with the server's message. If no answer at all comes for ``unreachable_deadline``, the
client raises :class:`ApiUnreachableError` and fails every later call at once, so the run ends.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import logging
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import httpx
from tenacity import RetryCallState, RetryError, retry_if_exception_type, wait_random_exponential
from tenacity.asyncio import AsyncRetrying

from reconciler import __version__
from reconciler.errors import ApiError, ConfigError
from reconciler.pacing import Pacer, parse_rate_limit

# httpx logs every request at INFO; keep that out of users' logs (and their CI output).
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.lofty.com"

# Backoff before retry n (from 1) is uniform in [0, min(cap, base * 2**(n-1))] ("full jitter").
_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 10.0
_JITTER = wait_random_exponential(multiplier=_BACKOFF_BASE, max=_BACKOFF_CAP)
# A 429 without a usable hint still pauses everyone briefly rather than letting the flock retry.
_MIN_HOLD_OFF_429 = 1.0
_ERROR_TEXT_LIMIT = 200
_LEADING_CODE = re.compile(r"^\s*(\d+)\b")


class ApiUnreachableError(ApiError):
    """Lofty gave no answer at all for too long; the run stops instead of failing lead by lead.

    Check ``LOFTY_API_URL`` and the network (proxy, firewall, DNS), then apply again: leads not
    applied stay pending in the state.
    """


@dataclass(frozen=True)
class Credentials:
    """How requests authenticate. ``repr``/``str`` never show the secret."""

    scheme: Literal["Bearer", "token"]
    secret: str = field(repr=False)

    def header(self) -> str:
        """The ``Authorization`` header value."""
        return f"{self.scheme} {self.secret}"

    def __repr__(self) -> str:
        return f"Credentials(scheme={self.scheme!r}, secret='***')"

    __str__ = __repr__


@dataclass(frozen=True)
class ClientSettings:
    """Everything the client needs; validated on construction (:class:`ConfigError`)."""

    base_url: str
    credentials: Credentials
    timeout: float = 10.0  # connect, read, write and pool timeouts, each
    parallelism: int = 4  # requests at once; also the connection pool size
    rate_limit_per_minute: float | None = None  # optional ceiling on top of the server's limit
    max_attempts: int = 8  # per lead, first attempt included
    lead_deadline: float = 60.0  # seconds from a lead's first attempt to giving up on it
    unreachable_deadline: float = 120.0  # seconds without any answer before the run stops

    def __post_init__(self) -> None:
        _check_base_url(self.base_url)
        if self.parallelism < 1:
            raise ConfigError(f"parallelism must be at least 1, not {self.parallelism}")
        if self.rate_limit_per_minute is not None and not self.rate_limit_per_minute > 0:
            raise ConfigError(
                f"--rate-limit must be a positive number of requests per minute, "
                f"not {self.rate_limit_per_minute}"
            )
        if not (self.timeout > 0 and self.max_attempts >= 1 and self.lead_deadline > 0):
            raise ConfigError("timeout, max_attempts and lead_deadline must be positive")


def settings_from_env(
    env: Mapping[str, str],
    *,
    parallelism: int = 4,
    rate_limit_per_minute: float | None = None,
) -> ClientSettings:
    """Build settings from ``LOFTY_API_URL`` and ``LOFTY_ACCESS_TOKEN`` / ``LOFTY_API_KEY``.

    An access token wins when both credentials are set. Raises :class:`ConfigError` when there
    is no credential, or the URL is malformed or plain http to a host other than loopback.
    """
    base_url = env.get("LOFTY_API_URL", "").strip() or DEFAULT_API_URL
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


@dataclass
class ClientStats:
    """Counters for benchmarks and summaries."""

    requests_sent: int = 0
    responses_429: int = 0
    retries: int = 0


class _RetryableAnswer(Exception):
    """A 429 or 5xx: worth another attempt, after ``wait_hint`` seconds at least."""

    def __init__(self, message: str, *, status: int, code: int | None, wait_hint: float) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.wait_hint = wait_hint


@dataclass
class _LeadCall:
    """Book-keeping of one update_lead call across its attempts."""

    lead_id: int
    body: Mapping[str, Any]
    started: float | None = None  # clock time of the first attempt

    def elapsed(self, now: float) -> float:
        return 0.0 if self.started is None else now - self.started


class LoftyClient:
    """Async client for the Lofty lead API; use as ``async with LoftyClient(settings) as c``.

    One instance is shared by all of apply's tasks: it owns the connection pool, the pacing
    and the unreachable-endpoint watch. ``sleep``, ``clock`` (monotonic) and ``wall`` (epoch)
    are injectable so tests need not wait.
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._sleep = sleep
        self._clock = clock
        self._wall = wall
        self.stats = ClientStats()
        self._pacer = Pacer(
            rate_limit_per_minute=settings.rate_limit_per_minute,
            sleep=sleep,
            clock=clock,
            wall=wall,
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
            limits=httpx.Limits(
                max_connections=settings.parallelism,
                max_keepalive_connections=settings.parallelism,
            ),
            transport=transport,
        )
        self._last_answer: float | None = None  # clock time of the latest HTTP response
        self._silent_since: float | None = None  # start of the current run of no answers
        self._unreachable: str | None = None  # the error message, once declared unreachable

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

    async def update_lead(self, lead_id: int, body: Mapping[str, Any]) -> None:
        """``PUT /v1.0/leads/{lead_id}`` with ``body`` as JSON; return once Lofty accepted it.

        Raises :class:`ApiError` (``status``/``code`` set when the server gave them) when Lofty
        refuses the update, answers for another lead, or retries run out, and
        :class:`ApiUnreachableError` once Lofty has not answered for ``unreachable_deadline``.
        """
        self._check_reachable()
        call = _LeadCall(lead_id, body)
        retrying = AsyncRetrying(
            sleep=self._sleep,
            retry=retry_if_exception_type((_RetryableAnswer, httpx.TransportError)),
            wait=self._wait,
            stop=lambda state: self._stop(state, call),
            before_sleep=lambda state: self._before_sleep(state, call),
        )
        try:
            await retrying(self._attempt, call)
        except RetryError as exc:
            if self._unreachable is not None:
                raise ApiUnreachableError(self._unreachable) from None
            attempts = exc.last_attempt.attempt_number
            elapsed = call.elapsed(self._clock())
            last = exc.last_attempt.exception()
            status = last.status if isinstance(last, _RetryableAnswer) else None
            code = last.code if isinstance(last, _RetryableAnswer) else None
            raise ApiError(
                f"gave up after {attempts} attempt{'s' if attempts > 1 else ''} "
                f"in {elapsed:.0f} s; last: {self._describe(last)}",
                status=status,
                code=code,
            ) from None

    async def _attempt(self, call: _LeadCall) -> None:
        self._check_reachable()
        async with self._slots:
            await self._pacer.acquire()
            headers: httpx.Headers | None = None
            sent = self._clock()
            if call.started is None:
                call.started = sent
            try:
                self.stats.requests_sent += 1
                response = await self._http.put(f"/v1.0/leads/{call.lead_id}", json=call.body)
                headers = response.headers
            except httpx.TransportError:
                # PUT is idempotent, so a request that may have reached Lofty is safe to repeat.
                self._note_silence(since=sent)
                raise
            except httpx.HTTPError as exc:  # e.g. a body that cannot be decoded: not transient
                raise ApiError(self._describe(exc)) from None
            finally:
                self._pacer.release(headers)
        self._last_answer, self._silent_since = self._clock(), None
        self._check_response(response, call.lead_id)

    def _check_response(self, response: httpx.Response, lead_id: int) -> None:
        status = response.status_code
        if status == 429 or status >= 500:
            if status == 429:
                self.stats.responses_429 += 1
            detail, code = self._error_detail(response)
            hint = self._wait_hint(response)
            # Whatever the server asked of this request holds for every other one too.
            hold = max(hint, _MIN_HOLD_OFF_429) if status == 429 else hint
            if hold:
                hold = min(hold, self._settings.lead_deadline)
                self._pacer.hold_off(hold, rate_limited=status == 429)
            raise _RetryableAnswer(
                f"HTTP {status}: {detail}", status=status, code=code, wait_hint=hint
            )
        if not 200 <= status < 300:
            detail, code = self._error_detail(response)
            if 300 <= status < 400 and "location" in response.headers:
                detail = (
                    f"redirected to {self._redact(response.headers['location'])}; "
                    "set LOFTY_API_URL to the address the API really answers at"
                )
            raise ApiError(f"HTTP {status}: {detail}", status=status, code=code)
        try:
            answered = response.json()
        except ValueError:
            raise ApiError(
                f"HTTP {status} but the response is not JSON: {self._text(response)!r}",
                status=status,
            ) from None
        got = answered.get("leadId") if isinstance(answered, dict) else None
        if type(got) is not int or got != lead_id:
            raise ApiError(
                f"HTTP {status} but the response names leadId {got!r}, not {lead_id}; "
                "the update may have gone to another lead",
                status=status,
            )

    def _error_detail(self, response: httpx.Response) -> tuple[str, int | None]:
        """The server's message and numeric code, from either error shape Lofty uses."""
        try:
            payload = response.json()
        except ValueError:
            payload = None
        code: int | None = None
        if isinstance(payload, dict) and ("code" in payload or "message" in payload):
            raw_code, message = payload.get("code"), payload.get("message")
            detail = " ".join(str(part) for part in (raw_code, message) if part is not None)
            if isinstance(raw_code, int | str) and str(raw_code).isdigit():
                code = int(raw_code)
        elif isinstance(payload, str):
            detail = payload
        else:
            detail = self._text(response)
        detail = self._redact(detail.strip()[:_ERROR_TEXT_LIMIT]) or response.reason_phrase
        if code is None and (match := _LEADING_CODE.match(detail)):
            code = int(match.group(1))  # a bare string such as "20006 LEAD_NOT_EXIST"
        return detail, code

    def _text(self, response: httpx.Response) -> str:
        return self._redact(response.text.strip()[:_ERROR_TEXT_LIMIT])

    def _wait_hint(self, response: httpx.Response) -> float:
        """Seconds the server asked us to wait: Retry-After, else (for 429) until Reset."""
        retry_after = response.headers.get("retry-after", "").strip()
        if retry_after:
            try:
                return max(float(retry_after), 0.0)
            except ValueError:
                pass
            try:
                when = email.utils.parsedate_to_datetime(retry_after)
            except (TypeError, ValueError):
                when = None
            if when is not None and when.tzinfo is not None:
                return max(when.timestamp() - self._wall(), 0.0)
        if response.status_code == 429:
            now = self._wall()
            window = parse_rate_limit(response.headers, now=now)
            if window is not None:  # the pacer adds its margin past Reset itself
                return max(window[1] - now, 0.0)
        return 0.0

    def _wait(self, state: RetryCallState) -> float:
        backoff = _JITTER(state)
        failure = state.outcome.exception() if state.outcome else None
        hint = failure.wait_hint if isinstance(failure, _RetryableAnswer) else 0.0
        return max(backoff, hint)

    def _stop(self, state: RetryCallState, call: _LeadCall) -> bool:
        now = self._clock()
        resumes = now + state.upcoming_sleep
        if self._unreachable is None and self._silent_since is not None:
            # Stop now if the next attempt could still be failing when the deadline passes.
            silent_for = resumes + self._settings.timeout - self._silent_since
            if silent_for >= self._settings.unreachable_deadline:
                failure = state.outcome.exception() if state.outcome else None
                self._unreachable = (
                    f"Lofty at {self._settings.base_url} has not answered for "
                    f"{now - self._silent_since:.0f} s (last: {self._describe(failure)}); "
                    "stopping. Check LOFTY_API_URL and the network, then apply again"
                )
        return (
            self._unreachable is not None
            or state.attempt_number >= self._settings.max_attempts
            or call.elapsed(resumes) > self._settings.lead_deadline
        )

    def _before_sleep(self, state: RetryCallState, call: _LeadCall) -> None:
        self.stats.retries += 1
        failure = state.outcome.exception() if state.outcome else None
        log.info(
            "lead %d: %s; retrying in %.1f s (attempt %d of %d)",
            call.lead_id,
            self._describe(failure),
            state.upcoming_sleep,
            state.attempt_number + 1,
            self._settings.max_attempts,
        )

    def _note_silence(self, *, since: float) -> None:
        # A response that arrived after this request went out proves the server was up then.
        if self._last_answer is not None:
            since = max(since, self._last_answer)
        if self._silent_since is None:
            self._silent_since = since

    def _check_reachable(self) -> None:
        if self._unreachable is not None:
            raise ApiUnreachableError(self._unreachable)

    def _describe(self, failure: BaseException | None) -> str:
        if isinstance(failure, _RetryableAnswer):
            return str(failure)
        if isinstance(failure, httpx.TimeoutException):
            return f"no answer within {self._settings.timeout:g} s ({type(failure).__name__})"
        text, name = str(failure), type(failure).__name__
        if isinstance(failure, httpx.TransportError):
            return self._redact(f"connection failed: {name}: {text}" if text else name)
        return self._redact(f"{name}: {text}")

    def _redact(self, text: str) -> str:
        # A server (or proxy) echoing our request back must not leak the credential.
        return text.replace(self._settings.credentials.secret, "***")
