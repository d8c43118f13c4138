"""The plan as a pull-request comment: summary, warnings, one collapsible section per lead.

Comments on pull requests persist and are often public, so emails and phone numbers are masked
unless the caller asks otherwise. A comment has a size limit (GitHub: 65,536 characters): lead
sections are added while they fit and the comment says how many were left out. Every value from
a lead file is escaped so that no value can close a code block or a `<details>` element early.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

from reconciler.plan import LeadChange, Plan
from reconciler.render.common import (
    ACTION_NOTE,
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

MARKER = "<!-- reconciler:plan -->"  # the plan workflow finds its sticky comment by this line
HEADING = "### Lead plan"
MAX_VALUE_CHARS = 300  # a reviewer reads values here; `reconciler plan` shows them whole
_DIFF_PREFIX: dict[Sign, str] = {"+": "+", "-": "-", "~": "!", "#": "#"}  # as GitHub colours them
_WARNING_SHARE = 4  # warnings may use at most 1/4 of the budget: the lead sections matter more
_BACKTICKS = re.compile(r"`+")


def render_markdown(plan: Plan, options: RenderOptions) -> str:
    """The plan as GitHub-flavoured markdown, at most `options.max_chars` characters."""
    budget = _Budget(options.max_chars)
    head = [MARKER, HEADING, "", f"**{summary_line(plan)}**", ""]
    note = targets_note(plan)
    if note:
        head += [f"> **Note:** {html.escape(note)}", ""]
    read = refresh_line(plan)
    if read:
        head += [f"_{html.escape(read)}_", ""]
    left_out = _left_out_line(len(plan.changes))
    budget.reserve("\n".join(head) + "\n" + left_out)
    value = _short_value(options)
    for title, lines in (
        (CONFLICT_TITLE, conflict_lines(plan, value)),
        (DRIFT_TITLE, drift_lines(plan, value)),
        (MISSING_TITLE, missing_lines(plan)),
    ):
        _add_list(title, list(lines), budget)
    _add_warnings(plan, budget)
    context = LeadContext(plan)
    shown = 0
    for change in plan.changes:
        if not budget.take(_lead_section(change, value, context)):
            break
        shown += 1
    tail = _left_out_line(len(plan.changes) - shown) if shown < len(plan.changes) else ""
    return ("\n".join(head) + "\n" + "".join(budget.parts) + tail).rstrip("\n") + "\n"


class _Budget:
    """Chunks of the comment added while they fit in what is left of the size limit."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.parts: list[str] = []

    def reserve(self, text: str) -> None:
        self.left -= _size(text)
        if self.left < 0:
            raise ValueError("max_chars is too small for even the plan's heading and summary")

    def take(self, text: str) -> bool:
        """Add `text` if it fits; say whether it did."""
        size = _size(text)
        if size > self.left:
            return False
        self.left -= size
        self.parts.append(text)
        return True


def _size(text: str) -> int:
    # GitHub may count in UTF-16 code units, where a character beyond U+FFFF counts twice;
    # counting that way keeps the comment under the limit however it is measured.
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _add_warnings(plan: Plan, budget: _Budget) -> None:
    if not plan.warnings:
        return
    allowance = budget.left // _WARNING_SHARE
    chunk = ["**Warnings**\n\n"]
    used = _size(chunk[0]) + _size(_more_warnings(len(plan.warnings))) + 1
    for index, warning in enumerate(plan.warnings):
        line = f"- {_code_span(clean(str(warning)))}\n"
        used += _size(line)
        if used > allowance:
            chunk.append(_more_warnings(len(plan.warnings) - index))
            break
        chunk.append(line)
    budget.take("".join(chunk) + "\n")


def _more_warnings(count: int) -> str:
    return _more(count, "warning")


def _more(count: int, noun: str) -> str:
    return f"- … {count:,} more {noun}{'s' if count != 1 else ''} not shown\n"


def _short_value(options: RenderOptions) -> ValueFormatter:
    shown = shown_value(options)

    def value(path: str, raw: Any) -> str:
        text = shown(path, raw)
        if len(text) > MAX_VALUE_CHARS:
            text = f"{text[:MAX_VALUE_CHARS]}… ({len(text) - MAX_VALUE_CHARS:,} more characters)"
        return text

    return value


def _add_list(title: str, lines: list[str], budget: _Budget) -> None:
    """A section of one-line items (conflicts, drift, missing leads), as many as fit in a
    quarter of what is left, then a line saying how many more there are."""
    if not lines:
        return
    allowance = budget.left // _WARNING_SHARE
    chunk = [f"### {title.split(':')[0]}\n\n", f"{html.escape(title)}.\n\n"]
    used = sum(_size(part) for part in chunk) + _size(_more(len(lines), "item")) + 1
    for index, line in enumerate(lines):
        item = f"- {_code_span(line)}\n"
        used += _size(item)
        if used > allowance:
            chunk.append(_more(len(lines) - index, "item"))
            break
        chunk.append(item)
    budget.take("".join(chunk) + "\n")


def _lead_section(change: LeadChange, value: ValueFormatter, context: LeadContext) -> str:
    lines = [f"# {ACTION_NOTE[change.action]}"] if change.action in ACTION_NOTE else []
    explained = lead_lines(change, value, **context.of(change.lead_id))
    lines += [f"{_DIFF_PREFIX[sign]} {text}" for sign, text in explained]
    fence = _fence(lines)
    count = len(change.fields)
    what = (
        f"{count} field{'s' if count != 1 else ''}"
        if change.action != "forget"
        else "leaves the state"
    )
    summary = html.escape(f"{change.action} lead {change.lead_id} · ") + (
        f"<code>{html.escape(clean(change.file))}</code>{html.escape(f' · {what}')}"
    )
    return "".join(
        _lines(
            f"<details><summary>{summary}</summary>",
            "",
            f"{fence}diff",
            *lines,
            fence,
            "",
            "</details>",
            "",
        )
    )


def _lines(*lines: str) -> Iterator[str]:
    return (line + "\n" for line in lines)


def _fence(lines: list[str]) -> str:
    """A code fence longer than any run of backticks in `lines`, so none can close it."""
    longest = max((len(run) for line in lines for run in _BACKTICKS.findall(line)), default=0)
    return "`" * max(3, longest + 1)


def _code_span(text: str) -> str:
    """`text` as inline code that no backtick, HTML or markdown in it can break out of."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if longest else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _left_out_line(count: int) -> str:
    return (
        f"… {count:,} more changed lead{'s' if count != 1 else ''} not shown (comment limit). "
        "Run `reconciler plan` locally to see them all.\n"
    )
