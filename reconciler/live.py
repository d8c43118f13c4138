"""Lofty's view of a lead, mapped into the file's field space: the read side's one mapping.

Lofty answers a GET in its own shape (`LeadResponse`), not the PUT shape a lead file uses.
This module is the one place that translates: tags are objects whose `tagName` counts,
`leadInquiry`, `leadPropertyList[]`, `customAttributes` and `hiddenFlag` stand for `inquiry`,
`property`, `customAttributeList` and `isHidden`, and server-owned keys (ids, times,
`modifyByAgent`, ...) are left out. Values are then normalised exactly as a file's are
(`model.effective` and `model.comparable`: cuts in UTF-16 units, set-like lists, keyed lists),
so a live value and a file value compare equal exactly when Lofty holds what the file says.

Some written fields never come back (`READ_BACK` says how each field is read): a field that
cannot be read back is reported as such, never as drift. `tagsAdd` and `tagsRemove` are read
as must-have and must-not-have names in the live tag set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from reconciler.model import LEAD_TYPES, Lead, check, comparable, effective

# How each field a file can manage is read back from `LeadResponse`; docs/reading.md shows it.
READ_BACK: dict[str, str] = {
    "cannotText": "`cannotText`",
    "cannotCall": "`cannotCall`",
    "cannotEmail": "`cannotEmail`",
    "firstName": "`firstName`",
    "lastName": "`lastName`",
    "emails": "`emails` (in order)",
    "phones": "`phones` (in order)",
    "leadTypes": "`leadTypes` (ids, as a set)",
    "assignedUserId": "`assignedUserId`",
    "streetAddress": "`streetAddress`",
    "city": "`city`",
    "state": "`state`",
    "zipCode": "`zipCode`",
    "referredBy": "`referredBy`",
    "isHidden": "`hiddenFlag`",
    "stage": "`stage` (the name; `stageId` is Lofty's)",
    "groups": "`groups` (as a set)",
    "segments": "`segments` (as a set)",
    "tags": "`tags[].tagName` (as a set)",
    "tagsAdd": "checked in `tags[].tagName`: each name must be there",
    "tagsRemove": "checked in `tags[].tagName`: no name may be there",
    "clearAllTags": "not read back (a write-only operation)",
    "source": "`source`",
    "inquiry": "`leadInquiry`, key by key, without its server-owned keys",
    "property": (
        "the record of `leadPropertyList[]` with the file's `id`, else the one at the file's "
        "address; `priceMin`/`priceMax` are write-only and not read back"
    ),
    "customAttributeList": "`customAttributes[]`, only the attributes the file names",
    "birthday": "`birthday`",
    "buyingTimeFrame": "`buyingTimeFrame`",
    "preQual": "`preQual`",
    "houseToSell": "`houseToSell`",
    "fthb": "`fthb`",
    "withBuyerAgent": "`withBuyerAgent`",
    "sellingTimeFrame": "`sellingTimeFrame`",
    "mortgage": "`mortgage`",
    "buyHouse": "`buyHouse`",
    "withListingAgent": "`withListingAgent`",
    "leadFamilyMemberList": "`leadFamilyMemberList` (in order)",
    "language": "`language`",
    "ownershipId": "`ownershipId`",
    "ownershipScope": "`ownershipScope`",
    "unsubscription": "`unsubscription`",
    "leadTransaction": "not read back (Lofty's lead answer has no transaction)",
}

# PUT names that LeadResponse spells differently (property is a list there: see _property).
_RESPONSE_NAMES = {
    "isHidden": "hiddenFlag",
    "customAttributeList": "customAttributes",
    "inquiry": "leadInquiry",
}
INQUIRY_SERVER_KEYS = frozenset(
    {"id", "leadUserId", "modifyByAgent", "createTime", "updateTime", "defaultValue"}
)
PROPERTY_SERVER_KEYS = frozenset({"leadUserId"})
# Managed paths whose value Lofty never shows.
WRITE_ONLY = frozenset(
    {"clearAllTags", "leadTransaction", "property.priceMin", "property.priceMax"}
)
_ADDRESS = ("streetAddress", "city", "state", "zipCode")
LEAD_TYPE_NAMES = {type_id: name for name, type_id in LEAD_TYPES.items()}
_MAPPED = frozenset(READ_BACK) - {"tagsAdd", "tagsRemove", "clearAllTags", "leadTransaction"}


@dataclass(frozen=True)
class LiveLead:
    """A lead as Lofty holds it, in the file's field space and normal form.

    `values` holds the managed fields that can be read back (a field absent here was absent
    in Lofty); `unreadable` the managed paths that cannot be; `notes` what a reader should
    know about the mapping (which property record was taken, and why).
    """

    lead_id: int
    values: dict[str, Any]
    unreadable: frozenset[str]
    updated: str | None
    notes: tuple[str, ...] = ()


def live_view(raw: Mapping[str, Any], managed: Mapping[str, Any]) -> LiveLead:
    """Lofty's lead `raw` (the `lead` object of a GET) projected onto the fields and keys
    `managed` holds (comparable values of a file or of the state), normalised as files are."""
    lead_id = int(raw["leadId"])
    notes: list[str] = []
    mapped = file_values(raw, managed=managed, notes=notes)
    projected, unreadable = _project(mapped, managed)
    # Most leads hold just what was applied: then their values are in the normal form already
    # (the managed ones are) and the model need not check them again.
    quick = comparable(projected)
    values = quick if _same_as_managed(quick, managed) else normalise(lead_id, projected)
    tag_names = set(_tag_names(raw.get("tags")))
    if isinstance(managed.get("tagsAdd"), list):
        values["tagsAdd"] = [t for t in managed["tagsAdd"] if t in tag_names]
    if isinstance(managed.get("tagsRemove"), list):
        values["tagsRemove"] = [t for t in managed["tagsRemove"] if t not in tag_names]
    updated = raw.get("lastUpdateTime")
    return LiveLead(
        lead_id,
        values,
        frozenset(unreadable),
        updated if isinstance(updated, str) else None,
        tuple(notes),
    )


def _same_as_managed(values: Mapping[str, Any], managed: Mapping[str, Any]) -> bool:
    """Whether every projected value equals the managed one (nested objects key by key)."""
    for name, value in values.items():
        want = managed.get(name)
        if isinstance(value, dict) and isinstance(want, dict):
            if any(k not in want or want[k] != v for k, v in value.items()):
                return False
        elif value != want:
            return False
    return True


def file_values(
    raw: Mapping[str, Any],
    *,
    managed: Mapping[str, Any] | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """Every readable field of `raw` under the file's names, server-owned keys left out.

    `managed` (a file's values) picks the property record the file manages; without it the
    first record is taken. What was chosen among several records goes to `notes`.
    """
    values: dict[str, Any] = {}
    for name in _MAPPED:
        source = _RESPONSE_NAMES.get(name, name)
        if name == "property":
            chosen = _property(raw.get("leadPropertyList"), (managed or {}).get("property"), notes)
            if chosen is not None:
                values[name] = chosen
        elif name == "tags":
            if isinstance(raw.get("tags"), list):
                values[name] = list(_tag_names(raw["tags"]))
        elif source in raw and raw[source] is not None:
            values[name] = raw[source]
    inquiry = values.get("inquiry")
    if isinstance(inquiry, dict):
        values["inquiry"] = {k: v for k, v in inquiry.items() if k not in INQUIRY_SERVER_KEYS}
    return values


def import_values(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """What a lead file adopting `raw` holds: every readable field Lofty holds a value for
    (none it holds empty), each valid as a file value; and notes on what was left out."""
    notes: list[str] = []
    values = {k: v for k, v in file_values(raw, notes=notes).items() if not _unset(v)}
    for name in ("inquiry", "property"):
        if isinstance(values.get(name), dict):
            kept = {k: v for k, v in values[name].items() if not _unset(v)}
            if name == "property" and not any(kept.get(k) for k in _ADDRESS):
                kept = {}  # a file's property needs an address (Lofty: 200057)
            values[name] = kept
            if not kept:
                del values[name]
    lead_id = int(raw["leadId"])
    if _invalid(lead_id, values) is None:
        return _with_type_names(lead_id, values), notes
    for group in _groups(values):
        problem = _invalid(lead_id, {name: values[name] for name in group})
        if problem is not None:
            left_out = " and ".join(group)
            notes.append(
                f"{left_out} left out: Lofty holds a value no lead file can hold ({problem})"
            )
            for name in group:
                del values[name]
    return _with_type_names(lead_id, values), notes


def _with_type_names(lead_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """The values as a file holds them: lead types by name, which reads better than ids."""
    if isinstance(values.get("leadTypes"), list):
        values["leadTypes"] = [LEAD_TYPE_NAMES.get(t, t) for t in values["leadTypes"]]
    return {"leadId": lead_id, **values}


def normalise(lead_id: int, values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` in the file's normal form (comparable effective values).

    A value Lofty holds that no file could (too long a stage, an odd email) is kept as it is:
    it then differs from any file value, which is the truth.
    """
    try:
        return comparable(effective(Lead.model_validate({"leadId": lead_id, **values})))
    except ValidationError:
        pass
    result: dict[str, Any] = {}
    for name, value in values.items():
        try:
            one = Lead.model_validate({"leadId": lead_id, name: value})
        except ValidationError:
            result[name] = value
        else:
            result.update(comparable(effective(one)))
    return result


def _project(
    mapped: Mapping[str, Any], managed: Mapping[str, Any]
) -> tuple[dict[str, Any], set[str]]:
    """The live values of exactly the fields and keys `managed` holds."""
    projected: dict[str, Any] = {}
    unreadable = {name for name in managed if name in WRITE_ONLY}
    for name, want in managed.items():
        if name in WRITE_ONLY or name in ("tagsAdd", "tagsRemove"):
            continue
        have = mapped.get(name)
        if isinstance(want, dict):
            keys = [k for k in want if f"{name}.{k}" not in WRITE_ONLY]
            unreadable.update(f"{name}.{k}" for k in want if f"{name}.{k}" in WRITE_ONLY)
            source = have if isinstance(have, dict) else {}
            projected[name] = {
                k: _as_cleared(want[k], source.get(k))
                for k in keys
                if _present(want[k], source.get(k))
            }
        elif isinstance(want, list) and any(isinstance(item, dict) for item in want):
            projected[name] = _project_items(name, want, have)
        elif _present(want, have):
            projected[name] = _as_cleared(want, have)
    return projected, unreadable


def _project_items(name: str, want: list[Any], have: Any) -> list[Any]:
    """A list of objects: each live item cut down to the keys the file's items use (by
    attribute name for custom attributes, which are matched by it)."""
    items = [item for item in have if isinstance(item, dict)] if isinstance(have, list) else []
    if name == "customAttributeList":
        wanted = {item.get("attributeName"): item for item in want if isinstance(item, dict)}
        return [
            {k: item[k] for k in wanted[item.get("attributeName")] if k in item}
            for item in items
            if item.get("attributeName") in wanted
        ]
    keys = {k for item in want if isinstance(item, dict) for k in item}
    return [{k: v for k, v in item.items() if k in keys and v is not None} for item in items]


def _property(records: Any, managed: Any, notes: list[str] | None) -> dict[str, Any] | None:
    """The property record a file manages: by `id`, else by address, else the first."""
    found = [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []
    if not found:
        return None
    chosen: dict[str, Any] | None = None
    how = ""
    want = managed if isinstance(managed, dict) else {}
    if want.get("id") is not None:
        chosen = next((r for r in found if r.get("id") == want["id"]), None)
        how = f"by its id {want['id']}"
    elif any(want.get(k) for k in _ADDRESS):
        same = [
            r for r in found if all(_same(r.get(k), want.get(k)) for k in _ADDRESS if want.get(k))
        ]
        chosen = same[0] if same else None
        how = "by its address" + (
            f" (the first of {len(same)} at that address)" if len(same) > 1 else ""
        )
    else:
        chosen, how = found[0], "the first one: the file names no id or address"
    if notes is not None and len(found) > 1:
        taken = f"took record {chosen.get('id')}" if chosen is not None else "none matched"
        notes.append(f"Lofty holds {len(found)} property records; {taken} ({how})")
    if chosen is None:
        return None
    return {k: v for k, v in chosen.items() if k not in PROPERTY_SERVER_KEYS and v is not None}


def _same(have: Any, want: Any) -> bool:
    """Addresses compare as Lofty matches them: without case or extra spaces."""

    def simple(value: Any) -> str:
        return " ".join(str(value or "").split()).casefold()

    return simple(have) == simple(want)


def _tag_names(tags: Any) -> Iterable[str]:
    for tag in tags if isinstance(tags, list) else ():
        name = tag.get("tagName") if isinstance(tag, dict) else tag
        if isinstance(name, str):
            yield name


def _present(want: Any, have: Any) -> bool:
    """Whether a live value counts as there: absent or null is not, unless the file clears
    the field, and a cleared field reads back as empty or not at all."""
    return have is not None or _empty(want)


def _as_cleared(want: Any, have: Any) -> Any:
    return want if _empty(want) and (have is None or _empty(have)) else have


# Fields whose rules span them, so they are checked (and kept or left out) together.
_TOGETHER = (("ownershipScope", "ownershipId"),)


def _groups(values: Mapping[str, Any]) -> list[tuple[str, ...]]:
    joined = {name for group in _TOGETHER for name in group}
    groups = [tuple(n for n in group if n in values) for group in _TOGETHER]
    groups += [(name,) for name in values if name not in joined]
    return [group for group in groups if group]


def _unset(value: Any) -> bool:
    """Nothing worth managing: empty, or a flag at Lofty's default (off)."""
    return _empty(value) or value is False


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _invalid(lead_id: int, values: Mapping[str, Any]) -> str | None:
    """Why `values` could not stand in a lead file, in the validator's own words."""
    errors = check({"leadId": lead_id, **values}).errors
    if not errors:
        return None
    where = ".".join(str(part) for part in errors[0].path)
    return f"{where}: {errors[0].message}" if where else errors[0].message
