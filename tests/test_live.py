"""The live-lead mapping: Lofty's LeadResponse into the file's field space, normalised alike.

Unit cases are built from the vendor schema's own examples (LeadResponse, LeadInquiry,
LeadProperty); the round-trip cases PUT real lead files into the sandbox and read them back.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.live import READ_BACK, file_values, import_values, live_view, normalise
from reconciler.loader import load_tree
from reconciler.model import Lead, comparable, effective
from reconciler.sandbox import Sandbox, SandboxConfig
from tests.vendor import REPO, openapi


def example(name: str) -> dict[str, Any]:
    """Every property of a vendor schema that has an example, with that example."""
    schema = openapi()["components"]["schemas"][name]["properties"]
    return {
        key: copy.deepcopy(spec["example"]) for key, spec in schema.items() if "example" in spec
    }


def vendor_lead(**extra: Any) -> dict[str, Any]:
    """A LeadResponse made of the vendor's examples, with the server's own keys besides."""
    lead = example("LeadResponse")
    lead.update(
        leadId=651095960136641,
        leadUserId=99,
        stageId=7,
        createTime="2024-01-02T03:04:05Z",
        lastUpdateTime="2024-02-03T04:05:06Z",
        firstName="Bob",
        tags=[
            {"tagId": 1, "tagName": "Hot Lead", "leadId": 651095960136641},
            {"tagId": 2, "tagName": "Zillow", "createTime": "2024-01-02"},
        ],
        hiddenFlag=False,
        leadInquiry={**example("LeadInquiry"), "id": 5, "leadUserId": 99, "defaultValue": False},
        leadPropertyList=[{**example("LeadProperty"), "id": 77, "leadUserId": 99}],
        customAttributes=[
            {"attributeName": "Down Payment", "attributeType": "currency", "value": "50000"},
            {"attributeName": "Pets", "attributeType": "text", "value": "Dog"},
        ],
        someFieldLoftyAddsLater={"x": 1},
    )
    lead.update(extra)
    return lead


def managed(**fields: Any) -> dict[str, Any]:
    """A file's values in the form the state keeps them."""
    return comparable(effective(Lead.model_validate({"leadId": 651095960136641, **fields})))


def test_vendor_names_map_to_the_files_and_server_keys_are_left_out() -> None:
    values = file_values(vendor_lead())
    assert values["tags"] == ["Hot Lead", "Zillow"]
    assert values["isHidden"] is False
    assert values["inquiry"] == example("LeadInquiry")  # without id, leadUserId, defaultValue
    assert values["property"]["id"] == 77 and "leadUserId" not in values["property"]
    assert [a["attributeName"] for a in values["customAttributeList"]] == ["Down Payment", "Pets"]
    for server_key in ("leadId", "leadUserId", "stageId", "createTime", "phoneStatuses"):
        assert server_key not in values
    assert "someFieldLoftyAddsLater" not in values  # unknown keys are ignored, not errors


def test_a_live_lead_equal_to_the_file_compares_equal() -> None:
    want = managed(
        firstName="Bob",
        tags=["Zillow", "Hot Lead"],
        leadTypes=["Buyer", "Renter"],
        emails=["jane.doe@example.com", "jdoe-work@company.com"],
        inquiry={
            "priceMin": 1,
            "priceMax": 10000000,
            "propertyType": ["Condo", "Single Family Home"],
        },
        customAttributeList=[
            {"attributeName": "Down Payment", "attributeType": "currency", "value": "50000"}
        ],
    )
    live = live_view(vendor_lead(), want)
    assert live.values == want
    assert live.unreadable == frozenset()
    assert live.updated == "2024-02-03T04:05:06Z"


def test_only_managed_keys_and_attributes_are_compared() -> None:
    want = managed(
        inquiry={"priceMax": 10000000},
        customAttributeList=[{"attributeName": "Pets", "attributeType": "text", "value": "Cat"}],
    )
    live = live_view(vendor_lead(), want)
    assert live.values["inquiry"] == {"priceMax": 10000000}
    assert live.values["customAttributeList"] == [
        {"attributeName": "Pets", "attributeType": "text", "value": "Dog"}
    ]


def test_write_only_fields_are_marked_and_never_compared() -> None:
    want = managed(
        property={"id": 77, "city": "New York", "priceMin": 1, "priceMax": 2},
        leadTransaction={"transactionName": "123 Main St"},
        tags=["Hot Lead"],
        tagsRemove=["Cold"],
    )
    live = live_view(vendor_lead(), want)
    assert live.unreadable == {"leadTransaction", "property.priceMin", "property.priceMax"}
    assert live.values["property"] == {"id": 77, "city": "New York"}
    assert "leadTransaction" not in live.values


