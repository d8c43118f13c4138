"""The GitOps layer: the workflows, the composite `action.yml` and the pre-commit hook.

Three kinds of checks:
- the files pass `actionlint` and `zizmor --offline` (both ship their binaries in wheels);
- their structure keeps the promises a team relies on (serialized applies, sticky comment, ...);
- the shell and JavaScript glue in `action.yml` is run for real, with fake `reconciler` and
  `gh` programs and a fake GitHub API, so a broken exit code or a duplicated comment shows here
  and not on a team's pull request.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.sandbox import Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTION = ROOT / "action.yml"
MARKER = "<!-- reconciler:plan -->"


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


def _on(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    triggers = workflow["on"] if "on" in workflow else workflow[True]
    return triggers if isinstance(triggers, dict) else {name: None for name in triggers}


def _workflow_files() -> list[Path]:
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


def _action() -> dict[str, Any]:
    return _load(ACTION)


def _step(name: str) -> dict[str, Any]:
    for step in _action()["runs"]["steps"]:
        if step.get("name") == name:
            return step
    raise AssertionError(f"action.yml has no step named {name!r}")


def _tool(name: str) -> str:
    """A linter binary from the test extras: beside the running Python, else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        message = f"{name} is not installed: pip install -e '.[test]'"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def _run_tool(argv: list[str], home: Path, stdin: str | None = None) -> None:
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache")}
    for token in ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN"):
        env.pop(token, None)
    result = subprocess.run(
        argv, cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, (
        f"{' '.join(argv)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )


# --- linters ------------------------------------------------------------------------------


def test_workflows_pass_actionlint(tmp_path: Path) -> None:
    files = [str(path.relative_to(ROOT)) for path in _workflow_files()]
    assert files, "no workflow files"
    _run_tool([_tool("actionlint"), "-no-color", "-oneline", *files], tmp_path)


def test_action_steps_pass_actionlint(tmp_path: Path) -> None:
    # actionlint reads action.yml only for its inputs; to check its steps too (expressions,
    # shellcheck on the scripts, inputs of the actions it uses) they are linted as one job.
    action = _action()
    workflow = {
        "on": {"workflow_call": {"inputs": {k: {"type": "string"} for k in action["inputs"]}}},
        "permissions": {},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": action["runs"]["steps"]}},
    }
    argv = [_tool("actionlint"), "-no-color", "-oneline"]
    argv += ["-stdin-filename", "action.yml (its steps as one job)", "-"]
    _run_tool(argv, tmp_path, stdin=yaml.safe_dump(workflow, sort_keys=False))


def test_workflows_and_action_pass_zizmor_offline(tmp_path: Path) -> None:
    inputs = [".github/workflows", "action.yml", ".github/dependabot.yml", ".pre-commit-hooks.yaml"]
    argv = [_tool("zizmor"), "--offline", "--no-progress", "--color", "never"]
    argv += ["--cache-dir", str(tmp_path / "zizmor"), *inputs]
    _run_tool(argv, tmp_path)


def test_workflows_in_the_adopting_guide_pass_both_linters(tmp_path: Path) -> None:
    # The guide's copies for another repository must stay as sound as the originals.
    guide = (ROOT / "docs" / "adopting.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n# (\.github/workflows/[\w-]+\.yml)\n(.*?)```", guide, re.S)
    assert [name for name, _ in blocks] == [
        ".github/workflows/leads-plan.yml",
        ".github/workflows/leads-apply.yml",
        ".github/workflows/leads-drift.yml",
    ]
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    for name, text in blocks:
        text = text.replace("OWNER/reconciler@<commit sha>", "acme/reconciler@" + "0" * 40)
        (tmp_path / name).write_text(text)
    files = [str(tmp_path / name) for name, _ in blocks]
    _run_tool([_tool("actionlint"), "-no-color", "-oneline", *files], tmp_path)
    argv = [_tool("zizmor"), "--offline", "--no-progress", "--color", "never"]
    _run_tool([*argv, "--cache-dir", str(tmp_path / "zizmor"), *files], tmp_path)


# --- structure ----------------------------------------------------------------------------


def _jobs_using_action(workflow: dict[str, Any], command: str) -> list[dict[str, Any]]:
    return [
        job
        for job in workflow["jobs"].values()
        for step in job.get("steps", [])
        if step.get("uses") == "./" and step.get("with", {}).get("command") == command
    ]


def test_every_workflow_grants_nothing_by_default_and_checks_out_without_credentials() -> None:
    for path in _workflow_files():
        workflow = _load(path)
        assert workflow.get("permissions") == {}, f"{path.name}: top-level permissions not {{}}"
        assert "pull_request_target" not in _on(workflow), path.name
        for name, job in workflow["jobs"].items():
            assert "permissions" in job, f"{path.name}: job {name} has no permissions"
            for step in job.get("steps", []):
                if str(step.get("uses", "")).startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, f"{path.name}: {name}"


def test_ci_runs_make_test_on_push_and_pull_request() -> None:
    workflow = _load(WORKFLOWS / "ci.yml")
    assert {"push", "pull_request"} <= set(_on(workflow))
    runs = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert any(re.match(r"make test\b", run) for run in runs), runs


def test_ci_assumes_no_postgresql_major_and_lints_only_inside_the_suite() -> None:
    # GitHub's runners ship one major and Debian another: the suite finds whichever is there.
    for path in (WORKFLOWS / "ci.yml", ROOT / ".ci" / "run"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"postgresql/\d|postgresql-\d", text), path.name
    workflow = _load(WORKFLOWS / "ci.yml")
    runs = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert not any("make lint" in run for run in runs), "tests/test_lint.py lints already"


def test_apply_workflow_is_serialized_never_cancelled_and_uses_an_environment() -> None:
    workflow = _load(WORKFLOWS / "leads-apply.yml")
    triggers = _on(workflow)
    assert triggers["push"]["branches"] == ["main"]
    concurrency = workflow["concurrency"]
    assert concurrency["group"]
    assert concurrency["cancel-in-progress"] is False
    (job,) = _jobs_using_action(workflow, "apply")
    assert job["environment"]
    assert not any(level == "write" for level in job["permissions"].values()), job["permissions"]
    step = next(s for s in job["steps"] if s.get("uses") == "./")
    assert step["with"]["lofty-access-token"] == "${{ secrets.LOFTY_ACCESS_TOKEN }}"
    assert step["with"]["lofty-api-key"] == "${{ secrets.LOFTY_API_KEY }}"


def test_plan_workflow_runs_on_pull_request_and_may_comment() -> None:
    workflow = _load(WORKFLOWS / "leads-plan.yml")
    assert "pull_request" in _on(workflow)
    (job,) = _jobs_using_action(workflow, "plan")
    assert job["permissions"] == {
        "contents": "read",
        "pull-requests": "write",
        "actions": "read",
    }
    # The plan job never sees a Lofty credential.
    assert "secrets." not in json.dumps(job)
    assert workflow["concurrency"]["cancel-in-progress"] is True


def test_action_is_composite_and_plans_to_summary_and_sticky_comment() -> None:
    action = _action()
    assert action["runs"]["using"] == "composite"
    plan = _step("Plan")["run"]
    assert re.search(r"^reconciler validate --dir ", plan, re.M)
    assert re.search(r"^reconciler plan .*--format markdown", plan, re.M)
    assert "$GITHUB_STEP_SUMMARY" in plan
    comment = _step("Post the plan as the sticky pull-request comment")
    assert comment["uses"].startswith("actions/github-script@")
    assert "!cancelled()" in comment["if"]  # a failed plan still replaces the old comment
    script = comment["with"]["script"]
    assert MARKER in script and "updateComment" in script and "createComment" in script
    apply = _step("Apply")["run"]
    assert re.search(r"^reconciler apply --auto-approve --dir ", apply, re.M)
    save = _step("Save the state for the next run")
    assert save["uses"].startswith("actions/upload-artifact@")
    assert save["with"]["include-hidden-files"] is True  # .reconciler/ is a hidden directory
    assert "always()" in save["if"]


def test_run_scripts_take_expressions_only_through_env() -> None:
    for step in _action()["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), step.get("name")


def test_pre_commit_hook_validates() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    hook = next(h for h in hooks if h["id"] == "reconciler-validate")
    assert hook["entry"] == "reconciler validate"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is False


# --- the action's shell steps, run for real -----------------------------------------------

FAKE_RECONCILER = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >> "$FAKE_LOG"
credentials() {
  for name in LOFTY_ACCESS_TOKEN LOFTY_API_KEY; do
    if [ -n "${!name+set}" ]; then echo "env $name" >> "$FAKE_LOG"; fi
  done
}
case "$1" in
  validate) exit "${FAKE_VALIDATE_RC:-0}" ;;
  plan) if [ -n "${FAKE_PLAN_CREDENTIALS:-}" ]; then credentials; fi
        if [[ " $* " == *" --write-drift "* ]]; then
          # Rewrites the files named in FAKE_WRITE, as `--write-drift` rewrites drifted values.
          for file in ${FAKE_WRITE:-}; do printf 'stage: Won\n' >> "$file"; done
          exit "${FAKE_WRITE_RC:-0}"
        fi
        printf '%s' "${FAKE_PLAN_OUT:-}"; exit "${FAKE_PLAN_RC:-0}" ;;
  apply) credentials ;;
