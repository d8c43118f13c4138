"""The lead model: every field of Lofty's Update Lead payload, its rules, and its effective value.

Field names are the API's own camelCase names. Types are strict (a phone written as a bare
number in YAML is an error, not silently turned into digits without its `+`). Rules that span
fields (ownershipId with OFFICE scope, min <= max, a property needs an address) are checked
after the types, so every problem of a lead is reported together, once, in our own words.

Lengths are counted as Lofty's Java server counts them: in UTF-16 code units, where an emoji
(any character outside the Basic Multilingual Plane) is 2.

The JSON Schema (`json_schema()`, shipped as schema/lead.schema.json) is generated from these
classes, and every rule it can express uses the same pattern as the validator, so an editor
never flags a file `reconciler validate` accepts. What JSON Schema cannot express (listed in
SCHEMA_CANNOT_CHECK) only `validate` reports.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from reconciler.yamlio import FieldPath

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
EXACT_FLOAT_MAX = 2**53  # beyond it a decimal number no longer holds every whole number

LEAD_TYPES: dict[str, int] = {
    "Other": -1,
    "Seller": 1,
    "Buyer": 2,
    "Renter": 5,
    "Investor": 6,
    "Agent": 7,
    "Homeowner": 8,
    "Landlord": 9,
}
NAME_LIMIT = 30  # firstName, lastName, each groups/segments item
TAG_LIMIT = 64  # each tags/tagsAdd item
STAGE_LIMIT = 19  # "less than 20 characters"
PHONE_LIMIT = 20  # "No more than 20 characters per phone"
FAMILY_LIMIT = 4  # "You can add up to 4 family members"
TRUNCATED_FIELDS: dict[str, int] = {
    "firstName": NAME_LIMIT,
    "lastName": NAME_LIMIT,
    "groups": NAME_LIMIT,
    "segments": NAME_LIMIT,
    "tags": TAG_LIMIT,
    "tagsAdd": TAG_LIMIT,
}
DEPRECATED_FIELDS: dict[str, str] = {
    "streetAddress": "use property.streetAddress instead",
    "city": "use property.city instead",
    "state": "use property.state instead",
    "zipCode": "use property.zipCode instead",
    "groups": "use segments instead",
}
# Lists whose order and duplicates mean nothing to Lofty; compared as sets.
SET_LIKE_PATHS: frozenset[tuple[str, ...]] = frozenset(
    {
        ("tags",),
        ("tagsAdd",),
        ("tagsRemove",),
        ("groups",),
        ("segments",),
        ("leadTypes",),
        ("inquiry", "propertyType"),
    }
)
# Lists of objects that Lofty identifies by one of their keys; compared as sets keyed by it.
KEYED_PATHS: dict[tuple[str, ...], str] = {("customAttributeList",): "attributeName"}
# Every other list is ordered: the first email or phone is the primary one.
PROPERTY_ADDRESS_FIELDS = ("streetAddress", "city", "state", "zipCode")
# Pairs of a nested object where the first may not exceed the second.
MIN_MAX_PAIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "inquiry": (
        ("priceMin", "priceMax"),
        ("bedroomsMin", "bedroomsMax"),
        ("bathroomsMin", "bathroomsMax"),
    ),
    "property": (("priceMin", "priceMax"),),
}
# Sent together whenever either changes (Lofty reads the id in the light of the scope).
OWNERSHIP_FIELDS = ("ownershipScope", "ownershipId")
# Sent together whenever any changes (`tags` sent alone would drop the tagsAdd names).
TAG_FIELDS = frozenset({"tags", "tagsAdd", "tagsRemove", "clearAllTags"})
# Values never echoed in a message: messages reach CI logs (see "Privacy" in the docs).
SENSITIVE_FIELDS = frozenset({"emails", "phones"})

# --- lengths as Lofty counts them --------------------------------------------------------------


def utf16_len(text: str) -> int:
    """The length of `text` in UTF-16 code units, as Java's String.length() counts it."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def utf16_cut(text: str, limit: int) -> str:
    """The first `limit` UTF-16 code units of `text`, one fewer where the cut would split a
    surrogate pair (an emoji is kept whole or not at all)."""
    if text.isascii() or len(text) * 2 <= limit:
        return text[:limit]
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return text[:index]
    return text


# --- patterns shared by the validator and the JSON Schema ---------------------------------------
# Each is written in the common ground of Python's `re` and ECMAScript (editors' JSON Schema
# checks), with or without ECMAScript's `u` flag. `_END` stands for "end of text": unlike `$`,
# it does not let a trailing newline through in Python.

_END = r"(?![\s\S])"
_ASTRAL = r"[^\u0000-\uFFFF]"  # a character taking 2 UTF-16 units; in JS without `u`, none
_BMP = r"[\u0000-\uFFFF]"


