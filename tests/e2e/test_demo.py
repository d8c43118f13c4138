"""`make demo` runs the whole loop on embedded defaults and ends with "No changes"."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import base_env
from tests.vendor import REPO


def test_demo_runs_the_loop_and_ends_with_no_changes(tmp_path: Path) -> None:
    shutil.copytree(REPO / "leads", tmp_path / "leads")
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py")],
        cwd=tmp_path,
        env=base_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Plan: 8 to manage, 0 to update, 0 to forget, 0 unchanged." in result.stdout
    assert "Apply complete: 8 applied (8 PUT), 0 failed, 0 skipped." in result.stdout
    assert result.stdout.rstrip().splitlines()[-3].startswith("No changes. 8 leads match")
    assert (tmp_path / ".reconciler" / "demo" / "state.json").exists()
