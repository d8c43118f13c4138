"""What `check` says beyond the types. Rules that span fields (ownershipId with OFFICE scope,
min <= max, a property needs an address, tag fields that contradict each other, a custom
attribute set twice) are checked on the raw document, so that they are reported together with
any type errors. Warnings (deprecated fields, tags that do nothing) and the cuts Lofty will
make silently are found on a valid lead.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from reconciler.model.findings import Finding
from reconciler.model.lead import Lead
from reconciler.model.limits import (
    DEPRECATED_FIELDS,
    MIN_MAX_PAIRS,
    PROPERTY_ADDRESS_FIELDS,
    TAG_LIMIT,
    TAG_LISTS,
    TRUNCATED_FIELDS,
    utf16_cut,
    utf16_len,
)
from reconciler.model.patterns import (
    JSON_STRING_ARRAY_RE,
    NOT_BLANK_RE,
    NUMERIC_TEXT_RE,
    TRIMMED_NAME_RE,
)
from reconciler.yamlio import FieldPath

# --- rules across fields, on the raw document -----------------------------------------------------


def errors_across_fields(data: dict[str, Any]) -> Iterator[Finding]:
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
        if not any(isinstance(v, str) and NOT_BLANK_RE.search(v) for v in address):
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
    if isinstance(name, str) and not NOT_BLANK_RE.search(name):
        yield Finding((*at, "transactionName"), "must not be blank")
    elif isinstance(name, str) and ("<" in name or ">" in name):
        yield Finding((*at, "transactionName"), "must not contain '<' or '>'")
    if not isinstance(status, str):
        return
    if not TRIMMED_NAME_RE.search(status):
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
        for name in TAG_LISTS:
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
        if isinstance(name, str) and not NOT_BLANK_RE.search(name):
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
        if multi and isinstance(value, str) and not JSON_STRING_ARRAY_RE.search(value):
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
    if isinstance(value, str) and not (value and NUMERIC_TEXT_RE.search(value)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


# --- warnings and cuts, on a valid lead -----------------------------------------------------------


def warnings_of(lead: Lead) -> Iterator[Finding]:
    """What a valid lead does that is allowed but likely not meant: a deprecated field, tagsAdd
    beside tags, a tagsRemove name no tag can have."""
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


def truncations_of(lead: Lead) -> Iterator[Finding]:
    """Each value of a valid lead that Lofty will silently cut, and what it keeps."""
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
