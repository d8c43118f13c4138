"""The lead model: every field of Lofty's Update Lead payload, its rules, and its effective value.

Field names are the API's own camelCase names. Types are strict (a phone written as a bare
number in YAML is an error, not silently turned into digits without its `+`). Rules that span
fields (ownershipId with OFFICE scope, min <= max, a property needs an address) are checked
after the types, so every problem of a lead is reported together.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from reconciler.yamlio import FieldPath

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1

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

Int64 = Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]
Int32 = Annotated[int, Field(ge=-(2**31), le=INT32_MAX)]
Phone = Annotated[str, Field(max_length=20)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
YesNo = Literal["Yes", "No"]
TimeFrame = Literal["1-3", "3-6", "6-12", "12+", "Just Looking", "Refinancing"]
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
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_BIRTHDAY_PATTERN = r"^([A-Z][a-z]{2}) ([1-9]|[12][0-9]|3[01]), ([0-9]{4})$"
_BIRTHDAY = re.compile(_BIRTHDAY_PATTERN)


def _birthday(value: Any) -> Any:
    if not isinstance(value, str):
        return value  # the str type then reports it
    match = _BIRTHDAY.match(value)
    if match is None or match[1] not in _MONTHS:
        raise ValueError(f"must look like 'Jun 5, 2001' (MMM d, yyyy), not {value!r}")
    try:
        date(int(match[3]), _MONTHS.index(match[1]) + 1, int(match[2]))
    except ValueError:
        raise ValueError(f"{value!r} is not a real date") from None
    return value


def _lead_type(value: Any) -> Any:
    if isinstance(value, str):
        by_lower = {name.lower(): type_id for name, type_id in LEAD_TYPES.items()}
        if value.lower() in by_lower:
            return by_lower[value.lower()]
        raise ValueError(f"unknown lead type {value!r}; use one of {', '.join(LEAD_TYPES)}")
    if isinstance(value, int) and not isinstance(value, bool) and value not in LEAD_TYPES.values():
        ids = ", ".join(str(i) for i in LEAD_TYPES.values())
        raise ValueError(f"unknown lead type id {value}; use one of {ids} or a name")
    return value


Birthday = Annotated[
    str,
    BeforeValidator(_birthday),
    WithJsonSchema({"type": "string", "pattern": _BIRTHDAY_PATTERN, "examples": ["Jun 5, 2001"]}),
]
LeadType = Annotated[
    int,
    BeforeValidator(_lead_type),
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "integer", "enum": list(LEAD_TYPES.values())},
                {"type": "string", "enum": list(LEAD_TYPES)},
            ]
        }
    ),
]


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
    bathroomsMin: str | None = None
    bathroomsMax: str | None = None
    locations: list[Location] | None = None
    id: Int64 | None = None
    leadUserId: Int64 | None = None
    modifyByAgent: bool | None = None
    createTime: str | None = None
    updateTime: str | None = None
    defaultValue: bool | None = None


class Property(_Strict):
    """The lead's property or mailing address."""

    price: Int64 | None = None
    state: str | None = None
    city: str | None = None
    streetAddress: str | None = None
    zipCode: str | None = None
    county: str | None = None
    propertyType: PropertyType | None = None
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

    attributeName: str
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
    """The lead's transaction (deal)."""

    transactionName: str
    transactionType: Literal["Purchase", "Listing", "Lease", "Other"] | None = None
    homePrice: float | None = None
    transactionStatus: str | None = None
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


class Lead(_Strict):
    """One lead document: `leadId` plus the fields of Lofty's Update Lead payload to manage."""

    leadId: Annotated[int, Field(ge=1, le=INT64_MAX)]
    cannotText: bool | None = None
    cannotCall: bool | None = None
    cannotEmail: bool | None = None
    firstName: str | None = None
    lastName: str | None = None
    emails: list[Email] | None = None
    phones: list[Phone] | None = None
    leadTypes: list[LeadType] | None = None
    assignedUserId: Int64 | None = None
    streetAddress: str | None = None
    city: str | None = None
    state: str | None = None
    zipCode: str | None = None
    referredBy: str | None = None
    isHidden: bool | None = None
    stage: Annotated[str, Field(max_length=19)] | None = None
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
    leadFamilyMemberList: Annotated[list[FamilyMember], Field(max_length=4)] | None = None
    language: Literal["en", "fr", "de", "es", "zh-CN", "zh-TW", "ja"] | None = None
    ownershipId: Int64 | None = None
    ownershipScope: Literal["TEAM", "OFFICE", "PERSONAL"] | None = None
    unsubscription: bool | None = None
    leadTransaction: Transaction | None = None


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


def check(data: Any, *, may_hold_null: bool = True) -> Checked:
    """Validate one document's data; on success also collect its warnings.

    `may_hold_null=False` (the YAML reader saw no null) skips the search for nulls.
    """
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        return Checked(
            None, [Finding((), f"a lead must be a mapping of fields, not {kind}")], [], []
        )
    nulls = [Finding(p, _NULL_MESSAGE) for p in _null_paths(data, ())] if may_hold_null else []
    if nulls:
        return Checked(None, nulls, [], [])
    errors = list(_rules(data))
    try:
        lead = Lead.model_validate(data)
    except ValidationError as exc:
        typed = [_finding(err) for err in exc.errors()]
        return Checked(None, sorted(typed + errors, key=_order(data)), [], [])
    if errors:
        return Checked(None, errors, [], [])
    return Checked(lead, [], list(_warnings(lead)), list(_truncations(lead)))


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


