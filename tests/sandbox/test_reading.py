"""Reading leads: `GET /v1.0/leads/{leadId}` and `GET /v1.0/leads` in the vendor's shape.

"OpenAPI" means `reference/lofty-openapi-leads.json`. Every 200 body is validated against the
vendor's `LeadResponse` / `LeadListResponse`, closed to keys the vendor does not list.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from reconciler.sandbox import Sandbox, SandboxConfig
from reconciler.sandbox.store import RESPONSE_KEYS
from tests.sandbox.helpers import BEARER, assert_vendor_shape, listing, put, read, tag_names
from tests.vendor import openapi


def test_the_sandbox_knows_every_lead_response_key_in_the_vendor_order() -> None:
    assert tuple(openapi()["components"]["schemas"]["LeadResponse"]["properties"]) == RESPONSE_KEYS


def test_a_new_lead_shows_lofty_defaults_and_server_owned_keys(client: httpx.Client) -> None:
    """OpenAPI, Get Lead: "The response is wrapped under the 'lead' key"; LeadResponse."""
    lead = read(client, 3)
    assert lead["leadId"] == 3
    for key in ("leadUserId", "leadSource", "stageId", "score", "teamId"):
        assert isinstance(lead[key], int), key
    for key in ("createTime", "lastUpdateTime"):
        datetime.fromisoformat(lead[key])
    assert (lead["stage"], lead["source"]) == ("New", "Sandbox")
    assert (lead["tags"], lead["leadPropertyList"], lead["customAttributes"]) == ([], [], [])
    assert lead["hiddenFlag"] is False
    inquiry = lead["leadInquiry"]
    assert inquiry["defaultValue"] is True and inquiry["leadUserId"] == lead["leadUserId"]
    assert "assignTime" not in lead and "firstName" not in lead


def test_a_lead_with_every_field_reads_back_in_the_vendor_shape(client: httpx.Client) -> None:
    body = {
        "firstName": "Bob",
        "lastName": "Li",
        "emails": ["jane.doe@example.com"],
        "phones": ["+14155551234", "+12125559876"],
        "leadTypes": [2, 5],
        "assignedUserId": 10000000514,
        "isHidden": False,
        "stage": "Pending",
        "segments": ["First-Time Buyers"],
        "tags": ["Hot Lead"],
        "source": "Open House",
        "inquiry": {"priceMin": 1, "priceMax": 10, "locations": [{"city": "Austin"}]},
        "property": {"city": "New York", "zipCode": "25401", "priceMin": 1, "priceMax": 2},
        "birthday": "Jun 5, 2001",
        "ownershipScope": "OFFICE",
        "ownershipId": 123,
        "leadFamilyMemberList": [{"firstName": "Ann", "phones": ["+14155550000"]}],
    }
    assert put(client, 60, body).status_code == 200
    lead = read(client, 60)
    assert lead["phoneStatuses"] == [2, 2]
    assert lead["assignedUserId"] == 10000000514 and "assignTime" in lead
    assert lead["leadInquiry"]["locations"] == [{"city": "Austin"}]
    assert lead["leadInquiry"]["defaultValue"] is False
    assert lead["leadInquiry"]["modifyByAgent"] is False
    assert lead["leadFamilyMemberList"] == body["leadFamilyMemberList"]
    assert tag_names(lead) == ["Hot Lead"]
    assert list(lead) == [key for key in RESPONSE_KEYS if key in lead]  # the vendor's order


def test_last_update_time_moves_with_every_change(client: httpx.Client, sandbox: Sandbox) -> None:
    """OpenAPI LeadResponse.lastUpdateTime: "The update time of the lead"."""
    times = [read(client, 70)["lastUpdateTime"]]
    for _ in range(3):  # faster than the clock's resolution: still a new time each change
        put(client, 70, {"firstName": "Same"})
        times.append(read(client, 70)["lastUpdateTime"])
    sandbox.agent_edit(70, {"stage": "Nurture"})
    times.append(read(client, 70)["lastUpdateTime"])
    assert times == sorted(times) and len(set(times)) == len(times)
    assert read(client, 70)["createTime"] == times[0]


def test_unknown_lead_is_404_lead_not_exist(tmp_path: Any) -> None:
    """OpenAPI, Get Lead 404: "Lead does not exist or is not accessible (20006 LEAD_NOT_EXIST)"."""
    seed = tmp_path / "seed.json"
    seed.write_text("[1]")
    with (
        Sandbox(SandboxConfig(seed_file=seed)) as sandbox,
        httpx.Client(base_url=sandbox.url, headers=BEARER) as client,
    ):
        response = client.get("/v1.0/leads/2")
        assert response.status_code == 404
        assert response.json() == {"code": 20006, "message": "LEAD_NOT_EXIST"}
        assert client.get("/v1.0/leads/2", params={"withTrash": "true"}).status_code == 404
        assert client.get("/v1.0/leads/1", params={"withTrash": "false"}).status_code == 200


def test_a_deleted_lead_is_404_unless_with_trash(client: httpx.Client, sandbox: Sandbox) -> None:
    """OpenAPI, Get Lead: "By default, trashed leads are not returned. Pass withTrash=true to
    include them"; Delete Lead "Moves a lead to the trash"."""
    put(client, 80, {"firstName": "Gone"})
    sandbox.delete_lead(80)
    assert client.get("/v1.0/leads/80").status_code == 404
    assert put(client, 80, {"firstName": "Back"}).status_code == 404
    trashed = client.get("/v1.0/leads/80", params={"withTrash": "true"})
    assert trashed.status_code == 200 and trashed.json()["lead"]["firstName"] == "Gone"
    assert_vendor_shape(trashed.json()["lead"], "LeadResponse")
    refused = client.get("/v1.0/leads/80", params={"withTrash": "maybe"})
    assert refused.status_code == 400 and refused.json()["code"] == 20012
    assert sandbox.lead(80) is None


