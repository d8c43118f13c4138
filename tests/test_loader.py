"""Loading a tree of lead files: which files are read and how, limits per file, and the
parallel parse of large trees giving the serial result."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler import loader, yamlio


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


def _messages(root: Path) -> list[str]:
    return [str(p) for p in loader.load_tree(root).problems]


def test_yaml_and_yml_in_any_case_are_lead_files(tmp_path: Path) -> None:
    for i, name in enumerate(["a.yaml", "b.YAML", "c.yml", "d.Yml", "e.json", ".f.yaml"], 1):
        (tmp_path / name).write_text(f"leadId: {i}\n", "utf-8")
    assert loader.discover(tmp_path) == ["a.yaml", "b.YAML", "c.yml", "d.Yml"]


def test_a_fifo_is_refused_without_being_opened_for_a_blocking_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "ok.yaml").write_text("leadId: 1\n", "utf-8")
    assert _messages(tmp_path) == [
        f"{tmp_path}/pipe.yaml: is a FIFO (named pipe), not a regular file; only regular files "
        "are read as lead files"
    ]


def test_a_socket_is_refused(tmp_path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tmp_path / "s.yaml"))
        assert _messages(tmp_path) == [
            f"{tmp_path}/s.yaml: is a socket, not a regular file; only regular files are read "
            "as lead files"
        ]
    finally:
        server.close()


def test_symlinks_are_read_only_while_they_stay_inside_the_leads_folder(tmp_path: Path) -> None:
    leads, outside = tmp_path / "leads", tmp_path / "secret.yaml"
    (leads / ".shared").mkdir(parents=True)  # a hidden folder: not read by itself
    outside.write_text("leadId: 9\n", "utf-8")
    (leads / ".shared" / "real.yaml").write_text("leadId: 1\n", "utf-8")
    (leads / "inside.yaml").symlink_to(leads / ".shared" / "real.yaml")
    (leads / "out.yaml").symlink_to(outside)
    (leads / "zero.yaml").symlink_to("/dev/zero")
    (leads / "sub").mkdir()
    (leads / "sub" / "up.yml").symlink_to("../../secret.yaml")
    result = loader.load_tree(leads)
    outside_message = (
        "is a symlink to a file outside the leads folder; only files inside it are read"
    )
    assert [str(p) for p in result.problems] == [
        f"{leads}/out.yaml: {outside_message}",
        f"{leads}/sub/up.yml: {outside_message}",
        f"{leads}/zero.yaml: {outside_message}",
    ]
    assert [(d.file, d.lead_id) for d in result.leads] == [(f"{leads}/inside.yaml", 1)]


def test_a_duplicate_key_does_not_hide_the_documents_other_problems(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "leadId: 5\nfirstName: Ann\nfirstName: Anne\nfistName: x\nstage: New\n", "utf-8"
    )
    assert _messages(tmp_path) == [
        f"{tmp_path}/a.yaml:3: firstName: duplicate key 'firstName' (also on line 2); keep one",
        f"{tmp_path}/a.yaml:4: fistName: unknown field; did you mean 'firstName'?",
    ]


def test_a_duplicate_lead_id_is_reported_even_when_a_file_has_other_problems(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.yaml").write_text("leadId: 200\nfirstName: One\n", "utf-8")
    (tmp_path / "b.yaml").write_text("leadId: 200\nfistName: Two\n", "utf-8")
    assert _messages(tmp_path) == [
        f"{tmp_path}/b.yaml:2: fistName: unknown field; did you mean 'firstName'?",
        f"{tmp_path}/b.yaml:1: leadId: 200 is defined twice: here and in {tmp_path}/a.yaml:1",
    ]


def test_documents_before_a_syntax_error_are_still_checked(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("leadId: 1\nstage: x\nfoo: 1\n---\nleadId: [\n", "utf-8")
    messages = _messages(tmp_path)
    assert messages[0] == f"{tmp_path}/a.yaml:3: foo: unknown field"
    assert messages[1].startswith(f"{tmp_path}/a.yaml:6: YAML syntax error")


def test_a_tab_in_the_indentation_hints_spaces(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("leadId: 1\ninquiry:\n\tpriceMin: 5\n", "utf-8")
    [message] = _messages(tmp_path)
    assert message.startswith(f"{tmp_path}/a.yaml:3: YAML syntax error")
    assert message.endswith("; indent with spaces: YAML does not allow tabs in indentation")


def test_deep_nesting_and_huge_numbers_are_clean_errors_with_file_line_and_field(
    tmp_path: Path,
) -> None:
    (tmp_path / "deep.yaml").write_text(
        "leadId: 1\nfirstName: A\ntags: " + "[" * 500 + "]" * 500 + "\n", "utf-8"
    )
    (tmp_path / "huge.yaml").write_text("firstName: A\nleadId: " + "9" * 5000 + "\n", "utf-8")
    messages = _messages(tmp_path)
    assert messages[0].startswith(f"{tmp_path}/deep.yaml:3: tags")
    assert messages[0].endswith(": nested more than 32 levels deep; no lead field is")
    assert messages[1:] == [
        f"{tmp_path}/huge.yaml:2: leadId: is a number too long to read (5,000 characters)"
    ]


def test_limits_hold_per_file_not_per_document(tmp_path: Path) -> None:
    small_bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: [*a, *a, *a, *a, *a, *a, *a, *a]\n"
    (tmp_path / "many.yaml").write_text("---\n".join([small_bomb] * 17_000), "utf-8")
    messages = _messages(tmp_path)  # each document before the limit has problems of its own
    assert len(messages) < 3 * 17_000
    expected = f"file expands to over {yamlio.MAX_VALUES_PER_FILE:,} values (an alias bomb?)"
    assert expected in messages[-1]
    leads = (f"leadId: {i}\n" for i in range(1, 10_002))
    (tmp_path / "many.yaml").write_text("---\n".join(leads), "utf-8")
    assert _messages(tmp_path) == [
        f"{tmp_path}/many.yaml:20001: file holds over 10,000 documents; split it"
    ]


_PEAK = """
import resource, sys
from pathlib import Path
from reconciler.loader import load_tree
for problem in load_tree(Path(sys.argv[1])).problems:
    print(problem)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def _peak(root: Path) -> tuple[list[str], int]:
    """The problems of loading `root` in a process of its own, and that process's peak MiB."""
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, str(root)], capture_output=True, text=True, timeout=120
    )
    *problems, peak = done.stdout.splitlines()
    return problems, int(peak)


