"""`reconciler state list | show | rm` on a local state."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from reconciler.cli import main
from reconciler.state import LeadRecord, open_state


def _state(tmp_path: Path) -> str:
    path = str(tmp_path / "state.json")
    open_state(path, env={}).write(
        [
            LeadRecord(7, "b.yaml", "h1", (7,), '{"firstName":"Bob"}'),
            LeadRecord(3, "a.yaml", "h2", (3,), '{"tags":["x"]}'),
        ]
    )
    return path


def test_list_shows_leads_by_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["state", "list", "--state", _state(tmp_path)])
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["3\tleads/a.yaml", "7\tleads/b.yaml"]
    assert "serial 1, 2 leads" in result.stderr


def test_files_are_shown_under_the_leads_folder_as_plan_shows_them(tmp_path: Path) -> None:
    state = _state(tmp_path)
    listed = CliRunner().invoke(main, ["state", "list", "--state", state, "--dir", "crm/leads"])
    assert listed.stdout.splitlines() == ["3\tcrm/leads/a.yaml", "7\tcrm/leads/b.yaml"]
    here = CliRunner().invoke(main, ["state", "list", "--state", state, "--dir", "."])
    assert here.stdout.splitlines() == ["3\ta.yaml", "7\tb.yaml"]
    shown = CliRunner().invoke(main, ["state", "show", "7", "--state", state])
    assert json.loads(shown.stdout)["file"] == "leads/b.yaml"


def test_show_prints_what_was_applied(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["state", "show", "7", "--state", _state(tmp_path)])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["applied"] == {"firstName": "Bob"}


def test_rm_forgets_one_lead_and_a_missing_one_is_an_error(tmp_path: Path) -> None:
    state = _state(tmp_path)
    removed = CliRunner().invoke(main, ["state", "rm", "7", "--state", state])
    assert removed.exit_code == 0
    assert "Removed lead 7" in removed.stdout
    assert set(open_state(state, env={}).read().leads) == {3}
    again = CliRunner().invoke(main, ["state", "rm", "7", "--state", state])
    assert again.exit_code == 1
    assert "lead 7 is not in state" in again.stderr


def test_state_comes_from_the_environment_when_not_given(tmp_path: Path) -> None:
    state = _state(tmp_path)
    result = CliRunner().invoke(main, ["state", "list"], env={"RECONCILER_STATE": state})
    assert result.stdout.splitlines() == ["3\tleads/a.yaml", "7\tleads/b.yaml"]
