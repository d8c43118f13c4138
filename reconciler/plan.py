"""The planner: desired leads vs the last-applied state -> the exact PUT bodies apply will send.

A lead whose file is byte-for-byte what was applied is not even parsed. A parsed lead whose
effective values equal the applied ones (string equality of canonical JSON) costs nothing more;
only leads that really differ are explained field by field.

What a PUT does to what it omits decides the words: Lofty keeps a field, or a key of a nested
object, that a PUT leaves out, so one removed from a file is "no longer managed", never
"removed". Only a list sent whole drops what it no longer holds.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any, Literal

from reconciler.errors import InvalidLeadFilesError, PlanFileError, Problem, UnknownTargetError
from reconciler.loader import (
    KnownUnchanged,
    LeadDoc,
    LeadWarning,
    LoadResult,
    format_path,
    line_of,
    load_tree,
)
from reconciler.model import (
    KEYED_PATHS,
    OWNERSHIP_FIELDS,
    PROPERTY_ADDRESS_FIELDS,
    SET_LIKE_PATHS,
    TAG_FIELDS,
    Finding,
    comparable,
    effective,
)
from reconciler.state import LeadRecord, Snapshot, canonical_json

FORMAT_VERSION = 1
PLAN_FILE_KIND = "reconciler-plan"

Action = Literal["manage", "update", "forget"]
# Fields sent together when any of them is sent. `tags` replaces the whole tag set in Lofty:
# sent alone it would drop the tagsAdd names. Lofty reads ownershipId in the light of
# ownershipScope: either sent alone is refused (OFFICE/PERSONAL need the id) or misread.
TRAVEL_TOGETHER = (TAG_FIELDS, frozenset(OWNERSHIP_FIELDS))
ChangeKind = Literal["add", "change", "remove", "unmanage"]


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field-level difference. `before`/`after` are None where the value is absent."""

    path: str
    kind: ChangeKind
    before: Any = None
    after: Any = None


@dataclass(frozen=True, slots=True)
class LeadChange:
    """What apply will do for one lead.

    `body` is the exact PUT body (empty when only the state changes, None for `forget`);
    `record` is what the state holds for the lead once it is applied (None for `forget`).
    """

    lead_id: int
    file: str
    action: Action
    fields: tuple[FieldChange, ...]
    body: dict[str, Any] | None
    record: LeadRecord | None

    @property
    def needs_call(self) -> bool:
        # A lead coming under management is always sent, even with nothing but its leadId:
        # the PUT is what proves the lead exists in Lofty (404 otherwise).
        return self.action == "manage" or bool(self.body)


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

    @property
    def summary(self) -> dict[str, int]:
        counts = {"manage": 0, "update": 0, "forget": 0}
        for change in self.changes:
            counts[change.action] += 1
        return {**counts, "unchanged": self.unchanged}

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)


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


def make_plan(
    root: Path,
    snapshot: Snapshot,
    *,
    state_name: str,
    strict: bool = False,
    targets: Sequence[str] = (),
) -> tuple[Plan, LoadResult]:
    """Plan the leads below `root` against `snapshot`; raise if any lead file is invalid, or
    under `strict` if the plan has a warning of its own."""
    wanted = parse_targets(targets, root)
    # --strict must see every cut, so it cannot skip files known to be applied.
    skip = None if strict else _unchanged_files(snapshot.leads)
    load = load_tree(root, strict=strict, known_unchanged=skip)
    if load.problems:
        raise InvalidLeadFilesError(load.problems)
    _check_targets(wanted, load, snapshot)
    file_of = {f.path: f for f in load.files}
    changes: list[LeadChange] = []
    refresh: list[LeadRecord] = []
    notes: list[LeadWarning] = []
    unchanged = 0
    present: set[int] = set()
    planned: set[int] = set()
    for source in load.files:
        present.update(source.lead_ids)
        if not source.parsed:
            unchanged += sum(wanted.wants(i, source.path) for i in source.lead_ids)
    for doc in load.leads:
        if not wanted.wants(doc.lead_id, doc.source):
            continue
        planned.add(doc.lead_id)
        source = file_of[doc.source]
        change, record, findings = _plan_lead(doc, source.digest, source.lead_ids, snapshot)
        notes.extend(_placed(load, doc, finding) for finding in findings)
        if change is not None:
            changes.append(change)
        else:
            unchanged += 1
            if record is not None:
                refresh.append(record)
    if strict and notes:
        raise InvalidLeadFilesError(
            [Problem(n.file, n.line, n.field, f"{n.message} (--strict)") for n in notes]
        )
    for lead_id, old in snapshot.leads.items():
        if lead_id not in present and wanted.wants(lead_id, old.file):
            changes.append(LeadChange(lead_id, load.display(old.file), "forget", (), None, None))
    changes.sort(key=lambda c: (c.file, c.lead_id))
    warnings = [w for w in load.warnings if w.lead_id in planned] + notes
    warnings.sort(key=lambda w: (w.file, w.line))
    plan = Plan(
        lineage=snapshot.lineage,
        serial=snapshot.serial,
        state_name=state_name,
        changes=tuple(changes),
        warnings=tuple(warnings),
        unchanged=unchanged,
        refresh=tuple(refresh),
        targets=tuple(targets),
    )
    return plan, load


