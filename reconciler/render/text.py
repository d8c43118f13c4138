"""The plan for a terminal, Terraform-like: one block per lead, then warnings, then a summary.

```
~ lead 651095960136642 (leads/seller.yaml): update
    ~ firstName: "Bob" -> "Robert"

Plan: 0 to manage, 1 to update, 0 to forget, 120 unchanged.
```
"""

from __future__ import annotations

from collections.abc import Callable

from reconciler.plan import LeadChange, Plan
from reconciler.render.common import (
    ACTION_NOTE,
    ACTION_SIGN,
    RenderOptions,
    Sign,
    ValueFormatter,
    lead_lines,
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

    def paint(colour: str, text: str) -> str:
        return f"{colour}{text}{_RESET}" if options.color else text

    blocks: list[list[str]] = []
    note = targets_note(plan)
    if note:
        blocks.append([paint(_BOLD, "Note:") + " " + note])
    value = shown_value(options)
    blocks.extend(_lead_block(change, paint, value) for change in plan.changes)
    if plan.warnings:
        blocks.append(
            [paint(_YELLOW_BOLD, "Warning:") + " " + clean(str(w)) for w in plan.warnings]
        )
    summary = summary_line(plan)
    head, _, rest = summary.partition(" ")
    blocks.append([paint(_BOLD, head) + " " + rest])
    return "\n\n".join("\n".join(block) for block in blocks) + "\n"


def _lead_block(change: LeadChange, paint: _Paint, value: ValueFormatter) -> list[str]:
    sign = ACTION_SIGN[change.action]
    header = f"lead {change.lead_id} ({clean(change.file)}): {change.action}"
    if change.action in ACTION_NOTE:
        header += f" ({ACTION_NOTE[change.action]})"
    lines = [paint(_SIGN_COLOUR[sign], sign) + " " + paint(_BOLD, header)]
    for line_sign, text in lead_lines(change, value):
        if line_sign == "#":
            lines.append("      " + paint(_SIGN_COLOUR["#"], text))
        else:
            lines.append("    " + paint(_SIGN_COLOUR[line_sign], line_sign) + " " + text)
    return lines
