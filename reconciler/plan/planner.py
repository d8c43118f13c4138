"""The planner: lead files vs the last-applied state (and, refreshed, live Lofty) -> the exact
PUT bodies apply will send.

It works in two steps so that Lofty is read only for the leads that need it: `Planner(...)`
loads the files (a file whose hash says it is applied is not even parsed) and knows which
leads are managed (`lead_ids`); `plan(live=...)` then decides each lead, two-way against the
state, or three-way with the live leads read meanwhile (`plan.threeway`). A parsed lead whose
effective values equal the applied ones, and that Lofty still holds as applied, costs nothing
more; only leads that really differ are explained field by field.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import InvalidLeadFilesError, Problem, UnknownTargetError
from reconciler.live import live_view
from reconciler.loader import (
    KnownUnchanged,
    LeadDoc,
    LeadWarning,
    LoadResult,
    format_path,
    line_of,
    load_tree,
)
from reconciler.model import PROPERTY_ADDRESS_FIELDS, Finding, comparable, effective
from reconciler.ownership import Ownership
from reconciler.plan.diff import explain
from reconciler.plan.result import (
    Drift,
    FieldChange,
    LeadChange,
    Missing,
    Plan,
    RefreshInfo,
)
from reconciler.plan.threeway import decide
from reconciler.state import LeadRecord, Snapshot, applied_files, canonical_json

# What reading Lofty found for a lead: its raw `lead` object, or None when Lofty answered 404.
LiveLeads = Mapping[int, Mapping[str, Any] | None]


@dataclass
class _Targets:
    ids: set[int] = field(default_factory=set)
    files: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.ids or self.files)

    def wants(self, lead_id: int, file: str) -> bool:
        return not self or lead_id in self.ids or file in self.files


def parse_targets(targets: Sequence[str], root: Path) -> _Targets:
    """`--target` values: a number is a leadId, anything else a lead file (under --dir or not)."""
    parsed = _Targets()
    for target in targets:
        if target.isdigit():
            parsed.ids.add(int(target))
            continue
        path = Path(target)
        try:
            parsed.files.add(path.resolve().relative_to(root.resolve()).as_posix())
        except ValueError:
            parsed.files.add(path.as_posix())
    return parsed


@dataclass(frozen=True, slots=True)
class _Lead:
    """One lead to decide: parsed from its file, or known applied at its file's hash (then
    D = B and `doc` is None)."""

    lead_id: int
    file: str  # as shown to the user
    source: str  # relative to the leads folder
    digest: str
    file_leads: tuple[int, ...]
    doc: LeadDoc | None


class Planner:
    """Plans the leads below `root` against `snapshot`; raises InvalidLeadFilesError if any lead
    file is invalid, or under `strict` if the plan has a warning of its own."""

    def __init__(
        self,
        root: Path,
        snapshot: Snapshot,
        *,
        state_name: str,
        strict: bool = False,
        targets: Sequence[str] = (),
        ownership: Ownership | None = None,
    ) -> None:
        self._snapshot = snapshot
        self._state_name = state_name
        self._strict = strict
        self._targets = tuple(targets)
        self._ownership = ownership or Ownership()
        wanted = parse_targets(targets, root)
        # --strict must see every cut, so it cannot skip files known to be applied.
        skip = None if strict else applied_files(snapshot.leads)
        self.load = load_tree(root, strict=strict, known_unchanged=skip)
        if self.load.problems:
            raise InvalidLeadFilesError(self.load.problems)
        _check_targets(wanted, self.load, snapshot)
        self._leads = list(self._wanted_leads(wanted))
        present = {i for f in self.load.files for i in f.lead_ids}
        self._forget = [
            LeadChange(lead_id, self.load.display(old.file), "forget", (), None, None)
            for lead_id, old in snapshot.leads.items()
            if lead_id not in present and wanted.wants(lead_id, old.file)
        ]

    @property
    def lead_ids(self) -> list[int]:
        """The leads this plan decides (forgotten ones aside): those a refresh reads."""
        return [lead.lead_id for lead in self._leads]

    def managed_fields(self) -> set[str]:
        """The top-level fields these leads manage, parsed or applied: what a refresh reads."""
        names: set[str] = set()
        for lead in self._leads:
            if lead.doc is not None:
                names.update(lead.doc.lead.model_fields_set - {"leadId"})
            record = self._snapshot.leads.get(lead.lead_id)
            if record is not None:
                names.update(record.applied)
        return names

    def plan(
        self,
        *,
        live: LiveLeads | None = None,
        refreshed: RefreshInfo | None = None,
        force: bool = False,
    ) -> Plan:
        """Decide every lead; with `live` (raw Lofty leads by id, None for a 404) three-way."""
        changes: list[LeadChange] = []
        refresh: list[LeadRecord] = []
        notes: list[LeadWarning] = []
        drift: list[Drift] = []
        missing: list[Missing] = []
        unchanged = 0
        for lead in self._leads:
            old = self._snapshot.leads.get(lead.lead_id)
            raw = live.get(lead.lead_id, None) if live is not None else None
            if live is not None and raw is None:
                missing.append(Missing(lead.lead_id, lead.file, managed=old is not None))
                continue
            outcome = self._plan_lead(lead, old, raw, force)
            change, record, findings, drifted = outcome
            notes.extend(findings)
            drift.extend(drifted)
            if change is not None:
                changes.append(change)
            else:
                unchanged += 1
                if record is not None:
                    refresh.append(record)
        if self._strict and notes:
            raise InvalidLeadFilesError(
                [Problem(n.file, n.line, n.field, f"{n.message} (--strict)") for n in notes]
            )
        changes.extend(self._forget)
        changes.sort(key=lambda c: (c.file, c.lead_id))
        planned = set(self.lead_ids)
        warnings = [w for w in self.load.warnings if w.lead_id in planned] + notes
        warnings.sort(key=lambda w: (w.file, w.line))
        drift.sort(key=lambda d: (d.file, d.lead_id, d.field))
        return Plan(
            lineage=self._snapshot.lineage,
            serial=self._snapshot.serial,
            state_name=self._state_name,
            changes=tuple(changes),
            warnings=tuple(warnings),
            unchanged=unchanged,
            refresh=tuple(refresh),
            targets=self._targets,
            drift=tuple(drift),
            missing=tuple(sorted(missing, key=lambda m: (m.file, m.lead_id))),
            refreshed=refreshed,
        )

    def _wanted_leads(self, wanted: _Targets) -> Iterator[_Lead]:
        file_of = {f.path: f for f in self.load.files}
        for source in self.load.files:
            if source.parsed:
                continue
            for lead_id in source.lead_ids:
                if wanted.wants(lead_id, source.path):
                    shown = self.load.display(source.path)
                    yield _Lead(lead_id, shown, source.path, source.digest, source.lead_ids, None)
        for doc in self.load.leads:
            if wanted.wants(doc.lead_id, doc.source):
                source = file_of[doc.source]
                yield _Lead(doc.lead_id, doc.file, doc.source, source.digest, source.lead_ids, doc)

    def _plan_lead(
        self,
        lead: _Lead,
        old: LeadRecord | None,
        raw: Mapping[str, Any] | None,
        force: bool,
    ) -> tuple[LeadChange | None, LeadRecord | None, list[LeadWarning], list[Drift]]:
        """The change for one lead (None when unchanged, then maybe a record whose file or
        hash moved), the planner's warnings, and the drift found in Lofty."""
        if lead.doc is None and raw is None:  # applied at this hash, nothing read: unchanged
            return None, None, [], []
        if lead.doc is None:  # applied at this very file hash: D = B
            assert old is not None
            desired: dict[str, Any] = old.applied
            compared = desired
            applied_json = old.applied_json
        else:
            desired = effective(lead.doc.lead)
            compared = comparable(desired)
            applied_json = canonical_json(compared)
        record = LeadRecord(lead.lead_id, lead.source, lead.digest, lead.file_leads, applied_json)
        same_source = old is not None and (old.file, old.source_hash, old.file_leads) == (
            lead.source,
            lead.digest,
            lead.file_leads,
        )
        applied = old.applied if old is not None else None
        unchanged_record = (
            None
            if same_source and old is not None and (old.applied_json == applied_json)
            else record
        )
        if raw is None and old is not None and old.applied_json == applied_json:
            return None, unchanged_record, [], []
        fields = field_changes(applied, compared) if applied is not None else _added(compared)
        live = live_view(raw, compared) if raw is not None else None
        decision = decide(
            lead_id=lead.lead_id,
            file=lead.file,
            desired=desired,
            compared=compared,
            applied=applied,
            live=live,
            ownership=self._ownership,
            force=force,
        )
        if old is not None and not fields and not decision.differs:
            # Equal as Lofty sees them (keyed items reordered, say): at most the state moves.
            return None, unchanged_record, [], decision.drift
        findings = []
        if lead.doc is not None and applied is not None:
            found = _property_moves(
                applied.get("property"), compared.get("property"), decision.body
            )
            findings = [self._placed(lead.doc, finding) for finding in found]
        change = LeadChange(
            lead.lead_id,
            lead.file,
            "manage" if old is None else "update",
            tuple(fields),
            decision.body,
            record,
            expect=decision.expect,
            converged=tuple(decision.converged),
            conflicts=tuple(decision.conflicts),
            refreshed=live is not None,
        )
        return change, None, findings, decision.drift

    def _placed(self, doc: LeadDoc, finding: Finding) -> LeadWarning:
        """A planner's warning about a field of `doc`, with its file and line like the
        loader's."""
        line = line_of(self.load, doc, finding.path)
        return LeadWarning(doc.file, line, doc.lead_id, format_path(finding.path), finding.message)


