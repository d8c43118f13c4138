"""The plan as a document: the documented JSON form (docs/plan-format.md) and saved plan files.

A saved plan (`plan --out`) is what `apply PLANFILE` carries out, so it must not be able to say
one thing and do another. Its records (what the state will hold) are the one source: before
anything is sent, `verify` checks every part against them and against the state the plan was
made from (which `apply` has checked is unchanged): each record holds values reconciler itself
produces, each body sends exactly what its record holds, each list of field changes is the
difference from the state to the record, each refreshed record only moves a file. A plan file
whose parts disagree (edited by hand) is refused, and nothing is sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconciler.errors import PlanFileError
from reconciler.files import replace_file
from reconciler.loader import LeadWarning
from reconciler.model import Lead, comparable, effective
from reconciler.plan.planner import field_changes
from reconciler.plan.result import (
    Conflict,
    Drift,
    FieldChange,
    LeadChange,
    Missing,
    Plan,
    RefreshInfo,
)
from reconciler.state import LeadRecord, Snapshot, canonical_json

FORMAT_VERSION = 2
PLAN_FILE_KIND = "reconciler-plan"
_MAX_PLAN_BYTES = 512 * 1024 * 1024


def plan_to_doc(plan: Plan, *, with_state: bool) -> dict[str, Any]:
    """The documented JSON form of a plan; `with_state` adds what apply needs to record each
    lead and to re-check Lofty before each PUT, making it a saved plan file."""
    doc: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "lineage": plan.lineage,
        "serial": plan.serial,
        "state": plan.state_name,
        "targets": list(plan.targets),
        "refreshed": _refresh_doc(plan.refreshed),
        "summary": {
            **plan.summary,
            "drift": len(plan.drift),
            "conflicts": len(plan.conflicts),
            "missing": len(plan.missing),
        },
        "changes": [_change_doc(c, with_state=with_state) for c in plan.changes],
        "drift": [_side_doc(d) for d in plan.drift],
        "conflicts": [_side_doc(c) for c in plan.conflicts],
        "missing": [
            {"lead_id": m.lead_id, "file": m.file, "managed": m.managed} for m in plan.missing
        ],
        "warnings": [
            {
                "lead_id": w.lead_id,
                "file": w.file,
                "line": w.line,
                "field": w.field,
                "message": w.message,
                "cut": w.cut,
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


def _refresh_doc(info: RefreshInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {"how": info.how, "calls": info.calls, "leads": info.leads}


def _change_doc(change: LeadChange, *, with_state: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "lead_id": change.lead_id,
        "file": change.file,
        "action": change.action,
        "fields": [
            {"path": f.path, "kind": f.kind, "before": f.before, "after": f.after}
            for f in change.fields
        ],
        "converged": list(change.converged),
    }
    if change.body is not None:
        doc["body"] = change.body
    if with_state:
        doc["expect"] = change.expect
        doc["refreshed"] = change.refreshed
    return doc


def _side_doc(item: Drift | Conflict) -> dict[str, Any]:
    return {
        "lead_id": item.lead_id,
        "file": item.file,
        "field": item.field,
        "desired": item.desired,
        "last_applied": item.last_applied,
        "live": item.live,
        "policy": item.policy,
        "action": item.action,
    }


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
    try:
        replace_file(path, text.encode("utf-8"))
    except OSError as exc:
        raise PlanFileError(f"{path}: cannot write the plan file: {exc.strerror}") from None


def load_plan(path: Path) -> Plan:
    """Read a saved plan file, refusing anything that is not one of ours."""
    try:
        with open(path, "rb") as file:
            data = file.read(_MAX_PLAN_BYTES + 1)
        if len(data) > _MAX_PLAN_BYTES:
            raise PlanFileError(f"{path}: larger than any plan file reconciler writes")
        doc = json.loads(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PlanFileError(f"{path}: cannot read the plan file: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != PLAN_FILE_KIND:
        raise PlanFileError(f"{path}: not a plan file saved by `reconciler plan --out`")
    if doc.get("format_version") != FORMAT_VERSION:
        raise PlanFileError(
            f"{path}: plan format {doc.get('format_version')!r} is not {FORMAT_VERSION}; "
            "plan again with this version of reconciler"
        )
    try:
        return _plan_from_doc(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PlanFileError(f"{path}: the plan file is damaged ({exc!r}); plan again") from None


def _plan_from_doc(doc: dict[str, Any]) -> Plan:
    records = {r.lead_id: r for r in map(_record_from_doc, doc["records"])}
    conflicts: dict[int, list[Conflict]] = {}
    for c in doc["conflicts"]:
        conflicts.setdefault(int(c["lead_id"]), []).append(Conflict(**_side(c)))
    changes = tuple(
        LeadChange(
            lead_id=int(c["lead_id"]),
            file=str(c["file"]),
            action=c["action"],
            fields=tuple(
                FieldChange(str(f["path"]), f["kind"], f["before"], f["after"]) for f in c["fields"]
            ),
            body=c.get("body"),
            record=records.get(int(c["lead_id"])) if c["action"] != "forget" else None,
            expect=dict(c.get("expect") or {}),
            converged=tuple(str(p) for p in c.get("converged", ())),
            conflicts=tuple(conflicts.get(int(c["lead_id"]), ())),
            refreshed=bool(c.get("refreshed")),
        )
        for c in doc["changes"]
    )
    warnings = tuple(
        LeadWarning(
            str(w["file"]),
            int(w["line"]),
            w["lead_id"],
            str(w["field"]),
            str(w["message"]),
            cut=bool(w.get("cut")),
        )
        for w in doc["warnings"]
    )
    info = doc.get("refreshed")
    refreshed = (
        None if info is None else RefreshInfo(info["how"], int(info["calls"]), int(info["leads"]))
    )
    return Plan(
        lineage=doc["lineage"],
        serial=int(doc["serial"]),
        state_name=str(doc["state"]),
        changes=changes,
        warnings=warnings,
        unchanged=int(doc["summary"]["unchanged"]),
        refresh=tuple(map(_record_from_doc, doc["refresh"])),
        targets=tuple(str(t) for t in doc.get("targets", ())),
        drift=tuple(Drift(**_side(d)) for d in doc["drift"]),
        missing=tuple(
            Missing(int(m["lead_id"]), str(m["file"]), bool(m["managed"])) for m in doc["missing"]
        ),
        refreshed=refreshed,
    )


def _side(item: dict[str, Any]) -> dict[str, Any]:
    keys = ("lead_id", "file", "field", "desired", "last_applied", "live", "policy", "action")
    return {key: item[key] for key in keys}


def verify(plan: Plan, snapshot: Snapshot, *, where: Path) -> None:
    """Refuse a saved plan whose parts disagree with each other or with `snapshot`, the state
    it was made against (apply has checked lineage and serial): see the module docstring."""
    for change in plan.changes:
        problem = _change_problem(change, snapshot)
        if problem is not None:
            raise PlanFileError(
                f"{where}: lead {change.lead_id} {problem}, so the plan file was changed after "
                "it was saved; nothing was sent. Plan again and apply the new plan file"
            )
    for record in plan.refresh:
        old = snapshot.leads.get(record.lead_id)
        if old is None or old.applied_json != record.applied_json:
            raise PlanFileError(
                f"{where}: lead {record.lead_id} would be recorded with values that were never "
                "applied, so the plan file was changed after it was saved; nothing was sent. "
                "Plan again and apply the new plan file"
            )


def _change_problem(change: LeadChange, snapshot: Snapshot) -> str | None:
    old = snapshot.leads.get(change.lead_id)
    if change.action == "forget":
        return None if old is not None and change.body is None else "cannot be forgotten"
    if change.action not in ("manage", "update") or (change.action == "update") != (
        old is not None
    ):
        return f"is planned to {change.action!r} against a state that does not allow it"
    record = change.record
    if record is None or record.lead_id != change.lead_id or change.body is None:
        return "has no record of what it applies"
    try:
        applied = json.loads(record.applied_json)
        if not isinstance(applied, dict):
            return "would be recorded with something other than field values"
        normal = comparable(effective(Lead.model_validate({"leadId": change.lead_id, **applied})))
        sent = comparable(effective(Lead.model_validate({"leadId": change.lead_id, **change.body})))
    except (ValueError, ValidationError):
        return "holds values that no lead file can hold"
    if canonical_json(normal) != record.applied_json:
        return "would be recorded with values reconciler does not produce"
    for name, value in sent.items():
        held = applied.get(name)
        if isinstance(value, dict) and isinstance(held, dict):
            if any(held.get(k) != v or k not in held for k, v in value.items()):
                return f"would send {name} other than it would record"
        elif value != held:
            return f"would send {name} other than it would record"
    if old is not None:
        shown = field_changes(old.applied, applied)
    else:
        shown = [FieldChange(name, "add", None, value) for name, value in applied.items()]
    if _in_order(shown) != _in_order(change.fields):
        return "shows field changes other than those from the state to what it records"
    return None


def _in_order(fields: Iterable[FieldChange]) -> list[FieldChange]:
    return sorted(fields, key=lambda f: (f.path, f.kind))