def _utf16_max_pattern(limit: int) -> str:
    """At most `limit` UTF-16 units: for each k, not (k astral characters and limit+1-k
    characters). Without the `u` flag JS counts units already and finds no astral character.
    Each astral character is found by skipping the others (`[BMP]*`), so nothing backtracks."""
    parts = [rf"(?![\s\S]{{{limit + 1}}})"]
    for k in range(1, limit // 2 + 2):
        parts.append(rf"(?!(?=(?:{_BMP}*{_ASTRAL}){{{k}}})[\s\S]{{{limit + 1 - k}}})")
    return "^" + "".join(parts)


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
_BIRTHDAY_YEAR = r"(?!0000)[0-9]{4}"
# `MMM d, yyyy` as Java's parser reads it: the day with or without a leading zero; a real date.
BIRTHDAY_PATTERN = (
    r"^(?:(?:Jan|Mar|May|Jul|Aug|Oct|Dec) (?:0?[1-9]|[12][0-9]|3[01])"
    r"|(?:Apr|Jun|Sep|Nov) (?:0?[1-9]|[12][0-9]|30)"
    r"|Feb (?:0?[1-9]|1[0-9]|2[0-8])"
    rf"), {_BIRTHDAY_YEAR}{_END}|^Feb 29, (?!0000){_LEAP_YEAR}{_END}|^{_END}"
)
_BIRTHDAY_SHAPE = re.compile(rf"^(?:{'|'.join(_MONTHS)}) [0-9]{{1,2}}, [0-9]{{4}}{_END}")
# RFC 3339 date-time (OpenAPI's `date-time`), e.g. 2023-11-07T05:31:56Z; a real date.
DATE_TIME_PATTERN = (
    r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    rf"|{_LEAP_YEAR}-02-29)"
    r"[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?"
    rf"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]){_END}"
)
EMAIL_PATTERN = rf"^[^@\s]+@[^@\s]+\.[^@\s]+{_END}"
# A number written as text (bathrooms), or '' to clear it.
NUMERIC_TEXT_PATTERN = rf"^(?:[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)?{_END}"
_JSON_SPACE = r"[ \t\n\r]*"
_JSON_STRING = r'"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"'
# A multi_select value: a JSON array of strings, e.g. ["Garage","Yard"].
JSON_STRING_ARRAY_PATTERN = (
    rf"^{_JSON_SPACE}\[{_JSON_SPACE}(?:{_JSON_STRING}(?:{_JSON_SPACE},{_JSON_SPACE}"
    rf"{_JSON_STRING})*)?{_JSON_SPACE}\]{_JSON_SPACE}{_END}"
)
NOT_BLANK_PATTERN = r"\S"
TRANSACTION_NAME_PATTERN = rf"^[^<>]*[^<>\s][^<>]*{_END}"
# A name matched as written: no blank, no space around it.
TRIMMED_NAME_PATTERN = rf"^\S(?:[\s\S]*\S)?{_END}"
LEAD_TYPE_NAME_PATTERN = (
    "^(?:"
    + "|".join("".join(f"[{c.upper()}{c.lower()}]" for c in name) for name in LEAD_TYPES)
    + f"){_END}"
)

_BIRTHDAY = re.compile(BIRTHDAY_PATTERN)
_DATE_TIME = re.compile(DATE_TIME_PATTERN)
_EMAIL = re.compile(EMAIL_PATTERN)
_NUMERIC_TEXT = re.compile(NUMERIC_TEXT_PATTERN)
_JSON_STRING_ARRAY = re.compile(JSON_STRING_ARRAY_PATTERN)
_NOT_BLANK = re.compile(NOT_BLANK_PATTERN)
_TRIMMED_NAME = re.compile(TRIMMED_NAME_PATTERN)

# --- field types -------------------------------------------------------------------------------


def _whole(value: Any) -> Any:
    """A decimal number with no fraction (`1e6`, `2.0`) is the whole number it spells, as in
    JSON Schema; beyond 2**53 it is left to fail, since it may not be the number written."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= EXACT_FLOAT_MAX:
        return int(value)
    return value


def _limited(limit: int, what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        units = utf16_len(value)
        if units > limit:
            raise ValueError(
                f"is {units} characters; {what} must be at most {limit} characters"
                + (" (Lofty counts an emoji as 2)" if units != len(value) else "")
            )
        return value

    return check


def _birthday(value: str) -> str:
    if _BIRTHDAY.search(value):
        return value
    if _BIRTHDAY_SHAPE.search(value):
        raise ValueError(f"{value!r} is not a real date")
    raise ValueError(
        f"must look like 'Jun 5, 2001' (MMM d, yyyy), or '' to clear it; not {value!r}"
    )


def _date_time(value: str) -> str:
    if not _DATE_TIME.search(value):
        raise ValueError(
            f"must be a date-time like '2023-11-07T05:31:56Z' (RFC 3339), not {value!r}"
        )
    return value


def _email(value: str) -> str:
    if not _EMAIL.search(value):  # never echoed: messages reach CI logs
        raise ValueError("is not an email address (name@example.com)")
    return value


def _numeric_text(value: str) -> str:
    if not _NUMERIC_TEXT.search(value):
        raise ValueError(f"must be a number written as text, e.g. '2' or '1.5', not {value!r}")
    return value


def _lead_type(value: Any) -> Any:
    if isinstance(value, str):
        by_lower = {name.lower(): type_id for name, type_id in LEAD_TYPES.items()}
        if value.isascii() and value.lower() in by_lower:  # as the schema's [Bb][Uu]... pattern
            return by_lower[value.lower()]
        raise ValueError(f"unknown lead type {value!r}; use one of {', '.join(LEAD_TYPES)}")
    if isinstance(value, int) and not isinstance(value, bool) and value not in LEAD_TYPES.values():
        ids = ", ".join(str(i) for i in LEAD_TYPES.values())
        raise ValueError(f"unknown lead type id {value}; use one of {ids} or a name")
    return value


def _utf16_schema(limit: int) -> dict[str, Any]:
    return {
        "type": "string",
        "maxLength": limit,
        "pattern": _utf16_max_pattern(limit),
        "description": f"At most {limit} UTF-16 code units (an emoji counts as 2).",
    }


# The bounds come first so that they reach the JSON Schema as minimum/maximum.
Int64 = Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX), BeforeValidator(_whole)]
Int32 = Annotated[int, Field(ge=-(2**31), le=INT32_MAX), BeforeValidator(_whole)]
Id = Annotated[int, Field(ge=1, le=INT64_MAX), BeforeValidator(_whole)]
Phone = Annotated[
    str,
    AfterValidator(_limited(PHONE_LIMIT, "a phone number")),
    WithJsonSchema(_utf16_schema(PHONE_LIMIT)),
]
Stage = Annotated[
    str, AfterValidator(_limited(STAGE_LIMIT, "stage")), WithJsonSchema(_utf16_schema(STAGE_LIMIT))
]
Email = Annotated[
    str, AfterValidator(_email), WithJsonSchema({"type": "string", "pattern": EMAIL_PATTERN})
]
Birthday = Annotated[
    str,
    AfterValidator(_birthday),
    WithJsonSchema(
        {"type": "string", "pattern": BIRTHDAY_PATTERN, "examples": ["Jun 5, 2001", ""]}
    ),
]
DateTime = Annotated[
    str,
    AfterValidator(_date_time),
    WithJsonSchema(
        {"type": "string", "pattern": DATE_TIME_PATTERN, "examples": ["2023-11-07T05:31:56Z"]}
    ),
]
NumericText = Annotated[
    str,
    AfterValidator(_numeric_text),
    WithJsonSchema({"type": "string", "pattern": NUMERIC_TEXT_PATTERN, "examples": ["2", "1.5"]}),
]
LeadType = Annotated[
    int,
    BeforeValidator(_lead_type),
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "integer", "enum": list(LEAD_TYPES.values())},
                {
                    "type": "string",
                    "pattern": LEAD_TYPE_NAME_PATTERN,
                    "description": "A lead type name, in any case: " + ", ".join(LEAD_TYPES),
                },
            ]
        }
    ),
]
# '' clears an enum-like field in Lofty, as it clears any string field. Not for a field that
# always has a value (ownershipScope, attributeType) or where Lofty would put a default in its
# place (transactionType).
YesNo = Literal["Yes", "No", ""]
TimeFrame = Literal["1-3", "3-6", "6-12", "12+", "Just Looking", "Refinancing", ""]
Language = Literal["en", "fr", "de", "es", "zh-CN", "zh-TW", "ja", ""]
PropertyType = Literal[
    "Single Family Home",
    "Multi-Family",
    "Condo",
    "Townhouse",
    "Mobile Home",
    "Manufactured Home",
    "Vacant Land",
    "Commercial",
]
PropertyTypeOrClear = Literal[PropertyType, ""]
# The documented transaction types (case-sensitive); any other value silently becomes the
# team's first pipeline type in Lofty.
TransactionType = Literal["Purchase", "Listing", "Lease", "Other"]


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, validate_default=False, allow_inf_nan=False
    )


class Location(_Strict):
    """An area the lead is interested in (inquiry.locations item)."""

    stateCode: str | None = None
    city: str | None = None
    zipCode: str | None = None
    county: str | None = None
    streetAddress: str | None = None
    description: str | None = None


class Inquiry(_Strict):
    """What the lead is looking for."""

    priceMin: Int64 | None = None
    priceMax: Int64 | None = None
    propertyType: list[PropertyType] | None = None
    bedroomsMin: Int32 | None = None
    bedroomsMax: Int32 | None = None
    bathroomsMin: NumericText | None = None
    bathroomsMax: NumericText | None = None
    locations: list[Location] | None = None
    id: Int64 | None = None
    leadUserId: Int64 | None = None
    modifyByAgent: bool | None = None
    createTime: DateTime | None = None
    updateTime: DateTime | None = None
    defaultValue: bool | None = None


def _non_blank(name: str) -> dict[str, Any]:
    return {"required": [name], "properties": {name: {"pattern": NOT_BLANK_PATTERN}}}


class Property(_Strict):
    """The lead's property or mailing address."""

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [_non_blank(name) for name in PROPERTY_ADDRESS_FIELDS]}
    )

    price: Int64 | None = None
    state: str | None = None
    city: str | None = None
    streetAddress: str | None = None
    zipCode: str | None = None
    county: str | None = None
    propertyType: PropertyTypeOrClear | None = None
    bedrooms: Int32 | None = None
    bathrooms: float | None = None
    squareFeet: Int64 | None = None
    lotSize: float | None = None
    parkingSpace: Int64 | None = None
    floors: Int32 | None = None
    mailAddress: bool | None = None
    id: Int64 | None = None
    leadUserId: Int64 | None = None
    listingId: str | None = None
    autoListingId: Int64 | None = None
    label: str | None = None
    note: str | None = None
    listingStatus: str | None = None
    labelList: str | None = None
    pictureUrl: str | None = None
    siteListingUrl: str | None = None
    labelType: str | None = None
    priceMax: Int64 | None = None
    priceMin: Int64 | None = None


