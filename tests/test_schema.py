"""Request bodies match the vendor's EditLeadRequest; `reconciler schema` is a usable schema."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.loader import load_tree
from reconciler.model import effective
from reconciler.yamlio import decode, load_documents
from tests.vendor import REPO, edit_lead_validator

LEADS = REPO / "leads"
SHIPPED_SCHEMA = REPO / "schema" / "lead.schema.json"


def _example_values() -> list[Any]:
    return [
        doc.value
        for path in sorted(LEADS.glob("*.yaml"))
        for doc in load_documents(decode(path.read_bytes()))
    ]


def test_examples_are_valid_and_cover_the_kinds_of_lead() -> None:
    load = load_tree(LEADS)
    assert load.problems == []
    assert len(load.leads) >= 6
    type_ids = {t for doc in load.leads for t in (doc.lead.leadTypes or [])}
    assert {1, 2, 5, 6} <= type_ids  # seller, buyer, renter, investor
    assert any(doc.lead.leadFamilyMemberList for doc in load.leads)
    assert any(doc.lead.customAttributeList for doc in load.leads)
    assert any("silently keeps" in w.message for w in load.warnings)


def test_every_example_lead_as_a_body_validates_against_edit_lead_request() -> None:
    validator = edit_lead_validator()
    for doc in load_tree(LEADS).leads:
        body = effective(doc.lead)
        errors = [e.message for e in validator.iter_errors(body)]
        assert errors == [], (doc.file, errors)


def test_the_closed_vendor_validator_does_reject_unknown_and_mistyped_fields() -> None:
    validator = edit_lead_validator()
    assert not validator.is_valid({"firstName": "A", "nickName": "B"})
    assert not validator.is_valid({"phones": "+14155551234"})


def _schema_output() -> dict[str, Any]:
    result = CliRunner().invoke(main, ["schema"], catch_exceptions=False)
    assert result.exit_code == 0
    schema: dict[str, Any] = json.loads(result.stdout)
    return schema


def test_schema_is_valid_draft7_and_accepts_every_example() -> None:
    schema = _schema_output()
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    for value in _example_values():
        assert [e.message for e in validator.iter_errors(value)] == []


@pytest.mark.parametrize(
    "bad",
    [
        {"firstName": "No id"},
        {"leadId": 1, "fistName": "typo"},
        {"leadId": 1, "preQual": "Maybe"},
        {"leadId": 1, "leadTypes": ["Tenant"]},
        {"leadId": 1, "phones": ["+1 (415) 555-1234 ext. 5678"]},
        {"leadId": 1, "ownershipScope": "OFFICE"},
        {"leadId": 1, "firstName": None},
        {"leadId": 0},
    ],
)
def test_schema_rejects_bad_leads(bad: dict[str, Any]) -> None:
    assert not jsonschema.Draft7Validator(_schema_output()).is_valid(bad)


def test_shipped_schema_file_is_up_to_date() -> None:
    shipped = json.loads(SHIPPED_SCHEMA.read_text("utf-8"))
    assert shipped == _schema_output(), "regenerate: reconciler schema > schema/lead.schema.json"


def test_packaged_vendor_schema_matches_the_reference() -> None:
    from tests.vendor import PACKAGED_SCHEMA, SHARED_SCHEMA

    if not SHARED_SCHEMA.exists():
        pytest.skip("the shared reference folder is not beside this checkout")
    assert PACKAGED_SCHEMA.read_bytes() == SHARED_SCHEMA.read_bytes()