esac
"""

FAKE_GH = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >> "$FAKE_LOG"
case "$1" in
  api) cat "$FAKE_ARTIFACTS" || exit 1 ;;
  run) dir="${!#}"; printf '{"serial": 7}\n' > "$dir/state.json" ;;
esac
"""


class Runner:
    """Runs one `run:` step of action.yml the way the runner does, in a scratch workspace."""

    def __init__(self, tmp_path: Path, *, fakes: tuple[str, ...] = ("reconciler", "gh")) -> None:
        self.workspace = tmp_path / "workspace"
        self.workspace.mkdir()
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.log = tmp_path / "calls.log"
        self.output = tmp_path / "github_output"
        self.summary = tmp_path / "step_summary"
        self.temp = tmp_path / "runner_temp"
        self.temp.mkdir()
        for name, text in (("reconciler", FAKE_RECONCILER), ("gh", FAKE_GH)):
            if name not in fakes:
                continue
            path = self.bin / name
            path.write_text(text)
            path.chmod(path.stat().st_mode | stat.S_IXUSR)

    def run(self, name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        step = _step(name)
        declared = set(step.get("env", {}))
        assert declared <= set(env), f"step {name!r} also needs {declared - set(env)}"
        script = self.temp / "step.sh"
        script.write_text(step["run"])
        full_env = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(self.workspace),
            "FAKE_LOG": str(self.log),
            "GITHUB_OUTPUT": str(self.output),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "RUNNER_TEMP": str(self.temp),
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "acme/leads",
            "GITHUB_RUN_ID": "4242",
            **env,
        }
        # The runner's own command line for `shell: bash`.
        return subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=self.workspace,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=30,
        )

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def outputs(self) -> dict[str, str]:
        lines = self.output.read_text().splitlines() if self.output.exists() else []
        return dict(line.split("=", 1) for line in lines)


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    return Runner(tmp_path)


PLAN_ENV = {
    "LEADS_DIR": "leads",
    "RECONCILER_STATE": ".reconciler/state.json",
    "HEAD_SHA": "abc1234",
}
PLAN_BODY = f"{MARKER}\n### Plan: 1 lead to change\n"


@pytest.mark.parametrize(("rc", "has_changes"), [(2, "true"), (0, "false")])
def test_plan_step_writes_summary_and_reports_changes(
    runner: Runner, rc: int, has_changes: str
) -> None:
    result = runner.run("Plan", {**PLAN_ENV, "FAKE_PLAN_RC": str(rc), "FAKE_PLAN_OUT": PLAN_BODY})

    assert result.returncode == 0, result.stderr
    assert runner.calls() == [
        "validate --dir leads",
        "plan --dir leads --state .reconciler/state.json --format markdown --detailed-exitcode",
    ]
    outputs = runner.outputs()
    assert outputs["has-changes"] == has_changes
    assert Path(outputs["body"]).read_text() == PLAN_BODY  # the comment body, nothing added
    assert runner.summary.read_text() == PLAN_BODY


