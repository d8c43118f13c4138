"""Pydantic's type errors in the tool's own words, for people who edit YAML, not for Python:
what a value must be and what was written instead, how to quote it in YAML, a close field name
for a misspelt one. An email or phone is never echoed (messages reach CI logs).
"""

from __future__ import annotations

import difflib
from typing import Any, get_args

from pydantic import BaseModel

from reconciler.model.findings import Finding
from reconciler.model.lead import Lead
from reconciler.model.limits import SENSITIVE_FIELDS
from reconciler.yamlio import FieldPath


def finding_of(err: Any) -> Finding:
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