def _placed(load: LoadResult, doc: LeadDoc, finding: Finding) -> LeadWarning:
    """A planner's warning about a field of `doc`, with its file and line like the loader's."""
    line = line_of(load, doc, finding.path)
    return LeadWarning(doc.file, line, doc.lead_id, format_path(finding.path), finding.message)


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


def _plan_lead(
    doc: LeadDoc, digest: str, file_leads: tuple[int, ...], snapshot: Snapshot
) -> tuple[LeadChange | None, LeadRecord | None, list[Finding]]:
    """The change for one parsed lead and the planner's warnings about it; or, when it is
    unchanged, (None, a refreshed record or None, [])."""
    desired = effective(doc.lead)
    compared = comparable(desired)
    rel = doc.source
    record = LeadRecord(doc.lead_id, rel, digest, file_leads, canonical_json(compared))
    old = snapshot.leads.get(doc.lead_id)
    if old is None:
        fields = tuple(FieldChange(name, "add", None, value) for name, value in compared.items())
        return LeadChange(doc.lead_id, doc.file, "manage", fields, desired, record), None, []
    if old.applied_json == record.applied_json:
        same_source = (old.file, old.source_hash, old.file_leads) == (rel, digest, file_leads)
        return None, None if same_source else record, []
    applied = old.applied
    fields_changed: list[FieldChange] = []
    body: dict[str, Any] = {}
    for name, value in compared.items():
        if name not in applied:
            fields_changed.append(FieldChange(name, "add", None, value))
            body[name] = desired[name]
        elif applied[name] != value:
            found = explain(name, applied[name], value)
            fields_changed.extend(found)
            # A nested key no longer managed alone sends nothing: Lofty keeps what is omitted.
            if any(f.kind != "unmanage" for f in found):
                body[name] = desired[name]
    for name in applied:
        if name not in compared:
            fields_changed.append(FieldChange(name, "unmanage", applied[name], None))
    if not fields_changed:  # equal as Lofty sees them (keyed items reordered): state only
        return None, record, []
    for group in TRAVEL_TOGETHER:
        if group & body.keys():
            body.update((name, desired[name]) for name in desired if name in group)
    notes = list(_property_moves(applied.get("property"), compared.get("property"), body))
    change = LeadChange(doc.lead_id, doc.file, "update", tuple(fields_changed), body, record)
    return change, None, notes


def _property_moves(before: Any, after: Any, body: dict[str, Any]) -> Iterator[Finding]:
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


def explain(name: str, before: Any, after: Any) -> list[FieldChange]:
    """Field-level differences inside one top-level field, between comparable values.

    - An object compares key by key; a key gone from the file is `unmanage` (Lofty keeps what
      a PUT omits), except inside an item of a list, which is sent whole.
    - A set-like list changes as a whole.
    - A keyed list (customAttributeList) matches items by their key (`customAttributeList
      ["School District"].value`); an item gone from the file is `unmanage`.
    - An ordered list is diffed as a sequence: an inserted item is one `add` at its new index,
      a removed one one `remove` at its old index, not every later item changed.
    - Anything else changes as a whole.

    Empty when the two differ only in a way Lofty does not see (keyed items in another order).
    """
    return list(_walk(name, (name,), before, after, in_item=False))


def _walk(
    where: str, shape: tuple[str, ...], before: Any, after: Any, *, in_item: bool
) -> Iterator[FieldChange]:
    """Differences at `where` (display path); `shape` is the path's field names alone."""
    if before == after:
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for key in [*after, *(k for k in before if k not in after)]:
            at, inner = f"{where}.{key}", (*shape, key)
            if key not in after:
                gone: ChangeKind = "remove" if in_item else "unmanage"
                yield FieldChange(at, gone, before[key], None)
            elif key not in before:
                yield FieldChange(at, "add", None, after[key])
            else:
                yield from _walk(at, inner, before[key], after[key], in_item=in_item)
    elif isinstance(before, list) and isinstance(after, list) and shape not in SET_LIKE_PATHS:
        key = KEYED_PATHS.get(shape)
        if key is not None:
            yield from _keyed(where, shape, key, before, after)
        else:
            yield from _ordered(where, shape, before, after)
    else:
        yield FieldChange(where, "change", before, after)


