"""The reads: the access check, one lead (``GET /v1.0/leads/{leadId}``) and the lead list
(``GET /v1.0/leads``) across its pages.

The list follows ``scrollId`` when Lofty gives one, else ``offset``, and never assumes full
pages: a short page does not end it, only an empty page or reaching the metadata's ``total``
does. A lead seen on an earlier page is not yielded again, and a list that keeps coming back
(a page with nothing new, or far more pages than ``total`` needs) is stopped with an error
rather than read forever.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.client.answers import Judge, count, json_kind, lead_number
from reconciler.client.call import Call
from reconciler.client.scrub import Voice
from reconciler.client.settings import ClientSettings
from reconciler.errors import ApiError, ConfigError
from reconciler.sanitize import clean

#: The filters ``GET /v1.0/leads`` takes from :meth:`LoftyClient.list_leads`.
LIST_FILTERS = ("stage", "source", "segments", "anyTags", "allTags", "assignedUserId")
#: Lofty's largest page (``limit``) for the list endpoint.
MAX_PAGE_SIZE = 100

# A list that keeps yielding pages: allow short pages (a quarter of the limit on average) before
# calling it endless; without a total, stop at a count no Lofty account comes near.
_PAGE_SLACK_FACTOR = 4
_PAGE_SLACK = 10
_MAX_LIST_LEADS = 1_000_000
_MAX_SCROLL_ID = 4096


@dataclass(frozen=True, slots=True)
class Page:
    """One page of the lead list: its leads (new ones only) and the total the metadata gave."""

    leads: list[dict[str, Any]]
    total: int | None


#: Sends a call under the retry policy: its final ``(status, payload)``.
Request = Callable[[Call], Awaitable[tuple[int, Any]]]


class Reader:
    """The GETs of one client (:meth:`LoftyClient.check_access`, :meth:`~LoftyClient.get_lead`,
    :meth:`~LoftyClient.list_leads` document what they promise), made through ``request``.
    """

    def __init__(
        self, settings: ClientSettings, *, request: Request, judge: Judge, voice: Voice
    ) -> None:
        self._settings = settings
        self._request = request
        self._judge = judge
        self._voice = voice

    async def check_access(self) -> None:
        """``GET /v1.0/leads?limit=1``, where an answer that is not Lofty's means a wrong URL."""
        call = Call(
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
            raise self._judge.wrong_url(f"answered with {json_kind(payload)}, not an object")

    async def get_lead(self, lead_id: int) -> dict[str, Any]:
        """``GET /v1.0/leads/{lead_id}``: the raw ``lead`` object, checked to be that lead."""
        call = Call(
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
            raise self._voice.error(
                ApiError,
                f"HTTP {status} but the response holds no `lead` object "
                f"(got {json_kind(lead if isinstance(payload, dict) else payload)})",
                status=status,
            )
        got = lead.get("leadId")
        if got is not None and lead_number(got) != lead_id:
            shown = self._voice.clip(repr(got), 60)
            raise self._voice.error(
                ApiError,
                f"HTTP {status} but the lead returned has leadId {shown}, not {lead_id}",
                status=status,
            )
        return lead

    async def leads(self, params: dict[str, str], page_size: int) -> AsyncIterator[dict[str, Any]]:
        """Every lead of the list ``params`` (from :func:`list_params`) asks for."""
        async for page in self.pages(params, page_size):
            for lead in page.leads:
                yield lead

    async def pages(self, params: dict[str, str], page_size: int) -> AsyncGenerator[Page, None]:
        """The list ``params`` asks for, one :class:`Page` per request, each holding only the
        leads not seen on an earlier page."""
        seen: set[int] = set()
        received = 0  # leads on the pages so far, repeats included: the next offset
        scroll: str | None = None
        most = 0  # the largest total the metadata gave, 0 while none did
        page = 0
        while True:
            page += 1
            where = f"page {page} of the lead list"
            # The first page names no place, so that Lofty can start a scroll (a consistent
            # snapshot, and no re-filtering of the account for every page); without one, the
            # next pages go by offset.
            place = (
                {"scrollId": scroll} if scroll else {"offset": str(received)} if page > 1 else {}
            )
            query = {**params, **place}
            call = Call(
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
            fresh: list[dict[str, Any]] = []
            for lead in leads:
                lead_id = lead_number(lead.get("leadId"))
                if lead_id is None:
                    raise self._voice.error(
                        ApiError, f"{where} holds a lead without a numeric leadId"
                    )
                if lead_id not in seen:
                    seen.add(lead_id)
                    fresh.append(lead)
            if not fresh:
                asked = (
                    f"at offset {received}"
                    if scroll is None
                    else "by a scrollId "
                    + ("that came back again" if next_scroll == scroll else "")
                ).strip()
                raise self._voice.error(
                    ApiError,
                    f"{where} ({asked}) holds only leads already read: Lofty is not moving on; "
                    "stopping rather than asking forever",
                )
            yield Page(fresh, total)
            received += len(leads)
            most = max(most, total or 0)
            if total is not None and len(seen) >= total:
                return
            needed = _PAGE_SLACK_FACTOR * math.ceil(most / page_size) + _PAGE_SLACK
            if (most and page >= needed) or len(seen) >= _MAX_LIST_LEADS:
                raise self._voice.error(
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
            raise self._voice.error(
                ApiError, f"{where} is {json_kind(payload)}, not an object", status=status
            )
        meta = payload.get("_metadata")
        if not isinstance(meta, dict):
            meta = payload.get("get_metadata")
        meta = meta if isinstance(meta, dict) else {}
        total = count(meta.get("total"))
        leads = payload.get("leads")
        if leads is None and total == 0:
            leads = []
        if not isinstance(leads, list) or not all(isinstance(lead, dict) for lead in leads):
            raise self._voice.error(
                ApiError,
                f"{where} has no list of lead objects under `leads` (got {json_kind(leads)})",
                status=status,
            )
        scroll = meta.get("scrollId")
        if not isinstance(scroll, str) or not scroll:
            scroll = None
        elif len(scroll) > _MAX_SCROLL_ID:
            raise self._voice.error(
                ApiError, f"{where} has a scrollId of {len(scroll)} characters", status=status
            )
        return leads, total, scroll


def list_params(
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
            raise ConfigError(f"the {key} filter must be text, not {json_kind(value)}")
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
