"""The whole loop as a team runs it: CLI subprocesses against the sandbox on loopback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.state import open_state
from tests.helpers import TOKEN, SandboxProcess, Workspace
from tests.vendor import edit_lead_validator

StartSandbox = Callable[..., SandboxProcess]


def _puts_by_lead(sandbox: SandboxProcess) -> Counter[int]:
    return Counter(p["leadId"] for p in sandbox.puts())


def test_first_apply_puts_each_lead_once_then_a_second_apply_puts_nothing(
    workspace: Workspace, start_sandbox: StartSandbox
) -> None:
    sandbox = start_sandbox()
    workspace.api_url = sandbox.url
    ids = workspace.write_leads(12)

    first = workspace.run("apply", "--auto-approve")
    assert first.returncode == 0, first.stderr
    puts = sandbox.puts()
    assert sorted(p["leadId"] for p in puts) == ids
    validator = edit_lead_validator()
    for put in puts:
        assert list(validator.iter_errors(put["body"])) == []
    assert "Apply complete: 12 applied (12 PUT), 0 failed, 0 skipped." in first.stdout

    second = workspace.run("apply", "--auto-approve")
    assert second.returncode == 0, second.stderr
    assert "No changes." in second.stdout
    assert len(sandbox.puts()) == 12


def test_one_field_edit_sends_one_put_with_only_that_field(
    workspace: Workspace, start_sandbox: StartSandbox
) -> None:
    sandbox = start_sandbox()
    workspace.api_url = sandbox.url
    workspace.write_leads(5)
    assert workspace.run("apply", "--auto-approve").returncode == 0
    workspace.write_lead(
        1003,
        firstName="Roberta",
        lastName="Example",
        emails=["lead1003@example.com"],
        phones=["+14155551003"],
        leadTypes=["Buyer"],
        tags=["Batch 1", "Imported", "Batch 1"],
        inquiry={"priceMin": 101003, "priceMax": 900000, "locations": [{"city": "Austin"}]},
    )

    planned = workspace.run("plan", "--format", "json", "--detailed-exitcode")
    assert planned.returncode == 2
    doc = json.loads(planned.stdout)
    assert doc["summary"] == {
        "manage": 0,
        "update": 1,
        "forget": 0,
        "unchanged": 4,
        "drift": 0,
        "conflicts": 0,
        "missing": 0,
    }
    assert doc["changes"][0]["body"] == {"firstName": "Roberta"}

    applied = workspace.run("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert sandbox.puts()[5:] == [{"leadId": 1003, "body": {"firstName": "Roberta"}}]
    stored = sandbox.lead(1003)
    assert stored["firstName"] == "Roberta"
    assert stored["leadInquiry"]["priceMin"] == 101003


def test_thirty_percent_faults_every_lead_converges_within_its_retries(
    workspace: Workspace, start_sandbox: StartSandbox
) -> None:
    sandbox = start_sandbox("--fault-rate", "0.3", "--random-seed", "11")
    workspace.api_url = sandbox.url
    ids = workspace.write_leads(24)

    result = workspace.run("apply", "--auto-approve", "--parallelism", "8")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sandbox.stats()["faults"] > 0
    counts = _puts_by_lead(sandbox)
    assert set(counts) == set(ids)
    assert max(counts.values()) <= 8  # the client's attempt bound
    for lead_id in ids:
        assert sandbox.lead(lead_id)["firstName"] == f"Lead{lead_id}"
    again = workspace.run("plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout


@pytest.mark.parametrize(
    ("flags", "message", "puts"),
    [
        ((), "not sent: Lofty has no such lead (404 when read)", 4),  # found out by the refresh
        (("--no-refresh",), "HTTP 404: 20006 LEAD_NOT_EXIST", 5),  # found out by its PUT
    ],
)
def test_a_missing_lead_fails_alone_and_the_next_apply_retries_only_it(
    workspace: Workspace,
    start_sandbox: StartSandbox,
    tmp_path: Path,
    flags: tuple[str, ...],
    message: str,
    puts: int,
) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps([1001, 1002, 1004, 1005]))
    sandbox = start_sandbox("--seed", str(seed))
    workspace.api_url = sandbox.url
    workspace.write_leads(5)

    failed = workspace.run("apply", "--auto-approve", *flags)
    assert failed.returncode == 1
    assert f"failed: lead 1003 (leads/1003.yaml): {message}" in failed.stdout
    assert "4 applied (4 PUT), 1 failed, 0 skipped" in failed.stdout
    assert len(sandbox.puts()) == puts
    listed = workspace.run("state", "list")
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == [
        "1001",
        "1002",
        "1004",
        "1005",
    ]

    sandbox.register(1003)
    retried = workspace.run("apply", "--auto-approve", *flags)
    assert retried.returncode == 0, retried.stdout
    assert [p["leadId"] for p in sandbox.puts()][puts:] == [1003]


def test_sigkill_mid_apply_leaves_a_valid_state_and_the_next_apply_converges(
    workspace: Workspace, start_sandbox: StartSandbox
) -> None:
    sandbox = start_sandbox("--latency-ms", "150")
    workspace.api_url = sandbox.url
    ids = workspace.write_leads(30)

    apply = workspace.popen("apply", "--auto-approve", "--parallelism", "2")
    sandbox.wait_for_puts(6)
    apply.send_signal(signal.SIGKILL)
    apply.wait(timeout=10)

    snapshot = open_state(str(workspace.state), env={}).read()  # valid, or this raises
    recorded = set(snapshot.leads)
    assert 1 <= len(recorded) < len(ids)
    sent_before = len(sandbox.puts())

    resumed = workspace.run("apply", "--auto-approve")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    first_round = {p["leadId"] for p in sandbox.puts()[:sent_before]}
    second_round = [p["leadId"] for p in sandbox.puts()[sent_before:]]
    assert not recorded & set(second_round)  # nothing recorded is sent again
    # A PUT that landed but was killed before it was recorded is found already so in Lofty
    # by the refresh: recorded without being sent twice. Every other lead is sent now.
    assert set(second_round) == set(ids) - first_round
    assert set(open_state(str(workspace.state), env={}).read().leads) == set(ids)
    assert workspace.run("plan", "--detailed-exitcode").returncode == 0


def test_a_saved_plan_applies_exactly_and_a_stale_one_is_refused(
    workspace: Workspace, start_sandbox: StartSandbox
) -> None:
    sandbox = start_sandbox()
    workspace.api_url = sandbox.url
    workspace.write_leads(3)
    assert workspace.run("plan", "--out", "first.plan").returncode == 0
    assert workspace.run("plan", "--out", "second.plan").returncode == 0

    applied = workspace.run("apply", "first.plan")
    assert applied.returncode == 0, applied.stderr
    assert len(sandbox.puts()) == 3

    stale = workspace.run("apply", "second.plan")
    assert stale.returncode == 1
    assert "the saved plan second.plan is stale: it was made against state serial 0" in stale.stderr
    assert "run `reconciler plan --out PLANFILE` again" in stale.stderr
    assert len(sandbox.puts()) == 3


def test_apply_without_a_terminal_or_auto_approve_refuses_and_sends_nothing(
    workspace: Workspace, start_sandbox: StartSandbox
) -> None:
    sandbox = start_sandbox()
    workspace.api_url = sandbox.url
    workspace.write_leads(2)
    result = workspace.run("apply")
    assert result.returncode == 1
    assert "refusing to apply without confirmation" in result.stderr
    assert sandbox.puts() == []


def test_plain_http_to_a_remote_host_is_refused_before_any_call(workspace: Workspace) -> None:
    workspace.write_leads(1)
    result = workspace.run(
        "apply", "--auto-approve", env=workspace.env(LOFTY_API_URL="http://lofty.example.com")
    )
    assert result.returncode == 1
    assert "http" in result.stderr and "Traceback" not in result.stderr
    assert not workspace.state.exists()


def test_the_credential_appears_nowhere_even_when_requests_fail(
    workspace: Workspace, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps([1001]))
    sandbox = start_sandbox("--seed", str(seed), "--fault-rate", "0.2", "--random-seed", "3")
    workspace.api_url = sandbox.url
    workspace.write_leads(2)
    outputs = []
    for args in (["plan", "--out", "p.plan"], ["apply", "--auto-approve"], ["state", "list"]):
        result = workspace.run(*args)
        outputs += [result.stdout, result.stderr]
    wrong = workspace.run(
        "apply", "--auto-approve", env=workspace.env(LOFTY_ACCESS_TOKEN="wrong-" + TOKEN)
    )
    assert wrong.returncode == 1 and "401" in wrong.stderr  # refused before any PUT
    outputs += [wrong.stdout, wrong.stderr]
    files = [p for p in workspace.root.rglob("*") if p.is_file()]
    assert any(p.name == "state.json" for p in files)
    for text in [*outputs, *(p.read_text("utf-8", errors="replace") for p in files)]:
        assert TOKEN not in text


def test_an_apply_whose_output_pipe_closes_still_applies_and_records_every_lead(
    workspace: Workspace, start_sandbox: StartSandbox
) -> None:
    sandbox = start_sandbox("--latency-ms", "20")
    workspace.api_url = sandbox.url
    ids = workspace.write_leads(12)
    script = (
        f"{sys.executable} -m reconciler apply --auto-approve --parallelism 2 | head -2; "
        "echo status=${PIPESTATUS[0]}"
    )
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=workspace.root,
        env=workspace.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.splitlines()[-1] == "status=0"
    assert len(done.stdout.splitlines()) == 3  # the two lines head took, and the status
    assert "Traceback" not in done.stderr and "Internal error" not in done.stderr
    assert set(open_state(str(workspace.state), env={}).read().leads) == set(ids)
    assert len(sandbox.puts()) == 12