class CustomAttribute(_Strict):
    """A team-defined custom field and its value for this lead."""

    model_config = ConfigDict(
        json_schema_extra={
            "if": {
                "properties": {"attributeType": {"const": "multi_select"}},
                "required": ["attributeType"],
            },
            "then": {"properties": {"value": {"pattern": JSON_STRING_ARRAY_PATTERN}}},
        }
    )

    attributeName: Annotated[str, Field(json_schema_extra={"pattern": NOT_BLANK_PATTERN})]
    attributeType: Literal[
        "number",
        "text",
        "date",
        "anniversary_date",
        "single_select",
        "multi_select",
        "percentage",
        "currency",
    ]
    value: str
    params: str | None = None


class FamilyMember(_Strict):
    """A family member of the lead (at most 4 per lead)."""

    firstName: str
    relationship: str | None = None
    lastName: str | None = None
    phones: list[Phone] | None = None
    emails: list[Email] | None = None
    birthday: Birthday | None = None


class CustomFieldValue(_Strict):
    """A transaction custom field value."""

    id: Int64 | None = None
    value: str | None = None


PayType = Literal["TEAM", "AGENT", "VENDOR_PARTNER", "LEAD", "OTHER", "BROKERAGE", "UPLINE"]


class Commission(_Strict):
    """One commission line of a transaction."""

    id: Int64 | None = None
    splitPayType: PayType | None = None
    splitPayTo: Int64 | None = None
    splitPayToName: str | None = None
    payType: PayType | None = None
    payTo: Int64 | None = None
    payToName: str | None = None
    value: Int64 | None = None
    calculateType: Literal["PERCENT", "AMOUNT"] | None = None
    desc: str | None = None


