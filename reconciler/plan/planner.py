"""The planner: lead files vs the last-applied state (and, refreshed, live Lofty) -> the exact
PUT bodies apply will send.

It works in two steps so that Lofty is read only for the leads that need it: `Planner(...)`
loads the files (a file whose hash says it is applied is not even parsed) and knows which
leads are managed (`lead_ids`); `plan(live=...)` then decides each lead, two-way against the
state, or three-way with the live leads read meanwhile (`plan.threeway`). A parsed lead whose
effective values equal the applied ones, and that Lofty still holds as applied, costs nothing
more; only leads that really differ are explained field by field.

Longer than the project's ~400-line habit: the streaming offline path (`make_plan`, which
decides each lead as the loader parses it, so a cold plan of 100,000 leads stays in bounded
memory) and the two-step refreshed path share the per-lead decision and `--target` checks, and
splitting them would put one decision's rules in two modules.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import InvalidLeadFilesError, Problem, UnknownTargetError
from reconciler.live import live_view
from reconciler.loader import (
    LeadDoc,
    LeadWarning,
    LoadResult,
    SourceFile,
    format_path,
    line_of,
    load_tree,
    stream_tree,
)
from reconciler.model import PROPERTY_ADDRESS_FIELDS, Finding, comparable, effective
from reconciler.ownership import Ownership
from reconciler.plan.diff import explain
from reconciler.plan.result import (
    AddedFields,
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


class _Decider:
    """Decides one lead at a time against the state (and, when read, Lofty)."""

    def __init__(self, snapshot: Snapshot, ownership: Ownership, load: LoadResult) -> None:
        self.snapshot = snapshot
        self.ownership = ownership
        self.load = load

    def lead(
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
        fields: Sequence[FieldChange] = (
            field_changes(applied, compared)
            if applied is not None
            else AddedFields(applied_json, tuple(compared))
        )
        live = live_view(raw, compared) if raw is not None else None
        decision = decide(
            lead_id=lead.lead_id,
            file=lead.file,
            desired=desired,
            compared=compared,
            applied=applied,
            live=live,
            ownership=self.ownership,
            force=force,
        )
        if old is not None and not fields and not decision.differs:
            # Equal as Lofty sees them (keyed items reordered, say): at most the state moves.
            return None, unchanged_record, [], decision.drift
        findings = []
        if lead.doc is not None and applied is not None:
            moves = _property_moves(
                applied.get("property"), compared.get("property"), decision.body
            )
            findings = [self._placed(lead.doc, finding) for finding in moves]
        change = LeadChange(
            lead.lead_id,
            lead.file,
            "manage" if old is None else "update",
            fields if isinstance(fields, AddedFields) else tuple(fields),
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


@dataclass
class _Assembly:
    """A plan as its leads are decided; `finish` makes the Plan once all are."""

    changes: list[LeadChange] = field(default_factory=list)
    refresh: list[LeadRecord] = field(default_factory=list)
    notes: list[LeadWarning] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    planned: set[int] = field(default_factory=set)
    unchanged: int = 0

    def add(
        self,
        lead_id: int,
        outcome: tuple[LeadChange | None, LeadRecord | None, list[LeadWarning], list[Drift]],
    ) -> None:
        change, record, findings, drifted = outcome
        self.planned.add(lead_id)
        self.notes.extend(findings)
        self.drift.extend(drifted)
        if change is not None:
            self.changes.append(change)
        else:
            self.unchanged += 1
            if record is not None:
                self.refresh.append(record)

    def finish(
        self,
        load: LoadResult,
        snapshot: Snapshot,
        wanted: _Targets,
        *,
        state_name: str,
        strict: bool,
        targets: tuple[str, ...],
        refreshed: RefreshInfo | None,
    ) -> Plan:
        if strict and self.notes:
            raise InvalidLeadFilesError(
                [Problem(n.file, n.line, n.field, f"{n.message} (--strict)") for n in self.notes]
            )
        present = {i for f in load.files for i in f.lead_ids}
        # Ids first: only the records of leads gone from the tree are built (the state's are lazy).
        gone = [lead_id for lead_id in snapshot.leads if lead_id not in present]
        self.changes.extend(
            LeadChange(lead_id, load.display(old.file), "forget", (), None, None)
            for lead_id, old in zip(gone, map(snapshot.leads.__getitem__, gone), strict=True)
            if wanted.wants(lead_id, old.file)
        )
        self.changes.sort(key=lambda c: (c.file, c.lead_id))
        warnings = [w for w in load.warnings if w.lead_id in self.planned] + self.notes
        warnings.sort(key=lambda w: (w.file, w.line))
        self.drift.sort(key=lambda d: (d.file, d.lead_id, d.field))
        return Plan(
            lineage=snapshot.lineage,
            serial=snapshot.serial,
            state_name=state_name,
            changes=tuple(self.changes),
            warnings=tuple(warnings),
            unchanged=self.unchanged,
            refresh=tuple(self.refresh),
            targets=targets,
            drift=tuple(self.drift),
            missing=tuple(sorted(self.missing, key=lambda m: (m.file, m.lead_id))),
            refreshed=refreshed,
        )


class Planner:
    """Plans the leads below `root` against `snapshot` and, between loading and deciding, lets
    the caller read them from Lofty (`lead_ids`, `managed_fields`); raises
    InvalidLeadFilesError if any lead file is invalid, or under `strict` if the plan has a
    warning of its own. (An offline plan needs no such pause: `make_plan` decides each lead
    as it is parsed.)"""

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
        self._wanted = parse_targets(targets, root)
        # --strict must see every cut, so it cannot skip files known to be applied.
        skip = None if strict else applied_files(snapshot.leads)
        self.load = load_tree(root, strict=strict, known_unchanged=skip)
        if self.load.problems:
            raise InvalidLeadFilesError(self.load.problems)
        if targets:
            _check_targets(self._wanted, self.load, snapshot)
        self._decider = _Decider(snapshot, ownership or Ownership(), self.load)
        self._leads = list(_wanted_leads(self.load, self._wanted))

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
        assembly = _Assembly()
        for lead in self._leads:
            old = self._snapshot.leads.get(lead.lead_id)
            raw = live.get(lead.lead_id, None) if live is not None else None
            if live is not None and raw is None:
                assembly.missing.append(Missing(lead.lead_id, lead.file, managed=old is not None))
                continue
            assembly.add(lead.lead_id, self._decider.lead(lead, old, raw, force))
        return assembly.finish(
            self.load,
            self._snapshot,
            self._wanted,
            state_name=self._state_name,
            strict=self._strict,
            targets=self._targets,
            refreshed=refreshed,
        )


def _wanted_leads(load: LoadResult, wanted: _Targets) -> Iterator[_Lead]:
    """Every lead to decide, unparsed (applied at its file's hash) first, then parsed."""
    file_of = {f.path: f for f in load.files}
    for source in load.files:
        if source.parsed:
            continue
        for lead_id in source.lead_ids:
            if wanted.wants(lead_id, source.path):
                shown = load.display(source.path)
                yield _Lead(lead_id, shown, source.path, source.digest, source.lead_ids, None)
    for doc in load.leads:
        if wanted.wants(doc.lead_id, doc.source):
            source = file_of[doc.source]
            yield _Lead(doc.lead_id, doc.file, doc.source, source.digest, source.lead_ids, doc)


def make_plan(
    root: Path,
    snapshot: Snapshot,
    *,
    state_name: str,
    strict: bool = False,
    targets: Sequence[str] = (),
    ownership: Ownership | None = None,
) -> tuple[Plan, LoadResult]:
    """An offline plan (nothing read from Lofty) of the leads below `root` against `snapshot`.

    Each lead is decided as soon as it is parsed and its model dropped, so a cold plan of a
    large tree never holds every parsed lead; a lead applied at its file's hash is only
    counted. Problems and --target are checked once the files are all read (a problem in any
    file still means no plan).
    """
    wanted = parse_targets(targets, root)
    skip = None if strict else applied_files(snapshot.leads)
    load, docs = stream_tree(root, strict=strict, known_unchanged=skip)
    decider = _Decider(snapshot, ownership or Ownership(), load)
    assembly = _Assembly()
    source: SourceFile | None = None
    for doc in docs:
        if not wanted.wants(doc.lead_id, doc.source):
            continue
        if source is None or source.path != doc.source:
            source = load.files[-1]  # a file's entry comes just before its leads
        lead = _Lead(doc.lead_id, doc.file, doc.source, source.digest, source.lead_ids, doc)
        assembly.add(doc.lead_id, decider.lead(lead, snapshot.leads.get(doc.lead_id), None, False))
    if load.problems:
        raise InvalidLeadFilesError(load.problems)
    if targets:
        _check_targets(wanted, load, snapshot)
    unparsed = (f for f in load.files if not f.parsed)
    if wanted:
        unchanged = [i for f in unparsed for i in f.lead_ids if wanted.wants(i, f.path)]
    else:  # every lead is wanted: no check per lead (a no-op plan of 100k leads is this loop)
        unchanged = [i for f in unparsed for i in f.lead_ids]
    assembly.unchanged += len(unchanged)
    assembly.planned.update(unchanged)
    plan = assembly.finish(
        load,
        snapshot,
        wanted,
        state_name=state_name,
        strict=strict,
        targets=tuple(targets),
        refreshed=None,
    )
    return plan, load


def start_plan(
    root: Path,
    snapshot: Snapshot,
    *,
    refresh: bool,
    state_name: str,
    strict: bool = False,
    targets: Sequence[str] = (),
    ownership: Ownership | None = None,
) -> Plan | Planner:
    """The plan of the leads below `root`: offline, decided as each lead is parsed
    (`make_plan`); or with `refresh`, a `Planner` holding the files, which decides once the
    caller has read the managed leads from Lofty."""
    if refresh:
        return Planner(
            root,
            snapshot,
            state_name=state_name,
            strict=strict,
            targets=targets,
            ownership=ownership,
        )
    plan, _ = make_plan(
        root, snapshot, state_name=state_name, strict=strict, targets=targets, ownership=ownership
    )
    return plan


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
