"""`GET /v1.0/leads`: its filters, `returnFields`, and paging by `offset` or by `scrollId`.

As the vendor documents List Leads (OpenAPI file): `limit` must be in [1, 100], otherwise 400
LIMIT_NOT_VALID; filters combine with AND. `stage` ("pipeline stage names"), `segments`,
`anyTags` and `allTags` take comma-separated names and match any stage, any segment, any tag
and every tag; `source` is one name, `assignedUserId` one id; names match exactly. Other query
parameters are accepted and ignored. Leads come in leadId order.

Paging, both ways the vendor offers:
- with `offset`, a page is read live from the leads as they are at that moment;
- without it, a request starts a scroll over a snapshot of the matching leads, and every page
  that holds leads carries the `scrollId` of the next one. Asking for the same `scrollId` again
  gives the same page, so a retried request is safe. The page after the last lead is empty and
  carries no `scrollId`.

A page is sometimes cut below `limit` before the end (`short_page_rate`), so a client cannot
take a short page for the last one. Which pages are cut follows from the random seed and the
page's place, never from timing: the same request gets the same page.
"""

from __future__ import annotations

import base64
import binascii
import random
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.sandbox.rules import LIMIT_NOT_VALID, Rejection, invalid
from reconciler.sandbox.store import LeadStore, StoredLead

MAX_LIMIT = 100
DEFAULT_LIMIT = 10  # the MetaData schema's example
_MAX_SCROLLS = 64  # scroll snapshots kept; the oldest is forgotten first
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")


@dataclass(frozen=True, slots=True)
class Filters:
    """What a lead must match; None = no filter. Name sets are sorted tuples (stable to hash)."""

    stages: tuple[str, ...] | None = None
    source: str | None = None
    segments: tuple[str, ...] | None = None
    any_tags: tuple[str, ...] | None = None
    all_tags: tuple[str, ...] | None = None
    assigned_user_id: int | None = None

    def match(self, lead: StoredLead) -> bool:
        fields = lead.fields
        tags = {tag.name for tag in lead.tags}
        checks = (
            self.stages is None or fields.get("stage") in self.stages,
            self.source is None or fields.get("source") == self.source,
            self.segments is None or bool(set(self.segments) & set(fields.get("segments", []))),
            self.any_tags is None or bool(set(self.any_tags) & tags),
            self.all_tags is None or set(self.all_tags) <= tags,
            self.assigned_user_id is None or fields.get("assignedUserId") == self.assigned_user_id,
        )
        return all(checks)


@dataclass(frozen=True, slots=True)
class ListRequest:
    """One list request, parsed."""

    filters: Filters
    limit: int | None  # None: not given (a scroll keeps the limit it started with)
    offset: int | None
    scroll_id: str | None
    return_fields: frozenset[str] | None


def parse(params: Mapping[str, Sequence[str]]) -> ListRequest | Rejection:
    """Read the query parameters of a list request, or say why Lofty would refuse them."""
    limit = _integer(params, "limit")
    if limit is not None and (isinstance(limit, Rejection) or not 1 <= limit <= MAX_LIMIT):
        return LIMIT_NOT_VALID
    offset = _integer(params, "offset")
    if isinstance(offset, Rejection) or (offset is not None and offset < 0):
        return invalid("offset", "must be an integer >= 0")
    assigned = _integer(params, "assignedUserId")
    if isinstance(assigned, Rejection):
        return assigned
    filters = Filters(
        stages=_names(params, "stage"),
        source=_first(params, "source"),
        segments=_names(params, "segments"),
        any_tags=_names(params, "anyTags"),
        all_tags=_names(params, "allTags"),
        assigned_user_id=assigned,
    )
    fields = _names(params, "returnFields")
    return ListRequest(
        filters=filters,
        limit=limit,
        offset=offset,
        scroll_id=_first(params, "scrollId"),
        return_fields=None if fields is None else frozenset(fields) | {"leadId"},
    )


@dataclass(frozen=True, slots=True)
class _Scroll:
    number: int
    lead_ids: tuple[int, ...]
    limit: int


