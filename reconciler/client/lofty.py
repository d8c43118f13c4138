"""The :class:`LoftyClient` commands use: it builds the client's parts from one
:class:`ClientSettings` and offers the API calls; the parts do the work.

A call becomes a :class:`~.call.Call`, which the retry policy (:mod:`.retry`) runs attempt by
attempt (:mod:`.attempts`), each answer judged (:mod:`.answers`), under the watches that end a
run (:mod:`.watch`); the reads live in :mod:`.reads`, and everything the client says goes
through one :class:`~.scrub.Voice`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from reconciler.client.answers import Judge, lead_number
from reconciler.client.attempts import Sender
from reconciler.client.call import Call, ClientStats
from reconciler.client.reads import MAX_PAGE_SIZE, Page, Reader, list_params
from reconciler.client.retry import RetryPolicy
from reconciler.client.scrub import Voice
from reconciler.client.settings import ClientSettings
from reconciler.client.watch import Watch
from reconciler.errors import ApiError
from reconciler.pacing import Pacer


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
        self.stats = ClientStats()
        self._voice = Voice(settings.credentials, notice)
        watch = Watch(settings, self._voice)
        pacer = Pacer(
            rate_limit_per_minute=settings.rate_limit_per_minute,
            sleep=sleep,
            clock=clock,
            wall=wall,
            max_wait=settings.max_wait,
            notice=self._voice.header_notice,
        )
        judge = Judge(
            settings, voice=self._voice, watch=watch, pacer=pacer, stats=self.stats, wall=wall
        )
        self._sender = Sender(
            settings,
            transport=transport,
            clock=clock,
            voice=self._voice,
            watch=watch,
            pacer=pacer,
            judge=judge,
            stats=self.stats,
        )
        self._retry = RetryPolicy(
            settings,
            watch=watch,
            voice=self._voice,
            stats=self.stats,
            clock=clock,
            sleep=sleep,
        )
        self._reader = Reader(settings, request=self._request, judge=judge, voice=self._voice)

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
        await self._sender.aclose()

    async def check_access(self) -> None:
        """Make one cheap authenticated request (``GET /v1.0/leads?limit=1``) and return if it
        worked: call it before showing a plan for confirmation.

        Raises :class:`AuthError` (with a hint on the credential's scheme) on 401/403, and
        :class:`ConfigError` when the answer shows ``LOFTY_API_URL`` is wrong (404, a redirect,
        something that is not JSON); otherwise as the other calls do.
        """
        await self._reader.check_access()

    async def update_lead(self, lead_id: int, body: Mapping[str, Any]) -> None:
        """``PUT /v1.0/leads/{lead_id}`` with ``body`` as JSON; return once Lofty accepted it.

        Accepted means a 2xx whose ``leadId`` (a number or a numeric string) is ``lead_id``.
        Raises :class:`LeadNotFoundError` for a lead Lofty does not have, :class:`AuthError`,
        :class:`ApiUnreachableError`, or :class:`ApiError` when Lofty refuses the update,
        answers for another lead or with an error object, or retries run out.
        """
        call = Call(
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
        if lead_number(got) != lead_id:
            raise self._voice.error(
                ApiError,
                f"HTTP {status} but the response names leadId {self._voice.clip(repr(got), 60)}, "
                f"not {lead_id}; the update may have gone to another lead",
                status=status,
            )

    async def get_lead(self, lead_id: int) -> dict[str, Any]:
        """``GET /v1.0/leads/{lead_id}``: the raw ``lead`` object, in Lofty's shape.

        Keys are passed through as Lofty sent them (unknown ones included; the caller maps
        what it knows). Raises :class:`LeadNotFoundError` on 404, :class:`ApiError` when the
        answer holds no ``lead`` object or one for another lead, and as :meth:`update_lead`.
        """
        return await self._reader.get_lead(lead_id)

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
        params = list_params(filters, return_fields, page_size)
        return self._reader.leads(params, page_size)

    def list_pages(
        self,
        filters: Mapping[str, str],
        *,
        return_fields: Sequence[str] | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> AsyncGenerator[Page, None]:
        """The list of :meth:`list_leads`, one :class:`Page` (its new leads and the total the
        metadata gave) per request, for a caller that decides page by page whether to go on.
        """
        params = list_params(filters, return_fields, page_size)
        return self._reader.pages(params, page_size)

    async def _request(self, call: Call) -> tuple[int, Any]:
        """Send ``call`` until it gets a final answer; return its status and decoded JSON."""
        return await self._retry.run(call, self._sender.attempt)