def test_plan_step_fails_on_invalid_files_and_replaces_the_comment_body(runner: Runner) -> None:
    result = runner.run("Plan", {**PLAN_ENV, "FAKE_VALIDATE_RC": "1"})

    assert result.returncode == 1
    assert runner.calls() == ["validate --dir leads"]  # no plan from invalid files
    body = Path(runner.outputs()["body"]).read_text()
    assert body.startswith(MARKER + "\n")
    assert "invalid" in body and "abc1234" in body
    assert "https://github.com/acme/leads/actions/runs/4242" in body
    assert runner.summary.read_text() == body
    assert "::error::" in result.stdout


def test_plan_step_fails_when_plan_fails_without_posting_partial_output(runner: Runner) -> None:
    env = {**PLAN_ENV, "FAKE_PLAN_RC": "1", "FAKE_PLAN_OUT": "half a plan"}
    result = runner.run("Plan", env)

    assert result.returncode == 1
    body = Path(runner.outputs()["body"]).read_text()
    assert body.startswith(MARKER + "\n") and "half a plan" not in body
    assert "plan failed" in body


def test_plan_step_with_the_real_cli_gives_a_masked_bounded_comment(tmp_path: Path) -> None:
    # The step exactly as the workflow runs it, with the real `reconciler` on this repository's
    # own leads/ and no saved state (every lead is new, so every email and phone is shown).
    exe = Path(sys.executable).parent / "reconciler"
    if not exe.exists():
        message = "the reconciler console script is not installed: pip install -e '.[test]'"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    runner = Runner(tmp_path, fakes=("gh",))
    shutil.copytree(ROOT / "leads", runner.workspace / "leads")
    env = {**PLAN_ENV, "PATH": f"{runner.bin}{os.pathsep}{exe.parent}{os.pathsep}/usr/bin:/bin"}
    result = runner.run("Plan", env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert runner.outputs()["has-changes"] == "true"
    body = Path(runner.outputs()["body"]).read_text()
    assert body.startswith(MARKER + "\n")
    assert len(body) < 65_536
    assert runner.summary.read_text() == body
    sources = "".join(path.read_text() for path in (ROOT / "leads").rglob("*.y*ml"))
    emails = set(re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", sources))
    assert emails, "the example leads have no emails to check the masking with"
    assert not [email for email in emails if email in body]


@pytest.mark.parametrize(
    ("token", "key", "seen"),
    [("", "key-must-not-leak", "LOFTY_API_KEY"), ("token-must-not-leak", "", "LOFTY_ACCESS_TOKEN")],
)
def test_apply_step_applies_with_auto_approve_and_drops_the_unset_credential(
    runner: Runner, token: str, key: str, seen: str
) -> None:
    env = {
        "LEADS_DIR": "leads",
        "RECONCILER_STATE": ".reconciler/state.json",
        "LOFTY_ACCESS_TOKEN": token,
        "LOFTY_API_KEY": key,
    }
    result = runner.run("Apply", env)

    assert result.returncode == 0, result.stderr
    # A secret that is not configured reaches the step as "", which the CLI must not see.
    assert runner.calls() == [
        "apply --auto-approve --dir leads --state .reconciler/state.json",
        f"env {seen}",
    ]
    assert "must-not-leak" not in result.stdout + result.stderr


CHECK_ENV = {"DRIFT_ISSUE": "true", "DRIFT_PULL_REQUEST": "false"}


@pytest.mark.parametrize(
    ("command", "state", "flags", "message"),
    [
        ("destroy", ".reconciler/state.json", {}, "validate, plan, apply or drift, not 'destroy'"),
        # e.g. `state: ${{ secrets.RECONCILER_STATE }}` on a pull request from a fork
        ("apply", "", {}, "state input is empty"),
        ("plan", "", {}, "state input is empty"),
        ("drift", "", {}, "state input is empty"),
        ("drift", "s/s.json", {"DRIFT_PULL_REQUEST": "yes"}, "drift-pull-request must be true"),
        ("drift", "s/s.json", {"DRIFT_ISSUE": "False"}, "drift-issue must be true or false"),
    ],
)
def test_bad_inputs_are_refused(
    runner: Runner, command: str, state: str, flags: dict[str, str], message: str
) -> None:
    env = {**CHECK_ENV, "COMMAND": command, "RECONCILER_STATE": state, **flags}
    result = runner.run("Check the inputs", env)

    assert result.returncode == 1
    assert message in result.stdout


@pytest.mark.parametrize("command", ["validate", "plan", "apply", "drift"])
def test_good_inputs_pass(runner: Runner, command: str) -> None:
    state = "" if command == "validate" else "s/s.json"
    env = {**CHECK_ENV, "COMMAND": command, "RECONCILER_STATE": state}
    assert runner.run("Check the inputs", env).returncode == 0


def _artifact(
    run_id: int, created: str, *, branch: str = "main", head_repo: int = 1, expired: bool = False
) -> dict[str, Any]:
    return {
        "name": "reconciler-state",
        "created_at": created,
        "expired": expired,
        "workflow_run": {
            "id": run_id,
            "repository_id": 1,
            "head_repository_id": head_repo,
            "head_branch": branch,
        },
    }


RESTORE_ENV = {
    "GH_TOKEN": "ghs_fake",
    "ARTIFACT": "reconciler-state",
    "RECONCILER_STATE": ".reconciler/state.json",
    "DEFAULT_BRANCH": "main",
}


def _restore(
    runner: Runner, pages: list[list[dict[str, Any]]] | None, **env: str
) -> subprocess.CompletedProcess[str]:
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed")
    fixture = runner.temp / "artifacts.json"
    if pages is not None:  # `gh api --paginate` prints one JSON document per page
        fixture.write_text("".join(json.dumps({"artifacts": page}) + "\n" for page in pages))
    return runner.run(
        "Restore the state saved by the last apply",
        {**RESTORE_ENV, "FAKE_ARTIFACTS": str(fixture), **env},
    )


def test_restore_takes_the_newest_state_saved_on_the_default_branch(runner: Runner) -> None:
    pages = [
        [
            _artifact(100, "2026-01-01T00:00:00Z"),
            # Newer, but uploaded by pull requests: from a fork whose branch is also called
            # main, and from a branch of this repository. Neither may feed a plan or an apply.
            _artifact(900, "2026-03-01T00:00:00Z", head_repo=2),
            _artifact(800, "2026-03-02T00:00:00Z", branch="feature"),
        ],
        [_artifact(300, "2026-02-01T00:00:00Z"), _artifact(200, "2026-01-15T00:00:00Z")],
    ]
    result = _restore(runner, pages)

    assert result.returncode == 0, result.stdout + result.stderr
    assert runner.calls()[0].startswith("api --paginate repos/acme/leads/actions/artifacts?")
    assert runner.calls()[1] == (
        "run download 300 --repo acme/leads --name reconciler-state --dir .reconciler"
    )
    assert (runner.workspace / ".reconciler" / "state.json").exists()
    assert runner.outputs()["dir"] == ".reconciler"


def test_restore_without_a_saved_state_starts_empty(runner: Runner) -> None:
    result = _restore(runner, [[_artifact(900, "2026-03-01T00:00:00Z", head_repo=2)]])

    assert result.returncode == 0, result.stderr
    assert "::notice::No saved state" in result.stdout
    assert not any(call.startswith("run download") for call in runner.calls())
    assert (runner.workspace / ".reconciler").is_dir()  # the apply writes its state there


def test_restore_warns_when_the_saved_state_expired(runner: Runner) -> None:
    result = _restore(runner, [[_artifact(100, "2026-01-01T00:00:00Z", expired=True)]])

    assert result.returncode == 0, result.stderr
    assert "::warning::" in result.stdout and "expired" in result.stdout
    assert not any(call.startswith("run download") for call in runner.calls())


def test_restore_fails_when_artifacts_cannot_be_listed(runner: Runner) -> None:
    result = _restore(runner, None)  # `gh api` fails, e.g. without `actions: read`

    assert result.returncode == 1
    assert "actions: read" in result.stdout


def test_restore_refuses_a_state_file_outside_a_directory_of_its_own(runner: Runner) -> None:
    # Its directory is uploaded whole: "." would upload the entire checkout.
    result = _restore(runner, [[]], RECONCILER_STATE="state.json")

    assert result.returncode == 1
    assert "directory of its own" in result.stdout
    assert runner.calls() == []


# --- the sticky comment script, run under node with a fake GitHub API -----------------------

NODE_HARNESS = r"""
const fs = require('node:fs');
const [scriptPath, scenarioPath] = process.argv.slice(2);
const scenario = JSON.parse(fs.readFileSync(scenarioPath, 'utf8'));
const calls = [];
// Each API method records its call, then fails with the scenario's status for it, or answers
// with the scenario's data for it. Issue methods keep their bare names; others are prefixed.
const failures = { ...(scenario.failures ?? {}) };
if (scenario.failOn) failures[scenario.failOn] = scenario.status;
const data = { listComments: scenario.comments ?? [], ...(scenario.data ?? {}) };
const api = (name) => async (params) => {
  calls.push([name, params]);
  if (failures[name]) {
    throw Object.assign(new Error(`HTTP ${failures[name]}`), { status: failures[name] });
  }
  return { data: data[name] ?? {} };
};
const namespace = (prefix, names) =>
  Object.fromEntries(names.map((name) => [name, api(prefix + name)]));
const github = {
  paginate: async (method, params) => (await method(params)).data,
  rest: {
    issues: namespace('', ['listComments', 'createComment', 'updateComment', 'deleteComment',
                           'listForRepo', 'create', 'update', 'getLabel', 'createLabel']),
    pulls: namespace('pulls.', ['list', 'create', 'update']),
    git: namespace('git.', ['getCommit', 'createBlob', 'createTree', 'createCommit',
                            'updateRef', 'createRef']),
  },
};
const core = Object.fromEntries(['notice', 'warning', 'setFailed', 'info'].map(
  (name) => [name, (message) => calls.push([name, message])]));
core.setOutput = (name, value) => calls.push(['setOutput', { [name]: value }]);
const context = {
  repo: { owner: 'acme', repo: 'leads' }, issue: { number: 7 },
  serverUrl: 'https://github.com', runId: 4242,
};
const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
const script = new AsyncFunction('require', 'github', 'context', 'core',
                                 fs.readFileSync(scriptPath, 'utf8'));
script(require, github, context, core).then(
  () => console.log(JSON.stringify({ calls })),
  (error) => console.log(JSON.stringify({ calls, error: error.message })),
);
"""


def _github_script(
    tmp_path: Path, step_name: str, env: dict[str, str], scenario: dict[str, Any]
) -> dict[str, Any]:
    """Run a github-script step of action.yml under node with a fake GitHub API; the calls it
    made (API, `core.*`, outputs) in order, and its error if it threw."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    step = _step(step_name)
    declared = set(step.get("env", {}))
    assert declared <= set(env), f"step {step_name!r} also needs {declared - set(env)}"
    (tmp_path / "script.js").write_text(step["with"]["script"])
    (tmp_path / "harness.js").write_text(NODE_HARNESS)
    (tmp_path / "scenario.json").write_text(json.dumps(scenario))
    argv = [node, *(str(tmp_path / name) for name in ("harness.js", "script.js", "scenario.json"))]
    result = subprocess.run(
        argv,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    outcome: dict[str, Any] = json.loads(result.stdout)
    return outcome


def _comment(
    tmp_path: Path, body: str, comments: list[dict[str, Any]], **scenario: Any
) -> dict[str, Any]:
    (tmp_path / "body.md").write_text(body)
    env = {"BODY_FILE": str(tmp_path / "body.md"), "COMMENT_AUTHOR": BOT["login"]}
    return _github_script(
        tmp_path,
        "Post the plan as the sticky pull-request comment",
        env,
        {"comments": comments, **scenario},
    )


def _writes(outcome: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(name, params) for name, params in outcome["calls"] if name != "listComments"]


BOT = {"login": "github-actions[bot]", "type": "Bot"}
REVIEWER = {"login": "mallory", "type": "User"}


def test_sticky_comment_is_created_when_there_is_none(tmp_path: Path) -> None:
    outcome = _comment(tmp_path, PLAN_BODY, [{"id": 1, "body": "LGTM", "user": REVIEWER}])

    assert "error" not in outcome
    assert _writes(outcome) == [
        ("createComment", {"owner": "acme", "repo": "leads", "issue_number": 7, "body": PLAN_BODY}),
    ]


def test_sticky_comment_is_updated_and_never_duplicated(tmp_path: Path) -> None:
    comments: list[dict[str, Any]] = [
        {"id": 1, "body": "LGTM", "user": REVIEWER},
        {"id": 2, "body": f"{MARKER}\nold plan", "user": BOT},
        {"id": 3, "body": f"> {MARKER}\n> quoted by a reviewer", "user": REVIEWER},
        {"id": 4, "body": f"{MARKER}\na duplicate", "user": BOT},
        {"id": 5, "body": None, "user": BOT},
    ]
    outcome = _comment(tmp_path, PLAN_BODY, comments)

    assert "error" not in outcome
    assert _writes(outcome) == [
        ("updateComment", {"owner": "acme", "repo": "leads", "comment_id": 2, "body": PLAN_BODY}),
        ("deleteComment", {"owner": "acme", "repo": "leads", "comment_id": 4}),
    ]


def test_a_comment_planted_by_someone_else_is_never_taken_over(tmp_path: Path) -> None:
    planted = {"id": 1, "body": f"{MARKER}\nplanted", "user": REVIEWER}
    outcome = _comment(tmp_path, PLAN_BODY, [planted, {"id": 2, "body": None, "user": None}])

    assert "error" not in outcome
    assert _writes(outcome) == [
        ("createComment", {"owner": "acme", "repo": "leads", "issue_number": 7, "body": PLAN_BODY}),
    ]


def test_read_only_token_falls_back_to_the_job_summary_with_a_notice(tmp_path: Path) -> None:
    outcome = _comment(tmp_path, PLAN_BODY, [], failOn="createComment", status=403)

    assert "error" not in outcome  # the job does not fail on a pull request from a fork
    notices = [params for name, params in outcome["calls"] if name == "notice"]
    assert len(notices) == 1 and "job summary" in notices[0]


def test_other_api_errors_fail_the_step(tmp_path: Path) -> None:
    outcome = _comment(tmp_path, PLAN_BODY, [], failOn="createComment", status=502)

    assert outcome["error"] == "HTTP 502"


def test_a_body_without_the_marker_is_not_posted(tmp_path: Path) -> None:
    outcome = _comment(tmp_path, "### Plan\n", [])

    assert [name for name, _ in outcome["calls"]] == ["setFailed"]


# --- drift: the workflow, the plan step, the issue and the pull request ---------------------

DRIFT_MARKER = "<!-- reconciler:drift -->"
PR_MARKER = "<!-- reconciler:drift-pull-request -->"


def test_drift_workflow_runs_daily_and_by_hand_and_reports_with_a_read_credential() -> None:
    workflow = _load(WORKFLOWS / "leads-drift.yml")
    triggers = _on(workflow)
    assert [entry["cron"] for entry in triggers["schedule"]] == ["17 6 * * *"]
    assert triggers["workflow_dispatch"]["inputs"]["pull-request"]["type"] == "boolean"
    assert triggers["workflow_dispatch"]["inputs"]["pull-request"]["default"] is False
    assert workflow["concurrency"]["cancel-in-progress"] is False
    report = workflow["jobs"]["report"]
    assert _jobs_using_action(workflow, "drift") == [report, workflow["jobs"]["pull-request"]]
    assert report["environment"] == "lofty-read"
    # The daily job can write issues and nothing else: no write to the repository.
    assert report["permissions"] == {"contents": "read", "issues": "write", "actions": "read"}
    step = next(s for s in report["steps"] if s.get("uses") == "./")
    assert step["with"] == {
        "command": "drift",
        "leads-dir": "leads",
        "lofty-access-token": "${{ secrets.LOFTY_ACCESS_TOKEN }}",
        "lofty-api-key": "${{ secrets.LOFTY_API_KEY }}",
    }


def test_only_the_opt_in_drift_pull_request_job_may_write_to_the_repository() -> None:
    workflow = _load(WORKFLOWS / "leads-drift.yml")
    job = workflow["jobs"]["pull-request"]
    assert job["needs"] == "report"
    assert job["if"] == "inputs.pull-request || vars.LEADS_DRIFT_PULL_REQUEST == 'true'"
    assert job["environment"] == "lofty-read"
    assert job["permissions"] == {
        "contents": "write",
        "pull-requests": "write",
        "actions": "read",
    }
    step = next(s for s in job["steps"] if s.get("uses") == "./")
    assert step["with"]["drift-issue"] == "false"
    assert step["with"]["drift-pull-request"] == "true"
    writers = [
        name
        for name, each in workflow["jobs"].items()
        if each["permissions"].get("contents") == "write"
    ]
    assert writers == ["pull-request"]


DRIFT_ENV = {
    "LEADS_DIR": "leads",
    "RECONCILER_STATE": ".reconciler/state.json",
    "LOFTY_ACCESS_TOKEN": "",
    "LOFTY_API_KEY": "read-key-must-not-leak",
}
REFRESH_CALL = (
    "plan --refresh --dir leads --state .reconciler/state.json --format markdown "
    "--detailed-exitcode"
)
DRIFT_PLAN = f"{MARKER}\n### Lead plan\n\n**No changes.**\n\n### Drift\n\n- 101 stage\n"


@pytest.mark.parametrize(
    "heading", ["### Drift", "### Drift: edited in Lofty since the last apply"]
)
def test_drift_step_reports_drift_with_its_own_marker_and_the_read_credential(
    runner: Runner, heading: str
) -> None:
    plan = DRIFT_PLAN.replace("### Drift\n", heading + "\n")
    env = {**DRIFT_ENV, "FAKE_PLAN_RC": "2", "FAKE_PLAN_OUT": plan}
    result = runner.run("Plan against live Lofty for drift", {**env, "FAKE_PLAN_CREDENTIALS": "1"})

    assert result.returncode == 0, result.stderr
    # The unset secret is dropped, the other reaches the CLI and is never printed.
    assert runner.calls() == ["validate --dir leads", REFRESH_CALL, "env LOFTY_API_KEY"]
    assert "must-not-leak" not in result.stdout + result.stderr
    outputs = runner.outputs()
    assert outputs["has-drift"] == "true"
    assert Path(outputs["report"]).read_text() == f"{DRIFT_MARKER}\n{plan}"
    assert runner.summary.read_text() == plan
    assert "::warning::" in result.stdout


@pytest.mark.parametrize(
    ("rc", "plan"),
    [
        (0, f"{MARKER}\n### Lead plan\n\n**No changes.**\n"),
        # Changes in the files not applied yet are not drift, nor is a value called Drift.
        (2, f"{MARKER}\n### Lead plan\n\n**1 lead to change.**\n\n### Drifting leads\n"),
    ],
)
def test_drift_step_without_drift_says_so(runner: Runner, rc: int, plan: str) -> None:
    result = runner.run(
        "Plan against live Lofty for drift",
        {**DRIFT_ENV, "FAKE_PLAN_RC": str(rc), "FAKE_PLAN_OUT": plan},
    )

    assert result.returncode == 0, result.stderr
    assert runner.outputs()["has-drift"] == "false"
    assert "::warning::" not in result.stdout


def test_a_failed_refresh_fails_the_step_and_leaves_the_issue_alone(runner: Runner) -> None:
    env = {**DRIFT_ENV, "FAKE_PLAN_RC": "1", "FAKE_PLAN_OUT": "half a plan"}
    result = runner.run("Plan against live Lofty for drift", env)

    assert result.returncode == 1
    assert "has-drift" not in runner.outputs()  # so the issue step skips: nothing is closed
    assert "the drift issue is left as it was" in result.stdout


def test_drift_step_needs_a_credential(runner: Runner) -> None:
    env = {**DRIFT_ENV, "LOFTY_API_KEY": ""}
    result = runner.run("Plan against live Lofty for drift", env)

    assert result.returncode == 1
    assert "lofty-read" in result.stdout and "read-only" in result.stdout
    assert runner.calls() == []


def test_drift_steps_only_run_for_drift_and_the_issue_only_after_a_plan() -> None:
    assert _step("Plan against live Lofty for drift")["if"] == "inputs.command == 'drift'"
    issue = _step("Keep the drift issue up to date")["if"]
    assert "inputs.drift-issue == 'true'" in issue
    assert "steps.drift.outputs.has-drift != ''" in issue
    write = _step("Write Lofty's values into the lead files")["if"]
    assert "inputs.drift-pull-request == 'true'" in write
    assert "steps.drift.outputs.has-drift == 'true'" in write


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=30
    ).stdout.strip()


def test_write_step_lists_the_rewritten_lead_files_and_the_commit_they_sit_on(
    runner: Runner,
) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    top = runner.workspace
    for name in ("leads/team a/jane.yaml", "leads/bo.yaml", "README.md"):
        (top / name).parent.mkdir(parents=True, exist_ok=True)
        (top / name).write_text("leadId: 1\n")
    _git(top, "init", "-q")
    _git(top, "add", "-A")
    _git(top, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "leads")
    env = {**DRIFT_ENV, "FAKE_WRITE": str(top / "leads" / "bo.yaml")}
    result = runner.run("Write Lofty's values into the lead files", env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert runner.calls()[-1] == (
        "plan --refresh --write-drift --dir leads --state .reconciler/state.json"
    )
    outputs = runner.outputs()
    assert Path(outputs["files"]).read_bytes() == b"leads/bo.yaml\0"
    assert outputs["top"] == str(top.resolve())
    assert outputs["base"] == _git(top, "rev-parse", "HEAD")


def test_write_step_fails_when_writing_fails(runner: Runner) -> None:
    result = runner.run(
        "Write Lofty's values into the lead files", {**DRIFT_ENV, "FAKE_WRITE_RC": "1"}
    )

    assert result.returncode == 1
    assert "writing the drifted values failed" in result.stdout


# The issue script ------------------------------------------------------------------------

DRIFT_BODY = f"{DRIFT_MARKER}\n{DRIFT_PLAN}"


def _issue(
    tmp_path: Path,
    issues: list[dict[str, Any]],
    *,
    drift: bool = True,
    body: str = DRIFT_BODY,
    **scenario: Any,
) -> dict[str, Any]:
    (tmp_path / "report.md").write_text(body)
    env = {
        "HAS_DRIFT": "true" if drift else "false",
        "REPORT_FILE": str(tmp_path / "report.md"),
        "LABEL": "lead-drift",
        "AUTHOR": BOT["login"],
    }
    data = {"listForRepo": issues, "create": {"number": 31}, **scenario.pop("data", {})}
    return _github_script(
        tmp_path, "Keep the drift issue up to date", env, {"data": data, **scenario}
    )


REPO = {"owner": "acme", "repo": "leads"}
RUN = "https://github.com/acme/leads/actions/runs/4242"


def _bot_issue(number: int, body: str = f"{DRIFT_MARKER}\nold report") -> dict[str, Any]:
    return {"number": number, "body": body, "user": BOT}


def _planted(number: int) -> dict[str, Any]:
    # Same title, label and marker, opened by someone else: never the bot's to edit or close.
    return {
        "number": number,
        "title": "Lead drift: fields edited in Lofty since the last apply",
        "body": f"{DRIFT_MARKER}\nplanted",
        "user": REVIEWER,
    }


def test_drift_issue_is_created_with_its_label_when_there_is_none(tmp_path: Path) -> None:
    outcome = _issue(tmp_path, [_planted(5)])

    assert "error" not in outcome
    assert outcome["calls"][0] == [
        "listForRepo",
        {**REPO, "state": "open", "creator": BOT["login"], "labels": "lead-drift", "per_page": 100},
    ]
    assert outcome["calls"][1:] == [
        ["getLabel", {**REPO, "name": "lead-drift"}],
        [
            "create",
            {
                **REPO,
                "body": DRIFT_BODY,
                "labels": ["lead-drift"],
                "title": "Lead drift: fields edited in Lofty since the last apply",
            },
        ],
        ["setOutput", {"number": "31"}],
    ]


def test_the_drift_label_is_created_when_the_repository_lacks_it(tmp_path: Path) -> None:
    outcome = _issue(tmp_path, [], failures={"getLabel": 404})

    assert "error" not in outcome
    names = [name for name, _ in outcome["calls"]]
    assert names == ["listForRepo", "getLabel", "createLabel", "create", "setOutput"]
    assert outcome["calls"][2][1]["name"] == "lead-drift"


def test_the_bots_drift_issue_is_updated_when_the_report_changes(tmp_path: Path) -> None:
    outcome = _issue(tmp_path, [_planted(5), _bot_issue(9)])

    assert "error" not in outcome
    assert outcome["calls"][1:] == [
        ["update", {**REPO, "issue_number": 9, "body": DRIFT_BODY}],
        ["setOutput", {"number": "9"}],
    ]


def test_an_unchanged_report_leaves_the_issue_alone(tmp_path: Path) -> None:
    outcome = _issue(tmp_path, [_bot_issue(9, DRIFT_BODY)])

    assert outcome["calls"][1:] == [["setOutput", {"number": "9"}]]


def test_the_bots_drift_issue_is_closed_with_a_comment_when_the_drift_is_gone(
    tmp_path: Path,
) -> None:
    pull = {**_bot_issue(12), "pull_request": {"url": "..."}}  # an issue listing holds PRs too
    outcome = _issue(tmp_path, [_planted(5), _bot_issue(9), pull], drift=False)

    assert "error" not in outcome
    assert outcome["calls"][1:] == [
        [
            "createComment",
            {
                **REPO,
                "issue_number": 9,
                "body": "No drift any more: Lofty holds what the lead files and the last apply "
                f"say. Found by [this run]({RUN}).",
            },
        ],
        ["update", {**REPO, "issue_number": 9, "state": "closed", "state_reason": "completed"}],
        ["setOutput", {"number": ""}],
    ]


def test_without_drift_a_planted_issue_is_never_touched(tmp_path: Path) -> None:
    outcome = _issue(tmp_path, [_planted(5), {**_planted(6), "user": None}], drift=False)

    assert outcome["calls"][1:] == [["setOutput", {"number": ""}]]


def test_a_duplicate_drift_issue_of_the_bot_is_closed(tmp_path: Path) -> None:
    outcome = _issue(tmp_path, [_bot_issue(9, DRIFT_BODY), _bot_issue(11)])

    assert outcome["calls"][1:] == [
        ["createComment", {**REPO, "issue_number": 11, "body": "Duplicate of #9."}],
        ["update", {**REPO, "issue_number": 11, "state": "closed", "state_reason": "not_planned"}],
        ["setOutput", {"number": "9"}],
    ]


def test_a_report_over_githubs_limit_is_cut_at_a_line_with_a_note(tmp_path: Path) -> None:
    long = DRIFT_BODY + "".join(f"- lead {n}: a drifted value\n" for n in range(4000))
    assert len(long) > 65_536
    outcome = _issue(tmp_path, [], body=long)

    [body] = [params["body"] for name, params in outcome["calls"] if name == "create"]
    assert len(body) <= 65_536
    assert body.startswith(DRIFT_BODY)
    assert body.endswith(
        f"\n\n_The report was cut to fit; the whole plan is in [the run]({RUN})._\n"
    )
    assert "\n- lead" in body and body.split("\n\n_The report")[0].endswith("drifted value")


def test_a_report_without_the_drift_marker_is_not_posted(tmp_path: Path) -> None:
    outcome = _issue(tmp_path, [], body=DRIFT_PLAN)

    assert [name for name, _ in outcome["calls"]] == ["listForRepo", "setFailed"]


def test_other_api_errors_fail_the_drift_issue_step(tmp_path: Path) -> None:
    outcome = _issue(tmp_path, [], failures={"create": 502})

    assert outcome["error"] == "HTTP 502"


# The pull-request script -----------------------------------------------------------------


def _pull_request(
    tmp_path: Path, pulls: list[dict[str, Any]], *, drift: bool = True, **scenario: Any
) -> dict[str, Any]:
    top = tmp_path / "checkout"
    (top / "leads").mkdir(parents=True)
    (top / "leads" / "jane.yaml").write_text("leadId: 101\nstage: Won\n")
    (tmp_path / "files").write_bytes(b"leads/jane.yaml\0" if drift else b"")
    env = {
        "HAS_DRIFT": "true" if drift else "false",
        "FILES": str(tmp_path / "files") if drift else "",
        "TOP": str(top),
        "BASE_SHA": "b" * 40,
        "BASE_BRANCH": "main",
        "BRANCH": "reconciler/drift",
        "AUTHOR": BOT["login"],
        "LABEL": "lead-drift",
    }
    data = {
        "pulls.list": pulls,
        "pulls.create": {"number": 44},
        "git.getCommit": {"tree": {"sha": "t" * 40}},
        "git.createBlob": {"sha": "blob1"},
        "git.createTree": {"sha": "tree2"},
        "git.createCommit": {"sha": "c" * 40},
        **scenario.pop("data", {}),
    }
    return _github_script(
        tmp_path, "Open, update or close the drift pull request", env, {"data": data, **scenario}
    )


COMMIT_CALLS = [
    ["git.getCommit", {**REPO, "commit_sha": "b" * 40}],
    # base64 of the rewritten file as the job left it
    [
        "git.createBlob",
        {**REPO, "content": "bGVhZElkOiAxMDEKc3RhZ2U6IFdvbgo=", "encoding": "base64"},
    ],
    [
        "git.createTree",
        {
            **REPO,
            "base_tree": "t" * 40,
            "tree": [{"path": "leads/jane.yaml", "mode": "100644", "type": "blob", "sha": "blob1"}],
        },
    ],
    [
        "git.createCommit",
        {
            **REPO,
            "message": "Accept the lead fields edited in Lofty since the last apply",
            "tree": "tree2",
            "parents": ["b" * 40],
        },
    ],
    ["git.updateRef", {**REPO, "ref": "heads/reconciler/drift", "sha": "c" * 40, "force": True}],
]


def _planted_pull(number: int) -> dict[str, Any]:
    return {"number": number, "body": f"{PR_MARKER}\nplanted", "user": REVIEWER}


def test_drift_pull_request_is_opened_from_one_commit_on_the_checked_out_commit(
    tmp_path: Path,
) -> None:
    outcome = _pull_request(tmp_path, [])

    assert "error" not in outcome
    calls = outcome["calls"]
    assert calls[0] == [
        "pulls.list",
        {**REPO, "state": "open", "head": "acme:reconciler/drift", "per_page": 100},
    ]
    assert calls[1:6] == COMMIT_CALLS
    name, params = calls[6]
    assert name == "pulls.create"
    assert {k: params[k] for k in ("head", "base")} == {"head": "reconciler/drift", "base": "main"}
    assert params["body"].startswith(PR_MARKER + "\n")
    assert "`lead-drift` issue" in params["body"] and RUN in params["body"]
    assert calls[7:] == [["setOutput", {"number": "44"}]]


def test_the_drift_branch_is_created_when_it_does_not_exist(tmp_path: Path) -> None:
    outcome = _pull_request(tmp_path, [], failures={"git.updateRef": 422})

    assert "error" not in outcome
    names = [name for name, _ in outcome["calls"]]
    assert names[5:8] == ["git.updateRef", "git.createRef", "pulls.create"]
    assert outcome["calls"][6][1] == {**REPO, "ref": "refs/heads/reconciler/drift", "sha": "c" * 40}


def test_the_bots_drift_pull_request_is_updated_not_duplicated(tmp_path: Path) -> None:
    ours = {"number": 40, "body": f"{PR_MARKER}\nold", "user": BOT}
    outcome = _pull_request(tmp_path, [_planted_pull(39), ours])

    assert "error" not in outcome
    calls = outcome["calls"]
    assert calls[1:6] == COMMIT_CALLS
    assert calls[6][0] == "pulls.update" and calls[6][1]["pull_number"] == 40
    assert calls[7:] == [["setOutput", {"number": "40"}]]


def test_a_planted_pull_request_from_the_branch_is_left_alone(tmp_path: Path) -> None:
    outcome = _pull_request(tmp_path, [_planted_pull(39)], failures={"pulls.create": 422})

    assert "error" not in outcome
    names = [name for name, _ in outcome["calls"]]
    assert "pulls.update" not in names
    assert names[-2:] == ["warning", "setOutput"]


def test_the_bots_drift_pull_request_is_closed_when_the_drift_is_gone(tmp_path: Path) -> None:
    ours = {"number": 40, "body": f"{PR_MARKER}\nold", "user": BOT}
    outcome = _pull_request(tmp_path, [_planted_pull(39), ours], drift=False)

    assert "error" not in outcome
    assert outcome["calls"][1:] == [
        [
            "createComment",
            {
                **REPO,
                "issue_number": 40,
                "body": f"No drift left to accept (found by [this run]({RUN})); closing.",
            },
        ],
        ["pulls.update", {**REPO, "pull_number": 40, "state": "closed"}],
        ["setOutput", {"number": ""}],
    ]


# The drift steps with the real CLI against the sandbox -------------------------------------

JANE_FILE = """\
# A buyer from the open house.
leadId: 651095960136641
firstName: Jane
emails: [jane.doe@example.com]
stage: Pending  # set by the open-house import
tags: [Hot Lead]
"""


def test_drift_steps_with_the_real_cli_report_masked_drift_and_rewrite_only_its_values(
    tmp_path: Path,
) -> None:
    # An agent edits a lead in Lofty after the last apply: the drift step sees it and reports
    # it masked; the write step rewrites exactly that value in the lead file.
    exe = Path(sys.executable).parent / "reconciler"
    if not exe.exists() or shutil.which("git") is None:
        pytest.skip("needs the reconciler console script and git")
    runner = Runner(tmp_path, fakes=("gh",))
    top = runner.workspace
    (top / "leads").mkdir()
    (top / "leads" / "jane.yaml").write_text(JANE_FILE)
    _git(top, "init", "-q")
    _git(top, "add", "-A")
    _git(top, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "leads")
    token = "drift-step-token"
    with Sandbox(SandboxConfig(credentials=frozenset({token}))) as sandbox:
        sandbox.register(651095960136641)
        path = f"{runner.bin}{os.pathsep}{exe.parent}{os.pathsep}/usr/bin:/bin"
        env = {
            **DRIFT_ENV,
            "PATH": path,
            "LOFTY_API_URL": sandbox.url,
            "LOFTY_ACCESS_TOKEN": token,
            "LOFTY_API_KEY": "",
        }
        applied = subprocess.run(
            [
                "reconciler",
                "apply",
                "--auto-approve",
                "--dir",
                "leads",
                "--state",
                ".reconciler/state.json",
            ],
            cwd=top,
            env={**os.environ, **env, "HOME": str(top)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert applied.returncode == 0, applied.stdout + applied.stderr

        clean = runner.run("Plan against live Lofty for drift", env)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert runner.outputs()["has-drift"] == "false"

        sandbox.agent_edit(651095960136641, {"stage": "Showing", "emails": ["jd@private.example"]})
        runner.output.unlink()
        drifted = runner.run("Plan against live Lofty for drift", env)
        assert drifted.returncode == 0, drifted.stdout + drifted.stderr
        outputs = runner.outputs()
        assert outputs["has-drift"] == "true"
        report = Path(outputs["report"]).read_text()
        assert report.startswith(f"{DRIFT_MARKER}\n{MARKER}\n")
        assert "\n### Drift\n" in report and "Showing" in report
        assert "jd@private.example" not in report and "private.example" in report  # masked

        runner.output.unlink()
        written = runner.run("Write Lofty's values into the lead files", env)
        assert written.returncode == 0, written.stdout + written.stderr
    outputs = runner.outputs()
    assert Path(outputs["files"]).read_bytes() == b"leads/jane.yaml\0"
    assert (top / "leads" / "jane.yaml").read_text() == JANE_FILE.replace(
        "stage: Pending  #", "stage: Showing  #"
    ).replace("[jane.doe@example.com]", "[jd@private.example]")