class Pager:
    """Answers list requests from a store; keeps the snapshots scrolls page through."""

    def __init__(self, *, metadata_key: str, short_page_rate: float, salt: str) -> None:
        self._metadata_key = metadata_key
        self._short_page_rate = short_page_rate
        self._salt = salt
        self._scrolls: OrderedDict[int, _Scroll] = OrderedDict()
        self._next_scroll = 1

    def page(self, store: LeadStore, request: ListRequest) -> dict[str, Any] | Rejection:
        """The `LeadListResponse` body for a request, or a Rejection."""
        if request.scroll_id is not None:
            return self._scroll_page(store, request)
        matching = [lead for lead in store.held() if request.filters.match(lead)]
        limit = request.limit or DEFAULT_LIMIT
        if request.offset is not None:
            start = request.offset
            place = f"offset:{request.filters!r}:{start}:{limit}"
            count = self._count(place, limit, len(matching) - start)
            leads = matching[start : start + count]
            return self._body(store, request, leads, limit, start, len(matching), None)
        scroll = self._start_scroll(tuple(lead.lead_id for lead in matching), limit)
        return self._scroll_body(store, request, scroll, 0, limit)

    def _scroll_page(self, store: LeadStore, request: ListRequest) -> dict[str, Any] | Rejection:
        place = _decode(request.scroll_id or "")
        scroll = None if place is None else self._scrolls.get(place[0])
        if place is None or scroll is None or not 0 <= place[1] <= len(scroll.lead_ids):
            return invalid("scrollId", "unknown or expired; list again without a scrollId")
        return self._scroll_body(store, request, scroll, place[1], request.limit or scroll.limit)

    def _scroll_body(
        self, store: LeadStore, request: ListRequest, scroll: _Scroll, position: int, limit: int
    ) -> dict[str, Any]:
        # Leads trashed since the snapshot are passed over, so only the end gives an empty page.
        found: list[tuple[int, StoredLead]] = []
        for index in range(position, len(scroll.lead_ids)):
            lead = store.peek(scroll.lead_ids[index])
            if lead is not None:
                found.append((index, lead))
            if len(found) == limit:
                break
        place = f"scroll:{scroll.number}:{position}:{limit}"
        found = found[: self._count(place, limit, len(found))]
        next_id = _encode(scroll.number, found[-1][0] + 1) if found else None
        leads = [lead for _, lead in found]
        return self._body(store, request, leads, limit, position, len(scroll.lead_ids), next_id)

    def _start_scroll(self, lead_ids: tuple[int, ...], limit: int) -> _Scroll:
        scroll = _Scroll(self._next_scroll, lead_ids, limit)
        self._next_scroll += 1
        self._scrolls[scroll.number] = scroll
        while len(self._scrolls) > _MAX_SCROLLS:
            self._scrolls.popitem(last=False)
        return scroll

    def _count(self, place: str, limit: int, available: int) -> int:
        count = max(0, min(limit, available))
        chance = random.Random(f"{self._salt}:{place}")
        if count > 1 and chance.random() < self._short_page_rate:
            return chance.randint(1, count - 1)
        return count

    def _body(
        self,
        store: LeadStore,
        request: ListRequest,
        leads: Sequence[StoredLead],
        limit: int,
        offset: int,
        total: int,
        scroll_id: str | None,
    ) -> dict[str, Any]:
        views = [store.view(lead) for lead in leads]
        if request.return_fields is not None:
            views = [
                {k: v for k, v in view.items() if k in request.return_fields} for view in views
            ]
        metadata: dict[str, Any] = {
            "collection": "leads",
            "limit": limit,
            "offset": offset,
            "total": total,
        }
        if scroll_id is not None:
            metadata["scrollId"] = scroll_id
        return {self._metadata_key: metadata, "leads": views}


def _first(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _names(params: Mapping[str, Sequence[str]], name: str) -> tuple[str, ...] | None:
    """Comma-separated names, from every occurrence of the parameter; None when absent/empty."""
    names = {part.strip() for value in params.get(name, ()) for part in value.split(",")}
    names.discard("")
    return tuple(sorted(names)) or None


def _integer(params: Mapping[str, Sequence[str]], name: str) -> int | Rejection | None:
    text = _first(params, name)
    if not text:
        return None
    if not _INTEGER.fullmatch(text):
        return invalid(name, f"must be an integer, not {text!r}")
    return int(text)


def _encode(number: int, position: int) -> str:
    return base64.urlsafe_b64encode(f"{number}:{position}".encode()).decode().rstrip("=")


def _decode(scroll_id: str) -> tuple[int, int] | None:
    try:
        text = base64.urlsafe_b64decode(scroll_id + "=" * (-len(scroll_id) % 4)).decode()
        number, position = text.split(":")
        return int(number), int(position)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
