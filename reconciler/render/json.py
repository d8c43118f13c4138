"""The plan as the stable, documented JSON document (docs/plan-format.md), for scripts.

Emails and phones are masked like in every other output unless `--show-sensitive`; a saved plan
file (`plan --out`) is not output but the record of what apply will send, and keeps them.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.plan import Plan, plan_to_doc
from reconciler.render.common import RenderOptions
from reconciler.sanitize import mask_value


def render_json(plan: Plan, options: RenderOptions) -> str:
    """The plan document, without the state records a saved plan file carries."""
    doc = plan_to_doc(plan, with_state=False)
    if not options.show_sensitive:
        _mask_changes(doc["changes"])
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _mask_changes(changes: list[dict[str, Any]]) -> None:
    for change in changes:
        for field in change["fields"]:
            field["before"] = mask_value(field["path"], field["before"])
            field["after"] = mask_value(field["path"], field["after"])
        if change.get("body"):
            change["body"] = {name: mask_value(name, v) for name, v in change["body"].items()}
