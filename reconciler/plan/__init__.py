"""Plans: what apply will send and record, lead by lead and field by field.

- `result`: what a plan is made of (changes, drift, conflicts, leads missing in Lofty);
- `planner`: files vs the state (and, refreshed, live Lofty) -> a plan;
- `threeway`: how one lead is decided from the file, the state and Lofty, by field policy;
- `diff`: field-level differences, in the words a PUT's semantics call for;
- `planfile`: the JSON document and saved plan files, verified before apply trusts them.
"""

from reconciler.plan.diff import explain
from reconciler.plan.planfile import (
    FORMAT_VERSION,
    PLAN_FILE_KIND,
    load_plan,
    plan_to_doc,
    save_plan,
    verify,
)
from reconciler.plan.planner import (
    LiveLeads,
    Planner,
    field_changes,
    make_plan,
    parse_targets,
    start_plan,
)
from reconciler.plan.result import (
    Conflict,
    Drift,
    FieldChange,
    LeadChange,
    Missing,
    Plan,
    RefreshInfo,
)
from reconciler.plan.threeway import TRAVEL_TOGETHER

__all__ = [
    "FORMAT_VERSION",
    "PLAN_FILE_KIND",
    "TRAVEL_TOGETHER",
    "Conflict",
    "Drift",
    "FieldChange",
    "LeadChange",
    "LiveLeads",
    "Missing",
    "Plan",
    "Planner",
    "RefreshInfo",
    "explain",
    "field_changes",
    "load_plan",
    "make_plan",
    "parse_targets",
    "plan_to_doc",
    "save_plan",
    "start_plan",
    "verify",
]
