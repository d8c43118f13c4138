"""Lint runs here, inside the suite, so `make test` (and so CI) enforces it; `make lint` runs
the same commands alone. Also: the pre-commit hooks the project runs on itself.

The code stays lint-clean and formatted (ruff), the package typed strictly and the tests
loosely (mypy), as STYLE.md asks.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
PRE_COMMIT_CONFIG = REPO / ".pre-commit-config.yaml"

# What `make lint` runs, tool by tool (paths and settings are in pyproject.toml).
LINTERS = [("ruff", "check"), ("ruff", "format", "--check"), ("mypy",)]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("argv", LINTERS, ids=" ".join)
def test_lint_is_clean(argv: tuple[str, ...]) -> None:
    result = _run(*argv)
    assert result.returncode == 0, result.stdout + result.stderr


def test_make_lint_runs_the_same_linters() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe is not None, "no lint target in the Makefile"
    commands = [tuple(line.split()) for line in recipe.group(1).splitlines()]
    assert commands == [(f"$(BIN)/{tool}", *args) for tool, *args in LINTERS]


# --- pre-commit -------------------------------------------------------------------------------


def _hooks() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Each hook of .pre-commit-config.yaml by id, with the repository entry it is under."""
    config = yaml.safe_load(PRE_COMMIT_CONFIG.read_text(encoding="utf-8"))
    return {hook["id"]: (repo, hook) for repo in config["repos"] for hook in repo["hooks"]}


def _pyproject() -> dict[str, Any]:
    with (REPO / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def test_pre_commit_config_and_hook_manifest_are_valid() -> None:
    # pre-commit's own offline validation: no hook is installed or run.
    for command, path in (
        ("validate-config", PRE_COMMIT_CONFIG),
        ("validate-manifest", REPO / ".pre-commit-hooks.yaml"),
    ):
        result = _run("pre_commit", command, str(path))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "warning" not in (result.stdout + result.stderr).lower()


def test_pre_commit_runs_the_linters_the_workflow_check_and_our_own_hook() -> None:
    hooks = _hooks()
    expected = {
        "ruff-check": "https://github.com/astral-sh/ruff-pre-commit",
        "ruff-format": "https://github.com/astral-sh/ruff-pre-commit",
        "mypy": "https://github.com/pre-commit/mirrors-mypy",
        "check-github-workflows": "https://github.com/python-jsonschema/check-jsonschema",
        "reconciler-validate": "local",
    }
    assert {hook: hooks[hook][0]["repo"] for hook in expected if hook in hooks} == expected
    for repo, _ in hooks.values():
        # A tag, not a branch: the same hooks on every machine until someone bumps it.
        assert repo["repo"] == "local" or re.fullmatch(r"v?\d+(\.\d+)+", repo["rev"]), repo


def test_pre_commit_ruff_and_mypy_are_versions_the_test_extras_allow() -> None:
    # Otherwise a commit hook and `make lint` could disagree about the same file.
    allowed = {
        (req := Requirement(spec)).name: req.specifier
        for spec in _pyproject()["project"]["optional-dependencies"]["test"]
    }
    for hook, package in (("ruff-check", "ruff"), ("ruff-format", "ruff"), ("mypy", "mypy")):
        rev = _hooks()[hook][0]["rev"].removeprefix("v")
        assert rev in allowed[package], f"{hook} at {rev}, pyproject.toml wants {package}"


def test_pre_commit_hooks_install_the_projects_dependencies() -> None:
    # mypy and our own hook run in pre-commit's virtualenvs, which know only what is listed.
    dependencies = _pyproject()["project"]["dependencies"]
    hooks = _hooks()
    assert hooks["reconciler-validate"][1]["additional_dependencies"] == dependencies
    assert set(dependencies) <= set(hooks["mypy"][1]["additional_dependencies"])


def test_our_own_hook_is_the_published_one_run_from_source() -> None:
    (published,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    ours = _hooks()["reconciler-validate"][1]
    assert ours["entry"] == f"python -m {published['entry']}"
    for key in ("name", "language", "pass_filenames", "require_serial"):
        assert ours[key] == published[key], key