class Commissions(_Strict):
    """Commission structure of a transaction."""

    preSplit: list[Commission] | None = None
    split: list[Commission] | None = None
    postSplit: list[Commission] | None = None


class Transaction(_Strict):
    """The lead's transaction (deal).

    What "documented" means for `transactionStatus`: the vendor lists no values, because
    statuses are configured per team in its pipeline and matched by name, case-sensitively,
    within the given `transactionType`; a name that does not match silently becomes the first
    status of that type. A file cannot know the team's pipeline, so it is checked for what the
    matching needs: a `transactionType` to match within, and a name as it would be written in
    the pipeline (not blank, no space around it).
    """

    model_config = ConfigDict(
        json_schema_extra={"dependencies": {"transactionStatus": ["transactionType"]}}
    )

    transactionName: Annotated[str, Field(json_schema_extra={"pattern": TRANSACTION_NAME_PATTERN})]
    transactionType: TransactionType | None = None
    homePrice: float | None = None
    transactionStatus: (
        Annotated[str, Field(json_schema_extra={"pattern": TRIMMED_NAME_PATTERN})] | None
    ) = None
    expectedCloseDate: Int64 | None = None
    closeDate: Int64 | None = None
    commissionRate: float | None = None
    gci: float | None = None
    teamRevenue: float | None = None
    agentRevenue: float | None = None
    appointmentDate: Int64 | None = None
    agreementSignedDate: Int64 | None = None
    offerDate: Int64 | None = None
    contractDate: Int64 | None = None
    appraisalDate: Int64 | None = None
    homeInspectionDate: Int64 | None = None
    escrowDate: Int64 | None = None
    expiration: Int64 | None = None
    customFields: list[CustomFieldValue] | None = None
    commissions: Commissions | None = None


_TAG_FIELDS_CLEARED = ("tags", "tagsAdd", "tagsRemove")


