"""How an accepted PUT changes a lead: the vendor's documented behaviour, not our model's.

Line numbers are those of `reference/lofty-update-lead.txt` (the vendor's Update Lead page);
"OpenAPI" means `reference/lofty-openapi-leads.json`; "DESIGN" the product contract.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from reconciler.sandbox import PIPELINE, Sandbox
from tests.sandbox.helpers import put, read, tag_names

EMOJI = "\N{GRINNING FACE}"  # 2 UTF-16 code units


def test_put_answers_the_lead_id_and_get_reads_the_fields_back(client: httpx.Client) -> None:
    """OpenAPI, Update Lead 200: `LeadIdResponse` `{"leadId": ...}`."""
    assert put(client, 42, {"firstName": "Ann", "emails": ["ann@example.com"]}).json() == {
        "leadId": 42
    }
    assert put(client, 42, {"lastName": "Lee"}).status_code == 200
    lead = read(client, 42)
    assert (lead["firstName"], lead["lastName"], lead["emails"]) == (
        "Ann",
        "Lee",
        ["ann@example.com"],
    )


def test_silent_truncation(client: httpx.Client) -> None:
    """Line 159: "firstName, lastName, groups, segments are truncated to 30 characters; tags /
    tagsAdd to 64 characters. The API returns success with no error." """
    response = put(
        client,
        5,
        {
            "firstName": "F" * 35,
            "lastName": "L" * 31,
            "segments": ["S" * 40, "short"],
            "groups": ["G" * 33],
            "tags": ["T" * 70],
            "tagsAdd": ["A" * 65],
        },
    )
    assert response.status_code == 200
    lead = read(client, 5)
    assert lead["firstName"] == "F" * 30
    assert lead["lastName"] == "L" * 30
    assert lead["segments"] == ["S" * 30, "short"]
    assert lead["groups"] == ["G" * 30]
    assert tag_names(lead) == ["T" * 64, "A" * 64]


def test_truncation_counts_utf16_units_like_lofty_and_keeps_pairs_whole(
    client: httpx.Client,
) -> None:
    """Line 159, counted as Lofty's Java server counts (DESIGN, "Semantics of a plan": "in
    UTF-16 code units (an emoji is 2), and a cut never splits a pair")."""
    body = {
        "firstName": "F" * 29 + EMOJI,  # 31 units: the emoji does not fit
        "lastName": "L" * 28 + EMOJI + "x",  # 31 units: the emoji fits, the x does not
        "segments": [EMOJI * 16],
        "tags": ["T" * 63 + EMOJI],
    }
    assert put(client, 6, body).status_code == 200
    lead = read(client, 6)
    assert lead["firstName"] == "F" * 29
    assert lead["lastName"] == "L" * 28 + EMOJI
    assert lead["segments"] == [EMOJI * 15]
    assert tag_names(lead) == ["T" * 63]


def test_tag_operations(client: httpx.Client) -> None:
    """Line 342 (`tags`: "All existing tags will be updated"), line 349 (`tagsAdd`: "All
    existing tags will be retained"), OpenAPI EditLeadRequest.tagsRemove ("Only tags that are
    already on the lead are affected ... matched literally") and .clearAllTags ("Takes
    precedence over tags / tagsAdd / tagsRemove")."""

    def tags_after(body: dict[str, Any]) -> list[str]:
        assert put(client, 9, body).status_code == 200
        return tag_names(read(client, 9))

    assert tags_after({"tags": ["a", "b", "a"]}) == ["a", "b"]
    assert tags_after({"tagsAdd": ["c", "a"]}) == ["a", "b", "c"]
    assert tags_after({"tags": ["x", "y", "*"]}) == ["x", "y", "*"]  # tags replaces the set
    assert tags_after({"tagsRemove": ["x", "*", "never-there"]}) == ["y"]
    # tagsRemove only touches tags the lead had before; a tag added in the same request stays.
    assert tags_after({"tagsAdd": ["new"], "tagsRemove": ["new", "y"]}) == ["new"]
    assert tags_after({"clearAllTags": True, "tagsAdd": ["z"]}) == []
    assert tags_after({"tags": ["k"], "clearAllTags": False}) == ["k"]
    assert tags_after({"firstName": "No tag fields"}) == ["k"]  # omitted: tags unchanged


