"""The plan for a terminal, Terraform-like: one block per lead, then warnings, then a summary.

```
~ lead 651095960136642 (leads/seller.yaml): update
    ~ firstName: "Bob" -> "Robert"

Plan: 0 to manage, 1 to update, 0 to forget, 120 unchanged.
```
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from reconciler.plan import LeadChange, Plan
from reconciler.render.common import (
    ACTION_NOTE,
    ACTION_SIGN,
    CONFLICT_TITLE,
    DRIFT_TITLE,
    MISSING_TITLE,
    LeadContext,
    RenderOptions,
    Sign,
    ValueFormatter,
    conflict_lines,
    drift_lines,
    lead_lines,
    missing_lines,
    refresh_line,
    shown_value,
    summary_line,
    targets_note,
)
from reconciler.sanitize import clean

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_YELLOW_BOLD = "\x1b[1;33m"
_SIGN_COLOUR: dict[Sign, str] = {
    "+": "\x1b[32m",  # green
    "~": "\x1b[33m",  # yellow
    "-": "\x1b[31m",  # red
    "#": "\x1b[2m",  # dim
}

_Paint = Callable[[str, str], str]  # (colour, text) -> text, coloured only when asked


def render_text(plan: Plan, options: RenderOptions) -> str:
    """The whole plan as terminal text, ending with the summary line and a newline."""
    return "".join(text_chunks(plan, options))


def text_chunks(plan: Plan, options: RenderOptions) -> Iterator[str]:
    """The plan as terminal text, a block at a time: a large plan is written as it is
    rendered instead of being held whole (twice) first."""
    blocks = _blocks(plan, options)
    previous = next(blocks)
    for block in blocks:
        yield "\n".join(previous) + "\n\n"
        previous = block
    yield "\n".join(previous) + "\n"


def _blocks(plan: Plan, options: RenderOptions) -> Iterator[list[str]]:
    def paint(colour: str, text: str) -> str:
        return f"{colour}{text}{_RESET}" if options.color else text

    note = targets_note(plan)
    if note:
        yield [paint(_BOLD, "Note:") + " " + note]
    read = refresh_line(plan)
    if read:
        yield [read]
    value = shown_value(options)
    context = LeadContext(plan)
    for change in plan.changes:
        yield _lead_block(change, paint, value, context)
    for title, lines, colour in (
        (CONFLICT_TITLE, list(conflict_lines(plan, value)), _SIGN_COLOUR["-"]),
        (DRIFT_TITLE, list(drift_lines(plan, value)), _SIGN_COLOUR["~"]),
        (MISSING_TITLE, list(missing_lines(plan)), _SIGN_COLOUR["-"]),
    ):
        if lines:
            yield [paint(_BOLD, f"{title}:"), *(paint(colour, "!") + " " + line for line in lines)]
    if plan.warnings:
        yield [paint(_YELLOW_BOLD, "Warning:") + " " + clean(str(w)) for w in plan.warnings]
    summary = summary_line(plan)
    head, _, rest = summary.partition(" ")
    yield [paint(_BOLD, head) + " " + rest]


def _lead_block(
    change: LeadChange, paint: _Paint, value: ValueFormatter, context: LeadContext
) -> list[str]:
    sign = ACTION_SIGN[change.action]
    header = f"lead {change.lead_id} ({clean(change.file)}): {change.action}"
    if change.action in ACTION_NOTE:
        header += f" ({ACTION_NOTE[change.action]})"
    lines = [paint(_SIGN_COLOUR[sign], sign) + " " + paint(_BOLD, header)]
    for line_sign, text in lead_lines(change, value, **context.of(change.lead_id)):
        if line_sign == "#":
            lines.append("      " + paint(_SIGN_COLOUR["#"], text))
        else:
            lines.append("    " + paint(_SIGN_COLOUR[line_sign], line_sign) + " " + text)
    return lines
