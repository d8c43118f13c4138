"""Plan semantics a reviewer relies on: the plan is exactly what apply will send."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reconciler import loader
from reconciler.cli import main
from reconciler.plan import make_plan
from reconciler.state import open_state
from tests.vendor import edit_lead_validator

VENDOR = edit_lead_validator()


class Team:
    """A leads folder and a local state, planned and 'applied' (state written) in-process."""

    def __init__(self, root: Path) -> None:
        self.leads = root / "leads"
        self.leads.mkdir()
        self.state = root / "state.json"

    def write(self, name: str, text: str) -> None:
        (self.leads / name).write_text(text, "utf-8")

    def plan(self, *args: str) -> Result:
        return CliRunner().invoke(
            main,
            ["plan", "--dir", str(self.leads), "--state", str(self.state), *args],
            catch_exceptions=False,
        )

    def doc(self, *args: str) -> dict[str, Any]:
        """The JSON plan; every body in it must be one Lofty accepts (EditLeadRequest)."""
        result = self.plan("--format", "json", *args)
        assert result.exit_code == 0, result.output
        parsed: dict[str, Any] = json.loads(result.stdout)
        for change in parsed["changes"]:
            errors = [e.message for e in VENDOR.iter_errors(change.get("body", {}))]
            assert errors == [], (change["lead_id"], errors)
        return parsed

    def mark_applied(self) -> None:
        """Record every planned change as apply would after each successful PUT."""
        backend = open_state(str(self.state), env={})
        made, _ = make_plan(self.leads, backend.read(), state_name="test")
        records = [c.record for c in made.changes if c.record is not None]
        forget = [c.lead_id for c in made.changes if c.action == "forget"]
        backend.write([*records, *made.refresh], forget=forget)


@pytest.fixture
def team(tmp_path: Path) -> Team:
    return Team(tmp_path)


BUYER = """leadId: 7
firstName: Bob
tags: [hot, zillow]
inquiry:
  priceMin: 100000
  priceMax: 500000
  propertyType: [Condo]