def _finding(err: Any) -> Finding:
    loc: FieldPath = tuple(p for p in err["loc"] if isinstance(p, str | int))
    kind, message = err["type"], err["msg"]
    if kind == "extra_forbidden":
        message = f"unknown field{_did_you_mean(loc)}"
    elif kind == "missing":
        message = "is required"
    elif kind in ("string_type", "int_type", "float_type", "bool_type") and isinstance(
        err.get("input"), int | float | bool | date
    ):
        message = f"{message}, got {err['input']!s} ({type(err['input']).__name__})"
        if kind == "string_type" and not isinstance(err["input"], bool):
            message += "; quote it in YAML to keep it as written, e.g. '+1415...' or '02134'"
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
    return Finding(loc, message)


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
    inquiry, prop = data.get("inquiry"), data.get("property")
    if isinstance(inquiry, dict):
        for low, high in (
            ("priceMin", "priceMax"),
            ("bedroomsMin", "bedroomsMax"),
            ("bathroomsMin", "bathroomsMax"),
        ):
            yield from _min_max(inquiry, ("inquiry",), low, high)
    if isinstance(prop, dict):
        yield from _min_max(prop, ("property",), "priceMin", "priceMax")
        address = (prop.get(k) for k in ("city", "state", "zipCode", "streetAddress"))
        if not any(isinstance(v, str) and v.strip() for v in address):
            yield Finding(
                ("property",),
                "needs at least one non-blank address field: city, state, zipCode or "
                "streetAddress (Lofty answers 200057 PROPERTY_ADDRESS_EMPTY)",
            )
    transaction = data.get("leadTransaction")
    name = transaction.get("transactionName") if isinstance(transaction, dict) else None
    if isinstance(name, str) and not name.strip():
        yield Finding(("leadTransaction", "transactionName"), "must not be blank")
    elif isinstance(name, str) and ("<" in name or ">" in name):
        yield Finding(("leadTransaction", "transactionName"), "must not contain '<' or '>'")
    yield from _tag_rules(data)


def _tag_rules(data: dict[str, Any]) -> Iterator[Finding]:
    """Tag fields that contradict each other would leave Lofty different from the plan."""
    if data.get("clearAllTags") is True:
        for name in ("tags", "tagsAdd", "tagsRemove"):
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
        for index, tag in enumerate(removed):
            if tag in wanted:
                yield Finding(
                    ("tagsRemove", index),
                    f"{tag!r} is also in {name}; a tag cannot be both present and absent",
                )


def _min_max(obj: dict[str, Any], at: FieldPath, low: str, high: str) -> Iterator[Finding]:
    lo, hi = _number(obj.get(low)), _number(obj.get(high))
    if lo is not None and hi is not None and lo > hi:
        yield Finding((*at, low), f"{low} ({obj[low]}) is greater than {high} ({obj[high]})")
    for name in (low, high):
        if isinstance(obj.get(name), str) and _number(obj[name]) is None:
            yield Finding((*at, name), f"must be a number, not {obj[name]!r}")


def _number(value: Any) -> float | None:
    """A finite number from an int, a float or a numeric string; None otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _warnings(lead: Lead) -> Iterator[Finding]:
    for name, advice in DEPRECATED_FIELDS.items():
        if name in lead.model_fields_set:
            yield Finding((name,), f"is deprecated by Lofty; {advice}")
    if lead.tags is not None and lead.tagsAdd is not None:
        yield Finding(
            ("tagsAdd",),
            "tags already sets the whole tag list; tagsAdd beside it only adds to that",
        )


def _truncations(lead: Lead) -> Iterator[Finding]:
    for name, limit in TRUNCATED_FIELDS.items():
        value = getattr(lead, name)
        if isinstance(value, str) and len(value) > limit:
            yield _cut_finding((name,), value, limit)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if len(item) > limit:
                    yield _cut_finding((name, index), item, limit)


def _cut_finding(path: FieldPath, value: str, limit: int) -> Finding:
    return Finding(
        path,
        f"is {len(value)} characters; Lofty silently keeps the first {limit}: {value[:limit]!r}",
    )


def effective(lead: Lead) -> dict[str, Any]:
    """The values Lofty will store for the fields the lead sets, ready to send as JSON.

    Cut fields are cut as Lofty cuts them; set-like lists lose duplicates (keeping first
    appearance) after the cut, so two desired values with the same effect are equal.
    """
    values = lead.model_dump(mode="json", exclude_unset=True, exclude={"leadId"})
    for name, limit in TRUNCATED_FIELDS.items():
        value = values.get(name)
        if isinstance(value, str):
            values[name] = value[:limit]
        elif isinstance(value, list):
            values[name] = [item[:limit] for item in value]
    return _map_set_like(values, lambda items: list(dict.fromkeys(items)))


def comparable(values: dict[str, Any]) -> dict[str, Any]:
    """Effective values in the form used for comparison and the state: set-like lists sorted."""
    return _map_set_like(values, lambda items: sorted(set(items), key=_sort_key))


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
    schema["allOf"] = [
        {
            "if": {
                "properties": {"ownershipScope": {"enum": ["OFFICE", "PERSONAL"]}},
                "required": ["ownershipScope"],
            },
            "then": {"required": ["ownershipId"]},
        }
    ]
    return schema
