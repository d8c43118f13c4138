"""The plan as the stable, documented JSON document (docs/plan-format.md), for scripts."""

from __future__ import annotations

import json

from reconciler.plan import Plan, plan_to_doc
from reconciler.render.common import RenderOptions


def render_json(plan: Plan, options: RenderOptions) -> str:
    """The plan document, without the state records a saved plan file carries."""
    return json.dumps(plan_to_doc(plan, with_state=False), indent=2, ensure_ascii=False) + "\n"
