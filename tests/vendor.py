"""The vendor's OpenAPI schema for the lead endpoints, as tests use it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema

REPO = Path(__file__).resolve().parents[1]
SHARED_SCHEMA = REPO.parent / "shared" / "reference" / "lofty-openapi-leads.json"
PACKAGED_SCHEMA = REPO / "reconciler" / "data" / "lofty-openapi-leads.json"


def openapi() -> dict[str, Any]:
    """The shared reference copy when it is beside the repo (as in CI), else the packaged one."""
    path = SHARED_SCHEMA if SHARED_SCHEMA.exists() else PACKAGED_SCHEMA
    doc: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return doc


def edit_lead_validator(*, closed: bool = True) -> jsonschema.Draft7Validator:
    """A validator for `EditLeadRequest`; `closed` also rejects keys the vendor does not list."""
    components = copy.deepcopy(openapi()["components"])
    if closed:
        for schema in components["schemas"].values():
            if schema.get("type") == "object" and "properties" in schema:
                schema["additionalProperties"] = False
    root = {"$ref": "#/components/schemas/EditLeadRequest", "components": components}
    return jsonschema.Draft7Validator(root)
