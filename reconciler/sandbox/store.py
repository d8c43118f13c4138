"""The leads the sandbox holds, how a PUT or an agent's edit changes them, and how Lofty shows them.

Writes follow the vendor's documented behaviour, not our model's assumptions:

- A top-level field is replaced by what a PUT sends (a list whole). `''` clears a string field,
  enum-like ones and `birthday` included; the lead then holds, and shows, `''`.
- `firstName`, `lastName` and each `groups`/`segments` item are cut to 30, each `tags`/`tagsAdd`
  item to 64, counted in UTF-16 code units as Lofty's Java server counts (see `rules.cut`).
- A nested object (`inquiry`, `property`, `leadTransaction`) is merged key by key: a key the PUT
  omits keeps its stored value. Server-owned keys in it (`id`, `leadUserId`, times,
  `modifyByAgent`, `defaultValue`) are the server's, whatever a body says.
- `property` with an `id` > 0 updates that record (200108 if this lead has none by that id);
  without one, Lofty merges with the record at the same address (street, city, state, zip,
  compared without case or extra spaces) or creates another record with a new id.
- `leadTransaction`: a `transactionType` outside the sandbox's pipeline falls back to its first
  type, a `transactionStatus` outside that type's statuses to the type's first status. The
  vendor does not say whether a PUT adds a transaction or edits one; the sandbox keeps one.
- `tags` replaces the set, `tagsAdd` adds, `tagsRemove` removes names the lead had before the
  request (literally), `clearAllTags: true` removes them all.

Every accepted change moves `lastUpdateTime`, on a clock that never repeats a value. Reads
answer in `LeadResponse`'s shape: tags as `UserLeadTagVo` objects, `leadInquiry`,
`leadPropertyList`, `customAttributes`, `hiddenFlag`; `property.priceMin/priceMax` (write-only)
and `leadTransaction` are never shown, except in the admin view (`write_only=True`).

Longer than the project's ~400-line habit because each rule above is a few lines next to the
others it interacts with (a PUT's merge, its cuts, the clock, the read shape); the list of
vendor behaviours is easier to check against the vendor's page in one place.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reconciler.sandbox.rules import (
    ADDRESS_FIELDS,
    LEAD_NOT_EXIST,
    LEAD_PROPERTY_NOT_EXIST,
    NAME_LIMIT,
    TAG_LIMIT,
    Rejection,
    cut,
)

# The team the sandbox plays, and the users who write to it.
TEAM_ID = 20001
API_USER_ID = 10000000001  # the integration whose token calls the API
AGENT_USER_ID = 10000000514  # the agent who edits leads in Lofty's UI (the vendor's example id)

# The sandbox's transaction pipeline: its types, in order, and each type's statuses, in order.
# Lofty's first pipeline is "typically 'Purchase / Pre-contract'" (LeadTransaction schema).
PIPELINE: dict[str, tuple[str, ...]] = {
    "Purchase": ("Pre-contract", "Under contract", "Closed", "Terminated"),
    "Listing": ("Pre-listing", "Active listing", "Under contract", "Closed", "Terminated"),
    "Lease": ("Pre-lease", "Leased", "Terminated"),
    "Other": ("Open", "Closed"),
}
# What a lead holds before anything is written to it: Lofty always has a stage and a source.
DEFAULT_STAGE = "New"
DEFAULT_SOURCE = "Sandbox"

TAG_FIELDS = ("tags", "tagsAdd", "tagsRemove", "clearAllTags")
_CUT_STRINGS = ("firstName", "lastName")
_CUT_ITEMS = ("groups", "segments")
# PUT names that LeadResponse spells differently.
_RESPONSE_NAMES = {"isHidden": "hiddenFlag", "customAttributeList": "customAttributes"}
_FLAGS = ("cannotText", "cannotCall", "cannotEmail", "isHidden", "unsubscription")
_LISTS: tuple[str, ...] = (
    "emails",
    "phones",
    "groups",
    "segments",
    "leadTypes",
    "customAttributeList",
)
_LISTS += ("leadFamilyMemberList",)
_INQUIRY_SERVER_KEYS = frozenset(
    {"id", "leadUserId", "modifyByAgent", "createTime", "updateTime", "defaultValue"}
)
_PROPERTY_SERVER_KEYS = frozenset({"id", "leadUserId"})
_PROPERTY_WRITE_ONLY = ("priceMin", "priceMax")
# LeadTransaction keys a request may not set: read-only, or "ignored if supplied".
_TRANSACTION_SERVER_KEYS = frozenset(
    {"created", "updated", "transactionId", "leadName", "assignedAgent"}
)
# Server-owned LeadResponse keys a seeded lead may be given (generated leads look lived-in).
SERVER_FIELDS = frozenset(
    {"score", "facebook", "twitter", "lastTouch", "lastVisit", "opportunity", "lenderUserId"}
)
# LeadResponse's keys in the vendor schema's order; a view lists what it has in this order.
RESPONSE_KEYS = (
    *("cannotText", "cannotCall", "cannotEmail", "leadId", "leadUserId", "firstName"),
    *("lastName", "birthday", "emails", "phones", "leadSource", "source", "stageId", "stage"),
    *("assignedUserId", "assignedUser", "lenderUserId", "score", "tags", "teamId"),
    *("streetAddress", "city", "state", "zipCode", "createTime", "assignTime", "facebook"),
    *("twitter", "hiddenFlag", "referredBy", "leadInquiry", "leadPropertyList"),
    *("customAttributes", "lastUpdateTime", "groups", "segments", "unsubscription"),
    *("leadTypes", "lastTouch", "lastVisit", "phoneStatuses", "assignCompletionStatus"),
    *("buyingTimeFrame", "preQual", "houseToSell", "fthb", "withBuyerAgent"),
    *("sellingTimeFrame", "mortgage", "buyHouse", "withListingAgent", "opportunity"),
    *("leadFamilyMemberList", "pondId", "pondName", "customRoleList", "language"),
    *("ownershipId", "ownershipScope"),
)


def iso(ms: int) -> str:
    """A time as Lofty's read endpoints show it: RFC 3339 UTC with milliseconds."""
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