# --- the list endpoint ----------------------------------------------------------------------------


@pytest.fixture
def crowd() -> Iterator[tuple[Sandbox, httpx.Client]]:
    """25 leads 1..25: stage A for odd ids, B for even; tags by divisibility; no short pages."""
    config = SandboxConfig(short_page_rate=0.0, random_seed=1)
    with Sandbox(config) as sandbox, httpx.Client(base_url=sandbox.url, headers=BEARER) as http:
        for lead_id in range(1, 26):
            tags = [name for name, n in (("two", 2), ("three", 3), ("five", 5)) if lead_id % n == 0]
            body: dict[str, Any] = {"stage": "A" if lead_id % 2 else "B", "tags": tags}
            body["source"] = f"S{lead_id % 4}"
            if lead_id % 5 == 0:
                body |= {"segments": ["Luxury"], "assignedUserId": 7}
            assert put(http, lead_id, body).status_code == 200
        yield sandbox, http


def _ids(body: dict[str, Any]) -> list[int]:
    return [lead["leadId"] for lead in body["leads"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"stage": "A"}, list(range(1, 26, 2))),
        ({"stage": "A,B"}, list(range(1, 26))),  # "pipeline stage names": any of them
        ({"source": "S1"}, [1, 5, 9, 13, 17, 21, 25]),
        ({"segments": "Luxury, Nope"}, [5, 10, 15, 20, 25]),
        ({"anyTags": "three,five"}, [3, 5, 6, 9, 10, 12, 15, 18, 20, 21, 24, 25]),
        ({"allTags": "two,three"}, [6, 12, 18, 24]),
        ({"allTags": "two", "stage": "A"}, []),  # filters combine with AND
        ({"assignedUserId": "7", "anyTags": "two"}, [10, 20]),
    ],
)
def test_list_filters(
    crowd: tuple[Sandbox, httpx.Client], params: dict[str, str], expected: list[int]
) -> None:
    """OpenAPI, List Leads: "Multiple filters are combined with AND logic; multi-value filters
    within a single parameter (e.g. allTags, anyTags) apply their documented AND / OR"."""
    _, client = crowd
    body = listing(client, limit=100, offset=0, **params)
    assert _ids(body) == expected
    assert body["_metadata"]["total"] == len(expected)


def test_list_pages_by_offset(crowd: tuple[Sandbox, httpx.Client]) -> None:
    """OpenAPI, List Leads: "Use offset for offset-based pagination"; MetaData."""
    _, client = crowd
    first = listing(client, limit=10, offset=0)
    assert _ids(first) == list(range(1, 11))
    assert first["_metadata"] == {"collection": "leads", "limit": 10, "offset": 0, "total": 25}
    assert _ids(listing(client, limit=10, offset=20)) == list(range(21, 26))
    assert listing(client, limit=10, offset=30)["leads"] == []


