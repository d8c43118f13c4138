"""Checking one lead document: `check()` runs the type check and the rules across fields on the
raw data, so that every problem of a lead is reported together, once, in the tool's own words,
in the order of the document; on success it collects the warnings and the cuts Lofty will make.
Also `lead_id_of()`, the leadId of a document whose other fields may be wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import Any

from pydantic import ValidationError

from reconciler.model.fields import whole
from reconciler.model.findings import Checked, Finding
from reconciler.model.lead import Lead
from reconciler.model.limits import INT64_MAX
from reconciler.model.messages import finding_of
from reconciler.model.rules import errors_across_fields, truncations_of, warnings_of
from reconciler.yamlio import FieldPath


def check(data: Any, *, may_hold_null: bool = True, settled: Collection[FieldPath] = ()) -> Checked:
    """Validate one document's data; on success also collect its warnings.

    `may_hold_null=False` (the YAML reader saw no null) skips the search for nulls. `settled`
    are paths whose problem was already reported (by the YAML reader): nothing more is said
    about them, what they hold, or what holds them.
    """
    if () in settled:  # the whole document's problem is told already
        return Checked(None, [], [], [])
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        return Checked(
            None, [Finding((), f"a lead must be a mapping of fields, not {kind}")], [], []
        )
    nulls = list(_null_paths(data, ())) if may_hold_null else []
    findings = [Finding(p, _NULL_MESSAGE) for p in nulls] + list(errors_across_fields(data))
    try:
        lead: Lead | None = Lead.model_validate(data)
    except ValidationError as exc:
        lead = None
        # A null already has its message; the type check's would say the same again.
        findings += [f for f in map(finding_of, exc.errors()) if f.path not in nulls]
    errors = [f for f in findings if not any(_related(f.path, p) for p in settled)]
    errors = sorted(dict.fromkeys(errors), key=_order(data))
    if errors or lead is None:
        return Checked(None, errors, [], [])
    return Checked(lead, [], list(warnings_of(lead)), list(truncations_of(lead)))


def _related(path: FieldPath, other: FieldPath) -> bool:
    """Whether one path lies within the other (a problem about one concerns the other)."""
    shorter = min(len(path), len(other))
    return path[:shorter] == other[:shorter]


def lead_id_of(data: Any) -> int | None:
    """The leadId of a document's raw data when it is a valid one (even if the rest is not),
    so that a duplicate leadId can be reported next to the document's other problems."""
    value = whole(data.get("leadId")) if isinstance(data, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= INT64_MAX:
        return value
    return None


def _order(data: dict[str, Any]) -> Callable[[Finding], int]:
    """Sort findings by where their top-level field stands in the document."""
    positions = {name: index for index, name in enumerate(data)}
    end = len(positions)  # a missing field's problem goes after those of fields present
    return lambda finding: positions.get(str(finding.path[0]), end) if finding.path else -1


_NULL_MESSAGE = (
    "null is not a value Lofty accepts; remove the field to stop managing it, "
    "or write '' or [] to clear it"
)


def _null_paths(value: Any, at: FieldPath) -> Iterator[FieldPath]:
    if value is None:
        yield at
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _null_paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _null_paths(item, (*at, index))