class Clock:
    """Milliseconds since the epoch that never repeat, so every change moves `lastUpdateTime`."""

    def __init__(self) -> None:
        self._last = 0

    def now(self) -> int:
        self._last = max(int(time.time() * 1000), self._last + 1)
        return self._last


class _Ids:
    """Server ids handed out in order, and names given ids once (tags, stages, sources)."""

    def __init__(self, first: int) -> None:
        self._next = first
        self._by_name: dict[str, int] = {}

    def new(self) -> int:
        self._next += 1
        return self._next - 1

    def of(self, name: str) -> int:
        if name not in self._by_name:
            self._by_name[name] = self.new()
        return self._by_name[name]


@dataclass(slots=True)
class StoredTag:
    """A tag on one lead: the team's tag id and name, when and by whom it was put there."""

    tag_id: int
    name: str
    created: int
    creator: int


@dataclass(slots=True)
class StoredLead:
    """One lead as the sandbox holds it; times are epoch milliseconds."""

    lead_id: int
    lead_user_id: int
    created: int
    updated: int
    fields: dict[str, Any]  # top-level fields under their PUT names, as Lofty keeps them
    inquiry: dict[str, Any]  # LeadInquiry, server-owned keys included
    properties: list[dict[str, Any]] = field(default_factory=list)  # LeadProperty records
    tags: list[StoredTag] = field(default_factory=list)
    transaction: dict[str, Any] | None = None
    assigned_at: int | None = None
    server: dict[str, Any] = field(default_factory=dict)  # more server-owned LeadResponse keys
    trashed: bool = False


