"""Request bodies match the vendor's EditLeadRequest; `reconciler schema` is a usable schema."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.loader import load_tree
from reconciler.model import SCHEMA_CANNOT_CHECK, check, effective, json_schema
from reconciler.yamlio import YamlProblem, decode, load_documents
from tests.vendor import REPO, edit_lead_validator

LEADS = REPO / "leads"
BAD_LEADS = REPO / "tests" / "bad_leads"
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
        {"leadId": 1, "leadTypes": ["Buyer "]},
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


def test_schema_accepts_lead_type_names_in_any_case() -> None:
    validator = jsonschema.Draft7Validator(_schema_output())
    assert validator.is_valid({"leadId": 1, "leadTypes": ["buyer", "SELLER", "lAnDlOrD", 2]})


# --- the schema and `validate` give the same verdict ------------------------------------------
#
# Values, not YAML text: the schema describes the JSON value of a document (an editor reads the
# YAML as YAML 1.2, as reconciler does). NaN and infinities are left out: JSON has neither.

EMOJI = "\U0001f600"
MEMBER = {"firstName": "Lin", "birthday": ""}
BOTH_ACCEPT: list[dict[str, Any]] = [
    {"leadId": 1},
    {"leadId": 9223372036854775807, "assignedUserId": 1},
    {"leadId": 1, "leadTypes": ["buyer", "SELLER", 2, "Other", -1]},
    {"leadId": 1, "birthday": "Jun 05, 2001"},
    {"leadId": 1, "birthday": "Feb 29, 2000"},
    {"leadId": 1, "birthday": ""},
    {"leadId": 1, "buyingTimeFrame": "", "preQual": "", "language": "", "fthb": "No"},
    {"leadId": 1, "stage": EMOJI * 9 + "a"},
    {"leadId": 1, "stage": ""},
    {"leadId": 1, "phones": ["+1" + EMOJI * 9, "+14155551234"]},
    {"leadId": 1, "emails": ["a@b.co", "jane.doe+x@example.com"]},
    {"leadId": 1, "firstName": "", "tags": [], "tagsRemove": ["x" * 70]},
    {
        "leadId": 1,
        "inquiry": {
            "createTime": "2023-11-07T05:31:56Z",
            "updateTime": "2024-02-29T23:59:60.123+05:30",
            "bathroomsMin": "1.5",
            "bathroomsMax": "",
            "priceMax": 1e6,
            "propertyType": ["Condo"],
            "locations": [{"city": "Austin"}],
        },
    },
    {"leadId": 1, "property": {"city": "X", "propertyType": ""}},
    {"leadId": 1, "property": {"zipCode": "02134", "id": 5}},
    {
        "leadId": 1,
        "customAttributeList": [
            {"attributeName": "A", "attributeType": "multi_select", "value": '["a", "b\\"c"]'},
            {"attributeName": "B", "attributeType": "multi_select", "value": " [ ] "},
            {"attributeName": "C", "attributeType": "text", "value": "Garage"},
        ],
    },
    {
        "leadId": 1,
        "leadTransaction": {
            "transactionName": "12 Elm St",
            "transactionType": "Lease",
            "transactionStatus": "Under Contract",
        },
    },
    {"leadId": 1, "ownershipScope": "OFFICE", "ownershipId": 3},
    {"leadId": 1, "ownershipScope": "TEAM"},
    {"leadId": 1, "clearAllTags": True},
    {"leadId": 1, "clearAllTags": False, "tags": ["a"]},
    {"leadId": 1, "leadFamilyMemberList": [MEMBER] * 4},
]
BOTH_REJECT: list[Any] = [
    [],
    "leadId: 1",
    {},
    {"leadId": 0},
    {"leadId": -1},
    {"leadId": 2**63},
    {"leadId": "1"},
    {"leadId": True},
    {"leadId": 1.5},
    {"leadId": 1, "fistName": "x"},
    {"leadId": 1, "firstName": None},
    {"leadId": 1, "firstName": 5},
    {"leadId": 1, "leadTypes": ["Tenant"]},
    {"leadId": 1, "leadTypes": [3]},
    {"leadId": 1, "leadTypes": ["buyer "]},
    {"leadId": 1, "leadTypes": "Buyer"},
    {"leadId": 1, "birthday": "Jun 5 2001"},
    {"leadId": 1, "birthday": "Feb 29, 2001"},
    {"leadId": 1, "birthday": "Feb 29, 1900"},
    {"leadId": 1, "birthday": "Jun 31, 2001"},
    {"leadId": 1, "birthday": "2001-06-05"},
    {"leadId": 1, "birthday": "jun 5, 2001"},
    {"leadId": 1, "birthday": "Jun 5, 0000"},
    {"leadId": 1, "birthday": "Jun 5, 2001\n"},
    {"leadId": 1, "preQual": "yes"},
    {"leadId": 1, "preQual": True},
    {"leadId": 1, "ownershipScope": ""},
    {"leadId": 1, "language": "EN"},
    {"leadId": 1, "stage": EMOJI * 10},
    {"leadId": 1, "stage": "x" * 20},
    {"leadId": 1, "phones": ["+1" + EMOJI * 10]},
    {"leadId": 1, "phones": ["1" * 21]},
    {"leadId": 1, "phones": [14155551234]},
    {"leadId": 1, "emails": ["a@b"]},
    {"leadId": 1, "emails": ["a b@c.de"]},
    {"leadId": 1, "emails": ["a@b.co\n"]},
    {"leadId": 1, "emails": "a@b.co"},
    {"leadId": 1, "assignedUserId": 0},
    {"leadId": 1, "inquiry": "3 bedrooms"},
    {"leadId": 1, "inquiry": {"pricemax": 5}},
    {"leadId": 1, "inquiry": {"createTime": "2023-02-29T00:00:00Z"}},
    {"leadId": 1, "inquiry": {"createTime": "2023-11-07"}},
    {"leadId": 1, "inquiry": {"bathroomsMin": "two"}},
    {"leadId": 1, "inquiry": {"bathroomsMin": " 2"}},
    {"leadId": 1, "inquiry": {"bedroomsMin": 2.5}},
    {"leadId": 1, "inquiry": {"bedroomsMin": 2**31}},
    {"leadId": 1, "inquiry": {"propertyType": ["House"]}},
    {"leadId": 1, "property": {}},
    {"leadId": 1, "property": {"city": " ", "state": ""}},
    {"leadId": 1, "property": {"city": "X", "propertyType": "House"}},
    {"leadId": 1, "customAttributeList": [{"attributeName": "A", "attributeType": "text"}]},
    {
        "leadId": 1,
        "customAttributeList": [
            {"attributeName": "A", "attributeType": "multi_select", "value": "Garage"}
        ],
    },
    {
        "leadId": 1,
        "customAttributeList": [
            {"attributeName": "A", "attributeType": "multi_select", "value": '["a",]'}
        ],
    },
    {
        "leadId": 1,
        "customAttributeList": [{"attributeName": " ", "attributeType": "text", "value": ""}],
    },
    {
        "leadId": 1,
        "customAttributeList": [{"attributeName": "A", "attributeType": "bool", "value": ""}],
    },
    {"leadId": 1, "leadTransaction": {"transactionType": "Lease"}},
    {"leadId": 1, "leadTransaction": {"transactionName": " "}},
    {"leadId": 1, "leadTransaction": {"transactionName": "<b>Deal</b>"}},
    {"leadId": 1, "leadTransaction": {"transactionName": "D", "transactionType": "Sale"}},
    {"leadId": 1, "leadTransaction": {"transactionName": "D", "transactionStatus": "Closed"}},
    {
        "leadId": 1,
        "leadTransaction": {
            "transactionName": "D",
            "transactionType": "Lease",
            "transactionStatus": "Closed ",
        },
    },
    {"leadId": 1, "ownershipScope": "PERSONAL"},
    {"leadId": 1, "clearAllTags": True, "tags": []},
    {"leadId": 1, "clearAllTags": True, "tagsRemove": ["a"]},
    {"leadId": 1, "leadFamilyMemberList": [MEMBER] * 5},
    {"leadId": 1, "leadFamilyMemberList": [{"lastName": "Chen"}]},
    {"leadId": 1, "leadFamilyMemberList": [{"firstName": "A", "birthday": "Feb 30, 2001"}]},
]
# What only `validate` can reject, each with the SCHEMA_CANNOT_CHECK entry that says so.
ONLY_VALIDATE_REJECTS: list[tuple[dict[str, Any], int]] = [
    ({"leadId": 1, "inquiry": {"priceMin": 9, "priceMax": 1}}, 0),
    ({"leadId": 1, "inquiry": {"bathroomsMin": "3", "bathroomsMax": "2.5"}}, 0),
    ({"leadId": 1, "property": {"city": "X", "priceMin": 9, "priceMax": 1}}, 0),
    ({"leadId": 1, "tags": ["a"], "tagsRemove": ["a"]}, 1),
    ({"leadId": 1, "tagsAdd": ["t" * 70], "tagsRemove": ["t" * 64]}, 1),
    (
        {
            "leadId": 1,
            "customAttributeList": [
                {"attributeName": "A", "attributeType": "text", "value": "1"},
                {"attributeName": "A", "attributeType": "text", "value": "2"},
            ],
        },
        2,
    ),
    ({"leadId": 1e17}, 3),
]


def _verdicts(value: Any) -> tuple[bool, bool]:
    validator = jsonschema.Draft7Validator(json_schema())
    return check(value).lead is not None, validator.is_valid(value)


@pytest.mark.parametrize("value", BOTH_ACCEPT)
def test_the_schema_and_validate_both_accept(value: dict[str, Any]) -> None:
    assert _verdicts(value) == (True, True)


@pytest.mark.parametrize("value", BOTH_REJECT)
def test_the_schema_and_validate_both_reject(value: Any) -> None:
    assert _verdicts(value) == (False, False)


def test_only_validate_rejects_what_the_schema_says_it_cannot_check() -> None:
    assert {reason for _, reason in ONLY_VALIDATE_REJECTS} == set(range(len(SCHEMA_CANNOT_CHECK)))
    for value, _ in ONLY_VALIDATE_REJECTS:
        assert _verdicts(value) == (False, True), value
    description = json_schema()["description"]
    assert all(reason in description for reason in SCHEMA_CANNOT_CHECK)


def _corpus_values() -> list[tuple[str, Any]]:
    """Every document of the example and bad-lead files that is a value (not a YAML error)."""
    found = []
    for path in [*sorted(LEADS.glob("*.yaml")), *sorted(BAD_LEADS.rglob("*.yaml"))]:
        try:
            documents = list(load_documents(decode(path.read_bytes()), collect=True))
        except YamlProblem:
            continue
        found += [(path.name, d.value) for d in documents if not d.flaws]
    return found


def test_the_schema_and_validate_agree_on_every_example_and_bad_lead_file() -> None:
    only_validate = {
        "bedrooms_min_over_max.yaml",
        "custom_attribute_duplicate_name.yaml",
        "price_min_over_max.yaml",
    }
    values = _corpus_values()
    assert len(values) > 40
    for name, value in values:
        accepted, schema_accepts = _verdicts(value)
        if name in only_validate:
            assert (accepted, schema_accepts) == (False, True), name
        else:
            assert accepted == schema_accepts, name
