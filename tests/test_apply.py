"""The apply engine and command in-process: the Lofty client is built by an injected factory on
`httpx.MockTransport`, and the state may be made to fail, so every way an apply can end is
tested without a server or a subprocess."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import signal
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.apply import ApplyResult, apply_plan
from reconciler.client import ClientSettings, Credentials, LoftyClient
from reconciler.commands import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK
from reconciler.commands.apply import ApplyOptions
from reconciler.commands.apply import apply as apply_command
from reconciler.commands.error_handler import run_command
from reconciler.console import Console
from reconciler.errors import StateError
from reconciler.plan import Plan, make_plan
from reconciler.state import LeadRecord, Snapshot, StateBackend
from reconciler.state.local import LocalState

TOKEN = "in-process-token"
SETTINGS = ClientSettings("https://lofty.test", Credentials("Bearer", TOKEN), parallelism=10)
Handler = Callable[[httpx.Request], httpx.Response]


class Team:
    """A leads folder and a local state file in `root`, and the apply command run in-process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.leads = root / "leads"
        self.leads.mkdir()
        self.state_path = root / "state.json"
        self.puts: list[tuple[int, dict[str, Any]]] = []
        self.out, self.err = io.StringIO(), io.StringIO()

    def write(self, lead_id: int, **fields: Any) -> None:
        text = json.dumps({"leadId": lead_id, **fields})
        (self.leads / f"{lead_id}.yaml").write_text(text + "\n", "utf-8")

    def state(self) -> LocalState:
        return LocalState(self.state_path)

    def plan(self) -> Plan:
        made, _ = make_plan(self.leads, self.state().read(), state_name="state.json")
        return made

    def factory(
        self, handler: Handler, **settings: Any
    ) -> Callable[
        [ClientSettings, Callable[[str], None]], AbstractAsyncContextManager[LoftyClient]
    ]:
        def recording(request: httpx.Request) -> httpx.Response:
            if request.method == "PUT":
                lead_id = int(request.url.path.rsplit("/", 1)[-1])
                self.puts.append((lead_id, json.loads(request.content)))
            return handler(request)

        def make(given: ClientSettings, notice: Callable[[str], None]) -> LoftyClient:
            return LoftyClient(
                dataclasses.replace(given, **settings),
                transport=httpx.MockTransport(recording),
                notice=notice,
            )

        return make

    def apply(self, handler: Handler, **settings: Any) -> int:
        return self.apply_with(ApplyOptions(), handler, **settings)

    def apply_with(self, options: ApplyOptions, handler: Handler, **settings: Any) -> int:
        console = Console(
            out=self.out,
            err=self.err,
            env={"LOFTY_ACCESS_TOKEN": TOKEN, "LOFTY_API_URL": "https://lofty.test"},
        )
        # These tests drive the engine; reading Lofty first is tested against the sandbox.
        options = dataclasses.replace(
            options,
            dir=self.leads,
            state=str(self.state_path),
            auto_approve=True,
            parallelism=2,
            refresh=False,
        )
        factory = self.factory(handler, **settings)
        return run_command(lambda: apply_command(options, console, client_factory=factory), console)


def ok(request: httpx.Request) -> httpx.Response:
    if request.method == "GET" and request.url.path == "/v1.0/leads":  # the access check
        return httpx.Response(200, json={"leads": [], "_metadata": {"total": 0}})
    return httpx.Response(200, json={"leadId": int(request.url.path.rsplit("/", 1)[-1])})


@pytest.fixture
def team(tmp_path: Path) -> Team:
    return Team(tmp_path)


def test_apply_sends_each_change_and_records_it(team: Team) -> None:
    for lead_id in (1, 2, 3):
        team.write(lead_id, firstName=f"Lead {lead_id}")
    assert team.apply(ok) == EXIT_OK
    assert sorted(team.puts) == [(i, {"firstName": f"Lead {i}"}) for i in (1, 2, 3)]
    assert set(team.state().read().leads) == {1, 2, 3}
    assert "Apply complete: 3 applied (3 PUT), 0 failed, 0 skipped." in team.out.getvalue()

    team.puts.clear()
    team.write(2, firstName="Roberta")
    assert team.apply(ok) == EXIT_OK
    assert team.puts == [(2, {"firstName": "Roberta"})]