stage: New
"""


def test_a_new_lead_is_managed_with_every_field_in_its_body(team: Team) -> None:
    team.write("bob.yaml", BUYER)
    doc = team.doc()
    assert doc["summary"] == {
        "manage": 1,
        "update": 0,
        "forget": 0,
        "unchanged": 0,
        "drift": 0,
        "conflicts": 0,
        "missing": 0,
    }
    assert doc["changes"][0]["body"] == {
        "firstName": "Bob",
        "tags": ["hot", "zillow"],
        "inquiry": {"priceMin": 100000, "priceMax": 500000, "propertyType": ["Condo"]},
        "stage": "New",
    }


def test_a_field_change_is_one_update_with_only_that_field(team: Team) -> None:
    team.write("bob.yaml", BUYER)
    team.mark_applied()
    team.write("bob.yaml", BUYER.replace("Bob", "Robert"))
    text = team.plan()
    assert '~ firstName: "Bob" -> "Robert"' in text.stdout
    assert "Plan: 0 to manage, 1 to update, 0 to forget, 0 unchanged." in text.stdout
    change = team.doc()["changes"][0]
    assert change["action"] == "update"
    assert change["body"] == {"firstName": "Robert"}
    assert change["fields"] == [
        {"path": "firstName", "kind": "change", "before": "Bob", "after": "Robert"}
    ]


def test_reordered_or_duplicated_tags_are_no_change(team: Team) -> None:
    team.write("bob.yaml", BUYER)
    team.mark_applied()
    team.write("bob.yaml", BUYER.replace("[hot, zillow]", "[zillow, hot, zillow]"))
    result = team.plan("--detailed-exitcode")
    assert result.exit_code == 0
    assert "No changes." in result.stdout


def test_a_cut_first_name_warns_and_later_edits_past_the_cut_are_no_change(team: Team) -> None:
    long_name = "Maximilian-Alexander Theodoric"  # 30 characters
    team.write("bob.yaml", BUYER.replace("Bob", long_name + " Jr."))
    first = team.plan()
    assert (
        f"firstName: is 34 characters; Lofty silently keeps the first 30: '{long_name}'"
        in first.stdout
    )
    assert team.doc()["changes"][0]["body"]["firstName"] == long_name
    team.mark_applied()
    team.write("bob.yaml", BUYER.replace("Bob", long_name + " the Third"))
    assert team.plan("--detailed-exitcode").exit_code == 0


def test_strict_turns_a_cut_into_an_error(team: Team) -> None:
    team.write("bob.yaml", BUYER.replace("Bob", "B" * 31))
    result = team.plan("--strict")
    assert result.exit_code == 1
    assert "bob.yaml:2: firstName: is 31 characters" in result.stderr
    assert "(--strict)" in result.stderr


def test_a_nested_change_sends_the_whole_object(team: Team) -> None:
    team.write("bob.yaml", BUYER)
    team.mark_applied()
    team.write("bob.yaml", BUYER.replace("priceMax: 500000", "priceMax: 650000"))
    change = team.doc()["changes"][0]
    assert change["fields"] == [
        {"path": "inquiry.priceMax", "kind": "change", "before": 500000, "after": 650000}
    ]
    assert change["body"] == {
        "inquiry": {"priceMin": 100000, "priceMax": 650000, "propertyType": ["Condo"]}
    }
    assert "inquiry is sent whole" in team.plan().stdout


def test_a_removed_field_stops_being_managed_without_a_call(team: Team) -> None:
    team.write("bob.yaml", BUYER)
    team.mark_applied()
    team.write("bob.yaml", BUYER.replace("stage: New\n", ""))
    change = team.doc()["changes"][0]
    assert change["body"] == {}
    assert change["fields"] == [
        {"path": "stage", "kind": "unmanage", "before": "New", "after": None}
    ]
    assert "no longer managed" in team.plan().stdout
    team.mark_applied()
    assert "stage" not in open_state(str(team.state), env={}).read().leads[7].applied


def test_a_deleted_file_forgets_its_lead(team: Team) -> None:
    team.write("bob.yaml", BUYER)
    team.write("ann.yaml", "leadId: 8\nfirstName: Ann\n")
    team.mark_applied()
    (team.leads / "bob.yaml").unlink()
    doc = team.doc()
    assert doc["summary"] == {
        "manage": 0,
        "update": 0,
        "forget": 1,
        "unchanged": 1,
        "drift": 0,
        "conflicts": 0,
        "missing": 0,
    }
    assert doc["changes"] == [
        {
            "lead_id": 7,
            "file": f"{team.leads.as_posix()}/bob.yaml",
            "action": "forget",
            "fields": [],
            "converged": [],
        }
    ]


def test_target_limits_the_plan_by_id_or_file(team: Team) -> None:
    team.write("bob.yaml", BUYER)
    team.write("ann.yaml", "leadId: 8\nfirstName: Ann\n")
    team.write("cy.yaml", "leadId: 9\nfirstName: Cy\n")
    by_id = team.doc("--target", "8")
    assert [c["lead_id"] for c in by_id["changes"]] == [8]
    by_file = team.doc("--target", str(team.leads / "bob.yaml"), "--target", "9")
    assert [c["lead_id"] for c in by_file["changes"]] == [7, 9]


def test_changes_are_ordered_by_file_then_lead_id(team: Team) -> None:
    team.write("b.yaml", "leadId: 30\n---\nleadId: 20\n")
    team.write("a.yaml", "leadId: 40\n")
    assert [c["lead_id"] for c in team.doc()["changes"]] == [40, 20, 30]


def test_a_corrupt_state_is_reported_and_left_untouched(team: Team) -> None:
    team.write("bob.yaml", BUYER)
    team.state.write_text('{"version": 1, "lineage": "x", "serial": ')
    before = team.state.read_bytes()
    result = team.plan()
    assert result.exit_code == 1
    assert str(team.state) in result.stderr
    assert "Traceback" not in result.stderr
    assert team.state.read_bytes() == before


def test_an_unchanged_tree_of_2000_leads_parses_no_yaml(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(1, 1001):  # 1,000 files of two leads each
        team.write(f"lead-{i:04}.yaml", f"leadId: {i}\nfirstName: L{i}\n---\nleadId: {10000 + i}\n")
    team.mark_applied()
    calls = 0
    real = loader.load_documents  # type: ignore[attr-defined]  # patched where loader uses it

    def counting(text: str, **options: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(text, **options)

    monkeypatch.setattr(loader, "load_documents", counting)
    result = team.plan("--detailed-exitcode")
    assert result.exit_code == 0
    assert "No changes. 2000 leads match the last-applied state." in result.stdout
    assert calls == 0
    team.write("lead-0005.yaml", "leadId: 5\nfirstName: Five\n---\nleadId: 10005\n")
    assert team.plan("--detailed-exitcode").exit_code == 2
    assert calls == 1


def test_show_renders_a_saved_plan_in_every_format(team: Team, tmp_path: Path) -> None:
    team.write("bob.yaml", BUYER)
    planfile = tmp_path / "p.plan"
    assert team.plan("--out", str(planfile)).exit_code == 0
    runner = CliRunner()
    text = runner.invoke(main, ["show", str(planfile)], catch_exceptions=False)
    assert "Plan: 1 to manage" in text.stdout
    doc = json.loads(runner.invoke(main, ["show", str(planfile), "--format", "json"]).stdout)
    assert doc["changes"][0]["lead_id"] == 7
    markdown = runner.invoke(main, ["show", str(planfile), "--format", "markdown"]).stdout
    assert markdown.startswith("<!-- reconciler:plan -->")


def test_show_refuses_a_file_that_is_not_a_plan(tmp_path: Path) -> None:
    bogus = tmp_path / "x.plan"
    bogus.write_text("{}")
    result = CliRunner().invoke(main, ["show", str(bogus)])
    assert result.exit_code == 1
    assert "not a plan file" in result.stderr


def test_usage_errors_exit_1_not_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["plan", "--format", "yaml"])
    assert result.exit_code == 1


def test_a_tags_change_sends_the_tags_add_names_with_it(team: Team) -> None:
    team.write("t.yaml", "leadId: 3\ntags: [a]\ntagsAdd: [shared]\n")
    team.mark_applied()
    team.write("t.yaml", "leadId: 3\ntags: [a, b]\ntagsAdd: [shared]\n")
    change = team.doc()["changes"][0]
    assert change["body"] == {"tags": ["a", "b"], "tagsAdd": ["shared"]}
    assert [f["path"] for f in change["fields"]] == ["tags"]


def test_strict_plan_checks_files_already_applied_too(team: Team) -> None:
    team.write("bob.yaml", BUYER.replace("Bob", "B" * 31))
    team.mark_applied()
    assert team.plan().exit_code == 0
    result = team.plan("--strict")
    assert result.exit_code == 1
    assert "firstName: is 31 characters" in result.stderr


def test_a_target_that_matches_nothing_is_an_error(team: Team) -> None:
    team.write("bob.yaml", BUYER)
    for target in ("999", "nope.yaml"):
        result = team.plan("--target", target)
        assert result.exit_code == 1
        assert f"--target {target}: no such lead or lead file" in result.stderr


def test_an_unwritable_plan_file_is_a_clean_error(team: Team, tmp_path: Path) -> None:
    team.write("bob.yaml", BUYER)
    result = team.plan("--out", str(tmp_path / "missing" / "p.plan"))
    assert result.exit_code == 1
    assert "cannot write the plan file" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_lead_with_only_its_id_is_still_put_when_it_comes_under_management(
    team: Team,
) -> None:
    team.write("bare.yaml", "leadId: 12\n")
    change = team.doc()["changes"][0]
    assert change["action"] == "manage" and change["body"] == {}
    from reconciler.plan import load_plan

    planfile = team.leads.parent / "p.plan"
    assert team.plan("--out", str(planfile)).exit_code == 0
    assert load_plan(planfile).changes[0].needs_call


def test_an_inserted_location_is_explained_as_one_added_item(team: Team) -> None:
    base = "leadId: 4\ninquiry:\n  locations:\n    - city: Austin\n    - city: Dallas\n"
    team.write("loc.yaml", base)
    team.mark_applied()
    team.write(
        "loc.yaml", base.replace("    - city: Dallas\n", "    - city: Waco\n    - city: Dallas\n")
    )
    change = team.doc()["changes"][0]
    assert change["fields"] == [
        {"path": "inquiry.locations[1]", "kind": "add", "before": None, "after": {"city": "Waco"}}
    ]
    assert change["body"] == {
        "inquiry": {"locations": [{"city": "Austin"}, {"city": "Waco"}, {"city": "Dallas"}]}
    }


def test_a_nested_key_removed_is_no_longer_managed_and_the_object_sent_with_the_files_keys(
    team: Team,
) -> None:
    team.write("bob.yaml", BUYER)
    team.mark_applied()
    team.write("bob.yaml", BUYER.replace("  priceMin: 100000\n", "  bedroomsMin: 2\n"))
    change = team.doc()["changes"][0]
    assert change["fields"] == [
        {"path": "inquiry.bedroomsMin", "kind": "add", "before": None, "after": 2},
        {"path": "inquiry.priceMin", "kind": "unmanage", "before": 100000, "after": None},
    ]
    assert change["body"] == {
        "inquiry": {"bedroomsMin": 2, "priceMax": 500000, "propertyType": ["Condo"]}
    }
    text = team.plan().stdout
    assert "- inquiry.priceMin: no longer managed (nothing is sent; the state forgets it)" in text
    assert not any("removed" in line for line in text.splitlines()[1:])  # [0] names the file


def test_a_nested_key_removed_alone_sends_nothing_and_the_state_forgets_it(team: Team) -> None:
    team.write("bob.yaml", BUYER)
    team.mark_applied()
    team.write("bob.yaml", BUYER.replace("  priceMin: 100000\n", ""))
    change = team.doc()["changes"][0]
    assert change["fields"] == [
        {"path": "inquiry.priceMin", "kind": "unmanage", "before": 100000, "after": None}
    ]
    assert change["body"] == {}
    assert "no call is made for this lead" in team.plan().stdout
    team.mark_applied()
    applied = open_state(str(team.state), env={}).read().leads[7].applied
    assert applied["inquiry"] == {"priceMax": 500000, "propertyType": ["Condo"]}
    assert team.plan("--detailed-exitcode").exit_code == 0


def test_ownership_scope_and_id_are_sent_together_when_either_changes(team: Team) -> None:
    lead = "leadId: 5\nfirstName: Pat\nownershipScope: OFFICE\nownershipId: 33\n"
    team.write("pat.yaml", lead)
    team.mark_applied()
    team.write("pat.yaml", lead.replace("OFFICE", "PERSONAL"))
    change = team.doc()["changes"][0]
    assert [f["path"] for f in change["fields"]] == ["ownershipScope"]
    assert change["body"] == {"ownershipScope": "PERSONAL", "ownershipId": 33}
    team.write("pat.yaml", lead.replace("33", "44"))
    assert team.doc()["changes"][0]["body"] == {"ownershipScope": "OFFICE", "ownershipId": 44}


def test_a_new_address_for_a_property_without_id_warns_that_it_adds_a_record(team: Team) -> None:
    lead = "leadId: 6\nproperty:\n  streetAddress: 1 Elm St\n  city: Austin\n  price: 5\n"
    team.write("p.yaml", lead)
    team.mark_applied()
    team.write("p.yaml", lead.replace("1 Elm St", "9 Oak Ave"))
    doc = team.doc()
    assert doc["changes"][0]["body"] == {
        "property": {"streetAddress": "9 Oak Ave", "city": "Austin", "price": 5}
    }
    [warning] = doc["warnings"]
    assert (warning["file"], warning["line"], warning["field"]) == (
        f"{team.leads.as_posix()}/p.yaml",
        3,
        "property.streetAddress",
    )
    assert "creates another property record" in warning["message"]
    assert "add property.id" in warning["message"]
    text = team.plan()
    assert "p.yaml:3: property.streetAddress: changes the address of a property" in text.stdout
    strict = team.plan("--strict")
    assert strict.exit_code == 1
    assert "p.yaml:3: property.streetAddress: changes the address" in strict.stderr
    assert "(--strict)" in strict.stderr


def test_no_address_warning_with_a_property_id_or_without_an_address_change(team: Team) -> None:
    lead = "leadId: 6\nproperty:\n  id: 77\n  streetAddress: 1 Elm St\n  price: 5\n"
    team.write("p.yaml", lead)
    team.mark_applied()
    team.write("p.yaml", lead.replace("1 Elm St", "9 Oak Ave"))
    assert team.doc()["warnings"] == []
    team.write("p.yaml", lead.replace("  id: 77\n", "").replace("price: 5", "price: 6"))
    team.mark_applied()
    team.write("p.yaml", lead.replace("  id: 77\n", "").replace("price: 5", "price: 7"))
    assert team.doc()["warnings"] == []


def test_custom_attributes_are_matched_by_name_not_position(team: Team) -> None:
    lead = """leadId: 9
