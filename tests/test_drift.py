"""Drift, conflicts and field ownership: the three-way plan against the sandbox on loopback.

Agents' edits in Lofty's UI are made through the sandbox's admin endpoint (`agent_edit`), the
team's changes by editing lead files; `plan --refresh` and `apply` run in-process (CliRunner).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import main
from reconciler.sandbox import Sandbox, SandboxConfig
from reconciler.state import open_state

TOKEN = "drift-test-token"


class Team:
    """A checkout in `root` whose leads live in `sandbox`."""

    def __init__(self, root: Path, sandbox: Sandbox) -> None:
        self.root = root
        self.sandbox = sandbox
        self.leads = root / "leads"
        self.leads.mkdir()
        self.state = root / "state.json"
        self.config = root / "reconciler.yaml"

    def write(self, lead_id: int, **fields: Any) -> None:
        text = json.dumps({"leadId": lead_id, **fields}, indent=1)
        (self.leads / f"{lead_id}.yaml").write_text(text + "\n")

    def own(self, **policies: str) -> None:
        lines = [f"  {field.replace('__', '.')}: {policy}" for field, policy in policies.items()]
        self.config.write_text("fields:\n" + "\n".join(lines) + "\n")

    def run(self, *args: str) -> Result:
        env = {"LOFTY_ACCESS_TOKEN": TOKEN, "LOFTY_API_URL": self.sandbox.url}
        common = ["--dir", str(self.leads), "--state", str(self.state)]
        if args[0] in ("plan", "apply") and self.config.exists():
            common += ["--config", str(self.config)]
        return CliRunner().invoke(main, [*args, *common], env=env)

    def plan_doc(self, *args: str) -> dict[str, Any]:
        result = self.run("plan", "--refresh", "--format", "json", *args)
        assert result.exit_code == 0, result.output
        doc: dict[str, Any] = json.loads(result.stdout)
        return doc

    def applied(self) -> None:
        result = self.run("apply", "--auto-approve")
        assert result.exit_code == 0, result.output
        self.sandbox_puts_before = len(self.sandbox.puts())

    def new_puts(self) -> list[dict[str, Any]]:
        return self.sandbox.puts()[self.sandbox_puts_before :]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(credentials=frozenset({TOKEN}))) as running:
        running.register(*range(1, 11))
        yield running


@pytest.fixture
def team(tmp_path: Path, sandbox: Sandbox) -> Team:
    return Team(tmp_path, sandbox)


def held(team: Team, lead_id: int) -> dict[str, Any]:
    """What Lofty holds for a lead, as GET shows it."""
    lead = team.sandbox.lead(lead_id)
    assert lead is not None
    return lead


def kinds(doc: dict[str, Any]) -> dict[str, list[tuple[int, str]]]:
    """What the refreshed plan says, by kind: (lead, field) pairs."""
    return {
        "changed": sorted((c["lead_id"], f["path"]) for c in doc["changes"] for f in c["fields"]),
        "converged": sorted((c["lead_id"], p) for c in doc["changes"] for p in c["converged"]),
        "drift": sorted((d["lead_id"], d["field"]) for d in doc["drift"]),
        "conflicts": sorted((c["lead_id"], c["field"]) for c in doc["conflicts"]),
    }


# --- the done-when scenario of the issue -----------------------------------------------------


def test_git_change_kept_drift_and_a_conflict_and_what_apply_does_with_them(team: Team) -> None:
    for lead_id in (1, 2, 3):
        team.write(lead_id, firstName=f"Lead {lead_id}", stage="New")
    team.applied()
    for lead_id in (1, 2, 3):
        team.sandbox.agent_edit(lead_id, {"stage": "Contacted"})
    team.write(1, firstName="Roberta", stage="New")  # a PR changes firstName of lead 1
    team.write(2, firstName="Lead 2", stage="Showing")  # and stage of lead 2

    doc = team.plan_doc()
    assert kinds(doc) == {
        "changed": [(1, "firstName"), (2, "stage")],
        "converged": [],
        "drift": [(1, "stage"), (3, "stage")],
        "conflicts": [(2, "stage")],
    }
    conflict = doc["conflicts"][0]
    assert (conflict["desired"], conflict["last_applied"], conflict["live"]) == (
        "Showing",
        "New",
        "Contacted",
    )
    assert {d["action"] for d in doc["drift"]} == {"kept"}
    assert doc["format_version"] == 2
    assert doc["refreshed"] == {"how": "get", "calls": 3, "leads": 3}  # fewer than a page costs

    applied = team.run("apply", "--auto-approve")
    assert applied.exit_code == 1
    assert team.new_puts() == [{"leadId": 1, "body": {"firstName": "Roberta"}}]
    assert "conflict: lead 2" in applied.stdout and "stage" in applied.stdout
    assert held(team, 1)["stage"] == "Contacted"  # the agent's edit is kept

    forced = team.run("apply", "--auto-approve", "--force-conflicts")
    assert forced.exit_code == 0, forced.output
    assert team.new_puts()[1:] == [{"leadId": 2, "body": {"stage": "Showing"}}]


def test_the_text_plan_has_drift_and_conflict_sections(team: Team) -> None:
    team.write(1, stage="New")
    team.write(2, stage="New")
    team.applied()
    team.sandbox.agent_edit(1, {"stage": "Contacted"})
    team.sandbox.agent_edit(2, {"stage": "Closed"})
    team.write(2, stage="Showing")
    result = team.run("plan", "--refresh", "--detailed-exitcode")
    assert result.exit_code == 2
    out = result.stdout
    assert "Conflicts: changed in the files and in Lofty; these leads are not sent:" in out
    assert (
        "lead 2 (" in out and 'stage: desired "Showing", last applied "New", live "Closed"' in out
    )
    assert "Drift: edited in Lofty since the last apply:" in out
    assert 'stage: files "New", Lofty "Contacted"; kept' in out
    assert "Read 2 managed leads from Lofty by one GET per lead (2 calls)." in out
    assert "Found in Lofty: 1 drifted field (1 kept), 1 conflict." in out


def test_a_plan_without_refresh_stays_offline_and_needs_no_credential(team: Team) -> None:
    team.write(1, stage="New")
    team.applied()
    team.sandbox.agent_edit(1, {"stage": "Contacted"})
    before = team.sandbox.stats()["requests"]
    result = CliRunner().invoke(
        main, ["plan", "--dir", str(team.leads), "--state", str(team.state)], env={}
    )
    assert result.exit_code == 0
    assert "No changes. 1 lead matches" in result.stdout
    assert team.sandbox.stats()["requests"] == before


# --- each row of the table, for each kind of field ------------------------------------------

FIELDS = {
    "top-level": ("stage", "New", "Showing", "Contacted"),
    "set-like": ("segments", ["A"], ["A", "B"], ["C"]),
    "nested": ("inquiry", {"priceMax": 500000}, {"priceMax": 600000}, {"priceMax": 550000}),
}
PATHS = {"top-level": "stage", "set-like": "segments", "nested": "inquiry.priceMax"}


@pytest.mark.parametrize("kind", list(FIELDS))
def test_each_row_of_the_table(team: Team, kind: str) -> None:
    name, applied, desired, agents = FIELDS[kind]
    path = PATHS[kind]
    for lead_id in (1, 2, 3, 4):
        team.write(lead_id, **{name: applied})
    team.applied()
    team.write(1, **{name: desired})  # D != B, L = B: a git change
    team.write(2, **{name: desired})  # D != B, L = D: already so in Lofty
    team.sandbox.agent_edit(2, {name: desired})
    team.sandbox.agent_edit(3, {name: agents})  # D = B, L != B: drift
    team.write(4, **{name: desired})  # D != B, L != B, L != D: a conflict
    team.sandbox.agent_edit(4, {name: agents})

    doc = team.plan_doc()
    assert kinds(doc) == {
        "changed": [(1, path), (2, path), (4, path)],
        "converged": [(2, path)],
        "drift": [(3, path)],
        "conflicts": [(4, path)],
    }
    applied_run = team.run("apply", "--auto-approve")
    assert applied_run.exit_code == 1  # the conflict
    assert [p["leadId"] for p in team.new_puts()] == [1]
    state = open_state(str(team.state), env={}).read()
    assert state.leads[2].applied[name] == desired  # converged: recorded without a PUT
    assert state.leads[3].applied[name] == applied  # drift kept: the files still say so
    assert state.leads[4].applied[name] == applied  # held back: nothing recorded


def test_tags_add_and_remove_drift_as_must_have_and_must_not_have_names(team: Team) -> None:
    team.write(1, tagsAdd=["VIP"], tagsRemove=["Cold"])
    team.write(2, tagsAdd=["VIP"], tagsRemove=["Cold"])
    team.applied()
    team.sandbox.agent_edit(1, {"tagsRemove": ["VIP"]})  # an agent takes a must-have tag away
    team.sandbox.agent_edit(2, {"tagsAdd": ["Cold", "Other"]})  # and adds a must-not-have one
    doc = team.plan_doc()
    assert kinds(doc)["drift"] == [(1, "tagsAdd"), (2, "tagsRemove")]
    by_lead = {d["lead_id"]: d for d in doc["drift"]}
    assert by_lead[1]["live"] == [] and by_lead[2]["live"] == []
    assert kinds(doc)["changed"] == []  # an unrelated tag ("Other") is nobody's business


# --- policies --------------------------------------------------------------------------------


def test_enforce_reverts_drift_and_never_conflicts(team: Team) -> None:
    team.own(stage="enforce")
    team.write(1, stage="New")
    team.write(2, stage="New")
    team.applied()
    team.sandbox.agent_edit(1, {"stage": "Contacted"})
    team.sandbox.agent_edit(2, {"stage": "Contacted"})
    team.write(2, stage="Showing")
    doc = team.plan_doc()
    assert [(d["lead_id"], d["action"]) for d in doc["drift"]] == [(1, "reverted")]
    assert doc["conflicts"] == []
    assert team.run("apply", "--auto-approve").exit_code == 0
    assert sorted((p["leadId"], p["body"]["stage"]) for p in team.new_puts()) == [
        (1, "New"),
        (2, "Showing"),
    ]


def test_initial_is_sent_once_then_never_compared_or_sent(team: Team) -> None:
    team.own(source="initial")
    team.write(1, firstName="Ann", source="Zillow")
    team.applied()
    assert held(team, 1)["source"] == "Zillow"  # sent when it came under management
    team.sandbox.agent_edit(1, {"source": "Referral"})
    team.write(1, firstName="Ann", source="Open House")
    doc = team.plan_doc()
    assert kinds(doc)["drift"] == [] and kinds(doc)["conflicts"] == []
    assert team.run("apply", "--auto-approve").exit_code == 0
    assert team.new_puts() == []
    assert held(team, 1)["source"] == "Referral"


def test_a_nested_object_sent_whole_over_a_drifted_key_is_a_conflict(team: Team) -> None:
    team.write(1, inquiry={"priceMin": 100000, "priceMax": 500000})
    team.applied()
    team.sandbox.agent_edit(1, {"inquiry": {"priceMax": 550000}})
    team.write(1, inquiry={"priceMin": 200000, "priceMax": 500000})
    doc = team.plan_doc()
    assert kinds(doc)["conflicts"] == [(1, "inquiry.priceMax")]
    assert kinds(doc)["drift"] == []
    assert team.run("apply", "--auto-approve").exit_code == 1
    assert team.new_puts() == []


def test_a_field_that_cannot_be_read_back_never_drifts(team: Team) -> None:
    team.write(
        1,
        leadTransaction={"transactionName": "1 Main St"},
        property={"city": "Austin", "priceMin": 100, "priceMax": 200},
    )
    team.applied()
    doc = team.plan_doc()
    assert kinds(doc)["drift"] == [] and doc["changes"] == []


# --- saved plans, --no-refresh, 404 ---------------------------------------------------------


def test_a_saved_plan_rereads_each_lead_before_its_put(team: Team) -> None:
    team.write(1, stage="New")
    team.write(2, stage="New")
    team.applied()
    team.write(1, stage="Showing")
    team.write(2, stage="Showing")
    assert team.run("plan", "--out", str(team.root / "p.plan")).exit_code == 0
    team.sandbox.agent_edit(2, {"stage": "Closed"})  # after the plan was made
    result = team.run("apply", str(team.root / "p.plan"))
    assert result.exit_code == 1
    assert "changed in Lofty after the plan was made" in result.stdout
    assert team.new_puts() == [{"leadId": 1, "body": {"stage": "Showing"}}]


def test_no_refresh_plans_against_the_state_alone(team: Team) -> None:
    team.write(1, stage="New")
    team.applied()
    team.sandbox.agent_edit(1, {"stage": "Contacted"})
    team.write(1, stage="Showing")
    assert team.run("apply", "--auto-approve", "--no-refresh").exit_code == 0
    assert team.new_puts() == [{"leadId": 1, "body": {"stage": "Showing"}}]


def test_a_lead_deleted_in_lofty_is_reported_not_put(team: Team) -> None:
    team.write(1, stage="New")
    team.write(2, stage="New")
    team.applied()
    team.sandbox.delete_lead(2)
    team.write(2, stage="Showing")
    planned = team.run("plan", "--refresh", "--detailed-exitcode")
    assert planned.exit_code == 2
    assert "lead 2 (" in planned.stdout and "Lofty has no such lead; not sent" in planned.stdout
    applied = team.run("apply", "--auto-approve")
    assert applied.exit_code == 1
    assert "failed: lead 2" in applied.stdout and "404" in applied.stdout
    assert team.new_puts() == []


def test_refreshing_many_leads_pages_the_list(tmp_path: Path) -> None:
    with Sandbox(
        SandboxConfig(generate=2000, random_seed=1, credentials=frozenset({TOKEN}))
    ) as box:
        team = Team(tmp_path, box)
        imported = team.run("import", "--query", "source=Zillow")
        assert imported.exit_code == 0, imported.output
        managed = len(open_state(str(team.state), env={}).read().leads)
        lists_before = box.stats()["lists"]
        doc = team.plan_doc()
        calls = box.stats()["lists"] - lists_before + sum(box.stats()["gets"].values())
        assert doc["refreshed"]["how"] == "list"
        assert doc["refreshed"]["leads"] == managed
        assert calls <= 2000 / 100 + 5
        assert doc["drift"] == [] and doc["changes"] == []


def test_write_drift_accepts_lofty_values_as_a_git_change(team: Team) -> None:
    (team.leads / "2.yaml").write_text(
        "# The Lees, met at the spring open house\n"
        "leadId: 2\n"
        "stage: New  # agents move this along\n"
        "segments: [Spring]\n"
        "inquiry:\n"
        "  priceMin: 100000\n"
        "  priceMax: 500000\n"
    )
    team.applied()
    team.sandbox.agent_edit(2, {"stage": "Contacted", "inquiry": {"priceMax": 550000}})
    result = team.run("plan", "--refresh", "--write-drift")
    assert result.exit_code == 0, result.output
    assert "Wrote 2 drifted values from Lofty into 1 lead file" in result.stderr
    lines = (team.leads / "2.yaml").read_text().splitlines()
    assert lines[:2] == ["# The Lees, met at the spring open house", "leadId: 2"]
    assert lines[2].startswith("stage: Contacted") and lines[2].endswith("# agents move this along")
    assert lines[3:] == [
        "segments: [Spring]",
        "inquiry:",
        "  priceMin: 100000",
        "  priceMax: 550000",
    ]
    replanned = team.plan_doc()
    assert replanned["drift"] == []
    assert sorted((f["path"], f["kind"]) for c in replanned["changes"] for f in c["fields"]) == [
        ("inquiry.priceMax", "change"),
        ("stage", "change"),
    ]
    assert all(c["converged"] for c in replanned["changes"])  # already so in Lofty: no PUT
    assert team.run("apply", "--auto-approve").exit_code == 0
    assert team.new_puts() == []


def test_write_drift_needs_refresh(team: Team) -> None:
    result = team.run("plan", "--write-drift")
    assert result.exit_code == 1
    assert "--write-drift needs --refresh" in result.stderr