class Lead(_Strict):
    """One lead document: `leadId` plus the fields of Lofty's Update Lead payload to manage."""

    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {
                        "properties": {"ownershipScope": {"enum": ["OFFICE", "PERSONAL"]}},
                        "required": ["ownershipScope"],
                    },
                    "then": {"required": ["ownershipId"]},
                },
                {
                    "if": {
                        "properties": {"clearAllTags": {"const": True}},
                        "required": ["clearAllTags"],
                    },
                    "then": {
                        "not": {"anyOf": [{"required": [name]} for name in _TAG_FIELDS_CLEARED]}
                    },
                },
            ]
        }
    )

    leadId: Id
    cannotText: bool | None = None
    cannotCall: bool | None = None
    cannotEmail: bool | None = None
    firstName: str | None = None
    lastName: str | None = None
    emails: list[Email] | None = None
    phones: list[Phone] | None = None
    leadTypes: list[LeadType] | None = None
    assignedUserId: Id | None = None
    streetAddress: str | None = None
    city: str | None = None
    state: str | None = None
    zipCode: str | None = None
    referredBy: str | None = None
    isHidden: bool | None = None
    stage: Stage | None = None
    groups: list[str] | None = None
    segments: list[str] | None = None
    tags: list[str] | None = None
    tagsAdd: list[str] | None = None
    tagsRemove: list[str] | None = None
    clearAllTags: bool | None = None
    source: str | None = None
    inquiry: Inquiry | None = None
    property: Property | None = None
    customAttributeList: list[CustomAttribute] | None = None
    birthday: Birthday | None = None
    buyingTimeFrame: TimeFrame | None = None
    preQual: YesNo | None = None
    houseToSell: YesNo | None = None
    fthb: YesNo | None = None
    withBuyerAgent: YesNo | None = None
    sellingTimeFrame: TimeFrame | None = None
    mortgage: YesNo | None = None
    buyHouse: YesNo | None = None
    withListingAgent: YesNo | None = None
    leadFamilyMemberList: Annotated[list[FamilyMember], Field(max_length=FAMILY_LIMIT)] | None = (
        None
    )
    language: Language | None = None
    ownershipId: Int64 | None = None
    ownershipScope: Literal["TEAM", "OFFICE", "PERSONAL"] | None = None
    unsubscription: bool | None = None
    leadTransaction: Transaction | None = None


# Rules of `check` that JSON Schema cannot express: only `reconciler validate` reports them.
SCHEMA_CANNOT_CHECK = (
    "min <= max pairs (inquiry price, bedrooms, bathrooms; property price)",
    "a name in tagsRemove that is also in tags or tagsAdd",
    "an attributeName used twice in customAttributeList",
    "a whole number written as a decimal beyond 2**53 (it may not be the number written)",
)

