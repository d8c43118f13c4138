"""The JSON plan: the documented document (docs/plan-format.md), nothing more, nothing less."""

from __future__ import annotations

import json

import pytest

from reconciler.plan import FORMAT_VERSION, FieldChange
from reconciler.render import RENDERER_BY_NAME, RenderOptions, render

from .plans import make_plan, sample_plan, update


def test_document_has_the_documented_keys_and_values() -> None:
    out = render(sample_plan(), "json", RenderOptions())
    assert out.endswith("}\n")
    doc = json.loads(out)
    assert list(doc) == [
        "format_version",
        "lineage",
        "serial",
        "state",
        "targets",
        "refreshed",
        "summary",
        "changes",
        "drift",
        "conflicts",
        "missing",
        "warnings",
    ]
    assert doc["refreshed"] is None and doc["drift"] == doc["conflicts"] == doc["missing"] == []
    assert doc["format_version"] == FORMAT_VERSION
    assert (doc["lineage"], doc["serial"], doc["state"]) == ("lineage-1", 7, "state.json")
    assert doc["summary"] == {
        "manage": 1,
        "update": 2,
        "forget": 1,
        "unchanged": 120,
        "drift": 0,
        "conflicts": 0,
        "missing": 0,
    }
    by_id = {c["lead_id"]: c for c in doc["changes"]}
    assert [c["lead_id"] for c in doc["changes"]] == [3, 2, 651095960136642, 4]
    assert by_id[3] == {
        "lead_id": 3,
        "file": "leads/gone.yaml",
        "action": "forget",
        "fields": [],
        "converged": [],
    }
    seller = by_id[651095960136642]
    assert seller["action"] == "update"
    assert seller["fields"][0] == {
        "path": "firstName",
        "kind": "change",
        "before": "Bob",
        "after": "Robert",
    }
    assert seller["fields"][-1] == {
        "path": "source",
        "kind": "unmanage",
        "before": "Zillow",
        "after": None,
    }
    assert seller["body"] == {
        "firstName": "Robert",
        "inquiry": {"locations": [{"city": "Dallas"}], "priceMax": 500000},
        "segments": [],
    }
    assert by_id[4]["body"] == {}
    assert doc["warnings"] == [
        {
            "lead_id": 2,
            "file": "leads/new.yaml",
            "line": 5,
            "field": "lastName",
            "message": "is 33 characters; Lofty silently keeps the first 30: "
            "'Abcdefghijabcdefghijabcdefghij'",
            "cut": True,
        }
    ]


def test_no_state_records_in_the_printed_document() -> None:
    doc = json.loads(render(sample_plan(), "json", RenderOptions()))
    assert not {"kind", "records", "refresh"} & set(doc)


def test_unicode_stays_readable() -> None:
    plan = make_plan(update(1, "leads/a.yaml", FieldChange("firstName", "change", "Zoe", "Zoë")))
    out = render(plan, "json", RenderOptions())
    assert '"after": "Zoë"' in out
    assert json.loads(out)["changes"][0]["body"] == {"firstName": "Zoë"}


def test_renderers_are_chosen_by_name() -> None:
    assert set(RENDERER_BY_NAME) == {"text", "json", "markdown"}
    plan = sample_plan()
    assert render(plan, "json", RenderOptions()) == RENDERER_BY_NAME["json"](plan, RenderOptions())
    with pytest.raises(ValueError, match="unknown plan format 'yaml'"):
        render(plan, "yaml", RenderOptions())
