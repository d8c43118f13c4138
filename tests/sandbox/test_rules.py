"""What the sandbox refuses in a PUT body, as the vendor documents it.

Line numbers are those of `reference/lofty-update-lead.txt` (the vendor's Update Lead page);
"OpenAPI" means `reference/lofty-openapi-leads.json`.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.sandbox import Sandbox, check_update
from reconciler.sandbox.rules import cut, utf16_len
from tests.sandbox.helpers import put, read
from tests.vendor import REPO


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"firstNme": "Bob"}, "firstNme"),  # unknown top-level key
        ({"firstName": 5}, "firstName"),  # schema type
        ({"assignedUserId": "10"}, "assignedUserId"),
        ({"assignedUserId": 2**63}, "assignedUserId"),  # int64 range
        ({"emails": "a@example.com"}, "emails"),
        ({"phones": ["+1" + "5" * 19]}, "phones[0]"),  # line 237: no more than 20 characters
        ({"phones": ["+1415555123\N{GRINNING FACE}" + "4" * 8]}, "phones[0]"),  # 21 UTF-16 units
        ({"stage": "S" * 20}, "stage"),  # line 318: less than 20 characters
        ({"stage": "S" * 18 + "\N{GRINNING FACE}"}, "stage"),  # 20 UTF-16 units
        ({"birthday": "2001-06-05"}, "birthday"),  # line 380: MMM d, yyyy
        ({"birthday": "Feb 30, 2001"}, "birthday"),
        ({"buyingTimeFrame": "soon"}, "buyingTimeFrame"),  # line 389
        ({"sellingTimeFrame": "1-2"}, "sellingTimeFrame"),  # line 434
        ({"preQual": "yes"}, "preQual"),  # line 398: Yes or No
        ({"withListingAgent": True}, "withListingAgent"),
        ({"language": "EN"}, "language"),  # line 475
        ({"ownershipScope": "TEAM, OFFICE"}, "ownershipScope"),
        ({"ownershipScope": "OFFICE"}, "ownershipId"),  # line 489: needs ownershipId
        ({"leadTypes": [2, 3]}, "leadTypes[1]"),  # line 244
        (
            {"customAttributeList": [{"attributeName": "a", "attributeType": "txt", "value": "1"}]},
            "customAttributeList[0].attributeType",
        ),
        ({"customAttributeList": [{"attributeName": "a", "attributeType": "text"}]}, None),
        ({"leadFamilyMemberList": [{"firstName": str(i)} for i in range(5)]}, None),  # line 470
        ({"leadFamilyMemberList": [{"lastName": "Li"}]}, "leadFamilyMemberList[0]"),
        (
            {"leadFamilyMemberList": [{"firstName": "Jo", "phones": ["1" * 21]}]},
            "leadFamilyMemberList[0].phones[0]",
        ),
        (
            {"leadFamilyMemberList": [{"firstName": "Jo", "birthday": "June 5, 2001"}]},
            "leadFamilyMemberList[0].birthday",
        ),
        ({"inquiry": {"priceMin": 10, "priceMax": 9}}, "inquiry.priceMin"),
        ({"inquiry": {"bedroomsMin": 3, "bedroomsMax": 2}}, "inquiry.bedroomsMin"),
        ({"inquiry": {"createTime": "yesterday"}}, "inquiry.createTime"),  # format: date-time
        ({"property": {"city": "Austin", "priceMin": 2, "priceMax": 1}}, "property.priceMin"),
        # OpenAPI LeadTransaction.transactionName: "Must not be blank and must not contain '<'"
        ({"leadTransaction": {"transactionName": "  "}}, "leadTransaction.transactionName"),
        ({"leadTransaction": {"transactionName": "<b>x</b>"}}, "leadTransaction.transactionName"),
        ({"leadTransaction": {"transactionType": "Purchase"}}, "leadTransaction"),
        (["not", "an", "object"], "body"),
    ],
)
def test_invalid_bodies_get_400_invalid_parameter(
    client: httpx.Client, sandbox: Sandbox, body: Any, field: str | None
) -> None:
    response = put(client, 11, body)
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == 20012
    assert error["message"].startswith("INVALID_PARAMETER: ")
    if field is not None:
        assert error["message"].startswith(f"INVALID_PARAMETER: {field}: ")
    assert sandbox.lead(11) is None  # nothing stored from a refused body


def test_unknown_field_message_suggests_the_real_name(client: httpx.Client) -> None:
    message = put(client, 1, {"tagAdd": ["x"]}).json()["message"]
    assert message == "INVALID_PARAMETER: tagAdd: unknown field (did you mean tagsAdd?)"


def test_documented_values_are_accepted(client: httpx.Client) -> None:
    body = {
        "firstName": "Bob",
        "phones": ["+14155551234", "+1415555123\N{GRINNING FACE}" + "4" * 7],  # 20 units
        "leadTypes": [-1, 2, 9],
        "stage": "S" * 17 + "\N{GRINNING FACE}",  # 19 UTF-16 units
        "birthday": "Jun 5, 2001",
        "buyingTimeFrame": "Just Looking",
        "sellingTimeFrame": "12+",
        "preQual": "No",
        "language": "zh-TW",
        "ownershipScope": "PERSONAL",
        "ownershipId": 77,
        "customAttributeList": [{"attributeName": "a", "attributeType": "currency", "value": "1"}],
        "leadFamilyMemberList": [
            {"firstName": str(i), "birthday": "Dec 31, 1999"} for i in range(4)
        ],
        "inquiry": {
            "priceMin": 5,
            "priceMax": 5,
            "bedroomsMin": 1,
            "createTime": "2023-11-07T05:31:56Z",
        },
        "property": {"zipCode": "20500", "priceMin": 1, "priceMax": 2},
        "leadTransaction": {"transactionName": "123 Main St", "transactionType": "Listing"},
    }
    response = put(client, 12, body)
    assert response.status_code == 200, response.text
    lead = read(client, 12)
    assert lead["language"] == "zh-TW" and lead["stage"] == body["stage"]


def test_birthday_with_a_padded_day_is_accepted(client: httpx.Client) -> None:
    """Line 380 gives the pattern `MMM d, yyyy`; Java's parser reads `Jun 05, 2001` with it."""
    assert put(client, 12, {"birthday": "Jun 05, 2001"}).status_code == 200


