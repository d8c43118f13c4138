"""Plans built directly from the planner's dataclasses, shared by the renderer tests."""

from __future__ import annotations

from typing import Any

from reconciler.loader import LeadWarning
from reconciler.plan import FieldChange, LeadChange, Plan
from reconciler.render.common import top_name


def update(
    lead_id: int, file: str, *fields: FieldChange, body: dict[str, Any] | None = None
) -> LeadChange:
    """An update; unless given, a stand-in body keyed by each top-level field that is sent."""
    if body is None:
        body = {top_name(f.path): f.after for f in fields if f.kind != "unmanage"}
    return LeadChange(lead_id, file, "update", tuple(fields), body, None)


def make_plan(
    *changes: LeadChange,
    warnings: tuple[LeadWarning, ...] = (),
    unchanged: int = 0,
    targets: tuple[str, ...] = (),
) -> Plan:
    return Plan("lineage-1", 7, "state.json", tuple(changes), warnings, unchanged, (), targets)


def sample_plan() -> Plan:
    """One of everything, in the planner's order (by file): forget, manage, an update with
    nested and unmanaged fields, a state-only update, and a warning."""
    manage = LeadChange(
        2,
        "leads/new.yaml",
        "manage",
        (
            FieldChange("firstName", "add", None, "Jane"),
            FieldChange("tags", "add", None, ["a", "b"]),
        ),
        {"firstName": "Jane", "tags": ["a", "b"]},
        None,
    )
    forget = LeadChange(3, "leads/gone.yaml", "forget", (), None, None)
    changed = update(
        651095960136642,
        "leads/seller.yaml",
        FieldChange("firstName", "change", "Bob", "Robert"),
        FieldChange("inquiry.locations[0].city", "change", "Austin", "Dallas"),
        FieldChange("inquiry.priceMax", "add", None, 500000),
        FieldChange("segments", "change", ["A"], []),
        FieldChange("source", "unmanage", "Zillow", None),
        body={
            "firstName": "Robert",
            "inquiry": {"locations": [{"city": "Dallas"}], "priceMax": 500000},
            "segments": [],
        },
    )
    state_only = update(4, "leads/z.yaml", FieldChange("stage", "unmanage", "New", None))
    warning = LeadWarning(
        "leads/new.yaml",
        5,
        2,
        "lastName",
        "is 33 characters; Lofty silently keeps the first 30: 'Abcdefghijabcdefghijabcdefghij'",
        cut=True,
    )
    return make_plan(forget, manage, changed, state_only, warnings=(warning,), unchanged=120)