def test_the_size_is_checked_before_the_file_is_read(tmp_path: Path) -> None:
    with open(tmp_path / "big.yaml", "wb") as file:
        file.truncate(400 * 1024 * 1024)  # 400 MiB, sparse: nothing on disk
    problems, peak_mib = _peak(tmp_path)
    assert problems == [
        f"{tmp_path}/big.yaml: file is 419,430,400 bytes, over the 4,194,304-byte limit; split it"
    ]
    assert peak_mib < 200, f"peak {peak_mib} MiB"


def test_a_file_of_a_million_values_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    # Within the size limit, but composing its nodes alone would take hundreds of megabytes.
    (tmp_path / "flat.yaml").write_text("leadId: 1\ntags: [" + "a," * 2_000_000 + "a]\n")
    problems, peak_mib = _peak(tmp_path)
    assert peak_mib < 200, f"peak {peak_mib} MiB"
    assert problems == [
        f"{tmp_path}/flat.yaml:2: file expands to over 500,000 values (an alias bomb?); aliases "
        "are not expanded that far, and a larger file should be split"
    ]


def test_the_parallel_parse_reports_flaws_and_claims_as_the_serial_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.yaml").write_text("leadId: 3\nfirstName: A\nfirstName: B\n", "utf-8")
    (tmp_path / "b.yaml").write_text("leadId: 3\n", "utf-8")
    serial = loader.load_tree(tmp_path)
    monkeypatch.setattr(loader, "PARALLEL_MIN_FILES", 1)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    parallel = loader.load_tree(tmp_path)
    assert parallel.problems == serial.problems
    assert len(serial.problems) == 2
