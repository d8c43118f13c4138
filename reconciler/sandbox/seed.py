"""What a sandbox holds at start: leads from a seed file, and realistic generated leads.

A seed file (JSON or YAML) lists lead ids, or lead objects in the PUT shape with their `leadId`,
or `{leads: [...]}`. Each object must be a body Lofty would accept; it is stored through the
same code path as a PUT, so seeded leads are cut and merged exactly as written ones.

Generated leads are the same for the same count and random seed: names (some beyond ASCII, one
exactly 30 UTF-16 units long), emails, phones, stage, source, segments, tags (one with an emoji),
lead types, an inquiry, a property, custom attributes; every tenth lead, the first included, has
every readable field set and a second (mailing) address. Every generated body is valid for the
vendor schema and for the tool's own validator, so an imported lead passes `validate`.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import SandboxError
from reconciler.sandbox.rules import check_update, is_lead_id
from reconciler.sandbox.store import PIPELINE
from reconciler.yamlio import YamlProblem, decode, load_documents


def load_seed(path: Path) -> dict[int, dict[str, Any]]:
    """Read a seed file: the PUT body of every lead it lists, by leadId, in the file's order.

    Raises SandboxError saying what is wrong with the file.
    """
    where = f"seed file {path}"
    try:
        documents = [doc.value for doc in load_documents(decode(path.read_bytes()))]
    except OSError as exc:
        raise SandboxError(f"cannot read {where}: {exc.strerror or exc}") from None
    except YamlProblem as exc:
        raise SandboxError(f"{where} is not valid JSON or YAML: {exc}") from None
    if len(documents) > 1:
        raise SandboxError(f"{where} must hold one document, not {len(documents)}")
    data = documents[0] if documents else None
    if isinstance(data, dict) and set(data) == {"leads"}:
        data = data["leads"]
    if data is None:
        data = []
    if not isinstance(data, list):
        raise SandboxError(
            f"{where} must hold a list of lead ids or lead objects, or {{leads: [...]}}"
        )
    return seed_entries(data, where=where)


def seed_entries(entries: Iterable[object], *, where: str) -> dict[int, dict[str, Any]]:
    """Lead ids or PUT-shaped lead objects with `leadId`, checked as Lofty checks a PUT body."""
    leads: dict[int, dict[str, Any]] = {}
    for index, entry in enumerate(entries):
        fields = dict(entry) if isinstance(entry, dict) else {}
        lead_id = fields.pop("leadId", None) if isinstance(entry, dict) else entry
        if not is_lead_id(lead_id):
            raise SandboxError(
                f"{where}: entry {index}: expected a leadId (integer >= 1), got {lead_id!r}"
            )
        assert isinstance(lead_id, int)
        if lead_id in leads:
            raise SandboxError(f"{where}: leadId {lead_id} appears twice")
        rejection = check_update(fields)
        if rejection is not None:
            raise SandboxError(f"{where}: entry {index} (leadId {lead_id}): {rejection.message}")
        leads[lead_id] = fields
    return leads


# --- generated leads ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GeneratedLead:
    """A realistic lead: the PUT bodies that write it, in order; when they were written (epoch
    ms); the server-owned values a lived-in lead has."""

    lead_id: int
    bodies: list[dict[str, Any]]
    at: int
    server: dict[str, Any] = field(default_factory=dict)


_FIRST: tuple[str, ...] = (
    "Ava",
    "Liam",
    "Olivia",
    "Noah",
    "Emma",
    "Mateo",
    "Sofía",
    "Zoë",
    "Chen",
    "Priya",
)
_FIRST += ("Oluwaseun", "Siobhán", "Léa", "Mohammed", "Hana", "José", "Aarav", "Ingrid", "Kwame")
_LAST: tuple[str, ...] = (
    "Smith",
    "Garcia",
    "Nguyen",
    "Patel",
    "Johnson",
    "Kim",
    "Müller",
    "O'Brien",
    "Dubois",
)
_LAST += ("Rodríguez", "Kowalski", "Okafor", "Andersson", "Yamamoto", "Santos", "Cohen")
_LONG_LAST = "Wolfeschlegelsteinhausenberger"  # exactly 30: kept whole, not cut
_DOMAINS = ("example.com", "example.org", "example.net")
_AREA_CODES = ("415", "212", "512", "305", "206", "617", "720")
_STAGES: tuple[str, ...] = (
    "New",
    "Attempted",
    "Spoke with customer",
    "Appointment set",
    "Met with customer",
)
_STAGES += ("Showing homes", "Submitting offers", "Under contract", "Sale closed", "Nurture")
_SOURCES = ("Zillow", "Realtor.com", "Open House", "Website", "Referral", "Facebook Ads")
_SEGMENTS: tuple[str, ...] = (
    "First-Time Buyers",
    "Downtown Area",
    "VIP Clients",
    "Luxury",
    "Relocation",
)
_SEGMENTS += ("Past Clients - Annual Check-in",)  # exactly 30
_TAGS: tuple[str, ...] = (
    "Hot Lead",
    "Zillow",
    "Pre-Approved",
    "Referral",
    "Open House Feb",
    "Cash Buyer",
)
_TAGS += ("Needs Follow-up", "Café Meetup", "VA Loan")
_EMOJI_TAG = "\N{FIRE} Hot"  # 2 UTF-16 units for the emoji; on every lead with every field
_LEAD_TYPES = ((2,), (1,), (1, 2), (5,), (6, 2), (8, 1), (9,), (-1,))
_PROPERTY_TYPES = ("Single Family Home", "Condo", "Townhouse", "Multi-Family", "Vacant Land")
# (city, state, state code, zip): Boston's zip keeps its leading zero only when quoted.
_PLACES = (
    ("Austin", "Texas", "TX", "78701"),
    ("Boston", "Massachusetts", "MA", "02134"),
    ("Seattle", "Washington", "WA", "98101"),
    ("Miami", "Florida", "FL", "33101"),
    ("Denver", "Colorado", "CO", "80202"),
    ("San Jose", "California", "CA", "95112"),
)
_STREETS = ("Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Pine St", "Elm Ct", "Lakeview Blvd")
_YES_NO: tuple[str, ...] = (
    "preQual",
    "houseToSell",
    "fthb",
    "withBuyerAgent",
    "mortgage",
    "buyHouse",
)
_YES_NO += ("withListingAgent",)
_AGENTS = (10000000514, 10000000515, 10000000516)
_OPPORTUNITIES = ("High Interest", "Sell", "Back to Site", "Back on Market")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_EPOCH_2024_MS = 1_704_067_200_000
_DAY_MS = 86_400_000


def generate_leads(count: int, *, seed: int | None, first_id: int) -> list[GeneratedLead]:
    """`count` realistic leads with ids from `first_id`; the same for the same seed (None = 0)."""
    rng = random.Random(f"generate:{seed or 0}")
    return [_lead(rng, first_id + index, full=index % 10 == 0) for index in range(count)]


def _lead(rng: random.Random, lead_id: int, *, full: bool) -> GeneratedLead:
    first = rng.choice(_FIRST)
    last = _LONG_LAST if lead_id % 37 == 0 else rng.choice(_LAST)
    slug = f"{_ascii(first)}.{_ascii(last)}{lead_id % 1000}"
    body: dict[str, Any] = {
        "firstName": first,
        "lastName": last,
        "emails": [f"{slug}@{rng.choice(_DOMAINS)}"],
        "phones": [_phone(rng) for _ in range(rng.choice((1, 1, 2)))],
        "leadTypes": list(rng.choice(_LEAD_TYPES)),
        "stage": rng.choice(_STAGES),
        "source": rng.choice(_SOURCES),
        "segments": rng.sample(_SEGMENTS, rng.randint(0, 2)),
        "tags": rng.sample((*_TAGS, _EMOJI_TAG), rng.randint(0, 3)),
        "inquiry": _inquiry(rng),
        "property": _property(rng, mailing=False),
        "customAttributeList": _custom_attributes(rng),
    }
    if rng.random() < 0.6 or full:
        body["assignedUserId"] = rng.choice(_AGENTS)
    at = _EPOCH_2024_MS + rng.randrange(365 * _DAY_MS)
    server: dict[str, Any] = {"score": rng.randint(0, 100)}
    if rng.random() < 0.3:
        server["opportunity"] = rng.choice(_OPPORTUNITIES)
    if not full:
        return GeneratedLead(lead_id, [body], at, server)
    body.update(_every_other_field(rng, last))
    body["tags"] = [_EMOJI_TAG, *rng.sample(_TAGS, 2)]
    body["segments"] = rng.sample(_SEGMENTS, 2)
    body["customAttributeList"] = _custom_attributes(rng, every=True)
    server.update(facebook=f"https://facebook.com/{slug}", twitter=f"@{slug[:15]}")
    mailing = {"property": _property(rng, mailing=True)}
    return GeneratedLead(lead_id, [body, mailing], at, server)


def _every_other_field(rng: random.Random, last: str) -> dict[str, Any]:
    place = rng.choice(_PLACES)
    return {
        "cannotText": False,
        "cannotCall": rng.random() < 0.2,
        "cannotEmail": False,
        "birthday": _birthday(rng),
        "referredBy": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
        "isHidden": False,
        "groups": ["VIP Clients"],
        "streetAddress": f"{rng.randint(10, 9999)} {rng.choice(_STREETS)}",
        "city": place[0],
        "state": place[1],
        "zipCode": place[3],
        "buyingTimeFrame": rng.choice(("1-3", "3-6", "6-12", "12+", "Just Looking")),
        "sellingTimeFrame": rng.choice(("1-3", "3-6", "Refinancing")),
        **{name: rng.choice(("Yes", "No")) for name in _YES_NO},
        "language": rng.choice(("en", "es", "fr", "zh-CN")),
        "ownershipScope": "PERSONAL",
        "ownershipId": rng.choice(_AGENTS),
        "unsubscription": False,
        "leadFamilyMemberList": [
            {
                "firstName": rng.choice(_FIRST),
                "lastName": last,
                "relationship": rng.choice(("Spouse", "Partner", "Child", "Parent")),
                "phones": [_phone(rng)],
                "emails": [f"{_ascii(last)}.family@example.com"],
                "birthday": _birthday(rng),
            }
        ],
        "leadTransaction": _transaction(rng, place),
    }


def _inquiry(rng: random.Random) -> dict[str, Any]:
    price_min = rng.randrange(150_000, 900_000, 10_000)
    bedrooms = rng.randint(1, 4)
    place = rng.choice(_PLACES)
    return {
        "priceMin": price_min,
        "priceMax": price_min + rng.randrange(50_000, 600_000, 10_000),
        "propertyType": rng.sample(_PROPERTY_TYPES, rng.randint(1, 2)),
        "bedroomsMin": bedrooms,
        "bedroomsMax": bedrooms + rng.randint(0, 2),
        "bathroomsMin": rng.choice(("1", "1.5", "2")),
        "bathroomsMax": "3",
        "locations": [{"city": place[0], "stateCode": place[2]}],
    }


def _property(rng: random.Random, *, mailing: bool) -> dict[str, Any]:
    city, state, _, zip_code = rng.choice(_PLACES)
    return {
        "streetAddress": f"{rng.randint(10, 9999)} {rng.choice(_STREETS)}",
        "city": city,
        "state": state,
        "zipCode": zip_code,
        "price": rng.randrange(200_000, 2_000_000, 5_000),
        "propertyType": rng.choice(_PROPERTY_TYPES),
        "bedrooms": rng.randint(1, 6),
        "bathrooms": rng.choice((1.0, 1.5, 2.0, 2.5, 3.0)),
        "squareFeet": rng.randrange(600, 5_000, 10),
        "mailAddress": mailing,
    }


def _custom_attributes(rng: random.Random, *, every: bool = False) -> list[dict[str, Any]]:
    attributes = [
        {
            "attributeName": "Budget",
            "attributeType": "currency",
            "value": str(rng.randint(2, 15) * 50_000),
        },
        {
            "attributeName": "Preferred contact time",
            "attributeType": "single_select",
            "value": rng.choice(("Morning", "Afternoon", "Evening")),
            "params": '{"option":["Morning","Afternoon","Evening"]}',
        },
        {
            "attributeName": "Interests",
            "attributeType": "multi_select",
            "value": '["Pool","Garage"]',
        },
    ]
    return attributes if every else rng.sample(attributes, rng.randint(0, len(attributes)))


def _transaction(rng: random.Random, place: tuple[str, str, str, str]) -> dict[str, Any]:
    kind = rng.choice(tuple(PIPELINE))
    return {
        "transactionName": f"{rng.randint(10, 9999)} {rng.choice(_STREETS)}, {place[0]}",
        "transactionType": kind,
        "transactionStatus": rng.choice(PIPELINE[kind]),
        "homePrice": float(rng.randrange(200_000, 2_000_000, 5_000)),
    }


def _birthday(rng: random.Random) -> str:
    return f"{rng.choice(_MONTHS)} {rng.randint(1, 28)}, {rng.randint(1950, 2006)}"


def _phone(rng: random.Random) -> str:
    return f"+1{rng.choice(_AREA_CODES)}555{rng.randint(0, 9999):04d}"


def _ascii(name: str) -> str:
    """A name as an email's local part: accents dropped, letters only, lower case."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(char for char in plain.lower() if char.isalnum())
