"""The sandbox behaves like Lofty's Update Lead endpoint, over real HTTP on loopback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.sandbox import Sandbox, SandboxConfig

REPO = Path(__file__).resolve().parents[1]
BEARER = {"Authorization": "Bearer secret-token"}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(credentials=frozenset({"secret-token", "api-key"}))) as running:
        yield running


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, headers=BEARER, timeout=5) as http:
        yield http


def put(client: httpx.Client, lead_id: int | str, body: Any) -> httpx.Response:
    return client.put(f"/v1.0/leads/{lead_id}", json=body)


# --- auth ---------------------------------------------------------------------------------------


def test_both_auth_schemes_are_accepted(sandbox: Sandbox) -> None:
    for header in ("Bearer secret-token", "token api-key"):
        response = httpx.put(
            f"{sandbox.url}/v1.0/leads/1", json={"source": "x"}, headers={"Authorization": header}
        )
        assert response.status_code == 200, header
        assert response.json() == {"leadId": 1}


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong", "Basic secret-token", "token", "Bearer", "api-key"]
)
def test_missing_or_wrong_credentials_get_401_with_a_bare_string(
    sandbox: Sandbox, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = httpx.put(f"{sandbox.url}/v1.0/leads/1", json={"source": "x"}, headers=headers)
    assert response.status_code == 401
    assert response.json() == "Unauthorized"
    assert "X-RateLimit-Remaining" in response.headers
    assert sandbox.lead(1) is None


def test_without_configured_credentials_any_secret_is_accepted() -> None:
    with Sandbox(SandboxConfig()) as sandbox:
        ok = httpx.get(f"{sandbox.url}/v1.0/leads/3", headers={"Authorization": "token anything"})
        refused = httpx.get(f"{sandbox.url}/v1.0/leads/3")
    assert ok.status_code == 200
    assert ok.json() == {"lead": {"leadId": 3}}
    assert refused.status_code == 401


# --- storing --------------------------------------------------------------------------------------


def test_put_merges_fields_and_get_reads_them_back(client: httpx.Client, sandbox: Sandbox) -> None:
    assert put(
        client, 42, {"firstName": "Ann", "inquiry": {"priceMin": 1, "priceMax": 5}}
    ).json() == {"leadId": 42}
    assert put(client, 42, {"lastName": "Lee", "inquiry": {"bedroomsMin": 2}}).status_code == 200

    response = client.get("/v1.0/leads/42")
    assert response.status_code == 200
    expected = {"leadId": 42, "firstName": "Ann", "lastName": "Lee", "inquiry": {"bedroomsMin": 2}}
    assert response.json() == {"lead": expected}
    assert sandbox.lead(42) == expected


def test_silent_truncation(client: httpx.Client, sandbox: Sandbox) -> None:
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
    lead = sandbox.lead(5)
    assert lead is not None
    assert lead["firstName"] == "F" * 30
    assert lead["lastName"] == "L" * 30
    assert lead["segments"] == ["S" * 30, "short"]
    assert lead["groups"] == ["G" * 30]
    assert lead["tags"] == ["T" * 64, "A" * 64]


def test_tag_operations(client: httpx.Client, sandbox: Sandbox) -> None:
    def tags_after(body: dict[str, Any]) -> list[str]:
        assert put(client, 9, body).status_code == 200
        lead = sandbox.lead(9)
        assert lead is not None
        return list(lead["tags"])

    assert tags_after({"tags": ["a", "b", "a"]}) == ["a", "b"]
    assert tags_after({"tagsAdd": ["c", "a"]}) == ["a", "b", "c"]
    assert tags_after({"tags": ["x", "y"]}) == ["x", "y"]  # tags replaces the set
    assert tags_after({"tagsRemove": ["x", "never-there"]}) == ["y"]
    # tagsRemove only touches tags the lead had before; a tag added in the same request stays.
    assert tags_after({"tagsAdd": ["new"], "tagsRemove": ["new", "y"]}) == ["new"]
    assert tags_after({"clearAllTags": True, "tagsAdd": ["z"]}) == []
    assert tags_after({"tags": ["k"], "clearAllTags": False}) == ["k"]


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"firstNme": "Bob"}, "firstNme"),  # unknown top-level key
        ({"firstName": 5}, "firstName"),  # schema type
        ({"assignedUserId": "10"}, "assignedUserId"),
        ({"assignedUserId": 2**63}, "assignedUserId"),  # int64 range
        ({"emails": "a@example.com"}, "emails"),
        ({"phones": ["+1" + "5" * 19]}, "phones[0]"),
        ({"stage": "S" * 20}, "stage"),
        ({"birthday": "2001-06-05"}, "birthday"),
        ({"birthday": "Feb 30, 2001"}, "birthday"),
        ({"buyingTimeFrame": "soon"}, "buyingTimeFrame"),
        ({"sellingTimeFrame": "1-2"}, "sellingTimeFrame"),
        ({"preQual": "yes"}, "preQual"),
        ({"withListingAgent": True}, "withListingAgent"),
        ({"language": "EN"}, "language"),
        ({"ownershipScope": "TEAM, OFFICE"}, "ownershipScope"),
        ({"ownershipScope": "OFFICE"}, "ownershipId"),
        ({"leadTypes": [2, 3]}, "leadTypes[1]"),
        (
            {"customAttributeList": [{"attributeName": "a", "attributeType": "txt", "value": "1"}]},
            "customAttributeList[0].attributeType",
        ),
        ({"customAttributeList": [{"attributeName": "a", "attributeType": "text"}]}, None),
        ({"leadFamilyMemberList": [{"firstName": str(i)} for i in range(5)]}, None),
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
        ({"property": {"city": "Austin", "priceMin": 2, "priceMax": 1}}, "property.priceMin"),
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


def test_documented_values_are_accepted(client: httpx.Client, sandbox: Sandbox) -> None:
    body = {
        "firstName": "Bob",
        "phones": ["+14155551234"],
        "leadTypes": [-1, 2, 9],
        "stage": "S" * 19,
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
        "inquiry": {"priceMin": 5, "priceMax": 5, "bedroomsMin": 1, "bedroomsMax": 2},
        "property": {"zipCode": "20500", "priceMin": 1, "priceMax": 2},
        "leadTransaction": {"transactionName": "123 Main St", "transactionType": "Listing"},
    }
    response = put(client, 12, body)
    assert response.status_code == 200, response.text
    assert put(client, 12, {"buyingTimeFrame": "", "birthday": ""}).status_code == 200
    lead = sandbox.lead(12)
    assert lead is not None and lead["buyingTimeFrame"] == "" and lead["language"] == "zh-TW"


def test_invalid_lead_id_gets_400(client: httpx.Client) -> None:
    for lead_id in ("0", "abc", "-4", str(2**63)):
        response = put(client, lead_id, {"source": "x"})
        assert response.status_code == 400, lead_id
        assert response.json()["code"] == 20012


def test_malformed_json_gets_400(client: httpx.Client) -> None:
    response = client.put("/v1.0/leads/1", content=b"{not json", headers={"Content-Type": "x"})
    assert response.status_code == 400
    assert response.json()["code"] == 20012


@pytest.mark.parametrize(
    "block",
    [{}, {"city": "", "state": "  ", "county": "Travis"}, {"streetAddress": "", "price": 1}],
)
def test_property_without_address_is_200057(
    client: httpx.Client, sandbox: Sandbox, block: dict[str, Any]
) -> None:
    response = put(client, 3, {"firstName": "Al", "property": block})
    assert response.status_code == 400
    assert response.json() == {"code": 200057, "message": "PROPERTY_ADDRESS_EMPTY"}
    assert sandbox.lead(3) is None  # the lead update is aborted too


# --- existence and seeding ------------------------------------------------------------------------


def test_seeded_sandbox_knows_only_seeded_and_registered_leads(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text("leads:\n  - leadId: 100\n    firstName: Seeded\n    tags: [old]\n  - 200\n")
    with (
        Sandbox(SandboxConfig(seed_file=seed)) as sandbox,
        httpx.Client(base_url=sandbox.url, headers=BEARER) as client,
    ):
        missing = put(client, 300, {"firstName": "X"})
        assert missing.status_code == 404
        assert missing.json() == {"code": 20006, "message": "LEAD_NOT_EXIST"}
        assert client.get("/v1.0/leads/300").status_code == 404

        assert put(client, 100, {"tagsAdd": ["new"]}).status_code == 200
        assert client.get("/v1.0/leads/100").json() == {
            "lead": {"leadId": 100, "firstName": "Seeded", "tags": ["old", "new"]}
        }
        assert client.get("/v1.0/leads/200").json() == {"lead": {"leadId": 200}}

        registered = client.post("/_sandbox/leads", json={"leadIds": [300]})
        assert registered.status_code == 200
        assert put(client, 300, {"firstName": "X"}).status_code == 200
        listed = client.get("/_sandbox/leads").json()["leads"]
        assert [lead["leadId"] for lead in listed] == [100, 200, 300]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("seed.json", "[1, 2]"),
        ("seed.json", '[{"leadId": 1}, {"leadId": 2}]'),
        ("s.yml", "- 1\n- 2"),
    ],
)
def test_seed_file_shapes(tmp_path: Path, name: str, text: str) -> None:
    seed = tmp_path / name
    seed.write_text(text)
    with Sandbox(SandboxConfig(seed_file=seed)) as sandbox:
        assert [sandbox.lead(i) for i in (1, 2, 3)] == [{"leadId": 1}, {"leadId": 2}, None]


@pytest.mark.parametrize("text", ["{leads: 5}", "- leadId: 0\n", "- 1\n- 1\n", "[1, true]", ": :"])
def test_bad_seed_file_is_a_value_error(tmp_path: Path, text: str) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(text)
    with pytest.raises(ValueError, match="seed file"):
        Sandbox(SandboxConfig(seed_file=seed))


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_non_loopback_host_is_refused(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        SandboxConfig(host=host)


# --- rate limiting, faults, latency, keep-alive ---------------------------------------------------


def test_rate_limit_headers_and_429_past_the_limit() -> None:
    config = SandboxConfig(rate_limit=5, rate_window=2)
    with Sandbox(config) as sandbox, httpx.Client(base_url=sandbox.url, headers=BEARER) as client:
        started = time.time()
        responses = [put(client, 1, {"source": "x"}) for _ in range(5)]
        assert [r.status_code for r in responses] == [200] * 5
        assert [int(r.headers["X-RateLimit-Remaining"]) for r in responses] == [4, 3, 2, 1, 0]
        assert {r.headers["X-RateLimit-Limit"] for r in responses} == {"5"}
        reset = int(responses[0].headers["X-RateLimit-Reset"])
        assert started + 1 <= reset <= started + 3

        refused = put(client, 1, {"source": "x"})
        assert refused.status_code == 429
        assert refused.json() == {"message": "Too Many Requests"}
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        assert 1 <= int(refused.headers["Retry-After"]) <= 2

        time.sleep(max(0.0, reset - time.time()) + 0.05)
        again = put(client, 1, {"source": "y"})
        assert again.status_code == 200
        assert again.headers["X-RateLimit-Remaining"] == "4"

        stats = sandbox.stats()
    assert stats["requests"] == 7
    assert stats["status_counts"] == {"200": 6, "429": 1}
    assert stats["puts"] == {"1": 6}  # the refused request never reached the lead


def test_unlimited_sandbox_still_reports_rate_limit_headers(client: httpx.Client) -> None:
    response = put(client, 1, {"source": "x"})
    assert int(response.headers["X-RateLimit-Limit"]) >= 100_000
    assert int(response.headers["X-RateLimit-Remaining"]) >= 99_999
    assert int(response.headers["X-RateLimit-Reset"]) > time.time()


def test_fault_injection_only_yields_faults() -> None:
    config = SandboxConfig(fault_rate=1.0, random_seed=7)
    outcomes: set[str] = set()
    with Sandbox(config) as sandbox, httpx.Client(base_url=sandbox.url, headers=BEARER) as client:
        for _ in range(30):
            try:
                response = put(client, 8, {"firstName": "Never"})
            except (httpx.RemoteProtocolError, httpx.ReadError):
                outcomes.add("dropped")
                continue
            outcomes.add(str(response.status_code))
            if response.status_code == 503:
                assert response.headers["Retry-After"] == "1"
            else:
                assert response.json() == {"code": 500, "message": "Internal Server Error"}
        assert client.get("/v1.0/leads/8").status_code == 200  # reads are never faulted
        stats = sandbox.stats()
        assert sandbox.lead(8) is None
    assert outcomes == {"500", "503", "dropped"}
    assert stats["faults"] == 30
    assert stats["puts"] == {"8": 30}
    assert stats["requests"] == 31


def test_fault_injection_is_reproducible_with_a_seed() -> None:
    def outcomes() -> list[str]:
        seen = []
        with Sandbox(SandboxConfig(fault_rate=0.5, random_seed=3)) as sandbox:
            for _ in range(20):
                try:
                    response = httpx.put(f"{sandbox.url}/v1.0/leads/1", json={}, headers=BEARER)
                    seen.append(str(response.status_code))
                except httpx.TransportError:
                    seen.append("dropped")
        return seen

    first = outcomes()
    assert "200" in first and len(set(first)) > 1
    assert outcomes() == first


def test_latency_is_applied_and_requests_are_served_concurrently() -> None:
    with (
        Sandbox(SandboxConfig(latency_ms=200)) as sandbox,
        httpx.Client(base_url=sandbox.url, headers=BEARER) as client,
    ):
        started = time.perf_counter()
        assert put(client, 1, {"source": "x"}).status_code == 200
        assert time.perf_counter() - started >= 0.2

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=10) as pool:
            codes = list(pool.map(lambda i: put(client, i + 1, {}).status_code, range(10)))
        elapsed = time.perf_counter() - started
    assert codes == [200] * 10
    assert 0.2 <= elapsed < 1.0  # ten sequential requests would take two seconds


def test_keep_alive_reuses_one_connection(client: httpx.Client, sandbox: Sandbox) -> None:
    ports = set()
    for lead_id in range(1, 6):
        with client.stream("PUT", f"/v1.0/leads/{lead_id}", json={"source": "x"}) as response:
            assert response.status_code == 200
            response.read()
            stream = response.extensions["network_stream"]
            ports.add(stream.get_extra_info("client_addr")[1])
    assert len(ports) == 1


def test_stats_count_every_api_request(client: httpx.Client, sandbox: Sandbox) -> None:
    assert sandbox.stats() == {
        "requests": 0,
        "puts": {},
        "status_counts": {},
        "faults": 0,
        "first_request_at": None,
        "last_request_at": None,
    }
    before = time.time()
    put(client, 1, {"source": "x"})
    put(client, 1, {"firstName": 3})
    put(client, 2, {"source": "x"})
    client.get("/v1.0/leads/2")
    httpx.put(f"{sandbox.url}/v1.0/leads/2", json={})  # no credentials
    stats = client.get("/_sandbox/stats").json()
    assert stats == sandbox.stats()
    assert stats["requests"] == 5
    assert stats["puts"] == {"1": 2, "2": 1}
    assert stats["status_counts"] == {"200": 3, "400": 1, "401": 1}
    assert stats["faults"] == 0
    assert before <= stats["first_request_at"] <= stats["last_request_at"] <= time.time()


def test_stop_closes_the_port() -> None:
    sandbox = Sandbox(SandboxConfig())
    url = sandbox.start()
    assert httpx.get(f"{url}/_sandbox/stats").status_code == 200
    sandbox.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/_sandbox/stats")


def test_serve_runs_until_sigterm() -> None:
    script = (
        "from reconciler.sandbox import SandboxConfig, serve\n"
        "serve(SandboxConfig(), ready=lambda url: print(url, flush=True))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert httpx.put(f"{url}/v1.0/leads/1", json={}, headers=BEARER).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
        assert process.stderr is not None and process.stderr.read() == ""  # no request log
    finally:
        process.kill()
        process.wait()


def test_packaged_openapi_file_is_the_vendor_file() -> None:
    vendor = REPO.parent / "shared/reference/lofty-openapi-leads.json"
    if not vendor.exists():
        pytest.skip("shared/reference is not beside this clone")
    packaged = REPO / "reconciler/data/lofty-openapi-leads.json"
    assert packaged.read_bytes() == vendor.read_bytes()
    assert "EditLeadRequest" in json.loads(packaged.read_text())["components"]["schemas"]