def test_list_pages_by_scroll_id_over_a_snapshot(crowd: tuple[Sandbox, httpx.Client]) -> None:
    """OpenAPI, List Leads: "scrollId for cursor-based pagination"; MetaData.scrollId."""
    sandbox, client = crowd
    first = listing(client, limit=10)
    assert _ids(first) == list(range(1, 11))
    scroll_id = first["_metadata"]["scrollId"]
    assert _ids(listing(client, scrollId=scroll_id)) == list(range(11, 21))
    assert _ids(listing(client, scrollId=scroll_id)) == list(range(11, 21))  # a retry is safe
    put(client, 99, {"stage": "A"})  # created after the scroll began: not in its snapshot
    sandbox.delete_lead(15)  # trashed since: passed over
    seen: list[int] = _ids(first)
    body = first
    while body["leads"]:
        body = listing(client, scrollId=body["_metadata"]["scrollId"])
        seen += _ids(body)
    assert seen == [i for i in range(1, 26) if i != 15]
    assert "scrollId" not in body["_metadata"] and body["_metadata"]["total"] == 25


def test_unknown_scroll_id_is_400(client: httpx.Client) -> None:
    for scroll_id in ("nope", "MTox"):  # not base64 of anything; a scroll that never was
        response = client.get("/v1.0/leads", params={"scrollId": scroll_id})
        assert response.status_code == 400
        assert response.json()["code"] == 20012


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "1.5"])
def test_limit_outside_1_to_100_is_400_limit_not_valid(client: httpx.Client, limit: str) -> None:
    """OpenAPI, List Leads: "limit must be in [1, 100]; otherwise 400 LIMIT_NOT_VALID"."""
    response = client.get("/v1.0/leads", params={"limit": limit})
    assert response.status_code == 400
    assert response.json() == {"code": 20012, "message": "LIMIT_NOT_VALID"}


def test_bad_offset_or_user_id_is_400(client: httpx.Client) -> None:
    for params in ({"offset": "-1"}, {"offset": "x"}, {"assignedUserId": "me"}):
        response = client.get("/v1.0/leads", params=params)
        assert response.status_code == 400, params
        assert response.json()["code"] == 20012


def test_return_fields_narrow_each_lead(crowd: tuple[Sandbox, httpx.Client]) -> None:
    _, client = crowd
    body = listing(client, limit=3, offset=0, returnFields="stage,tags,notAField")
    assert [sorted(lead) for lead in body["leads"]] == [["leadId", "stage", "tags"]] * 3


def test_metadata_key_is_switchable_to_the_schema_name() -> None:
    """Lofty answers `_metadata`; the vendor schema names it `get_metadata`."""
    config = SandboxConfig(metadata_key="get_metadata")
    with Sandbox(config) as sandbox, httpx.Client(base_url=sandbox.url, headers=BEARER) as client:
        put(client, 1, {})
        body = listing(client, metadata_key="get_metadata")
    assert set(body) == {"get_metadata", "leads"}


def test_pages_are_sometimes_short_before_the_end_and_the_same_on_every_run() -> None:
    """DESIGN, "Reading Lofty": "never assume a page is full"."""

    def page_sizes() -> list[int]:
        config = SandboxConfig(generate=120, random_seed=5, short_page_rate=0.5)
        with Sandbox(config) as sandbox, httpx.Client(base_url=sandbox.url, headers=BEARER) as http:
            sizes, seen = [], []
            body = listing(http, limit=20)
            while body["leads"]:
                sizes.append(len(body["leads"]))
                seen += _ids(body)
                body = listing(http, scrollId=body["_metadata"]["scrollId"])
            assert len(seen) == len(set(seen)) == 120
            offset_sizes, offset = [], 0
            while page := listing(http, limit=20, offset=offset)["leads"]:
                offset_sizes.append(len(page))
                offset += len(page)
            assert offset == 120 and any(size < 20 for size in offset_sizes[:-1])
        return sizes

    sizes = page_sizes()
    assert any(size < 20 for size in sizes[:-1])  # a short page that was not the last
    assert page_sizes() == sizes


def test_list_bodies_are_json_with_every_lead_in_the_vendor_shape() -> None:
    with (
        Sandbox(SandboxConfig(generate=30, random_seed=2)) as sandbox,
        httpx.Client(base_url=sandbox.url, headers=BEARER) as client,
    ):
        body = listing(client, limit=100, offset=0)
    assert len(body["leads"]) <= 30
    for lead in body["leads"]:
        assert_vendor_shape(lead, "LeadResponse")
    json.dumps(body)
