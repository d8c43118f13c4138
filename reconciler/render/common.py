"""What every plan renderer shares: the options, the words for each action, the field lines.

The text and markdown renderers say the same things in two dialects, so the wording and the
order of a lead's lines are decided here once; each renderer only decides how a line looks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from reconciler.live import LEAD_TYPE_NAMES
from reconciler.plan import Drift, FieldChange, LeadChange, Plan
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


@lru_cache(maxsize=4096)  # a large plan names the same few dozen paths again and again
def top_name(path: str) -> str:
    """`inquiry.locations[0].city` -> `inquiry`: the top-level field that is sent."""
    match = _TOP_NAME.match(path)
    return match.group(0) if match else path


clean_path = lru_cache(maxsize=4096)(clean)  # field paths repeat; values mostly do not


def shown_value(options: RenderOptions) -> ValueFormatter:
    """How a field's value is shown: one line of JSON, masked unless the user asked otherwise,
    lead types by name (`["Buyer", "Investor"]`, as a file may write them)."""

    def show(path: str, value: Any) -> str:
        if top_name(path) == "leadTypes":
            value = _type_names(value)
        return json_value(value if options.show_sensitive else mask_value(path, value))

    return show


def _type_names(value: Any) -> Any:
    if isinstance(value, list):
        return [LEAD_TYPE_NAMES.get(item, item) for item in value]
    return LEAD_TYPE_NAMES.get(value, value) if isinstance(value, int) else value


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
    """`Plan: 1 to manage, 2 to update, 0 to forget, 120 unchanged.` or the no-changes line,
    then what a refresh found besides (drift, conflicts, leads missing in Lofty)."""
    if not plan.has_changes:
        noun = "lead matches" if plan.unchanged == 1 else "leads match"
        line = f"No changes. {plan.unchanged} {noun} the last-applied state."
    else:
        counts = plan.summary
        line = (
            f"Plan: {counts['manage']} to manage, {counts['update']} to update, "
            f"{counts['forget']} to forget, {counts['unchanged']} unchanged."
        )
    found = []
    if plan.drift:
        kept = sum(d.action == "kept" for d in plan.drift)
        found.append(f"{_count(len(plan.drift), 'drifted field')} ({kept} kept)")
    if plan.conflicts:
        found.append(_count(len(plan.conflicts), "conflict"))
    if plan.missing:
        found.append(_count(len(plan.missing), "lead") + " missing in Lofty")
    return line + (f" Found in Lofty: {', '.join(found)}." if found else "")


def _count(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'s' * (count != 1)}"


def refresh_line(plan: Plan) -> str | None:
    """How Lofty was read, for a refreshed plan."""
    info = plan.refreshed
    if info is None:
        return None
    if info.how == "list":
        how = f"paging the lead list ({_count(info.calls, 'call')}, fewer than one GET per lead)"
    else:
        how = f"one GET per lead ({_count(info.calls, 'call')})"
    return f"Read {_count(info.leads, 'managed lead')} from Lofty by {how}."


def drift_lines(plan: Plan, value: ValueFormatter) -> Iterator[str]:
    """One line per drifted field: what the files hold, what Lofty holds, what happens."""
    for item in plan.drift:
        what = (
            "reverted by the next apply (policy enforce)"
            if item.action == "reverted"
            else "kept (accept it with `plan --refresh --write-drift`, or set the field's policy "
            "to enforce)"
        )
        yield (
            f"lead {item.lead_id} ({clean(item.file)}): {clean(item.field)}: files "
            f"{value(item.field, item.desired)}, Lofty {value(item.field, item.live)}; {what}"
        )


def conflict_lines(plan: Plan, value: ValueFormatter) -> Iterator[str]:
    """One line per conflicting field with the three values; the lead is held back."""
    for item in plan.conflicts:
        yield (
            f"lead {item.lead_id} ({clean(item.file)}): {clean(item.field)}: desired "
            f"{value(item.field, item.desired)}, last applied "
            f"{value(item.field, item.last_applied)}, live {value(item.field, item.live)}; "
            f"{item.action}"
        )


def missing_lines(plan: Plan) -> Iterator[str]:
    """One line per lead Lofty answered 404 for."""
    for item in plan.missing:
        why = "deleted in Lofty?" if item.managed else "it must exist in Lofty before it is managed"
        yield f"lead {item.lead_id} ({clean(item.file)}): Lofty has no such lead; not sent ({why})"


DRIFT_TITLE = "Drift: edited in Lofty since the last apply"
CONFLICT_TITLE = "Conflicts: changed in the files and in Lofty; these leads are not sent"
MISSING_TITLE = "Missing in Lofty"
CONFLICT_NOTE = "held back: a field conflicts with an edit made in Lofty (see Conflicts)"
CONVERGED_NOTE = "already so in Lofty, so not sent"


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


class LeadContext:
    """What the plan says about each lead beyond its changes: its drift and its cut values."""

    def __init__(self, plan: Plan) -> None:
        self._drift: dict[int, list[Drift]] = {}
        for item in plan.drift:
            self._drift.setdefault(item.lead_id, []).append(item)
        self._cut: dict[int | None, list[str]] = {}
        for warning in plan.warnings:
            if warning.cut:
                self._cut.setdefault(warning.lead_id, []).append(warning.field)

    def of(self, lead_id: int) -> dict[str, Any]:
        """Keyword arguments of `lead_lines` for this lead."""
        return {"drift": self._drift.get(lead_id, ()), "cut": self._cut.get(lead_id, ())}


def lead_lines(
    change: LeadChange,
    value: ValueFormatter,
    *,
    drift: Iterable[Drift] = (),
    cut: Iterable[str] = (),
) -> Iterator[tuple[Sign, str]]:
    """The lines explaining one lead, below its header: (sign, text) pairs.

    Lines of one top-level field stay together; when any of them is nested, a note after them
    says the whole top-level value is sent, since that is what Lofty receives. A value Lofty
    will cut is marked where it shows (`cut`: the lead's cut field paths); drift that apply
    reverts (`drift`) shows as the change it sends.
    """
    cut_names = {top_name(path) for path in cut}
    groups: dict[str, list[FieldChange]] = {}
    for field in change.fields:
        groups.setdefault(top_name(field.path), []).append(field)
    for name, fields in groups.items():
        for field in fields:
            sign, text = field_line(field, value)
            if name in cut_names and field.kind in ("add", "change"):
                text += " (cut to Lofty's length limit: see the warning)"
            yield sign, text
        nested = any(f.path != name for f in fields)
        if nested and change.body is not None and name in change.body:
            yield "#", f"({clean(name)} is sent whole)"
    for item in drift:
        if item.action == "reverted":
            yield (
                "~",
                (
                    f"{clean(item.field)}: {value(item.field, item.live)} -> "
                    f"{value(item.field, item.desired)} (edited in Lofty; reverted: policy enforce)"
                ),
            )
    if change.converged:
        yield "#", f"({', '.join(map(clean, change.converged))}: {CONVERGED_NOTE})"
    if change.conflicts:
        yield "#", f"({CONFLICT_NOTE})"
    elif change.action != "forget" and not change.needs_call:
        yield "#", f"({NO_CALL_NOTE})"


def field_line(field: FieldChange, value: ValueFormatter) -> tuple[Sign, str]:
    """One field change as (sign, text): `~ path: before -> after` without the sign."""
    path = clean_path(field.path)
    if field.kind == "add":
        return "+", f"{path}: {value(field.path, field.after)}"
    if field.kind == "change":
        return "~", f"{path}: {value(field.path, field.before)} -> {value(field.path, field.after)}"
    if field.kind == "remove":
        return "-", f"{path}: {value(field.path, field.before)}"
    return "-", f"{path}: {UNMANAGE_NOTE}"
