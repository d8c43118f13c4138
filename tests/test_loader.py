"""Loading a tree of lead files: the parallel parse of large trees gives the serial result."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import loader


def _tree(root: Path) -> None:
    for i in range(1, 41):
        (root / f"lead-{i:02}.yaml").write_text(
            f"leadId: {i}\nfirstName: {'N' * (25 + i % 10)}\ntags: [a, b]\n", "utf-8"
        )
    (root / "bad.yaml").write_text("leadId: 50\nstage: Waiting For Pre-Approval\n", "utf-8")
    (root / "clash.yaml").write_text("leadId: 7\n---\nleadId: 51\nfistName: X\n", "utf-8")
    (root / "syntax.yaml").write_text("leadId: [\n", "utf-8")


def test_parallel_parse_matches_serial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path)
    serial = loader.load_tree(tmp_path)
    monkeypatch.setattr(loader, "PARALLEL_MIN_FILES", 1)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    parallel = loader.load_tree(tmp_path)
    assert parallel.problems == serial.problems
    assert parallel.warnings == serial.warnings
    assert parallel.files == serial.files
    assert [(d.lead, d.file, d.line) for d in parallel.leads] == [
        (d.lead, d.file, d.line) for d in serial.leads
    ]
    assert len(serial.problems) == 4  # stage, duplicate leadId 7, unknown field, syntax
    assert any("defined twice" in p.message for p in serial.problems)


def test_files_already_applied_are_hashed_but_not_parsed(tmp_path: Path) -> None:
    _tree(tmp_path)
    result = loader.load_tree(
        tmp_path, known_unchanged=lambda rel, digest: [1] if rel == "lead-01.yaml" else None
    )
    skipped = [f for f in result.files if not f.parsed]
    assert [(f.path, f.lead_ids) for f in skipped] == [("lead-01.yaml", (1,))]
    assert result.parsed_files == len(result.files) - 1
