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
    shutil.copytree(REPO / "schema", tmp_path / "schema")
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py")],
        cwd=tmp_path,
        env=base_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Plan: 8 to manage, 0 to update, 0 to forget, 0 unchanged." in out
    assert "Apply complete: 8 applied (8 PUT), 0 failed, 0 skipped." in out
    assert "No changes. 8 leads match the last-applied state." in out
    assert "Import complete: 3 imported, 1 skipped, 0 failed." in out
    assert "No changes. 11 leads match the last-applied state." in out
    assert 'stage: files "Pending", Lofty "Appointment Set"; kept' in out
    assert "Apply complete: 1 applied (0 PUT), 0 failed, 0 skipped." in out
    assert out.rstrip().splitlines()[-3].startswith("No changes. 11 leads match")
    assert out.rstrip().endswith("Demo complete: Lofty, the lead files and the state agree.")
    assert (tmp_path / ".reconciler" / "demo" / "state.json").exists()
    copied = sorted(p.name for p in (tmp_path / "leads").iterdir())
    assert copied == sorted(p.name for p in (REPO / "leads").iterdir())  # the files untouched