# --- checking a document -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem or warning about one field of a lead, before it is placed in a file."""

    path: FieldPath
    message: str


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of checking one lead document."""

    lead: Lead | None
    errors: list[Finding]
    warnings: list[Finding]
    truncations: list[Finding]


def check(data: Any, *, may_hold_null: bool = True, settled: Collection[FieldPath] = ()) -> Checked:
    """Validate one document's data; on success also collect its warnings.

    `may_hold_null=False` (the YAML reader saw no null) skips the search for nulls. `settled`
    are paths whose problem was already reported (by the YAML reader): nothing more is said
    about them, what they hold, or what holds them.
    """
    if () in settled:  # the whole document's problem is told already
        return Checked(None, [], [], [])
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        return Checked(
            None, [Finding((), f"a lead must be a mapping of fields, not {kind}")], [], []
        )
    nulls = list(_null_paths(data, ())) if may_hold_null else []
    findings = [Finding(p, _NULL_MESSAGE) for p in nulls] + list(_rules(data))
    try:
        lead: Lead | None = Lead.model_validate(data)
    except ValidationError as exc:
        lead = None
        # A null already has its message; the type check's would say the same again.
        findings += [f for f in map(_finding, exc.errors()) if f.path not in nulls]
    errors = [f for f in findings if not any(_related(f.path, p) for p in settled)]
    errors = sorted(dict.fromkeys(errors), key=_order(data))
    if errors or lead is None:
        return Checked(None, errors, [], [])
    return Checked(lead, [], list(_warnings(lead)), list(_truncations(lead)))


def _related(path: FieldPath, other: FieldPath) -> bool:
    """Whether one path lies within the other (a problem about one concerns the other)."""
    shorter = min(len(path), len(other))
    return path[:shorter] == other[:shorter]


def lead_id_of(data: Any) -> int | None:
    """The leadId of a document's raw data when it is a valid one (even if the rest is not),
    so that a duplicate leadId can be reported next to the document's other problems."""
    value = _whole(data.get("leadId")) if isinstance(data, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= INT64_MAX:
        return value
    return None


def _order(data: dict[str, Any]) -> Callable[[Finding], int]:
    """Sort findings by where their top-level field stands in the document."""
    positions = {name: index for index, name in enumerate(data)}
    end = len(positions)  # a missing field's problem goes after those of fields present
    return lambda finding: positions.get(str(finding.path[0]), end) if finding.path else -1


_NULL_MESSAGE = (
    "null is not a value Lofty accepts; remove the field to stop managing it, "
    "or write '' or [] to clear it"
)


def _null_paths(value: Any, at: FieldPath) -> Iterator[FieldPath]:
    if value is None:
        yield at
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _null_paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _null_paths(item, (*at, index))


# --- messages in our words ----------------------------------------------------------------------


def _finding(err: Any) -> Finding:
    """A pydantic error as a Finding worded for people who edit YAML, not for Python."""
    loc: FieldPath = tuple(p for p in err["loc"] if isinstance(p, str | int))
    kind, given, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    hidden = _sensitive(loc)
    if kind == "extra_forbidden":
        return Finding(loc, f"unknown field{_did_you_mean(loc)}")
    if kind == "missing":
        return Finding(loc, "is required")
    if kind == "value_error":
        return Finding(loc, str(err["msg"]).removeprefix("Value error, "))
    if kind == "literal_error":
        return Finding(loc, _literal_message(str(ctx.get("expected", "")), given))
    if kind in ("greater_than_equal", "less_than_equal"):
        bound = ctx.get("ge", ctx.get("le"))
        return Finding(loc, f"must be {'at least' if kind[0] == 'g' else 'at most'} {bound}")
    if kind == "too_long":
        limit, actual = ctx.get("max_length"), ctx.get("actual_length")
        things = "family members" if loc and loc[-1] == "leadFamilyMemberList" else "items"
        return Finding(loc, f"may hold at most {limit} {things} (Lofty's limit), not {actual}")
    if kind == "finite_number":
        return Finding(loc, "must be a finite number, not infinity or NaN")
    if kind in _TYPE_WORDS:
        return Finding(loc, _type_message(kind, loc, given, hidden))
    return Finding(loc, "has a value Lofty does not accept here")


_TYPE_WORDS = {
    "string_type": "text",
    "int_type": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "model_type": "a mapping of fields (one `key: value` per line, indented below it)",
    "dict_type": "a mapping of fields (one `key: value` per line, indented below it)",
}


def _type_message(kind: str, loc: FieldPath, given: Any, hidden: bool) -> str:
    message = f"must be {_TYPE_WORDS[kind]}, not {_kind_of(given)}"
    if kind == "string_type" and isinstance(given, int | float) and not isinstance(given, bool):
        message += "; quote it in YAML to keep it exactly as written (a leading + or 0 is lost)"
    elif kind == "string_type" and isinstance(given, bool):
        message += f"; quote it ('{str(given).lower()}') if you mean the word"
    elif kind == "int_type" and isinstance(given, float) and given.is_integer():
        message += " this large (it may not be the number written); write the digits alone"
    elif kind == "list_type" and isinstance(given, str):
        name = next((str(p) for p in reversed(loc) if isinstance(p, str)), "field")
        shown = "..." if hidden else given
        message += f"; write it in brackets: {name}: [{shown}]"
    return message


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "an empty value" if value is None else "this kind of value"


def _literal_message(expected: str, given: Any) -> str:
    message = f"must be {expected}"
    if "''" in expected:
        message += " ('' clears it)"
    if given == "":
        return message + "; it cannot be cleared"
    if isinstance(given, str) and len(given) <= 40:
        return message + f", not {given!r}"
    return message + f", not {_kind_of(given)}"


def _sensitive(path: FieldPath) -> bool:
    return any(part in SENSITIVE_FIELDS for part in path)


def _did_you_mean(loc: FieldPath) -> str:
    model: type[BaseModel] | None = Lead
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        model = _nested_model(model, part)
    if model is None or not isinstance(loc[-1], str):
        return ""
    names = list(model.model_fields)
    close = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.6)
    if not close:
        lowered = {n.lower(): n for n in names}
        close = [lowered[loc[-1].lower()]] if loc[-1].lower() in lowered else []
    return f"; did you mean '{close[0]}'?" if close else ""


