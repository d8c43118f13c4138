"""What a sandbox holds: seed files, generated leads, and the admin endpoints that change it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from reconciler.errors import SandboxError
from reconciler.loader import load_tree
from reconciler.sandbox import Sandbox, SandboxConfig, generate_leads
from tests.sandbox.helpers import BEARER, assert_vendor_shape, put, read, tag_names
from tests.vendor import edit_lead_validator


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
        seeded = read(client, 100)
        assert (seeded["firstName"], tag_names(seeded)) == ("Seeded", ["old", "new"])
        assert read(client, 200)["leadId"] == 200

        registered = client.post("/_sandbox/leads", json={"leadIds": [300]})
        assert registered.status_code == 200
        assert put(client, 300, {"firstName": "X"}).status_code == 200
        listed = client.get("/_sandbox/leads").json()["leads"]
        assert [lead["leadId"] for lead in listed] == [100, 200, 300]
        assert sandbox.puts()[0] == {"leadId": 300, "body": {"firstName": "X"}}


def test_seed_entries_are_stored_as_a_put_would_store_them(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text('[{"leadId": 1, "firstName": "' + "F" * 40 + '", "tags": ["a", "a"]}]')
    with Sandbox(SandboxConfig(seed_file=seed)) as sandbox:
        lead = sandbox.lead(1)
    assert lead is not None
    assert lead["firstName"] == "F" * 30 and tag_names(lead) == ["a"]
    assert sandbox.puts() == []  # seeding is not a PUT


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
        assert [(sandbox.lead(i) or {}).get("leadId") for i in (1, 2, 3)] == [1, 2, None]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{leads: 5}", "must hold a list of lead ids or lead objects"),
        ("- leadId: 0\n", "entry 0: expected a leadId (integer >= 1), got 0"),
        ("- 1\n- 1\n", "leadId 1 appears twice"),
        ("[1, true]", "entry 1: expected a leadId (integer >= 1), got True"),
        (": :", "is not valid JSON or YAML"),
        ("- leadId: 3\n  firstNme: Bo\n", "entry 0 (leadId 3): INVALID_PARAMETER: firstNme"),
        (
            "- leadId: 4\n  property: {id: 9, city: Austin}\n",
            "leadId 4: 200108 LEAD_PROPERTY_NOT_EXIST",
        ),
        ("- leadId: 5\n  property: {city: A, bathrooms: .nan}\n", "must be a finite number"),
    ],
)
def test_bad_seed_file_is_a_sandbox_error(tmp_path: Path, text: str, message: str) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(text)
    with pytest.raises(SandboxError, match="seed file") as raised:
        Sandbox(SandboxConfig(seed_file=seed))
    assert message in str(raised.value)


def test_missing_seed_file_is_a_sandbox_error(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match=r"cannot read seed file .*missing\.yaml"):
        Sandbox(SandboxConfig(seed_file=tmp_path / "missing.yaml"))


# --- generated leads -----------------------------------------------------------------------------


def test_generated_leads_are_the_same_for_the_same_seed() -> None:
    def everything(seed: int) -> list[dict[str, Any]]:
        with Sandbox(SandboxConfig(generate=12, random_seed=seed)) as sandbox:
            return sandbox.leads()

    first = everything(4)
    assert [lead["leadId"] for lead in first] == list(range(100001, 100013))
    assert everything(4) == first
    assert everything(5) != first


def test_generated_leads_look_lived_in_and_read_back_in_the_vendor_shape() -> None:
    with (
        Sandbox(SandboxConfig(generate=40, random_seed=1)) as sandbox,
        httpx.Client(base_url=sandbox.url, headers=BEARER) as client,
    ):
        leads = [read(client, 100001 + i) for i in range(40)]
    full = leads[0]  # every tenth lead has every readable field set
    for key in ("birthday", "buyingTimeFrame", "language", "ownershipScope", "referredBy"):
        assert full[key], key
    assert len(full["leadPropertyList"]) == 2 and all(p["id"] for p in full["leadPropertyList"])
    assert "\N{FIRE} Hot" in tag_names(full)
    assert len(full["customAttributes"]) == 3 and full["leadFamilyMemberList"]
    assert all(lead["emails"] and lead["phones"] and lead["leadPropertyList"] for lead in leads)
    assert len({lead["stage"] for lead in leads}) > 3
    assert any(lead["leadInquiry"]["priceMin"] for lead in leads)


def test_generated_leads_are_valid_for_the_vendor_and_for_our_own_validator(
    tmp_path: Path,
) -> None:
    """An imported lead must pass `validate`: every generated body is a valid lead file."""
    generated = generate_leads(300, seed=9, first_id=1)
    validator = edit_lead_validator()
    leads = tmp_path / "leads"
    leads.mkdir()
    for lead in generated:
        for index, body in enumerate(lead.bodies):
            assert list(validator.iter_errors(body)) == [], body
            document = {"leadId": lead.lead_id + index * 1_000_000, **body}
            (leads / f"{lead.lead_id}-{index}.yaml").write_text(
                yaml.safe_dump(document, allow_unicode=True), "utf-8"
            )
    load = load_tree(leads, strict=True)  # --strict: a cut or deprecated field would fail it
    assert [str(p) for p in load.problems] == []


def test_an_unseeded_sandbox_with_generated_leads_is_closed() -> None:
    with Sandbox(SandboxConfig(generate=2)) as sandbox:
        response = httpx.get(f"{sandbox.url}/v1.0/leads/1", headers=BEARER)
    assert response.status_code == 404


# --- admin: agent edits, deletes, seeding over HTTP ---------------------------------------------


def test_agent_edit_changes_the_lead_but_is_not_a_put(
    client: httpx.Client, sandbox: Sandbox
) -> None:
    put(client, 5, {"firstName": "Ann", "inquiry": {"priceMin": 1}})
    before = read(client, 5)
    requests_before = sandbox.stats()["requests"]
    response = client.post(
        "/_sandbox/leads/5/agent-edit",
        json={"stage": "Nurture", "inquiry": {"priceMax": 9}, "tagsAdd": ["Agent tag"]},
        headers={"Authorization": ""},
    )
    assert response.status_code == 200
    edited = response.json()["lead"]
    assert_vendor_shape(edited, "LeadResponse")
    assert edited == read(client, 5)
    assert edited["stage"] == "Nurture" and edited["firstName"] == "Ann"
    assert edited["leadInquiry"]["modifyByAgent"] is True
    assert (edited["leadInquiry"]["priceMin"], edited["leadInquiry"]["priceMax"]) == (1, 9)
    assert edited["tags"][0]["creatorUserId"] != 0
    assert edited["lastUpdateTime"] > before["lastUpdateTime"]
    assert sandbox.puts() == [
        {"leadId": 5, "body": {"firstName": "Ann", "inquiry": {"priceMin": 1}}}
    ]
    assert sandbox.stats()["requests"] == requests_before + 1  # only the GET above


def test_agent_edit_is_refused_as_a_put_would_be(client: httpx.Client, sandbox: Sandbox) -> None:
    response = client.post("/_sandbox/leads/5/agent-edit", json={"stage": "S" * 25})
    assert response.status_code == 400 and response.json()["code"] == 20012
    with pytest.raises(SandboxError, match="agent edit of lead 5 refused: INVALID_PARAMETER"):
        sandbox.agent_edit(5, {"preQual": "maybe"})


def test_delete_makes_a_later_get_404(client: httpx.Client, sandbox: Sandbox) -> None:
    put(client, 6, {"firstName": "Bo"})
    response = client.delete("/_sandbox/leads/6")
    assert response.status_code == 200 and response.json() == {"deleted": True, "leadId": 6}
    assert client.get("/v1.0/leads/6").status_code == 404  # even in an open world
    assert client.delete("/_sandbox/leads/6").status_code == 404
    assert client.get("/_sandbox/leads/6").status_code == 404
    with pytest.raises(SandboxError, match="holds no lead 6"):
        sandbox.delete_lead(6)
    sandbox.register(6)  # registered again: it exists again, as it was
    assert read(client, 6)["firstName"] == "Bo"


def test_admin_reads_a_lead_with_its_write_only_fields(client: httpx.Client) -> None:
    put(client, 7, {"property": {"city": "Austin", "priceMin": 5}})
    response = client.get("/_sandbox/leads/7")
    assert response.status_code == 200
    assert response.json()["lead"]["leadPropertyList"][0]["priceMin"] == 5
    assert client.get("/_sandbox/leads/8").json() == {"code": 20006, "message": "LEAD_NOT_EXIST"}


def test_admin_seeds_leads_over_http(client: httpx.Client, sandbox: Sandbox) -> None:
    response = client.post("/_sandbox/leads", json={"leads": [{"leadId": 9, "stage": "Hot"}, 10]})
    assert response.status_code == 200 and response.json() == {"leadIds": [9, 10]}
    assert read(client, 9)["stage"] == "Hot"
    assert sandbox.seed_leads([{"leadId": 11, "firstName": "Py"}]) == [11]
    bad = client.post("/_sandbox/leads", json={"leads": [{"leadId": 12, "stage": 5}]})
    assert bad.status_code == 400
    assert "request: entry 0 (leadId 12): INVALID_PARAMETER: stage" in bad.json()["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/_sandbox/leads", {"leadIds": [0]}, 400),
        ("POST", "/_sandbox/leads", {"other": 1}, 400),
        ("POST", "/_sandbox/leads", None, 400),
        ("PUT", "/_sandbox/leads", {}, 405),
        ("POST", "/_sandbox/stats", {}, 405),
        ("GET", "/_sandbox/leads/7/agent-edit", None, 405),
        ("POST", "/_sandbox/leads/x/agent-edit", {}, 400),
        ("GET", "/_sandbox/nothing", None, 404),
    ],
)
def test_admin_refusals_are_json(
    client: httpx.Client, method: str, path: str, body: Any, status: int
) -> None:
    response = client.request(method, path, json=body)
    assert response.status_code == status
    assert isinstance(response.json(), dict)
