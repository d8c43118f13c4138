"""Reading the managed leads from Lofty for a refreshed plan, in as few calls as it takes.

Two ways to read N leads: one `GET /v1.0/leads/{leadId}` each (N calls), or paging the whole
list (`GET /v1.0/leads`, 100 a page, `returnFields` narrowed to the managed fields), which
costs the account's total / 100 calls whoever is managed. The first page says the total; the
refresh then goes on with whichever needs fewer calls from there, and says which it did. A
managed lead the list did not hold is read with a GET, so a lead deleted in Lofty is known as
such (404) rather than assumed.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, Collection, Mapping, Sequence
from contextlib import aclosing
from typing import Any, Protocol

from reconciler.client import MAX_PAGE_SIZE, Page
from reconciler.client.answers import lead_number
from reconciler.errors import LeadNotFoundError
from reconciler.plan import RefreshInfo

# So few leads are cheaper read one by one than by learning the account's size first.
_FEW = 3
# LeadResponse names of the fields a file manages, where they differ.
_RESPONSE_FIELDS: dict[str, tuple[str, ...]] = {
    "isHidden": ("hiddenFlag",),
    "inquiry": ("leadInquiry",),
    "property": ("leadPropertyList",),
    "customAttributeList": ("customAttributes",),
    "tagsAdd": ("tags",),
    "tagsRemove": ("tags",),
    "clearAllTags": (),
    "leadTransaction": (),
}


class LiveReader(Protocol):
    """What a refresh needs of the Lofty client."""

    async def get_lead(self, lead_id: int) -> dict[str, Any]: ...

    def list_pages(
        self,
        filters: Mapping[str, str],
        *,
        return_fields: Sequence[str] | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> AsyncGenerator[Page, None]: ...


def return_fields(managed: Collection[str]) -> list[str]:
    """The LeadResponse fields that hold the managed fields, plus what identifies a lead."""
    names = ["leadId", "lastUpdateTime"]
    for name in sorted(managed):
        names.extend(_RESPONSE_FIELDS.get(name, (name,)))
    return list(dict.fromkeys(names))


async def read_live(
    client: LiveReader,
    lead_ids: Sequence[int],
    *,
    managed: Collection[str],
    parallelism: int,
) -> tuple[dict[int, dict[str, Any] | None], RefreshInfo]:
    """Every lead of `lead_ids` as Lofty holds it (None for one Lofty does not have), and how
    it was read."""
    wanted = set(lead_ids)
    found: dict[int, dict[str, Any] | None] = {}
    calls = 0
    how: Any = "get"
    if len(wanted) > _FEW:
        pages = client.list_pages({}, return_fields=return_fields(managed))
        async with aclosing(pages):
            async for page in pages:
                calls += 1
                for lead in page.leads:
                    lead_id = lead_number(lead.get("leadId"))
                    if lead_id in wanted:
                        found[lead_id] = lead
                if calls == 1:
                    left = len(wanted) - len(found)
                    pages_left = math.ceil((page.total or 0) / MAX_PAGE_SIZE) - 1
                    if page.total is None or pages_left > left:
                        break  # the rest costs fewer calls one by one
                    how = "list"
    rest = [lead_id for lead_id in lead_ids if lead_id not in found]
    found.update(await _get_each(client, rest, parallelism))
    calls += len(rest)
    return found, RefreshInfo(how, calls, len(wanted))


async def _get_each(
    client: LiveReader, lead_ids: Sequence[int], parallelism: int
) -> dict[int, dict[str, Any] | None]:
    gate = asyncio.Semaphore(parallelism)

    async def one(lead_id: int) -> tuple[int, dict[str, Any] | None]:
        async with gate:
            try:
                return lead_id, await client.get_lead(lead_id)
            except LeadNotFoundError:
                return lead_id, None

    return dict(await asyncio.gather(*(one(i) for i in lead_ids)))