class SlowWrites:
    """A state whose writes take a while, counting them, so successes pile up meanwhile."""

    def __init__(self, inner: StateBackend) -> None:
        self.inner = inner
        self.writes: list[int] = []
        self.gate = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, records: Iterable[LeadRecord] = (), *, forget: Iterable[int] = ()) -> int:
        records = list(records)
        self.writes.append(len(records))
        self.gate.wait(0.2)
        return self.inner.write(records, forget=forget)


def run_engine(plan: Plan, state: Any, parallelism: int) -> ApplyResult:
    async def run() -> ApplyResult:
        async with LoftyClient(SETTINGS, transport=httpx.MockTransport(ok)) as client:
            return await apply_plan(plan, state, client, parallelism=parallelism)

    return asyncio.run(run())


def test_successes_that_finish_during_a_write_are_recorded_together(team: Team) -> None:
    for lead_id in range(1, 21):
        team.write(lead_id, firstName=f"Lead {lead_id}")
    state = SlowWrites(team.state())
    result = run_engine(team.plan(), state, parallelism=10)
    assert result.ok and result.count("applied") == 20
    assert sum(state.writes) == 20
    assert len(state.writes) < 20  # batched: fewer writes than leads
    assert set(team.state().read().leads) == set(range(1, 21))


class FailingWrites:
    """A state that refuses every write, as a full disk or a lost database would."""

    def __init__(self, inner: StateBackend) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def read(self) -> Snapshot:
        return self.inner.read()

    def write(self, records: Iterable[LeadRecord] = (), *, forget: Iterable[int] = ()) -> int:
        raise StateError("cannot write state state.json: No space left on device")


def test_a_put_that_landed_but_could_not_be_recorded_says_so(team: Team) -> None:
    team.write(1, firstName="Jane")
    result = run_engine(team.plan(), FailingWrites(team.state()), parallelism=1)
    (outcome,) = result.outcomes
    assert outcome.status == "failed" and outcome.called
    assert outcome.message == (
        "applied in Lofty but not recorded in the state: "
        "cannot write state state.json: No space left on device"
    )
    assert team.state().read().leads == {}


