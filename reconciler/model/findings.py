"""What checking a lead yields: a `Finding` (one field's problem or warning, in the tool's own
words) and `Checked` (a document's outcome). Kept apart so that the rooms that produce findings
(`rules`, `messages`) and the one that gathers them (`checking`) can all name them.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.model.lead import Lead
from reconciler.yamlio import FieldPath


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem or warning about one field of a lead, before it is placed in a file."""

    path: FieldPath
    message: str


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of checking one lead document."""

    lead: Lead | None
    errors: list[Finding]
    warnings: list[Finding]
    truncations: list[Finding]
