"""The types of the lead's fields, each with its validator and its JSON Schema: bounded whole
numbers, phones and stage counted in UTF-16 units, email, birthday, date-time, numbers written
as text, lead types by id or name, and the closed lists of words Lofty accepts.

Types are strict: a phone written as a bare number in YAML is an error, not silently turned
into digits without its `+`. A validator's message is in the tool's own words and never echoes
an email (messages reach CI logs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from reconciler.model.limits import (
    EXACT_FLOAT_MAX,
    INT32_MAX,
    INT64_MAX,
    LEAD_TYPES,
    PHONE_LIMIT,
    STAGE_LIMIT,
    utf16_len,
)
from reconciler.model.patterns import (
    BIRTHDAY_PATTERN,
    BIRTHDAY_RE,
    BIRTHDAY_SHAPE_RE,
    DATE_TIME_PATTERN,
    DATE_TIME_RE,
    EMAIL_PATTERN,
    EMAIL_RE,
    LEAD_TYPE_NAME_PATTERN,
    NUMERIC_TEXT_PATTERN,
    NUMERIC_TEXT_RE,
    utf16_max_pattern,
)


def whole(value: Any) -> Any:
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
    if BIRTHDAY_RE.search(value):
        return value
    if BIRTHDAY_SHAPE_RE.search(value):
        raise ValueError(f"{value!r} is not a real date")
    raise ValueError(
        f"must look like 'Jun 5, 2001' (MMM d, yyyy), or '' to clear it; not {value!r}"
    )


def _date_time(value: str) -> str:
    if not DATE_TIME_RE.search(value):
        raise ValueError(
            f"must be a date-time like '2023-11-07T05:31:56Z' (RFC 3339), not {value!r}"
        )
    return value


def _email(value: str) -> str:
    if not EMAIL_RE.search(value):  # never echoed: messages reach CI logs
        raise ValueError("is not an email address (name@example.com)")
    return value


def _numeric_text(value: str) -> str:
    if not NUMERIC_TEXT_RE.search(value):
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
        "pattern": utf16_max_pattern(limit),
        "description": f"At most {limit} UTF-16 code units (an emoji counts as 2).",
    }


# The bounds come first so that they reach the JSON Schema as minimum/maximum.
Int64 = Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX), BeforeValidator(whole)]
Int32 = Annotated[int, Field(ge=-(2**31), le=INT32_MAX), BeforeValidator(whole)]
Id = Annotated[int, Field(ge=1, le=INT64_MAX), BeforeValidator(whole)]
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
# Who a commission line is paid to (payType, splitPayType), as the vendor lists them.
PayType = Literal["TEAM", "AGENT", "VENDOR_PARTNER", "LEAD", "OTHER", "BROKERAGE", "UPLINE"]