def _keyed(
    where: str, shape: tuple[str, ...], key: str, before: list[Any], after: list[Any]
) -> Iterator[FieldChange]:
    old = {str(item.get(key)): item for item in before if isinstance(item, dict)}
    new = {str(item.get(key)): item for item in after if isinstance(item, dict)}
    for name in [*new, *(n for n in old if n not in new)]:
        at = f"{where}[{json.dumps(name, ensure_ascii=False)}]"
        if name not in new:
            yield FieldChange(at, "unmanage", old[name], None)
        elif name not in old:
            yield FieldChange(at, "add", None, new[name])
        else:
            yield from _walk(at, shape, old[name], new[name], in_item=False)


def _ordered(
    where: str, shape: tuple[str, ...], before: list[Any], after: list[Any]
) -> Iterator[FieldChange]:
    spelled = [canonical_json(item) for item in before], [canonical_json(item) for item in after]
    matcher = SequenceMatcher(None, *spelled, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        paired = min(i2 - i1, j2 - j1)  # a replaced run: its items changed in place
        for k in range(paired):
            at = f"{where}[{j1 + k}]"
            yield from _walk(at, shape, before[i1 + k], after[j1 + k], in_item=True)
        for i in range(i1 + paired, i2):
            yield FieldChange(f"{where}[{i}]", "remove", before[i], None)
        for j in range(j1 + paired, j2):
            yield FieldChange(f"{where}[{j}]", "add", None, after[j])


# --- saved plans -------------------------------------------------------------------------------


def plan_to_doc(plan: Plan, *, with_state: bool) -> dict[str, Any]:
    """The documented JSON form of a plan (docs/plan-format.md); `with_state` adds what apply
    needs to record each lead, making it a saved plan file."""
    doc: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "lineage": plan.lineage,
        "serial": plan.serial,
        "state": plan.state_name,
        "targets": list(plan.targets),
        "summary": plan.summary,
        "changes": [
            {
                "lead_id": c.lead_id,
                "file": c.file,
                "action": c.action,
                "fields": [
                    {"path": f.path, "kind": f.kind, "before": f.before, "after": f.after}
                    for f in c.fields
                ],
                **({"body": c.body} if c.body is not None else {}),
            }
            for c in plan.changes
        ],
        "warnings": [
            {
                "lead_id": w.lead_id,
                "file": w.file,
                "line": w.line,
                "field": w.field,
                "message": w.message,
            }
            for w in plan.warnings
        ],
    }
    if with_state:
        doc["kind"] = PLAN_FILE_KIND
        records = [c.record for c in plan.changes if c.record is not None]
        doc["records"] = [_record_to_doc(r) for r in records]
        doc["refresh"] = [_record_to_doc(r) for r in plan.refresh]
    return doc


def _record_to_doc(record: LeadRecord) -> list[Any]:
    return [
        record.lead_id,
        record.file,
        record.source_hash,
        list(record.file_leads),
        record.applied_json,
    ]


def _record_from_doc(item: list[Any]) -> LeadRecord:
    lead_id, file, digest, file_leads, applied_json = item
    return LeadRecord(
        int(lead_id), str(file), str(digest), tuple(int(i) for i in file_leads), str(applied_json)
    )


def save_plan(plan: Plan, path: Path) -> None:
    """Write a plan file that `show` renders and `apply` carries out (atomically: a CI artifact
    is never left half-written)."""
    text = json.dumps(plan_to_doc(plan, with_state=True), indent=1) + "\n"
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text, "utf-8")
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise PlanFileError(f"{path}: cannot write the plan file: {exc.strerror}") from None


def load_plan(path: Path) -> Plan:
    """Read a saved plan file, refusing anything that is not one of ours."""
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanFileError(f"{path}: cannot read the plan file: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != PLAN_FILE_KIND:
        raise PlanFileError(f"{path}: not a plan file saved by `reconciler plan --out`")
    if doc.get("format_version") != FORMAT_VERSION:
        raise PlanFileError(
            f"{path}: plan format {doc.get('format_version')!r} is not {FORMAT_VERSION}; "
            "plan again with this version of reconciler"
        )
    try:
        records = {r.lead_id: r for r in map(_record_from_doc, doc["records"])}
        changes = tuple(
            LeadChange(
                lead_id=int(c["lead_id"]),
                file=str(c["file"]),
                action=c["action"],
                fields=tuple(
                    FieldChange(f["path"], f["kind"], f["before"], f["after"]) for f in c["fields"]
                ),
                body=c.get("body"),
                record=records.get(int(c["lead_id"])) if c["action"] != "forget" else None,
            )
            for c in doc["changes"]
        )
        warnings = tuple(
            LeadWarning(w["file"], int(w["line"]), w["lead_id"], w["field"], w["message"])
            for w in doc["warnings"]
        )
        return Plan(
            lineage=doc["lineage"],
            serial=int(doc["serial"]),
            state_name=str(doc["state"]),
            changes=changes,
            warnings=warnings,
            unchanged=int(doc["summary"]["unchanged"]),
            refresh=tuple(map(_record_from_doc, doc["refresh"])),
            targets=tuple(doc.get("targets", ())),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanFileError(f"{path}: the plan file is damaged ({exc!r}); plan again") from None