def _nested_model(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    field = model.model_fields.get(name)
    if field is None:
        return None
    stack: list[Any] = [field.annotation]
    while stack:
        hint = stack.pop()
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            return hint
        stack.extend(get_args(hint))
    return None


# --- rules across fields ------------------------------------------------------------------------


def _rules(data: dict[str, Any]) -> Iterator[Finding]:
    """Rules that span fields, checked on the raw document so that they are reported together
    with any type errors (a value of the wrong type is left to the type check)."""
    scope = data.get("ownershipScope")
    if scope in ("OFFICE", "PERSONAL") and "ownershipId" not in data:
        yield Finding(
            ("ownershipId",),
            f"is required when ownershipScope is {scope} "
            "(the office or agent id that owns the lead)",
        )
    for name, pairs in MIN_MAX_PAIRS.items():
        obj = data.get(name)
        if isinstance(obj, dict):
            for low, high in pairs:
                yield from _min_max(obj, (name,), low, high)
    prop = data.get("property")
    if isinstance(prop, dict):
        address = (prop.get(k) for k in PROPERTY_ADDRESS_FIELDS)
        if not any(isinstance(v, str) and _NOT_BLANK.search(v) for v in address):
            yield Finding(
                ("property",),
                "needs at least one non-blank address field: city, state, zipCode or "
                "streetAddress (Lofty answers 200057 PROPERTY_ADDRESS_EMPTY)",
            )
    transaction = data.get("leadTransaction")
    if isinstance(transaction, dict):
        yield from _transaction_rules(transaction)
    yield from _tag_rules(data)
    attributes = data.get("customAttributeList")
    if isinstance(attributes, list):
        yield from _attribute_rules(attributes)


def _transaction_rules(transaction: dict[str, Any]) -> Iterator[Finding]:
    name, status = transaction.get("transactionName"), transaction.get("transactionStatus")
    at = ("leadTransaction",)
    if isinstance(name, str) and not _NOT_BLANK.search(name):
        yield Finding((*at, "transactionName"), "must not be blank")
    elif isinstance(name, str) and ("<" in name or ">" in name):
        yield Finding((*at, "transactionName"), "must not contain '<' or '>'")
    if not isinstance(status, str):
        return
    if not _TRIMMED_NAME.search(status):
        yield Finding(
            (*at, "transactionStatus"),
            "must be a status name of the team's pipeline, without blank or space around it "
            "(Lofty matches it as written, and puts the first status in place of a mismatch)",
        )
    elif "transactionType" not in transaction:
        yield Finding(
            (*at, "transactionStatus"),
            "needs transactionType beside it: Lofty matches the status among that type's "
            "statuses, and otherwise puts the first status of its first pipeline in its place",
        )


def _tag_rules(data: dict[str, Any]) -> Iterator[Finding]:
    """Tag fields that contradict each other would leave Lofty different from the plan."""
    if data.get("clearAllTags") is True:
        for name in _TAG_FIELDS_CLEARED:
            if name in data:
                yield Finding(
                    (name,),
                    "cannot be used with clearAllTags: true, which removes every tag and "
                    "takes precedence; use tags: [] to set an empty tag list instead",
                )
    removed = data.get("tagsRemove")
    if not isinstance(removed, list):
        return
    for name in ("tags", "tagsAdd"):
        wanted = data.get(name)
        if not isinstance(wanted, list):
            continue
        # Compared as Lofty would store them: a tag is kept to its first 64 characters.
        kept = {utf16_cut(tag, TAG_LIMIT) for tag in wanted if isinstance(tag, str)}
        for index, tag in enumerate(removed):
            if isinstance(tag, str) and utf16_cut(tag, TAG_LIMIT) in kept:
                yield Finding(
                    ("tagsRemove", index),
                    f"{utf16_cut(tag, TAG_LIMIT)!r} is also in {name} (as Lofty keeps tag "
                    "names, to 64 characters); a tag cannot be both present and absent",
                )


def _attribute_rules(attributes: list[Any]) -> Iterator[Finding]:
    """customAttributeList is keyed by attributeName; a multi_select value is a JSON array."""
    first: dict[str, int] = {}
    for index, item in enumerate(attributes):
        if not isinstance(item, dict):
            continue
        name, value = item.get("attributeName"), item.get("value")
        at = ("customAttributeList", index)
        if isinstance(name, str) and not _NOT_BLANK.search(name):
            yield Finding((*at, "attributeName"), "must not be blank")
        elif isinstance(name, str) and name in first:
            yield Finding(
                (*at, "attributeName"),
                f"{name!r} is already set by customAttributeList[{first[name]}]; "
                "each attribute may appear once",
            )
        elif isinstance(name, str):
            first[name] = index
        multi = item.get("attributeType") == "multi_select"
        if multi and isinstance(value, str) and not _JSON_STRING_ARRAY.search(value):
            yield Finding(
                (*at, "value"),
                "a multi_select value must be a JSON array of strings, "
                """e.g. '["Garage","Yard"]'""",
            )


def _min_max(obj: dict[str, Any], at: FieldPath, low: str, high: str) -> Iterator[Finding]:
    lo, hi = _number(obj.get(low)), _number(obj.get(high))
    if lo is not None and hi is not None and lo > hi:
        yield Finding((*at, low), f"{low} ({obj[low]}) is greater than {high} ({obj[high]})")


def _number(value: Any) -> float | None:
    """A finite number from an int, a float or a numeric text; None otherwise (a wrong value
    is the type check's to report)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, str) and not (value and _NUMERIC_TEXT.search(value)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


# --- warnings ----------------------------------------------------------------------------------


def _warnings(lead: Lead) -> Iterator[Finding]:
    for name, advice in DEPRECATED_FIELDS.items():
        if name in lead.model_fields_set:
            yield Finding((name,), f"is deprecated by Lofty; {advice}")
    if lead.tags is not None and lead.tagsAdd is not None:
        yield Finding(
            ("tagsAdd",),
            "tags already sets the whole tag list; tagsAdd beside it only adds to that",
        )
    for index, tag in enumerate(lead.tagsRemove or ()):
        if utf16_len(tag) > TAG_LIMIT:
            yield Finding(
                ("tagsRemove", index),
                f"is {utf16_len(tag)} characters, and Lofty keeps a tag name to {TAG_LIMIT}: "
                "no tag can have this name, so removing it does nothing; write the name as "
                f"Lofty keeps it: {utf16_cut(tag, TAG_LIMIT)!r}",
            )


def _truncations(lead: Lead) -> Iterator[Finding]:
    for name, limit in TRUNCATED_FIELDS.items():
        value = getattr(lead, name)
        if isinstance(value, str) and utf16_len(value) > limit:
            yield _cut_finding((name,), value, limit)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if utf16_len(item) > limit:
                    yield _cut_finding((name, index), item, limit)


def _cut_finding(path: FieldPath, value: str, limit: int) -> Finding:
    units, kept = utf16_len(value), utf16_cut(value, limit)
    counted = " as Lofty counts them (an emoji is 2)" if units != len(value) else ""
    first = f"first {limit}"
    if utf16_len(kept) < limit:
        first = f"first {utf16_len(kept)} (the {limit}th would split an emoji)"
    return Finding(
        path, f"is {units} characters{counted}; Lofty silently keeps the {first}: {kept!r}"
    )


# --- effective and comparable values ------------------------------------------------------------


def effective(lead: Lead) -> dict[str, Any]:
    """The values Lofty will store for the fields `lead` sets (leadId aside), as JSON values
    in the file's order: what a PUT body holds.

    Works on any valid Lead, from a file or mapped from Lofty. Cut fields are cut as Lofty
    cuts them; a birthday is spelled one way (`Jun 5, 2001`, not `Jun 05, 2001`); set-like
    lists lose duplicates (keeping first appearance) after the cut. So two leads whose values
    Lofty would store alike have equal comparable(effective(...)).
    """
    values = lead.model_dump(mode="json", exclude_unset=True, exclude={"leadId"})
    for name, limit in TRUNCATED_FIELDS.items():
        value = values.get(name)
        if isinstance(value, str):
            values[name] = utf16_cut(value, limit)
        elif isinstance(value, list):
            values[name] = [utf16_cut(item, limit) for item in value]
    if values.get("birthday"):
        values["birthday"] = _one_spelling(values["birthday"])
    for member in values.get("leadFamilyMemberList") or ():
        if member.get("birthday"):
            member["birthday"] = _one_spelling(member["birthday"])
    return _map_set_like(values, lambda items: list(dict.fromkeys(items)))


def comparable(values: dict[str, Any]) -> dict[str, Any]:
    """Effective values in the form used for comparison and kept in the state: set-like lists
    sorted, keyed lists (customAttributeList) sorted by their key. Applying it twice changes
    nothing."""
    result = _map_set_like(values, lambda items: sorted(set(items), key=_sort_key))
    for (name,), key in KEYED_PATHS.items():
        items = result.get(name)
        if isinstance(items, list):
            result[name] = sorted(items, key=lambda item: str(item.get(key)))
    return result


def _one_spelling(birthday: str) -> str:
    month, day, year = birthday.replace(",", "").split(" ")
    return f"{month} {int(day)}, {year}"


def _map_set_like(values: dict[str, Any], fn: Callable[[list[Any]], list[Any]]) -> dict[str, Any]:
    """A copy of `values` with `fn` applied to every set-like list present."""
    result = dict(values)
    for path in SET_LIKE_PATHS:
        head, *rest = path
        if head not in result:
            continue
        if not rest and isinstance(result[head], list):
            result[head] = fn(result[head])
        elif (
            rest and isinstance(result[head], dict) and isinstance(result[head].get(rest[0]), list)
        ):
            result[head] = {**result[head], rest[0]: fn(result[head][rest[0]])}
    return result


def _sort_key(item: Any) -> tuple[str, str]:
    return (type(item).__name__, str(item))


# --- JSON Schema -------------------------------------------------------------------------------


class _NoNullSchema(GenerateJsonSchema):
    """Optional fields may be left out, never null: that is what the vendor schema allows."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft-07) of one lead document, for editors and check-jsonschema."""
    schema = Lead.model_json_schema(schema_generator=_NoNullSchema)
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    schema["$id"] = "https://github.com/reconciler/reconciler/schema/lead.schema.json"
    schema["title"] = "Lofty lead (reconciler)"
    schema["description"] = (
        "One lead file document. `reconciler validate` checks everything here and also: "
        + "; ".join(SCHEMA_CANNOT_CHECK)
        + "."
    )
    return schema