customAttributeList:
  - {attributeName: School, attributeType: text, value: Union}
  - {attributeName: Budget, attributeType: currency, value: "5"}
"""
    team.write("c.yaml", lead)
    team.mark_applied()
    reordered = """leadId: 9
customAttributeList:
  - {attributeName: Budget, attributeType: currency, value: "5"}
  - {attributeName: School, attributeType: text, value: Union}
"""
    team.write("c.yaml", reordered)
    assert "No changes." in team.plan().stdout
    team.write("c.yaml", reordered.replace("Union", "Lincoln"))
    change = team.doc()["changes"][0]
    assert change["fields"] == [
        {
            "path": 'customAttributeList["School"].value',
            "kind": "change",
            "before": "Union",
            "after": "Lincoln",
        }
    ]
    assert [a["attributeName"] for a in change["body"]["customAttributeList"]] == [
        "Budget",
        "School",
    ]


def test_a_custom_attribute_removed_from_the_file_is_no_longer_managed(team: Team) -> None:
    lead = """leadId: 9
customAttributeList:
  - {attributeName: School, attributeType: text, value: Union}
  - {attributeName: Budget, attributeType: currency, value: "5"}
"""
    team.write("c.yaml", lead)
    team.mark_applied()
    team.write(
        "c.yaml",
        lead.replace('  - {attributeName: Budget, attributeType: currency, value: "5"}\n', ""),
    )
    change = team.doc()["changes"][0]
    assert [(f["path"], f["kind"]) for f in change["fields"]] == [
        ('customAttributeList["Budget"]', "unmanage")
    ]
    assert change["body"] == {}


def test_an_inserted_family_member_is_one_addition(team: Team) -> None:
    members = ["  - {firstName: Lin, relationship: Wife}\n", "  - {firstName: Hao}\n"]
    team.write("f.yaml", "leadId: 3\nleadFamilyMemberList:\n" + "".join(members))
    team.mark_applied()
    inserted = [members[0], "  - {firstName: Mei, relationship: Daughter}\n", members[1]]
    team.write("f.yaml", "leadId: 3\nleadFamilyMemberList:\n" + "".join(inserted))
    change = team.doc()["changes"][0]
    assert change["fields"] == [
        {
            "path": "leadFamilyMemberList[1]",
            "kind": "add",
            "before": None,
            "after": {"firstName": "Mei", "relationship": "Daughter"},
        }
    ]
    assert len(change["body"]["leadFamilyMemberList"]) == 3


def test_an_inserted_email_or_phone_is_one_addition(team: Team) -> None:
    lead = 'leadId: 3\nemails: [a@x.io, c@x.io]\nphones: ["+1555", "+1777"]\n'
    team.write("e.yaml", lead)
    team.mark_applied()
    team.write(
        "e.yaml",
        lead.replace("a@x.io, c@x.io", "a@x.io, b@x.io, c@x.io").replace(
            '"+1777"]', '"+1666", "+1777"]'
        ),
    )
    change = team.doc("--show-sensitive")["changes"][0]
    assert change["fields"] == [
        {"path": "emails[1]", "kind": "add", "before": None, "after": "b@x.io"},
        {"path": "phones[1]", "kind": "add", "before": None, "after": "+1666"},
    ]
    assert change["body"] == {
        "emails": ["a@x.io", "b@x.io", "c@x.io"],
        "phones": ["+1555", "+1666", "+1777"],
    }


def test_a_name_with_an_emoji_is_sent_cut_where_lofty_would_keep_it_whole(team: Team) -> None:
    emoji = "\U0001f3e1"
    team.write("n.yaml", f"leadId: 2\nfirstName: {'A' * 29}{emoji}\n")
    doc = team.doc()
    assert doc["changes"][0]["body"] == {"firstName": "A" * 29}
    assert doc["warnings"][0]["message"].startswith(
        "is 31 characters as Lofty counts them (an emoji is 2)"
    )


def test_a_zero_padded_birthday_is_no_change_from_the_plain_one(team: Team) -> None:
    team.write("b.yaml", "leadId: 2\nbirthday: Jun 5, 2001\n")
    team.mark_applied()
    team.write("b.yaml", "leadId: 2\nbirthday: Jun 05, 2001\n")
    assert team.plan("--detailed-exitcode").exit_code == 0
