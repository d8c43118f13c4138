"""No test sees a developer's Lofty credential, API URL, state or HOME (tests/conftest.py).

A module-scoped fixture plays the developer's shell: pytest sets it up before the per-test
autouse fixture, just as exported variables are there before the suite starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.state import LeadRecord, open_state
from tests.helpers import TOKEN, base_env

_SHOW_ENV = (
    "import json, os; print(json.dumps({k: v for k, v in os.environ.items() "
    "if k.startswith('LOFTY_') or k in ('RECONCILER_STATE', 'HOME')}))"
)


@pytest.fixture(scope="module")
def developer_shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real-looking credential, API URL and state in os.environ while this module runs."""
    state = tmp_path_factory.mktemp("developer") / "state.json"
    open_state(str(state), env={}).write(
        [LeadRecord(7, "real.yaml", "h1", (7,), '{"firstName":"Real"}')]
    )
    planted = {
        "LOFTY_ACCESS_TOKEN": "real-token-of-the-developer",
        "LOFTY_API_KEY": "real-key-of-the-developer",
        "LOFTY_API_URL": "https://api.lofty.com",
        "RECONCILER_STATE": str(state),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in planted.items():
            patch.setenv(name, value)
        yield {**planted, "HOME": os.environ["HOME"]}


def test_the_developers_settings_are_not_in_a_tests_environment(
    developer_shell: dict[str, str],
) -> None:
    for name in ("LOFTY_ACCESS_TOKEN", "LOFTY_API_KEY", "LOFTY_API_URL", "RECONCILER_STATE"):
        assert name not in os.environ, name


def test_home_is_an_empty_folder_of_the_tests_own(
    developer_shell: dict[str, str],
    isolated_home: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    assert Path.home() == isolated_home != Path(developer_shell["HOME"])
    assert isolated_home.is_relative_to(tmp_path_factory.getbasetemp())
    assert list(isolated_home.iterdir()) == []


def test_the_cli_does_not_read_the_developers_state(
    developer_shell: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["state", "list"], catch_exceptions=False)

    assert result.exit_code == 0
    assert result.stdout == ""  # the developer's state lists lead 7
    assert "state .reconciler/state.json: lineage -, serial 0, 0 leads" in result.stderr


def test_subprocesses_inherit_neither_the_credential_nor_home(
    developer_shell: dict[str, str], isolated_home: Path, tmp_path: Path
) -> None:
    def seen(env: dict[str, str] | None) -> dict[str, str]:
        done = subprocess.run(
            [sys.executable, "-c", _SHOW_ENV], env=env, capture_output=True, text=True, timeout=60
        )
        shown: dict[str, str] = json.loads(done.stdout)
        return shown

    assert seen(None) == {"HOME": str(isolated_home)}
    assert seen(base_env(tmp_path)) == {"HOME": str(tmp_path), "LOFTY_ACCESS_TOKEN": TOKEN}
