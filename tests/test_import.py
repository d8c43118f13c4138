"""`reconciler import` against the sandbox on loopback: adopt leads Lofty already holds.

The CLI runs in-process (CliRunner) against a real HTTP server, with a real state file.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import main
from reconciler.importer import Target, adopt
from reconciler.live import READ_BACK, file_values
from reconciler.loader import load_tree
from reconciler.plan import make_plan
from reconciler.sandbox import Sandbox, SandboxConfig
from reconciler.state import open_state

TOKEN = "import-test-token"
MARK = "Adopt Me"


class Team:
    """A checkout in `root` that imports from `sandbox`."""

    def __init__(self, root: Path, sandbox: Sandbox) -> None:
        self.root = root
        self.sandbox = sandbox
        self.leads = root / "leads"
        self.state = root / "state.json"

    def run(self, *args: str) -> Result:
        env = {"LOFTY_ACCESS_TOKEN": TOKEN, "LOFTY_API_URL": self.sandbox.url}
        common = ["--dir", str(self.leads), "--state", str(self.state)]
        command, *rest = args
        if command == "validate":
            common = common[:2]
        return CliRunner().invoke(main, [command, *rest, *common], env=env)

    def files(self) -> list[Path]:
        return sorted(self.leads.glob("*.yaml")) if self.leads.exists() else []


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    config = SandboxConfig(generate=520, random_seed=5, credentials=frozenset({TOKEN}))
    with Sandbox(config) as running:
        for lead_id in range(100001, 100501):  # 500 of the 520 carry the mark
            running.agent_edit(lead_id, {"tagsAdd": [MARK]})
        yield running


@pytest.fixture
def team(tmp_path: Path, sandbox: Sandbox) -> Team:
    return Team(tmp_path, sandbox)


def test_a_query_adopts_every_matching_lead_and_plan_then_has_nothing_to_do(team: Team) -> None:
    imported = team.run("import", "--query", f"anyTags={MARK}")
    assert imported.exit_code == 0, imported.output
    assert "Import complete: 500 imported, 0 skipped, 0 failed." in imported.stdout
    assert len(team.files()) == 500
    assert team.sandbox.puts() == []  # adoption sends nothing

    validated = team.run("validate")
    assert validated.exit_code == 0, validated.output
    assert "500 leads in 500 files are valid" in validated.stdout
    planned = team.run("plan")
    assert planned.exit_code == 0
    assert planned.stdout.strip().endswith("No changes. 500 leads match the last-applied state.")
    _, load = make_plan(team.leads, open_state(str(team.state), env={}).read(), state_name="s")
    assert load.parsed_files == 0  # recorded at the very hash the loader computes
    stats = team.sandbox.stats()
    assert stats["lists"] <= 500 // 100 + 5  # pages of 100, some short, plus the access check


def test_editing_one_imported_file_gives_a_one_field_put(team: Team) -> None:
    assert team.run("import", "100007", "100008").exit_code == 0
    path = next(p for p in team.files() if p.name.endswith("-100007.yaml"))
    text = path.read_text()
    stage = next(line for line in text.splitlines() if line.startswith("stage: "))
    path.write_text(text.replace(stage, "stage: Nurture"))
    applied = team.run("apply", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert team.sandbox.puts() == [{"leadId": 100007, "body": {"stage": "Nurture"}}]


def test_a_lead_with_every_field_set_round_trips_every_readable_field(team: Team) -> None:
    lead_id = 100011  # every tenth generated lead (the first of them included) sets every field
    raw = team.sandbox.lead(lead_id)
    assert raw is not None
    assert team.run("import", str(lead_id)).exit_code == 0
    (path,) = team.files()
    load = load_tree(team.leads)
    (doc,) = load.leads
    written = doc.lead.model_dump(mode="json", exclude_unset=True)
    live = file_values(raw)
    lost = [
        name
        for name, value in live.items()
        if value not in (None, "", [], {}, False) and name not in written
    ]
    assert lost == []
    assert set(written) - {"leadId"} <= set(READ_BACK)
    assert "tags" in written and "\N{FIRE} Hot" in written["tags"]  # the emoji tag survives
    assert '"02134"' in path.read_text() or "02134" not in path.read_text()


def test_what_cannot_be_imported_is_reported_and_the_rest_still_is(team: Team) -> None:
    team.leads.mkdir()
    (team.leads / "mine.yaml").write_text("leadId: 100001\nfirstName: Mine\n")
    result = team.run("import", "100001", "100002", "999999999")
    assert result.exit_code == 1
    out = result.stdout
    assert "skipped: lead 100001" in out and "already in the lead files" in out
    assert "failed: lead 999999999: no such lead in Lofty" in out
    assert "Import finished with failures: 1 imported, 1 skipped, 1 failed." in out
    assert (team.leads / "mine.yaml").read_text() == "leadId: 100001\nfirstName: Mine\n"
    assert set(open_state(str(team.state), env={}).read().leads) == {100002}


def test_an_existing_file_is_never_replaced(team: Team) -> None:
    planned = team.run("import", "100003", "--dry-run")
    name = Path(planned.stdout.split("would write ", 1)[1].split(" ", 1)[0]).name
    team.leads.mkdir()
    clash = team.leads / name  # a file of that name holding another lead
    clash.write_text("leadId: 5\nfirstName: Someone Else\n")
    result = team.run("import", "100003")
    assert result.exit_code == 1
    assert f"{name} already exists; it was not replaced" in result.stdout
    assert clash.read_text() == "leadId: 5\nfirstName: Someone Else\n"
    assert 100003 not in open_state(str(team.state), env={}).read().leads


def test_dry_run_writes_nothing(team: Team) -> None:
    result = team.run("import", "--query", f"anyTags={MARK}", "--dry-run")
    assert result.exit_code == 0
    assert "Dry run: 500 leads would be imported, 0 skipped, 0 failed." in result.stdout
    assert team.files() == [] and not team.state.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "name the leads to import by id"),
        (("1", "--query", "stage=New"), "one of the two"),
        (("--query", "stage"), "write KEY=VALUE"),
        (("--query", "color=red"), "filter by one of stage, source"),
    ],
)
def test_bad_selections_are_usage_errors(team: Team, args: tuple[str, ...], message: str) -> None:
    result = team.run("import", *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert team.sandbox.stats()["requests"] == 0


def test_an_import_interrupted_half_way_leaves_whole_files_each_recorded(team: Team) -> None:
    raws = [team.sandbox.lead(i) for i in range(100001, 100251)]

    async def leads_then_ctrl_c() -> AsyncIterator[dict[str, Any]]:
        for index, raw in enumerate(raws):
            assert raw is not None
            if index == 150:
                signal.raise_signal(signal.SIGINT)  # Ctrl-C while leads are being written
            await asyncio.sleep(0.001)  # as a page read would let the writer run
            yield raw

    team.leads.mkdir()
    state = open_state(str(team.state), env={})
    target = Target(team.leads, "leads/", {}, "../schema/lead.schema.json")
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(adopt(leads_then_ctrl_c(), target, state, today="2026-11-29"))
    files = team.files()
    assert 0 < len(files) <= 150
    assert not list(team.leads.glob(".*"))  # no partial file
    recorded = open_state(str(team.state), env={}).read().leads
    assert {record.file for record in recorded.values()} == {p.name for p in files}
    assert {doc.lead_id for doc in load_tree(team.leads).leads} == set(recorded)
