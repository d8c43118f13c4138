"""The vendor's OpenAPI schema for the lead endpoints, as tests use it."""

from __future__ import annotations

import copy
import json
from datetime import datetime
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


def _response_components(metadata_key: str) -> dict[str, Any]:
    """The schemas closed to unlisted keys, with write-only properties removed (a response that
    carries one is invalid), and `LeadListResponse`'s metadata under `metadata_key`."""
    components = copy.deepcopy(openapi()["components"])
    for schema in components["schemas"].values():
        properties = schema.get("properties")
        if schema.get("type") == "object" and properties is not None:
            for name in [n for n, p in properties.items() if p.get("writeOnly")]:
                del properties[name]
            schema["additionalProperties"] = False
    listing = components["schemas"]["LeadListResponse"]["properties"]
    listing[metadata_key] = listing.pop("get_metadata")
    return components


def _formats() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker(formats=())
    checker.checks("int32")(lambda v: not isinstance(v, int) or -(2**31) <= v < 2**31)
    checker.checks("int64")(lambda v: not isinstance(v, int) or -(2**63) <= v < 2**63)
    checker.checks("date-time", raises=ValueError)(
        lambda v: not isinstance(v, str) or bool(datetime.fromisoformat(v.replace("Z", "+00:00")))
    )
    return checker


def response_validator(
    name: str = "LeadResponse", *, metadata_key: str = "get_metadata"
) -> jsonschema.Draft7Validator:
    """A strict validator for a vendor response schema (`LeadResponse`, `LeadListResponse`):
    no key the vendor does not list, no write-only key, formats (int32/int64, date-time) checked.
    """
    root = {
        "$ref": f"#/components/schemas/{name}",
        "components": _response_components(metadata_key),
    }
    return jsonschema.Draft7Validator(root, format_checker=_formats())
