"""What Lofty refuses in an Update Lead body, and how it cuts what it keeps.

Read straight from the vendor's page (`reference/lofty-update-lead.txt`) and its OpenAPI file
(shipped as `reconciler/data/lofty-openapi-leads.json`): the body is checked against
`EditLeadRequest`, then against the documented rules the schema carries only in prose (enums in
descriptions, phone and stage lengths, the birthday pattern, at most four family members,
ownershipId with OFFICE/PERSONAL, a property needs an address).

These rules are an independent copy of the ones in `reconciler/model/`, on purpose: this
module never imports the model. The sandbox stands in for Lofty when the tool is tested; if it
shared the model's code, a mistake in the model would be agreed with instead of caught.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

INT64_MAX = 2**63 - 1
_INT32 = (-(2**31), 2**31 - 1)

# Silent truncation, as the vendor page documents it ("only import 30 characters in front").
NAME_LIMIT = 30  # firstName, lastName, each groups/segments item
TAG_LIMIT = 64  # each tags/tagsAdd item

# Documented rules that EditLeadRequest carries only in its descriptions.
_TIME_FRAMES = ("1-3", "3-6", "6-12", "12+", "Just Looking", "Refinancing")
_YES_NO = ("Yes", "No")
_YES_NO_FIELDS = (
    "preQual",
    "houseToSell",
    "fthb",
    "withBuyerAgent",
    "mortgage",
    "buyHouse",
    "withListingAgent",
)
ENUMS: dict[str, tuple[str, ...]] = {
    "buyingTimeFrame": _TIME_FRAMES,
    "sellingTimeFrame": _TIME_FRAMES,
    **dict.fromkeys(_YES_NO_FIELDS, _YES_NO),
    "language": ("en", "fr", "de", "es", "zh-CN", "zh-TW", "ja"),
    "ownershipScope": ("TEAM", "OFFICE", "PERSONAL"),
}
LEAD_TYPES = (-1, 1, 2, 5, 6, 7, 8, 9)
ATTRIBUTE_TYPES = (
    "number",
    "text",
    "date",
    "anniversary_date",
    "single_select",
    "multi_select",
    "percentage",
    "currency",
)
_MAX_PHONE = 20  # "No more than 20 characters per phone"
_MAX_STAGE = 19  # "less than 20 characters"
_MAX_FAMILY_MEMBERS = 4  # "You can add up to 4 family members."
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_BIRTHDAY = re.compile(r"^(?P<month>[A-Z][a-z]{2}) (?P<day>\d{1,2}), (?P<year>\d{4})$")
ADDRESS_FIELDS = ("city", "state", "zipCode", "streetAddress")
_MIN_MAX_PAIRS = (
    ("inquiry", "priceMin", "priceMax"),
    ("inquiry", "bedroomsMin", "bedroomsMax"),
    ("property", "priceMin", "priceMax"),
)

_SCHEMA_URI = "urn:lofty:openapi-leads"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refusal as Lofty words it: HTTP status, Lofty error code, message."""

    status: int
    code: int
    message: str

    def body(self) -> dict[str, Any]:
        """The error body Lofty sends: `{"code": ..., "message": ...}`."""
        return {"code": self.code, "message": self.message}


LEAD_NOT_EXIST = Rejection(404, 20006, "LEAD_NOT_EXIST")
LEAD_PROPERTY_NOT_EXIST = Rejection(404, 200108, "LEAD_PROPERTY_NOT_EXIST")
PROPERTY_ADDRESS_EMPTY = Rejection(400, 200057, "PROPERTY_ADDRESS_EMPTY")
LIMIT_NOT_VALID = Rejection(400, 20012, "LIMIT_NOT_VALID")


def invalid(where: str, reason: str) -> Rejection:
    """Lofty's 400 for a bad parameter, naming where it is and what is wrong."""
    return Rejection(400, 20012, f"INVALID_PARAMETER: {where}: {reason}")


def check_update(body: object) -> Rejection | None:
    """Why Lofty would refuse this Update Lead body, or None when it would accept it.

    Checks, in order: a JSON object, no unknown top-level keys, the vendor's `EditLeadRequest`
    schema, the documented rules the schema leaves to prose, and the property address rule.
    """
    problem = _first_problem(body)
    if problem is not None:
        return invalid(*problem)
    assert isinstance(body, dict)  # _first_problem refuses anything else
    block = body.get("property")
    if isinstance(block, dict) and all(
        not str(block.get(name) or "").strip() for name in ADDRESS_FIELDS
    ):
        return PROPERTY_ADDRESS_EMPTY
    return None


def utf16_len(text: str) -> int:
    """The length Lofty's Java server sees: UTF-16 code units (a character beyond U+FFFF is 2)."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def cut(text: str, limit: int) -> str:
    """The first `limit` UTF-16 code units of `text`, never half of a surrogate pair."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return text[:index]
    return text


