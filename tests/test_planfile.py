"""Saved plan files cannot be forged: apply sends and records exactly what the plan shows, and
a plan file whose parts disagree (edited by hand) is refused before anything is sent."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import main
from reconciler.sandbox import Sandbox, SandboxConfig
from reconciler.state import open_state

TOKEN = "planfile-test-token"
Edit = Callable[[dict[str, Any]], None]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(credentials=frozenset({TOKEN}))) as running:
        running.register(7, 8)
        yield running


class Team:
    def __init__(self, root: Path, sandbox: Sandbox) -> None:
        self.root, self.sandbox = root, sandbox
        self.leads = root / "leads"
        self.leads.mkdir()
        self.state = root / "state.json"
        self.planfile = root / "saved.plan"

    def run(self, *args: str) -> Result:
        env = {"LOFTY_ACCESS_TOKEN": TOKEN, "LOFTY_API_URL": self.sandbox.url}
        common = ["--dir", str(self.leads), "--state", str(self.state)]
        return CliRunner().invoke(main, [*args, *common], env=env)

    def saved(self, edit: Edit) -> Result:
        """Apply a saved plan after `edit` changed its JSON document."""
        assert self.run("plan", "--out", str(self.planfile)).exit_code == 0
        doc = json.loads(self.planfile.read_text())
        edit(doc)
        self.planfile.write_text(json.dumps(doc))
        return self.run("apply", str(self.planfile))


@pytest.fixture
def team(tmp_path: Path, sandbox: Sandbox) -> Team:
    team = Team(tmp_path, sandbox)
    (team.leads / "jane.yaml").write_text("leadId: 7\nfirstName: Jane\n")
    (team.leads / "bob.yaml").write_text("leadId: 8\nfirstName: Bob\n")
    assert team.run("apply", "--auto-approve").exit_code == 0
    (team.leads / "jane.yaml").write_text("leadId: 7\nfirstName: Janet\n")
    return team


def body_of(lead_id: int) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        change = next(c for c in doc["changes"] if c["lead_id"] == lead_id)
        change["body"]["firstName"] = "PWNED"

    return edit


def record_of(lead_id: int, applied: dict[str, Any]) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        record = next(r for r in doc["records"] if r[0] == lead_id)
        record[4] = json.dumps(applied)

    return edit


def phantom_refresh(doc: dict[str, Any]) -> None:
    doc["refresh"].append([999, "ghost.yaml", "h", [999], '{"firstName":"Ghost"}'])


def phantom_record(doc: dict[str, Any]) -> None:
    doc["records"].append([999, "ghost.yaml", "h", [999], '{"firstName":"Ghost"}'])
    doc["changes"].append(
        {"lead_id": 999, "file": "ghost.yaml", "action": "update", "fields": [], "body": {}}
    )


def moved_lead_id(doc: dict[str, Any]) -> None:
    doc["changes"][0]["lead_id"] = 8


def shown_other(doc: dict[str, Any]) -> None:
    doc["changes"][0]["fields"][0]["after"] = "Someone Else"


@pytest.mark.parametrize(
    "edit",
    [
        body_of(7),
        record_of(7, {"firstName": "PWNED"}),
        record_of(7, {"firstName": "Janet", "stage": "x" * 40}),
        record_of(7, {"firstName": ["not", "a", "name"]}),
        phantom_refresh,
        phantom_record,
        moved_lead_id,
        shown_other,
    ],
    ids=[
        "body",
        "record",
        "record-not-normal",
        "record-wrong-type",
        "phantom-refresh",
        "phantom-record",
        "lead-id",
        "shown",
    ],
)
def test_a_plan_file_edited_by_hand_is_refused_and_nothing_is_sent(team: Team, edit: Edit) -> None:
    state_before = team.state.read_bytes()
    result = team.saved(edit)
    assert result.exit_code == 1
    assert "error: " in result.stderr
    assert "Internal error" not in result.output
    assert team.sandbox.puts()[2:] == []  # the first two are the setup's
    assert team.state.read_bytes() == state_before


def test_an_untouched_saved_plan_applies_exactly_what_it_shows(team: Team) -> None:
    result = team.saved(lambda doc: None)
    assert result.exit_code == 0, result.output
    assert '~ firstName: "Jane" -> "Janet"' in result.stdout
    assert team.sandbox.puts()[2:] == [{"leadId": 7, "body": {"firstName": "Janet"}}]
    assert open_state(str(team.state), env={}).read().leads[7].applied == {"firstName": "Janet"}


def test_a_saved_plan_that_needs_no_call_needs_no_credential(team: Team) -> None:
    (team.leads / "jane.yaml").unlink()  # lead 7 leaves the files: the state forgets it
    common = ["--dir", str(team.leads), "--state", str(team.state)]
    assert CliRunner().invoke(main, ["plan", "--out", str(team.planfile), *common]).exit_code == 0
    result = CliRunner().invoke(main, ["apply", str(team.planfile), *common], env={})
    assert result.exit_code == 0, result.output
    assert set(open_state(str(team.state), env={}).read().leads) == {8}
    assert team.sandbox.puts()[2:] == []
