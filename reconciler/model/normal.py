"""A lead's values as Lofty will store them (`effective`), and in the form in which they are
compared and kept in the state (`comparable`): cuts in UTF-16 units, one spelling of a
birthday, set-like lists without order or duplicates, keyed lists sorted by their key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reconciler.model.lead import Lead
from reconciler.model.limits import KEYED_PATHS, SET_LIKE_PATHS, TRUNCATED_FIELDS, utf16_cut


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
