"""What a plan is made of: per-lead changes, drift, conflicts, and the plan itself.

Values in these objects are comparable values (`model.comparable`), the form the state keeps,
except `LeadChange.body`, the exact PUT body. `fields` always compares the file with the
last-applied state (two-way, offline); what live Lofty adds is said beside it: the paths
already so in Lofty (`converged`), the drift, the conflicts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

from reconciler.loader import LeadWarning
from reconciler.ownership import Policy
from reconciler.state import LeadRecord

Action = Literal["manage", "update", "forget"]
ChangeKind = Literal["add", "change", "remove", "unmanage"]
DriftAction = Literal["kept", "reverted"]
ConflictAction = Literal["not sent", "sent (--force-conflicts)"]
ReadHow = Literal["list", "get"]

# A value absent on one side (a field not in the state, a key Lofty does not hold).
ABSENT: Any = None


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field-level difference. `before`/`after` are None where the value is absent."""

    path: str
    kind: ChangeKind
    before: Any = None
    after: Any = None


class AddedFields(Sequence[FieldChange]):
    """The field changes of a lead coming under management: every field it records, added.

    They repeat the record word for word, so they are derived from it when asked (in the
    file's order of fields), rather than held: a cold plan of many leads would otherwise hold
    every value once more.
    """

    __slots__ = ("_json", "_names")

    def __init__(self, applied_json: str, names: tuple[str, ...]) -> None:
        self._json = applied_json
        self._names = names

    def _items(self) -> tuple[FieldChange, ...]:
        values = json.loads(self._json)
        return tuple(FieldChange(name, "add", None, values[name]) for name in self._names)

    def __len__(self) -> int:
        return len(self._names)

    @overload
    def __getitem__(self, index: int) -> FieldChange: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[FieldChange]: ...

    def __getitem__(self, index: int | slice) -> FieldChange | Sequence[FieldChange]:
        return self._items()[index]

    def __iter__(self) -> Iterator[FieldChange]:
        return iter(self._items())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return self._items() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._items())

    def __repr__(self) -> str:
        return repr(self._items())


@dataclass(frozen=True, slots=True)
class Drift:
    """A managed field edited in Lofty since the last apply while the file kept it (D = B,
    L != B): kept (policy `shared`, reported) or reverted by the next apply (`enforce`)."""

    lead_id: int
    file: str
    field: str
    desired: Any
    last_applied: Any
    live: Any
    policy: Policy
    action: DriftAction


@dataclass(frozen=True, slots=True)
class Conflict:
    """A field the PUT would overwrite though it was edited in Lofty since the last apply and
    the file changed it too, or would send along with another (D != B or sent whole, L != B,
    L != D). The lead is not sent unless `--force-conflicts`."""

    lead_id: int
    file: str
    field: str
    desired: Any
    last_applied: Any
    live: Any
    policy: Policy
    action: ConflictAction


@dataclass(frozen=True, slots=True)
class Missing:
    """A lead Lofty answered 404 for when it was read: reported, never PUT."""

    lead_id: int
    file: str
    managed: bool  # already in the state (deleted in Lofty?) or coming under management


@dataclass(frozen=True, slots=True)
class RefreshInfo:
    """How live leads were read: by paging the list or one GET each, and at what cost."""

    how: ReadHow
    calls: int
    leads: int


@dataclass(frozen=True, slots=True)
class LeadChange:
    """What apply will do for one lead.

    `body` is the exact PUT body (empty when only the state changes, None for `forget`);
    `record` is what the state holds for the lead once it is applied (None for `forget`).
    `expect` holds, for every field the body would overwrite, the value Lofty held when the
    plan was made (live if refreshed, else last-applied): apply re-reads a lead of a saved plan
    before its PUT and a field that no longer holds it is a conflict. `converged` lists the
    paths already so in Lofty (recorded, not sent); `conflicts` the fields that hold the lead
    back.
    """

    lead_id: int
    file: str
    action: Action
    fields: Sequence[FieldChange]
    body: dict[str, Any] | None
    record: LeadRecord | None
    expect: dict[str, Any] = field(default_factory=dict)
    converged: tuple[str, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    refreshed: bool = False  # planned against live values read from Lofty

    @property
    def needs_call(self) -> bool:
        # A lead coming under management offline is always sent, even with nothing but its
        # leadId: the PUT is what proves the lead exists in Lofty (404 otherwise). Refreshed,
        # its GET has proved that already.
        if self.action == "manage" and not self.refreshed:
            return True
        return bool(self.body)


@dataclass(frozen=True)
class Plan:
    """A whole plan, tied to the state (lineage and serial) it was made against."""

    lineage: str | None
    serial: int
    state_name: str  # the state it was planned against, as shown to the user
    changes: tuple[LeadChange, ...]
    warnings: tuple[LeadWarning, ...]
    unchanged: int
    refresh: tuple[LeadRecord, ...] = ()
    targets: tuple[str, ...] = ()
    drift: tuple[Drift, ...] = ()
    missing: tuple[Missing, ...] = ()
    refreshed: RefreshInfo | None = None

    @property
    def summary(self) -> dict[str, int]:
        counts = {"manage": 0, "update": 0, "forget": 0}
        for change in self.changes:
            counts[change.action] += 1
        return {**counts, "unchanged": self.unchanged}

    @property
    def conflicts(self) -> tuple[Conflict, ...]:
        return tuple(c for change in self.changes for c in change.conflicts)

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    @property
    def needs_attention(self) -> bool:
        """Changes, drift, conflicts or leads missing in Lofty: what `--detailed-exitcode`
        reports with 2."""
        return bool(self.changes or self.drift or self.missing)
