"""One attempt of a request: a connection slot, its turn from the pacer, a total deadline for
the request and the whole response, a body streamed and read only up to a cap, and the answer
judged (:mod:`.answers`). Whether to try again is the retry policy's business (:mod:`.retry`).

The connection pool is the one :class:`httpx.AsyncClient` here: pooled to ``parallelism``,
through the settings' proxy (never one from the environment: those were resolved and checked
in :mod:`.settings`), redirects not followed, so the credential goes nowhere but
``LOFTY_API_URL``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx

from reconciler import __version__
from reconciler.client.answers import Judge
from reconciler.client.call import Answer, Call, ClientStats, NoAnswer
from reconciler.client.retry import gave_up
from reconciler.client.scrub import Voice
from reconciler.client.settings import ClientSettings
from reconciler.client.watch import Watch
from reconciler.errors import ApiError, ConfigError
from reconciler.pacing import Pacer

# httpx logs every request at INFO; keep that out of users' logs (and their CI output).
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

# An error body is only shown in part, so only its start is read.
_ERROR_BODY_LIMIT = 64 * 1024


class Sender:
    """Makes single attempts for every request of one client; owns its connection pool.

    ``transport`` is the real one (:func:`_transport`) unless a test hands in another.
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.AsyncBaseTransport | None,
        clock: Callable[[], float],
        voice: Voice,
        watch: Watch,
        pacer: Pacer,
        judge: Judge,
        stats: ClientStats,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._voice = voice
        self._watch = watch
        self._pacer = pacer
        self._judge = judge
        self._stats = stats
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

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def attempt(self, call: Call) -> tuple[int, Any]:
        """Send ``call`` once: its judged ``(status, payload)``, or the failure it met."""
        async with self._slots:
            self._watch.check_open()
            await self._pacer.acquire()
            headers: httpx.Headers | None = None
            try:
                self._watch.check_open()  # the run may have ended while this one waited its turn
                answer = await self._send(call)
                headers = answer.headers
            finally:
                self._pacer.release(headers)
        self._watch.answered(self._clock())
        return self._judge.judge(call, answer)

    async def _send(self, call: Call) -> Answer:
        sent = self._clock()
        if call.started is None:
            call.started = sent
        budget = min(
            self._settings.attempt_deadline, self._settings.lead_deadline - call.elapsed(sent)
        )
        if budget <= 0:  # pacing held this retry back until the deadline passed
            raise gave_up(call, voice=self._voice, now=self._clock())
        call.attempts += 1
        self._stats.count(call.method)
        try:
            # httpx's timeouts are per read: a server dripping bytes would never trip them.
            async with asyncio.timeout(budget):
                return await self._exchange(call)
        except (httpx.TransportError, TimeoutError) as exc:
            # GET and PUT are idempotent, so a request that may have reached Lofty is safe
            # to repeat.
            self._watch.no_answer(since=sent)
            raise NoAnswer(self._describe(exc, budget)) from None
        except httpx.HTTPError as exc:  # e.g. a body that cannot be decoded: not transient
            raise self._voice.error(ApiError, self._describe(exc, budget)) from None

    async def _exchange(self, call: Call) -> Answer:
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
        return Answer(
            response.status_code, response.reason_phrase, response.headers, body, complete
        )

    def _describe(self, failure: BaseException, budget: float) -> str:
        """What went wrong with an attempt that got no answer, for a message."""
        name = type(failure).__name__
        if isinstance(failure, TimeoutError):
            return f"no complete answer within {budget:.3g} s"
        if isinstance(failure, httpx.TimeoutException):
            return f"no answer within {self._settings.timeout:g} s ({name})"
        text = self._voice.clip(str(failure))
        if isinstance(failure, httpx.ProxyError):
            return f"the proxy failed: {name}: {text}" if text else f"the proxy failed: {name}"
        if isinstance(failure, httpx.TransportError):
            return f"connection failed: {name}: {text}" if text else f"connection failed: {name}"
        return f"{name}: {text}"


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
