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

Its rooms, each depending only on those above it:
    limits    Lofty's limits, what it cuts, set-like and keyed lists, fields sent together;
              utf16_len/utf16_cut
    patterns  the regular expressions shared by the validator and the JSON Schema
    fields    the field types (Int64, Phone, Email, Birthday, LeadType, ...) and validators
    lead      the pydantic models: Lead and the objects it holds
    findings  Finding and Checked, what checking yields
    messages  pydantic's type errors in the tool's own words
    rules     rules across fields, warnings, and the cuts Lofty makes
    checking  check() and lead_id_of(): one document, every problem at once
    normal    effective() and comparable(): values as Lofty stores and the tool compares them
    schema    json_schema()

Import from `reconciler.model` itself; the rooms are its inside.
"""

from __future__ import annotations

from reconciler.model.checking import check, lead_id_of
from reconciler.model.fields import (
    Birthday,
    DateTime,
    Email,
    Id,
    Int32,
    Int64,
    Language,
    LeadType,
    NumericText,
    PayType,
    Phone,
    PropertyType,
    PropertyTypeOrClear,
    Stage,
    TimeFrame,
    TransactionType,
    YesNo,
)
from reconciler.model.findings import Checked, Finding
from reconciler.model.lead import (
    Commission,
    Commissions,
    CustomAttribute,
    CustomFieldValue,
    FamilyMember,
    Inquiry,
    Lead,
    Location,
    Property,
    Transaction,
)
from reconciler.model.limits import (
    DEPRECATED_FIELDS,
    EXACT_FLOAT_MAX,
    FAMILY_LIMIT,
    INT32_MAX,
    INT64_MAX,
    KEYED_PATHS,
    LEAD_TYPES,
    MIN_MAX_PAIRS,
    NAME_LIMIT,
    OWNERSHIP_FIELDS,
    PHONE_LIMIT,
    PROPERTY_ADDRESS_FIELDS,
    SENSITIVE_FIELDS,
    SET_LIKE_PATHS,
    STAGE_LIMIT,
    TAG_FIELDS,
    TAG_LIMIT,
    TRUNCATED_FIELDS,
    utf16_cut,
    utf16_len,
)
from reconciler.model.normal import comparable, effective
from reconciler.model.patterns import (
    BIRTHDAY_PATTERN,
    DATE_TIME_PATTERN,
    EMAIL_PATTERN,
    JSON_STRING_ARRAY_PATTERN,
    LEAD_TYPE_NAME_PATTERN,
    NOT_BLANK_PATTERN,
    NUMERIC_TEXT_PATTERN,
    TRANSACTION_NAME_PATTERN,
    TRIMMED_NAME_PATTERN,
)
from reconciler.model.schema import SCHEMA_CANNOT_CHECK, json_schema

__all__ = [
    "BIRTHDAY_PATTERN",
    "DATE_TIME_PATTERN",
    "DEPRECATED_FIELDS",
    "EMAIL_PATTERN",
    "EXACT_FLOAT_MAX",
    "FAMILY_LIMIT",
    "INT32_MAX",
    "INT64_MAX",
    "JSON_STRING_ARRAY_PATTERN",
    "KEYED_PATHS",
    "LEAD_TYPES",
    "LEAD_TYPE_NAME_PATTERN",
    "MIN_MAX_PAIRS",
    "NAME_LIMIT",
    "NOT_BLANK_PATTERN",
    "NUMERIC_TEXT_PATTERN",
    "OWNERSHIP_FIELDS",
    "PHONE_LIMIT",
    "PROPERTY_ADDRESS_FIELDS",
    "SCHEMA_CANNOT_CHECK",
    "SENSITIVE_FIELDS",
    "SET_LIKE_PATHS",
    "STAGE_LIMIT",
    "TAG_FIELDS",
    "TAG_LIMIT",
    "TRANSACTION_NAME_PATTERN",
    "TRIMMED_NAME_PATTERN",
    "TRUNCATED_FIELDS",
    "Birthday",
    "Checked",
    "Commission",
    "Commissions",
    "CustomAttribute",
    "CustomFieldValue",
    "DateTime",
    "Email",
    "FamilyMember",
    "Finding",
    "Id",
    "Inquiry",
    "Int32",
    "Int64",
    "Language",
    "Lead",
    "LeadType",
    "Location",
    "NumericText",
    "PayType",
    "Phone",
    "Property",
    "PropertyType",
    "PropertyTypeOrClear",
    "Stage",
    "TimeFrame",
    "Transaction",
    "TransactionType",
    "YesNo",
    "check",
    "comparable",
    "effective",
    "json_schema",
    "lead_id_of",
    "utf16_cut",
    "utf16_len",
]