def make_plan(
    root: Path,
    snapshot: Snapshot,
    *,
    state_name: str,
    strict: bool = False,
    targets: Sequence[str] = (),
    ownership: Ownership | None = None,
) -> tuple[Plan, LoadResult]:
    """An offline plan (no Lofty read) of the leads below `root` against `snapshot`."""
    planner = Planner(
        root, snapshot, state_name=state_name, strict=strict, targets=targets, ownership=ownership
    )
    return planner.plan(), planner.load


def _added(compared: Mapping[str, Any]) -> list[FieldChange]:
    return [FieldChange(name, "add", None, value) for name, value in compared.items()]


def field_changes(applied: Mapping[str, Any], compared: Mapping[str, Any]) -> list[FieldChange]:
    """The two-way field changes from the last-applied values to the file's."""
    changed: list[FieldChange] = []
    for name, value in compared.items():
        if name not in applied:
            changed.append(FieldChange(name, "add", None, value))
        elif applied[name] != value:
            changed.extend(explain(name, applied[name], value))
    changed.extend(
        FieldChange(name, "unmanage", applied[name], None)
        for name in applied
        if name not in compared
    )
    return changed


def _check_targets(wanted: _Targets, load: LoadResult, snapshot: Snapshot) -> None:
    """A --target that matches nothing is a typo; applying nothing quietly would hide it."""
    ids = {i for f in load.files for i in f.lead_ids} | set(snapshot.leads)
    files = {f.path for f in load.files} | {r.file for r in snapshot.leads.values()}
    unknown = sorted(str(i) for i in wanted.ids - ids) + sorted(wanted.files - files)
    if unknown:
        raise UnknownTargetError(
            f"--target {', '.join(unknown)}: no such lead or lead file under {load.root} "
            "or in the state"
        )


