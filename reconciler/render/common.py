"""What every plan renderer shares: the options, the words for each action, the field lines.

The text and markdown renderers say the same things in two dialects, so the wording and the
order of a lead's lines are decided here once; each renderer only decides how a line looks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from reconciler.plan import FieldChange, LeadChange, Plan
from reconciler.sanitize import clean, mask_value


@dataclass(frozen=True)
class RenderOptions:
    """How to render a plan; the CLI fills it from its flags and the terminal."""

    color: bool = False  # ANSI colour: the caller decides (a TTY and no NO_COLOR)
    show_sensitive: bool = False  # every format masks emails and phones unless True
    max_chars: int = 65_536  # markdown budget: GitHub's comment limit


Renderer = Callable[[Plan, RenderOptions], str]

# A rendered line's sign: what it does to the lead in Lofty or in the state.
Sign = Literal["+", "~", "-", "#"]

ACTION_SIGN: dict[str, Sign] = {"manage": "+", "update": "~", "forget": "-"}
ACTION_NOTE: dict[str, str] = {
    "manage": "first apply: every field is sent",
    "forget": (
        "removed from the lead files: the lead leaves the state; "
        "nothing is called or deleted in Lofty"
    ),
}
NO_CALL_NOTE = "no call is made for this lead: only the state changes"
UNMANAGE_NOTE = "no longer managed (nothing is sent; the state forgets it)"

# Formats a field's value for display, given the field's path (so markdown can mask by path).
ValueFormatter = Callable[[str, Any], str]

_TARGETS_SHOWN = 10  # a long --target list would crowd out the plan itself
_TOP_NAME = re.compile(r"[^.\[]*")


def top_name(path: str) -> str:
    """`inquiry.locations[0].city` -> `inquiry`: the top-level field that is sent."""
    match = _TOP_NAME.match(path)
    return match.group(0) if match else path


def shown_value(options: RenderOptions) -> ValueFormatter:
    """How a field's value is shown: one line of JSON, masked unless the user asked otherwise."""
    if options.show_sensitive:
        return lambda _path, value: json_value(value)
    return lambda path, value: json_value(mask_value(path, value))


def json_value(value: Any) -> str:
    """A value as one line of JSON (strings quoted), safe to show in a terminal or a comment."""
    if isinstance(value, str):  # most values: skip the encoder's generic machinery
        return clean(_encode_string(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return clean(_ENCODER.encode(value))


_ENCODER = json.JSONEncoder(ensure_ascii=False)
_encode_string: Callable[[str], str] = json.encoder.encode_basestring


def summary_line(plan: Plan) -> str:
    """`Plan: 1 to manage, 2 to update, 0 to forget, 120 unchanged.` or the no-changes line."""
    if not plan.has_changes:
        noun = "lead matches" if plan.unchanged == 1 else "leads match"
        return f"No changes. {plan.unchanged} {noun} the last-applied state."
    counts = plan.summary
    return (
        f"Plan: {counts['manage']} to manage, {counts['update']} to update, "
        f"{counts['forget']} to forget, {counts['unchanged']} unchanged."
    )


def targets_note(plan: Plan) -> str | None:
    """Why other leads are missing from a plan made with `--target`, if it was."""
    if not plan.targets:
        return None
    shown = ", ".join(plan.targets[:_TARGETS_SHOWN])
    if len(plan.targets) > _TARGETS_SHOWN:
        shown += f" and {len(plan.targets) - _TARGETS_SHOWN} more"
    return (
        f"only the targeted leads were planned (--target {clean(shown)}); no others were compared."
    )


def lead_lines(change: LeadChange, value: ValueFormatter) -> Iterator[tuple[Sign, str]]:
    """The lines explaining one lead, below its header: (sign, text) pairs.

    Lines of one top-level field stay together; when any of them is nested, a note after them
    says the whole top-level value is sent, since that is what Lofty receives.
    """
    groups: dict[str, list[FieldChange]] = {}
    for field in change.fields:
        groups.setdefault(top_name(field.path), []).append(field)
    for name, fields in groups.items():
        for field in fields:
            yield field_line(field, value)
        nested = any(f.path != name for f in fields)
        if nested and change.body is not None and name in change.body:
            yield "#", f"({clean(name)} is sent whole)"
    if change.action == "update" and not change.needs_call:
        yield "#", f"({NO_CALL_NOTE})"


def field_line(field: FieldChange, value: ValueFormatter) -> tuple[Sign, str]:
    """One field change as (sign, text): `~ path: before -> after` without the sign."""
    path = clean(field.path)
    if field.kind == "add":
        return "+", f"{path}: {value(field.path, field.after)}"
    if field.kind == "change":
        return "~", f"{path}: {value(field.path, field.before)} -> {value(field.path, field.after)}"
    if field.kind == "remove":
        return "-", f"{path}: {value(field.path, field.before)}"
    return "-", f"{path}: {UNMANAGE_NOTE}"