class LeadStore:
    """Every lead the sandbox holds. Not thread-safe: the API calls it under one lock.

    `open_world`: every leadId >= 1 exists (it is created at its first use); otherwise only
    leads seeded or registered do.
    """

    def __init__(self, *, open_world: bool) -> None:
        self.open_world = open_world
        self._leads: dict[int, StoredLead] = {}
        self._forgotten: set[int] = set()  # trashed leads an open world must not recreate
        self._clock = Clock()
        self._user_ids = _Ids(900000001)
        self._record_ids = _Ids(5000001)  # inquiries, properties, transactions
        self._tag_ids = _Ids(3001)
        self._stage_ids = _Ids(101)
        self._source_ids = _Ids(1)
        self._stage_ids.of(DEFAULT_STAGE)
        self._source_ids.of(DEFAULT_SOURCE)

    # -- existence ---------------------------------------------------------------------------

    def get(self, lead_id: int, *, with_trash: bool = False) -> StoredLead | None:
        """The lead, created first in an open world; None if it does not exist (or is trashed)."""
        lead = self._leads.get(lead_id)
        if lead is None and self.open_world and lead_id not in self._forgotten:
            lead = self.register(lead_id)
        if lead is None or (lead.trashed and not with_trash):
            return None
        return lead

    def peek(self, lead_id: int) -> StoredLead | None:
        """The lead if it is held and not trashed; never creates one."""
        lead = self._leads.get(lead_id)
        return None if lead is None or lead.trashed else lead

    def held(self) -> Iterator[StoredLead]:
        """Every lead held and not trashed, by leadId."""
        for lead_id in sorted(self._leads):
            if not self._leads[lead_id].trashed:
                yield self._leads[lead_id]

    def register(self, lead_id: int, *, at: int | None = None) -> StoredLead:
        """Make a lead exist (again, if trashed); a new one holds only Lofty's defaults."""
        self._forgotten.discard(lead_id)
        lead = self._leads.get(lead_id)
        if lead is not None:
            lead.trashed = False
            return lead
        now = self._clock.now() if at is None else at
        user_id = self._user_ids.new()
        inquiry = {
            "id": self._record_ids.new(),
            "leadUserId": user_id,
            "modifyByAgent": False,
            "createTime": iso(now),
            "updateTime": iso(now),
            "defaultValue": True,
        }
        fields = {"stage": DEFAULT_STAGE, "source": DEFAULT_SOURCE}
        lead = StoredLead(lead_id, user_id, now, now, fields, inquiry)
        self._leads[lead_id] = lead
        return lead

    def trash(self, lead_id: int) -> bool:
        """Move a lead to the trash, as Lofty's delete does; False if there was none."""
        lead = self.get(lead_id)
        if lead is None:
            return False
        lead.trashed = True
        self._forgotten.add(lead_id)
        return True

    def set_server_fields(self, lead_id: int, values: Mapping[str, Any]) -> None:
        """Give a held lead server-owned values (`SERVER_FIELDS`), as a lived-in lead has."""
        unknown = set(values) - SERVER_FIELDS
        if unknown:
            raise ValueError(f"not server-owned fields: {', '.join(sorted(unknown))}")
        self._leads[lead_id].server.update(copy.deepcopy(dict(values)))

    # -- writes ------------------------------------------------------------------------------

    def update(
        self,
        lead_id: int,
        body: Mapping[str, Any],
        *,
        by_agent: bool = False,
        at: int | None = None,
    ) -> Rejection | None:
        """Apply a body `rules.check_update` accepted; a Rejection when Lofty would refuse it.

        `by_agent`: the change comes from an agent in Lofty's UI, not the API. `at` (epoch ms)
        dates the change, for seeded history; by default it is now.
        """
        lead = self.get(lead_id)
        if lead is None:
            return LEAD_NOT_EXIST
        body = copy.deepcopy(dict(body))
        block = body.get("property")
        if block is not None and _property_id(block) and _find(lead, block) is None:
            return LEAD_PROPERTY_NOT_EXIST
        now = self._clock.now() if at is None else at
        for name, value in body.items():
            self._write(lead, name, value, now=now, by_agent=by_agent)
        if any(name in body for name in TAG_FIELDS):
            self._write_tags(lead, body, now=now, by_agent=by_agent)
        lead.updated = now
        return None

    def _write(self, lead: StoredLead, name: str, value: Any, *, now: int, by_agent: bool) -> None:
        if name == "inquiry":
            self._write_inquiry(lead, value, now=now, by_agent=by_agent)
        elif name == "property":
            self._write_property(lead, value)
        elif name == "leadTransaction":
            self._write_transaction(lead, value, now=now)
        elif name not in TAG_FIELDS:
            lead.fields[name] = self._kept(lead, name, value, now=now)

    def _kept(self, lead: StoredLead, name: str, value: Any, *, now: int) -> Any:
        """The value Lofty keeps for a top-level field, noting what moves with it."""
        if name in _CUT_STRINGS:
            return cut(value, NAME_LIMIT)
        if name in _CUT_ITEMS:
            return _unique(cut(item, NAME_LIMIT) for item in value)
        if name == "assignedUserId" and value != lead.fields.get(name):
            lead.assigned_at = now
        elif name == "stage":
            self._stage_ids.of(value)
        elif name == "source":
            self._source_ids.of(value)
        return value

    def _write_inquiry(
        self, lead: StoredLead, block: Mapping[str, Any], *, now: int, by_agent: bool
    ) -> None:
        lead.inquiry.update((k, v) for k, v in block.items() if k not in _INQUIRY_SERVER_KEYS)
        lead.inquiry.update(updateTime=iso(now), modifyByAgent=by_agent, defaultValue=False)

    def _write_property(self, lead: StoredLead, block: Mapping[str, Any]) -> None:
        record = _find(lead, block)
        if record is None:
            record = {"id": self._record_ids.new(), "leadUserId": lead.lead_user_id}
            lead.properties.append(record)
        record.update((k, v) for k, v in block.items() if k not in _PROPERTY_SERVER_KEYS)

    def _write_transaction(self, lead: StoredLead, block: Mapping[str, Any], *, now: int) -> None:
        transaction = lead.transaction or {"transactionId": self._record_ids.new(), "created": now}
        transaction.update((k, v) for k, v in block.items() if k not in _TRANSACTION_SERVER_KEYS)
        kind = transaction.get("transactionType")
        if kind not in PIPELINE:
            kind = transaction["transactionType"] = next(iter(PIPELINE))
        if transaction.get("transactionStatus") not in PIPELINE[kind]:
            transaction["transactionStatus"] = PIPELINE[kind][0]
        transaction["updated"] = now
        lead.transaction = transaction

    def _write_tags(
        self, lead: StoredLead, body: Mapping[str, Any], *, now: int, by_agent: bool
    ) -> None:
        before = {tag.name: tag for tag in lead.tags}
        names = list(before)
        if "tags" in body:
            names = _unique(cut(name, TAG_LIMIT) for name in body["tags"])
        if "tagsAdd" in body:
            names = _unique([*names, *(cut(name, TAG_LIMIT) for name in body["tagsAdd"])])
        # Only tags the lead had before this request are removed, matched literally.
        removed = set(body.get("tagsRemove", [])) & set(before)
        names = [name for name in names if name not in removed]
        if body.get("clearAllTags") is True:
            names = []
        creator = AGENT_USER_ID if by_agent else API_USER_ID
        lead.tags = [
            before.get(name) or StoredTag(self._tag_ids.of(name), name, now, creator)
            for name in names
        ]

    # -- reads -------------------------------------------------------------------------------

    def view(self, lead: StoredLead, *, write_only: bool = False) -> dict[str, Any]:
        """The lead in `LeadResponse`'s shape; `write_only` adds what Lofty never shows."""
        values: dict[str, Any] = {name: False for name in _FLAGS}
        values.update((name, []) for name in _LISTS)
        values.update(copy.deepcopy(lead.fields))
        values.update(copy.deepcopy(lead.server))
        values.update(self._server_view(lead))
        values["leadInquiry"] = copy.deepcopy(lead.inquiry)
        values["leadPropertyList"] = [
            {k: v for k, v in record.items() if write_only or k not in _PROPERTY_WRITE_ONLY}
            for record in copy.deepcopy(lead.properties)
        ]
        values["tags"] = [_tag_view(lead.lead_id, tag) for tag in lead.tags]
        shown = {_RESPONSE_NAMES.get(name, name): value for name, value in values.items()}
        view = {key: shown[key] for key in RESPONSE_KEYS if key in shown}
        if write_only and lead.transaction is not None:
            view["leadTransaction"] = copy.deepcopy(lead.transaction)
        return view

    def _server_view(self, lead: StoredLead) -> dict[str, Any]:
        values: dict[str, Any] = {
            "leadId": lead.lead_id,
            "leadUserId": lead.lead_user_id,
            "teamId": TEAM_ID,
            "createTime": iso(lead.created),
            "lastUpdateTime": iso(lead.updated),
            "score": lead.server.get("score", 0),
            "phoneStatuses": [2] * len(lead.fields.get("phones", [])),  # 2 = valid number
            "assignCompletionStatus": True,
            "customRoleList": [],
        }
        if "stage" in lead.fields:
            values["stageId"] = self._stage_ids.of(lead.fields["stage"])
        if "source" in lead.fields:
            values["leadSource"] = self._source_ids.of(lead.fields["source"])
        if "assignedUserId" in lead.fields:
            values["assignedUser"] = f"Agent {lead.fields['assignedUserId']}"
            if lead.assigned_at is not None:
                values["assignTime"] = iso(lead.assigned_at)
        return values


def _tag_view(lead_id: int, tag: StoredTag) -> dict[str, Any]:
    return {
        "leadId": lead_id,
        "tagId": tag.tag_id,
        "createTime": iso(tag.created),
        "updateTime": iso(tag.created),
        "tagName": tag.name,
        "creatorUserId": tag.creator,
        "visibleType": 0,
    }


def _property_id(block: Mapping[str, Any]) -> int | None:
    """The record a property block names; `id` omitted or <= 0 names none (match by address)."""
    value = block.get("id")
    return value if isinstance(value, int) and value > 0 else None


def _find(lead: StoredLead, block: Mapping[str, Any]) -> dict[str, Any] | None:
    wanted = _property_id(block)
    if wanted is not None:
        return next((r for r in lead.properties if r["id"] == wanted), None)
    address = _address(block)
    return next((r for r in lead.properties if _address(r) == address), None)


def _address(record: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(
        " ".join(str(record.get(name) or "").split()).casefold() for name in ADDRESS_FIELDS
    )


def _unique(items: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(items))