def test_invalid_lead_id_gets_400(client: httpx.Client) -> None:
    """Line 183: leadId "Required range: x >= 1" (an int64)."""
    for lead_id in ("0", "abc", "-4", str(2**63)):
        response = put(client, lead_id, {"source": "x"})
        assert response.status_code == 400, lead_id
        assert response.json()["code"] == 20012


def test_malformed_json_gets_400(client: httpx.Client) -> None:
    response = client.put("/v1.0/leads/1", content=b"{not json", headers={"Content-Type": "x"})
    assert response.status_code == 400
    assert response.json()["code"] == 20012
    nan = client.put("/v1.0/leads/1", content=b'{"inquiry": {"priceMin": NaN}}')
    assert nan.status_code == 400 and "NaN is not valid JSON" in nan.json()["message"]


def test_a_number_too_large_for_a_double_is_400(client: httpx.Client, sandbox: Sandbox) -> None:
    """`1e999` parses as infinity, which no JSON answer could carry back."""
    body = b'{"property": {"city": "Austin", "bathrooms": 1e999}}'
    response = client.put("/v1.0/leads/1", content=body)
    assert response.status_code == 400
    assert response.json()["message"] == (
        "INVALID_PARAMETER: property.bathrooms: must be a finite number"
    )
    assert sandbox.lead(1) is None


@pytest.mark.parametrize(
    "block",
    [{}, {"city": "", "state": "  ", "county": "Travis"}, {"streetAddress": "", "price": 1}],
)
def test_property_without_address_is_200057(
    client: httpx.Client, sandbox: Sandbox, block: dict[str, Any]
) -> None:
    """OpenAPI, Update Lead: "at least one of city, state, zipCode, streetAddress must be
    non-blank; otherwise 200057 PROPERTY_ADDRESS_EMPTY is returned (the lead update is also
    aborted)"."""
    response = put(client, 3, {"firstName": "Al", "property": block})
    assert response.status_code == 400
    assert response.json() == {"code": 200057, "message": "PROPERTY_ADDRESS_EMPTY"}
    assert sandbox.lead(3) is None  # the lead update is aborted too


def test_transaction_type_outside_the_enum_is_accepted() -> None:
    """OpenAPI LeadTransaction.transactionType: values outside the pipeline "fall back silently
    to the first pipeline", so Lofty accepts them (the store applies the fallback)."""
    body = {"leadTransaction": {"transactionName": "1 Main St", "transactionType": "Sale"}}
    assert check_update(body) is None


@pytest.mark.parametrize(
    ("text", "limit", "kept"),
    [
        ("F" * 31, 30, "F" * 30),
        ("F" * 30, 30, "F" * 30),
        ("F" * 28 + "\N{GRINNING FACE}", 30, "F" * 28 + "\N{GRINNING FACE}"),  # 30 units
        ("F" * 29 + "\N{GRINNING FACE}", 30, "F" * 29),  # the pair is not split
        ("\N{GRINNING FACE}" * 16, 30, "\N{GRINNING FACE}" * 15),
        ("é" * 31, 30, "é" * 30),  # one unit each, like any BMP character
    ],
)
def test_cut_counts_utf16_units_and_never_splits_a_pair(text: str, limit: int, kept: str) -> None:
    """Line 159 (silent truncation), counted as Lofty's Java server counts String.length()."""
    assert cut(text, limit) == kept
    assert utf16_len(kept) <= limit


def test_the_sandbox_never_imports_the_model() -> None:
    """The rules are an independent copy, so a mistake in reconciler/model/ is caught by the
    sandbox instead of agreed with."""
    imported = set()
    for path in (REPO / "reconciler" / "sandbox").glob("*.py"):
        for node in ast.walk(ast.parse(Path(path).read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    assert "reconciler" not in imported
    assert not {
        name
        for name in imported
        if name.startswith(("reconciler.model", "reconciler.loader", "reconciler.plan"))
    }


def test_packaged_openapi_file_is_the_vendor_file() -> None:
    vendor = REPO.parent / "shared/reference/lofty-openapi-leads.json"
    if not vendor.exists():
        pytest.skip("shared/reference is not beside this clone")
    packaged = REPO / "reconciler/data/lofty-openapi-leads.json"
    assert packaged.read_bytes() == vendor.read_bytes()
    assert "EditLeadRequest" in json.loads(packaged.read_text())["components"]["schemas"]