def test_tags_are_objects_that_keep_their_id_and_time(client: httpx.Client) -> None:
    """OpenAPI LeadResponse.tags: `UserLeadTagVo` (leadId, tagId, createTime, tagName, ...);
    the team's tag has one id on every lead, and a tag kept by a later PUT keeps its time."""
    put(client, 20, {"tags": ["Hot Lead", "Zillow"]})
    put(client, 21, {"tags": ["Zillow"]})
    first = read(client, 20)["tags"]
    put(client, 20, {"tagsAdd": ["Referral"]})
    again = read(client, 20)["tags"]
    assert again[:2] == first
    assert [t["leadId"] for t in again] == [20, 20, 20]
    assert read(client, 21)["tags"][0]["tagId"] == first[1]["tagId"]
    assert len({t["tagId"] for t in again}) == 3


def test_a_nested_key_the_put_omits_is_kept(client: httpx.Client) -> None:
    """DESIGN, "Semantics of a plan": "Lofty keeps what a PUT omits", inside nested objects too
    (OpenAPI, Update Lead: a property block "merge[s] with an existing property")."""
    put(client, 7, {"inquiry": {"priceMin": 1, "priceMax": 5, "propertyType": ["Condo"]}})
    put(client, 7, {"inquiry": {"bedroomsMin": 2, "propertyType": ["Townhouse"]}})
    put(client, 7, {"property": {"city": "Austin", "price": 100, "bedrooms": 3}})
    put(client, 7, {"property": {"city": "Austin", "price": 200}})
    lead = read(client, 7)
    inquiry = lead["leadInquiry"]
    assert (inquiry["priceMin"], inquiry["priceMax"], inquiry["bedroomsMin"]) == (1, 5, 2)
    assert inquiry["propertyType"] == ["Townhouse"]  # a list inside is replaced whole
    assert [(p["price"], p["bedrooms"]) for p in lead["leadPropertyList"]] == [(200, 3)]


def test_a_property_without_id_and_a_new_address_creates_another_record(
    client: httpx.Client,
) -> None:
    """OpenAPI, Update Lead: "property.id omitted or <= 0 — merge with an existing property by
    address; if no match, create a new property record"."""
    put(client, 8, {"property": {"streetAddress": "1 Main St", "city": "Austin", "bedrooms": 2}})
    put(client, 8, {"property": {"streetAddress": " 1  MAIN st", "city": "austin", "floors": 1}})
    assert len(read(client, 8)["leadPropertyList"]) == 1  # the same address, merged
    put(client, 8, {"property": {"streetAddress": "9 Oak Ave", "city": "Austin", "id": 0}})
    records = read(client, 8)["leadPropertyList"]
    assert [r["streetAddress"] for r in records] == [" 1  MAIN st", "9 Oak Ave"]
    assert records[0]["bedrooms"] == 2 and records[0]["floors"] == 1
    assert records[0]["id"] != records[1]["id"]
    assert {r["leadUserId"] for r in records} == {read(client, 8)["leadUserId"]}


def test_a_property_with_id_updates_that_record(client: httpx.Client) -> None:
    """OpenAPI, Update Lead: "property.id > 0 — update the named property in place. The
    property must belong to this lead ...; otherwise ... 200108 LEAD_PROPERTY_NOT_EXIST"."""
    put(client, 10, {"property": {"streetAddress": "1 Main St", "city": "Austin"}})
    put(client, 11, {"property": {"streetAddress": "5 Elm Ct", "city": "Denver"}})
    record_id = read(client, 10)["leadPropertyList"][0]["id"]
    other_id = read(client, 11)["leadPropertyList"][0]["id"]

    moved = put(client, 10, {"property": {"id": record_id, "streetAddress": "2 Main St"}})
    assert moved.status_code == 200
    records = read(client, 10)["leadPropertyList"]
    assert [(r["id"], r["streetAddress"], r["city"]) for r in records] == [
        (record_id, "2 Main St", "Austin")
    ]

    before = read(client, 10)
    refused = put(client, 10, {"firstName": "X", "property": {"id": other_id, "city": "Reno"}})
    assert refused.status_code == 404
    assert refused.json() == {"code": 200108, "message": "LEAD_PROPERTY_NOT_EXIST"}
    assert read(client, 10) == before  # the whole update is refused