def test_tags_add_and_remove_are_checked_against_the_live_tag_set() -> None:
    want = managed(tagsAdd=["Hot Lead", "Referral"], tagsRemove=["Zillow", "Cold"])
    live = live_view(vendor_lead(), want)
    assert live.values["tagsAdd"] == ["Hot Lead"]  # Referral is missing in Lofty
    assert live.values["tagsRemove"] == ["Cold"]  # Zillow is there though it must not be


def test_the_managed_property_is_found_by_id_then_by_address() -> None:
    records = [
        {"id": 1, "city": "Austin", "streetAddress": "1 Main St"},
        {"id": 2, "city": "Austin", "streetAddress": "9 Oak Ave", "bedrooms": 4},
    ]
    raw = vendor_lead(leadPropertyList=records)
    by_id = live_view(raw, managed(property={"id": 2, "bedrooms": 3}))
    assert by_id.values["property"] == {"id": 2, "bedrooms": 4}
    assert by_id.notes == ("Lofty holds 2 property records; took record 2 (by its id 2)",)
    by_address = live_view(raw, managed(property={"streetAddress": "9  OAK ave", "bedrooms": 4}))
    assert by_address.values["property"] == {"streetAddress": "9 Oak Ave", "bedrooms": 4}
    missing = live_view(raw, managed(property={"streetAddress": "5 Elm St"}))
    assert missing.values["property"] == {}  # every managed key is absent in Lofty
    assert missing.notes == ("Lofty holds 2 property records; none matched (by its address)",)


def test_a_cleared_field_matches_an_empty_or_absent_live_value() -> None:
    want = managed(stage="", segments=[], referredBy="")
    live = live_view(vendor_lead(stage=None, segments=[]), want)
    assert live.values == want
    assert "referredBy" in live.values


def test_a_value_no_file_could_hold_is_kept_as_it_is_and_differs() -> None:
    want = managed(stage="Pending")
    live = live_view(vendor_lead(stage="A stage name far too long for a file"), want)
    assert live.values["stage"] == "A stage name far too long for a file"


def test_import_values_keep_what_lofty_holds_and_leave_out_what_a_file_cannot() -> None:
    values, notes = import_values(vendor_lead(stage="x" * 25, referredBy="", groups=[]))
    assert values["leadId"] == 651095960136641
    assert "referredBy" not in values and "groups" not in values  # held empty in Lofty
    assert "stage" not in values
    assert notes[0].startswith("stage left out: Lofty holds a value no lead file can hold")
    lead = Lead.model_validate(values)
    assert lead.tags == ["Hot Lead", "Zillow"]


def test_every_field_a_file_can_manage_says_how_it_is_read_back() -> None:
    assert set(READ_BACK) == set(Lead.model_fields) - {"leadId"}


def test_normalise_cuts_and_sorts_as_files_are() -> None:
    assert normalise(1, {"tags": ["b", "a", "a"], "firstName": "x" * 40}) == {
        "tags": ["a", "b"],
        "firstName": "x" * 30,
    }


# --- round trip through the sandbox -------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Any:
    with Sandbox(SandboxConfig()) as running:
        yield running


def test_every_example_lead_reads_back_equal_after_a_put(sandbox: Sandbox) -> None:
    load = load_tree(REPO / "leads")
    assert not load.problems
    with httpx.Client(base_url=sandbox.url, headers={"Authorization": "Bearer t"}) as http:
        for doc in load.leads:
            body = effective(doc.lead)
            assert http.put(f"/v1.0/leads/{doc.lead_id}", json=body).status_code == 200
            raw = http.get(f"/v1.0/leads/{doc.lead_id}").json()["lead"]
            want = comparable(body)
            live = live_view(raw, want)
            readable = {
                name: value
                for name, value in want.items()
                if name not in live.unreadable
                and not (
                    isinstance(value, dict) and name in {u.split(".")[0] for u in live.unreadable}
                )
            }
            for name, value in readable.items():
                assert live.values.get(name) == value, (doc.file, name)
            assert live.unreadable <= {
                "leadTransaction",
                "property.priceMin",
                "property.priceMax",
                "clearAllTags",
            }


def test_an_imported_lead_round_trips_every_readable_field(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    full = load_tree(REPO / "leads").leads[0].lead
    with httpx.Client(base_url=sandbox.url, headers={"Authorization": "Bearer t"}) as http:
        http.put(f"/v1.0/leads/{full.leadId}", json=effective(full))
        raw = http.get(f"/v1.0/leads/{full.leadId}").json()["lead"]
    values, notes = import_values(raw)
    assert notes == []
    adopted = comparable(effective(Lead.model_validate(values)))
    assert live_view(raw, adopted).values == adopted