def test_after_lofty_is_unreachable_the_other_leads_are_skipped_not_sent(team: Team) -> None:
    for lead_id in range(1, 6):
        team.write(lead_id, firstName=f"Lead {lead_id}")

    def down(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":  # up for the access check, then gone
            return ok(request)
        raise httpx.ConnectError("connection refused", request=request)

    code = team.apply(down, unreachable_deadline=0.3, max_attempts=50, timeout=0.05)
    assert code == EXIT_ERROR
    out = team.out.getvalue()
    stopped = [line for line in out.splitlines() if line.startswith("The run stopped: ")]
    assert len(stopped) == 1, out  # said once, not once per lead
    assert "Lofty at https://lofty.test has not answered" in stopped[0]
    assert stopped[0].endswith("leads were not sent.")
    assert out.count("has not answered") == 1
    assert len({lead_id for lead_id, _ in team.puts}) < 5  # some leads were never tried
    assert team.state().read().leads == {}


def test_ctrl_c_mid_apply_keeps_what_was_applied_and_the_next_apply_sends_the_rest(
    team: Team,
) -> None:
    for lead_id in range(1, 7):
        team.write(lead_id, firstName=f"Lead {lead_id}")
    answered = 0

    def interrupt_on_the_fourth(request: httpx.Request) -> httpx.Response:
        nonlocal answered
        answered += 1
        if answered == 4:
            signal.raise_signal(signal.SIGINT)
        return ok(request)

    assert team.apply(interrupt_on_the_fourth) == EXIT_INTERRUPTED
    assert "Interrupted. Every lead applied so far is recorded" in team.err.getvalue()
    recorded = set(team.state().read().leads)
    assert 0 < len(recorded) < 6
    assert recorded <= {lead_id for lead_id, _ in team.puts}

    team.puts.clear()
    assert team.apply(ok) == EXIT_OK
    assert {lead_id for lead_id, _ in team.puts} == set(range(1, 7)) - recorded


def test_apply_json_gives_each_leads_outcome_on_stdout_and_the_plan_on_stderr(team: Team) -> None:
    team.write(1, firstName="Jane")
    team.write(2, firstName="Bob")

    def second_is_missing(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/2"):
            return httpx.Response(404, json={"code": 20006, "message": "LEAD_NOT_EXIST"})
        return ok(request)

    assert team.apply_with(ApplyOptions(format="json"), second_is_missing) == EXIT_ERROR
    doc = json.loads(team.out.getvalue())
    assert doc["format_version"] == 1 and doc["ok"] is False and doc["stopped"] is None
    assert doc["summary"] == {"applied": 1, "failed": 1, "skipped": 0, "conflict": 0}
    assert [(o["lead_id"], o["status"], o["called"]) for o in doc["outcomes"]] == [
        (1, "applied", True),
        (2, "failed", True),
    ]
    assert doc["outcomes"][1]["message"] == "HTTP 404: 20006 LEAD_NOT_EXIST"
    assert "Plan: 2 to manage" in team.err.getvalue()


def test_a_saved_plan_with_a_target_is_refused_and_nothing_is_sent(team: Team) -> None:
    from reconciler.plan import save_plan

    team.write(1, firstName="Jane")
    save_plan(team.plan(), team.root / "saved.plan")
    options = ApplyOptions(planfile=team.root / "saved.plan", targets=("1",))
    assert team.apply_with(options, ok) == EXIT_ERROR
    assert "--target cannot be used with a saved plan" in team.err.getvalue()
    assert team.puts == []


def test_a_plan_against_a_state_that_does_not_exist_says_where_it_looked(team: Team) -> None:
    from click.testing import CliRunner

    from reconciler.cli import main

    team.write(1, firstName="Jane")
    result = CliRunner().invoke(
        main, ["plan", "--dir", str(team.leads), "--state", "elsewhere/state.json"]
    )
    assert result.exit_code == 0
    assert "note: no state found at elsewhere/state.json (looked for " in result.stderr
    assert "run from the folder that holds its state or pass --state" in result.stderr


def test_an_offline_apply_against_a_state_that_does_not_exist_says_where_it_looked(
    team: Team,
) -> None:
    team.write(1, firstName="Jane")
    assert team.apply(ok) == EXIT_OK
    assert f"note: no state found at {team.state_path} (looked for " in team.err.getvalue()
    team.err.seek(0)
    team.err.truncate()
    team.write(1, firstName="Janet")
    assert team.apply(ok) == EXIT_OK  # the state exists now: nothing to say
    assert "no state found" not in team.err.getvalue()


def test_a_wrong_credential_is_caught_before_the_user_is_asked_and_nothing_is_sent(
    team: Team,
) -> None:
    team.write(1, firstName="Jane")

    def refused(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json="Unauthorized")

    def never_asked(prompt: str) -> str:
        raise AssertionError("asked for confirmation though the credential was refused")

    console = Console(
        out=team.out,
        err=team.err,
        interactive=True,
        ask=never_asked,
        env={"LOFTY_API_KEY": TOKEN, "LOFTY_API_URL": "https://lofty.test"},
    )
    options = ApplyOptions(dir=team.leads, state=str(team.state_path))
    factory = team.factory(refused)
    code = run_command(lambda: apply_command(options, console, client_factory=factory), console)
    assert code == EXIT_ERROR
    assert "LOFTY_API_KEY" in team.err.getvalue()
    assert "Authorization: token" in team.err.getvalue()
    assert team.puts == [] and team.state().read().leads == {}


def test_the_first_refused_put_ends_the_run_and_says_so_once(team: Team) -> None:
    for lead_id in range(1, 9):
        team.write(lead_id, firstName=f"Lead {lead_id}")

    def read_only_key(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return ok(request)
        return httpx.Response(403, json={"code": 403, "message": "Forbidden"})

    assert team.apply(read_only_key) == EXIT_ERROR
    out = team.out.getvalue()
    assert len(team.puts) <= 2  # at most the requests already under way (parallelism 2)
    stopped = [line for line in out.splitlines() if line.startswith("The run stopped: ")]
    assert len(stopped) == 1 and "HTTP 403" in stopped[0]
    assert "leads were not sent." in stopped[0]


def test_ctrl_d_at_the_prompt_cancels_and_sends_nothing(team: Team) -> None:
    team.write(1, firstName="Jane")

    def ctrl_d(prompt: str) -> str:
        raise EOFError

    console = Console(
        out=team.out,
        err=team.err,
        interactive=True,
        ask=ctrl_d,
        env={"LOFTY_ACCESS_TOKEN": TOKEN, "LOFTY_API_URL": "https://lofty.test"},
    )
    options = ApplyOptions(dir=team.leads, state=str(team.state_path), refresh=False)
    factory = team.factory(ok)
    code = run_command(lambda: apply_command(options, console, client_factory=factory), console)
    assert code == EXIT_ERROR
    assert "Apply cancelled; nothing was sent." in team.err.getvalue()
    assert "Traceback" not in team.err.getvalue()
    assert team.puts == [] and team.state().read().leads == {}


def test_a_long_apply_says_how_long_is_left(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.apply import Outcome
    from reconciler.commands import apply as command_module

    now = [1000.0]
    monkeypatch.setattr("reconciler.commands.apply.time.monotonic", lambda: now[0])
    console = Console(out=team.out, err=team.err)
    report = command_module._progress(console, lines=False)
    for done in range(1, 201):
        now[0] += 0.5  # half a second a lead
        report(Outcome(done, "f.yaml", "update", "applied", called=True), done, 200)
    notes = team.err.getvalue().splitlines()
    assert notes[0] == "  20/200 leads done, about 1m30s left"
    assert notes[-1] == "  180/200 leads done, about 10s left"
    assert len(notes) == 9  # every tenth of the way, not every lead


def test_a_hostile_server_ends_within_the_bounds_leaking_nothing(team: Team) -> None:
    """Every answer is hostile in its own way: the run still ends within the (here small)
    bounds, every lead is applied and recorded or failed with a message, and nothing of the
    credential reaches any output or file."""
    for lead_id in range(1, 25):
        team.write(lead_id, firstName=f"Lead {lead_id}")
    echoed = f"\x1b[31m\n::error::pwned {TOKEN} Bearer {TOKEN}"
    hostile: list[Callable[[httpx.Request], httpx.Response]] = [
        lambda r: httpx.Response(500, text=echoed * 50, headers={"Retry-After": "999999"}),
        lambda r: httpx.Response(
            429, json={"message": echoed}, headers={"X-RateLimit-Reset": "9999999999999"}
        ),
        lambda r: httpx.Response(200, text=f"<html>{echoed}</html>"),
        lambda r: httpx.Response(200, json={"code": 20012, "message": echoed}),
        lambda r: httpx.Response(200, json={"leadId": "not a number"}),
        lambda r: httpx.Response(418, json=echoed),
        ok,
    ]
    seen = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal seen
        if request.method == "GET":
            return ok(request)
        seen += 1
        return hostile[seen % len(hostile)](request)

    started = time.monotonic()
    code = team.apply(answer, lead_deadline=1.0, max_wait=0.2, attempt_deadline=1.0)
    assert time.monotonic() - started < 30
    assert code == EXIT_ERROR
    recorded = set(team.state().read().leads)
    out = team.out.getvalue() + team.err.getvalue()
    for lead_id in range(1, 25):
        applied = f"applied lead {lead_id} (" in out
        failed = f"failed: lead {lead_id} (" in out
        assert applied != failed, lead_id  # one or the other, said
        assert (lead_id in recorded) == applied
    assert TOKEN not in out and TOKEN[:8] not in out
    assert TOKEN not in team.state_path.read_text()
    assert "\x1b" not in out and "\n::error" not in out