def test_transaction_type_and_status_fall_back_to_the_pipeline_defaults(
    client: httpx.Client, sandbox: Sandbox
) -> None:
    """OpenAPI LeadTransaction.transactionType: "Values not matching the team's configured
    pipeline types fall back silently to the first pipeline"; .transactionStatus: "unmatched
    values silently fall back to the first status of that type"."""
    assert list(PIPELINE)[0] == "Purchase" and PIPELINE["Purchase"][0] == "Pre-contract"

    def transaction_after(block: dict[str, Any]) -> tuple[str, str]:
        assert put(client, 30, {"leadTransaction": block}).status_code == 200
        record = sandbox.record(30)
        assert record is not None
        stored = record["leadTransaction"]
        return stored["transactionType"], stored["transactionStatus"]

    assert transaction_after({"transactionName": "1 Main St"}) == ("Purchase", "Pre-contract")
    name = {"transactionName": "1 Main St"}
    assert transaction_after({**name, "transactionType": "Sale"}) == ("Purchase", "Pre-contract")
    assert transaction_after({**name, "transactionType": "listing"}) == ("Purchase", "Pre-contract")
    assert transaction_after({**name, "transactionType": "Listing"}) == ("Listing", "Pre-listing")
    assert transaction_after({**name, "transactionStatus": "Closed"}) == ("Listing", "Closed")
    assert transaction_after({**name, "transactionStatus": "Escrow"}) == ("Listing", "Pre-listing")
    # A type whose statuses lack the stored one falls back to its own first status.
    assert transaction_after({**name, "transactionType": "Lease"}) == ("Lease", "Pre-lease")


def test_transaction_keys_the_server_owns_are_ignored(
    client: httpx.Client, sandbox: Sandbox
) -> None:
    """OpenAPI LeadTransaction: transactionId/created/updated are read-only, leadName and
    assignedAgent "Ignored if supplied in a request body"."""
    body = {
        "transactionName": "1 Main St",
        "transactionId": 1,
        "created": 5,
        "leadName": "Not Me",
        "assignedAgent": 3,
        "homePrice": 500000,
    }
    assert put(client, 31, {"leadTransaction": body}).status_code == 200
    record = sandbox.record(31)
    assert record is not None
    stored = record["leadTransaction"]
    assert stored["transactionId"] != 1 and stored["created"] != 5
    assert "leadName" not in stored and "assignedAgent" not in stored
    assert stored["homePrice"] == 500000


@pytest.mark.parametrize(
    "field",
    ["buyingTimeFrame", "preQual", "language", "birthday", "firstName", "source", "referredBy"],
)
def test_an_empty_string_clears_a_string_field(client: httpx.Client, field: str) -> None:
    """DESIGN, "Lead files": "'' clears a string field in Lofty, enum-like ones
    (buyingTimeFrame, the Yes/No fields, language, ...) and birthday included"."""
    values = {
        "buyingTimeFrame": "6-12",
        "preQual": "Yes",
        "language": "en",
        "birthday": "Jun 5, 2001",
        "firstName": "Ann",
        "source": "Zillow",
        "referredBy": "Jeremy Kelly",
    }
    assert put(client, 40, {field: values[field]}).status_code == 200
    assert read(client, 40)[field] == values[field]
    assert put(client, 40, {field: ""}).status_code == 200
    assert read(client, 40)[field] == ""


def test_an_empty_list_clears_a_list(client: httpx.Client) -> None:
    """DESIGN, "Lead files": "[] clears a list"."""
    put(client, 41, {"emails": ["a@example.com"], "segments": ["VIP"], "leadTypes": [2]})
    put(client, 41, {"emails": [], "segments": [], "leadTypes": []})
    lead = read(client, 41)
    assert (lead["emails"], lead["segments"], lead["leadTypes"]) == ([], [], [])


def test_write_only_and_write_side_fields_are_held_but_never_shown(
    client: httpx.Client, sandbox: Sandbox
) -> None:
    """OpenAPI LeadProperty.priceMin/priceMax are `writeOnly`; LeadResponse has no
    leadTransaction, tagsAdd/tagsRemove/clearAllTags, or isHidden (it says hiddenFlag)."""
    body = {
        "isHidden": True,
        "tagsAdd": ["x"],
        "tagsRemove": ["y"],
        "clearAllTags": False,
        "property": {"city": "Austin", "priceMin": 1, "priceMax": 2},
        "leadTransaction": {"transactionName": "1 Main St"},
        "customAttributeList": [
            {"attributeName": "Budget", "attributeType": "currency", "value": "9"}
        ],
    }
    assert put(client, 50, body).status_code == 200
    lead = read(client, 50)  # validated against LeadResponse, closed, write-only keys removed
    for hidden in ("isHidden", "tagsAdd", "tagsRemove", "clearAllTags", "leadTransaction"):
        assert hidden not in lead
    assert lead["hiddenFlag"] is True
    assert "priceMin" not in lead["leadPropertyList"][0]
    assert lead["customAttributes"] == body["customAttributeList"]
    record = sandbox.record(50)
    assert record is not None
    assert record["leadPropertyList"][0]["priceMin"] == 1
    assert record["leadTransaction"]["transactionName"] == "1 Main St"