def is_lead_id(value: object) -> bool:
    """Whether `value` is a valid leadId: an int64 >= 1 (a bool is not)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= INT64_MAX


# --- the schema -----------------------------------------------------------------------------------


@cache
def _edit_lead_request() -> tuple[jsonschema.protocols.Validator, frozenset[str]]:
    """A validator for the vendor's `EditLeadRequest` (its $refs resolved within the OpenAPI
    file) and the top-level fields it names."""
    text = resources.files("reconciler").joinpath("data/lofty-openapi-leads.json").read_text()
    document = json.loads(text)
    # The schema lists transactionType's values as an enum, yet its description says a value
    # outside the team's pipeline "falls back silently to the first pipeline": Lofty accepts
    # any string there, and so does the sandbox (the store applies the fallback).
    del document["components"]["schemas"]["LeadTransaction"]["properties"]["transactionType"][
        "enum"
    ]
    # OpenAPI 3.0 schema objects are JSON Schema draft 4 with extra keywords; draft 4 also keeps
    # integers strict (1.5 and true are not int64), as Lofty's Java binding is.
    registry: Registry[Any] = Registry().with_resource(
        _SCHEMA_URI, Resource.from_contents(document, default_specification=DRAFT4)
    )
    checker = jsonschema.FormatChecker(formats=())
    checker.checks("int32")(lambda v: not isinstance(v, int) or _INT32[0] <= v <= _INT32[1])
    checker.checks("int64")(lambda v: not isinstance(v, int) or -INT64_MAX - 1 <= v <= INT64_MAX)
    checker.checks("date-time", raises=ValueError)(_is_date_time)
    schema = {"$ref": f"{_SCHEMA_URI}#/components/schemas/EditLeadRequest"}
    validator = jsonschema.Draft4Validator(schema, registry=registry, format_checker=checker)
    fields = frozenset(document["components"]["schemas"]["EditLeadRequest"]["properties"])
    return validator, fields


def _is_date_time(value: object) -> bool:
    """RFC 3339 date-time, as Lofty's Java binding parses `inquiry.createTime`/`updateTime`."""
    if not isinstance(value, str):
        return True
    if "T" not in value.upper() or not re.search(r"(Z|z|[+-]\d{2}:\d{2})$", value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))  # ValueError when not a date
    return True


def _first_problem(body: object) -> tuple[str, str] | None:
    if not isinstance(body, dict):
        return "body", "must be a JSON object"
    validator, known_fields = _edit_lead_request()
    unknown = sorted(set(body) - known_fields)
    if unknown:
        hint = difflib.get_close_matches(unknown[0], known_fields, n=1)
        return unknown[0], "unknown field" + (f" (did you mean {hint[0]}?)" if hint else "")
    infinite = next(_non_finite(body, ()), None)
    if infinite is not None:  # `1e999` parses as infinity, which no JSON answer could carry
        return _path(infinite), "must be a finite number"
    error = best_match(validator.iter_errors(body))
    if error is not None:
        return _path(error.absolute_path), error.message
    return next(_rule_problems(body), None)


def _non_finite(value: object, at: tuple[str | int, ...]) -> Iterator[tuple[str | int, ...]]:
    if isinstance(value, float) and not math.isfinite(value):
        yield at
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _non_finite(item, (*at, index))


# --- the prose rules ------------------------------------------------------------------------------


def _rule_problems(body: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Documented rules not in the schema; runs on a body whose types the schema has checked."""
    yield from _phone_problems("phones", body.get("phones", []))
    stage = body.get("stage")
    if stage is not None and utf16_len(stage) > _MAX_STAGE:
        yield "stage", f"must be less than {_MAX_STAGE + 1} characters"
    yield from _birthday_problems("birthday", body.get("birthday"))
    for name, allowed in ENUMS.items():
        value = body.get(name)
        # An empty string clears the field; anything else must be a documented value.
        if value is not None and value != "" and value not in allowed:
            yield name, f"must be one of {', '.join(allowed)}"
    if body.get("ownershipScope") in ("OFFICE", "PERSONAL") and "ownershipId" not in body:
        yield "ownershipId", f"is required when ownershipScope is {body['ownershipScope']}"
    for index, lead_type in enumerate(body.get("leadTypes", [])):
        if lead_type not in LEAD_TYPES:
            yield f"leadTypes[{index}]", f"unknown lead type {lead_type}"
    for index, attribute in enumerate(body.get("customAttributeList", [])):
        if attribute["attributeType"] not in ATTRIBUTE_TYPES:
            yield (
                f"customAttributeList[{index}].attributeType",
                f"must be one of {', '.join(ATTRIBUTE_TYPES)}",
            )
    yield from _family_problems(body.get("leadFamilyMemberList", []))
    for block, low, high in _MIN_MAX_PAIRS:
        values = body.get(block, {})
        if low in values and high in values and values[low] > values[high]:
            yield f"{block}.{low}", f"must not exceed {high}"
    transaction = body.get("leadTransaction")
    if transaction is not None:
        name = transaction["transactionName"]
        if not name.strip():
            yield "leadTransaction.transactionName", "must not be blank"
        elif "<" in name or ">" in name:
            yield "leadTransaction.transactionName", "must not contain '<' or '>'"


def _family_problems(members: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    if len(members) > _MAX_FAMILY_MEMBERS:
        yield "leadFamilyMemberList", f"at most {_MAX_FAMILY_MEMBERS} family members"
    for index, member in enumerate(members):
        where = f"leadFamilyMemberList[{index}]"
        yield from _phone_problems(f"{where}.phones", member.get("phones", []))
        yield from _birthday_problems(f"{where}.birthday", member.get("birthday"))


def _phone_problems(where: str, phones: list[str]) -> Iterator[tuple[str, str]]:
    for index, phone in enumerate(phones):
        if utf16_len(phone) > _MAX_PHONE:
            yield f"{where}[{index}]", f"no more than {_MAX_PHONE} characters per phone"


def _birthday_problems(where: str, value: str | None) -> Iterator[tuple[str, str]]:
    if not value:  # absent, or an empty string that clears it
        return
    match = _BIRTHDAY.match(value)
    try:
        if match is None or match["month"] not in _MONTHS:
            raise ValueError
        date(int(match["year"]), _MONTHS.index(match["month"]) + 1, int(match["day"]))
    except ValueError:
        yield where, f"{value!r} is not a date like 'Jun 5, 2001' (MMM d, yyyy)"


def _path(parts: Iterable[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"