def _unchanged_files(leads: Mapping[int, LeadRecord]) -> KnownUnchanged:
    """A `known_unchanged` check: skip a file when every lead it held is applied at its hash."""
    by_file: dict[str, list[LeadRecord]] = defaultdict(list)
    for record in leads.values():
        by_file[record.file].append(record)

    def known(rel: str, digest: str) -> Sequence[int] | None:
        records = by_file.get(rel)
        if not records:
            return None
        expected = records[0].file_leads
        if {r.lead_id for r in records} != set(expected):
            return None
        if all(r.source_hash == digest and r.file_leads == expected for r in records):
            return expected
        return None

    return known


def _property_moves(before: Any, after: Any, body: Mapping[str, Any]) -> Iterator[Finding]:
    """A warning when a managed property without `id` gets a new address: Lofty finds the
    property by its address, so an address it does not know creates another property record."""
    if "property" not in body or not isinstance(before, dict) or not isinstance(after, dict):
        return
    if "id" in after:
        return
    moved = [k for k in PROPERTY_ADDRESS_FIELDS if k in after and after[k] != before.get(k)]
    if moved:
        yield Finding(
            ("property", moved[0]),
            "changes the address of a property that has no id: Lofty finds a lead's property "
            "by its address, and an address it does not know creates another property record "
            "(the applied one stays as it was); add property.id, the property's id in Lofty, "
            "to change that record in place",
        )
