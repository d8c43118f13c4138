"""Taking git's word for the files it tracks: which files are then not read, and when git's
word is not taken (modified, untracked, assume-unchanged, symlinks, no git, a slow git)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from reconciler import gitfiles, loader, safe_read
from reconciler.state import LeadRecord, applied_files

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="no git binary")


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _lead(root: Path, rel: str, lead_id: int, name: str = "Ann") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"leadId: {lead_id}\nfirstName: {name}\n", "utf-8")
    return path


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git checkout whose `leads` folder holds three committed lead files."""
    _git(tmp_path, "init", "-q")
    leads = tmp_path / "leads"
    for n in (1, 2, 3):
        _lead(leads, f"team/lead-{n}.yaml", n)
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "leads")
    return leads


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the loader opens from now on."""
    opened: list[str] = []
    original = safe_read.read_lead_file

    def spy(path: str, inside: str, shown: str, problems: list, resolve: bool) -> bytes | None:
        opened.append(os.path.relpath(path, inside))
        return original(path, inside, shown, problems, resolve)

    monkeypatch.setattr(loader, "read_lead_file", spy)
    return opened


def _applied(root: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """What a state would hold after applying every lead below `root` as it is now."""
    load = loader.load_tree(root, use_git=False)
    records = [
        LeadRecord(d.lead_id, d.source, f.digest, f.lead_ids, "{}")
        for d in load.leads
        for f in load.files
        if f.path == d.source
    ]
    return applied_files({r.lead_id: r for r in records})


def test_the_content_hash_is_gits_blob_id(tmp_path: Path) -> None:
    path = _lead(tmp_path, "a.yaml", 1, "Zoë")
    if shutil.which("git"):
        assert (
            gitfiles.blob_id(path.read_bytes()) == _git(tmp_path, "hash-object", "a.yaml").strip()
        )
    assert gitfiles.blob_id(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert loader.load_tree(tmp_path).files[0].digest == gitfiles.blob_id(path.read_bytes())


@needs_git
def test_files_git_tracks_unchanged_are_not_read(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = _applied(checkout)
    opened = _reads(monkeypatch)

    result = loader.load_tree(checkout, known_unchanged=known)

    assert result.git and opened == []
    assert [(f.path, f.lead_ids, f.parsed) for f in result.files] == [
        (f"team/lead-{n}.yaml", (n,), False) for n in (1, 2, 3)
    ]


@needs_git
def test_a_file_edited_since_the_commit_is_read_even_at_the_same_size(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = _applied(checkout)
    _lead(checkout, "team/lead-2.yaml", 2, "Bob")  # same length as "Ann"
    opened = _reads(monkeypatch)

    result = loader.load_tree(checkout, known_unchanged=known)

    assert opened == ["team/lead-2.yaml", "team/lead-2.yaml"]  # hashed, then parsed
    assert [f.path for f in result.files if f.parsed] == ["team/lead-2.yaml"]
    assert result.leads[0].lead.firstName == "Bob"


@needs_git
def test_untracked_files_and_folders_are_read_and_deleted_ones_are_gone(checkout: Path) -> None:
    (checkout / "team" / "lead-3.yaml").unlink()
    _lead(checkout, "team/new.yml", 4)
    _lead(checkout, "fresh/deep/x.YAML", 5)
    _lead(checkout, ".hidden/y.yaml", 6)
    _lead(checkout, "team/.z.yaml", 7)
    (checkout / "linked").symlink_to(checkout / "fresh", target_is_directory=True)

    with_git = loader.load_tree(checkout)
    without = loader.load_tree(checkout, use_git=False)

    assert with_git.git and not without.git
    assert [f.path for f in with_git.files] == [
        "fresh/deep/x.YAML",
        "team/lead-1.yaml",
        "team/lead-2.yaml",
        "team/new.yml",
    ]
    assert with_git.files == without.files  # same paths, same hashes, same leads


@needs_git
def test_a_leads_folder_git_does_not_track_yet_is_walked(checkout: Path) -> None:
    _lead(checkout, "brand-new/sub/a.yaml", 8)
    _lead(checkout, "brand-new/.hidden/b.yaml", 9)

    result = loader.load_tree(checkout / "brand-new")

    assert result.git and [f.path for f in result.files] == ["sub/a.yaml"]


@needs_git
def test_a_file_git_no_longer_checks_is_read(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = _applied(checkout)
    _git(checkout.parent, "update-index", "--assume-unchanged", "leads/team/lead-1.yaml")
    _lead(checkout, "team/lead-1.yaml", 1, "Bob")
    opened = _reads(monkeypatch)

    result = loader.load_tree(checkout, known_unchanged=known)

    assert "team/lead-1.yaml" in opened
    assert [d.lead.firstName for d in result.leads] == ["Bob"]


def test_the_listing_trusts_only_plain_checked_unconflicted_files(tmp_path: Path) -> None:
    blob = "a" * 40
    entries = [
        f"H 100644 {blob} 0\tok.yaml",
        f"H 100755 {blob} 0\texec.yaml",
        f"H 100644 {blob} 0\tedited.yaml",
        f"C 100644 {blob} 0\tedited.yaml",
        f"H 100644 {blob} 0\tgone.yaml",
        f"R 100644 {blob} 0\tgone.yaml",
        f"h 100644 {blob} 0\tassumed.yaml",
        f"S 100644 {blob} 0\tsparse.yaml",
        f"M 100644 {blob} 1\tconflict.yaml",
        f"H 120000 {blob} 0\tlink.yaml",
        f"H 160000 {blob} 0\tsubmodule",
        f"H 100644 {blob} 0\t.hidden/h.yaml",
        f"H 100644 {blob} 0\tnotes.txt",
        "? new.yaml",
        "? untracked/",
    ]
    listing = gitfiles.parse_listing(("\0".join(entries) + "\0").encode(), str(tmp_path))

    assert listing.ids == {"ok.yaml": blob, "exec.yaml": blob}
    assert sorted(listing.files) == [
        "assumed.yaml",
        "conflict.yaml",
        "edited.yaml",
        "exec.yaml",
        "link.yaml",
        "new.yaml",
        "ok.yaml",
        "sparse.yaml",
    ]
    assert sorted(listing.folders) == ["submodule", "untracked"]


def test_without_git_the_folder_is_walked_and_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lead(tmp_path, "a.yaml", 1)
    monkeypatch.setenv("PATH", str(tmp_path / "no-such-bin"))

    assert gitfiles.list_files(str(tmp_path)) is None
    result = loader.load_tree(tmp_path)
    assert not result.git and [f.path for f in result.files] == ["a.yaml"]


def _fake_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """A `git` first on PATH that runs `script` (the rest of PATH stays, for its commands)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")


def test_a_git_that_does_not_answer_in_time_is_not_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_git(tmp_path, monkeypatch, "exec sleep 30")

    started = time.monotonic()
    assert gitfiles.list_files(str(tmp_path), timeout=0.3) is None
    assert 0.25 < time.monotonic() - started < 10  # it was given its time, no more


def test_a_git_that_answers_without_end_is_stopped_at_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_git(tmp_path, monkeypatch, "exec yes 'H 100644 0000 0\tlead.yaml'")
    monkeypatch.setattr(gitfiles, "MAX_OUTPUT", 64 * 1024)

    started = time.monotonic()
    assert gitfiles.list_files(str(tmp_path), timeout=30) is None  # not trusted, not waited for
    assert time.monotonic() - started < 10


def test_a_folder_outside_any_checkout_is_hashed_by_reading(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("no git binary")
    ceiling = {"GIT_CEILING_DIRECTORIES": str(tmp_path.parent)}
    _lead(tmp_path, "a.yaml", 1)
    for key, value in ceiling.items():
        os.environ[key] = value
    try:
        assert gitfiles.list_files(str(tmp_path)) is None
    finally:
        for key in ceiling:
            del os.environ[key]


def test_applied_files_holds_only_files_whose_every_lead_is_applied_at_one_hash() -> None:
    def record(lead_id: int, file: str, digest: str, leads: tuple[int, ...]) -> LeadRecord:
        return LeadRecord(lead_id, file, digest, leads, "{}")

    records = [
        record(1, "one.yaml", "h1", (1,)),
        record(2, "pair.yaml", "h2", (2, 3)),
        record(3, "pair.yaml", "h2", (2, 3)),
        record(4, "half.yaml", "h4", (4, 5)),  # lead 5 was never applied
        record(6, "mixed.yaml", "h6", (6, 7)),
        record(7, "mixed.yaml", "h7", (6, 7)),  # applied at two hashes
        record(8, "moved.yaml", "h8", (8, 9)),
        record(9, "elsewhere.yaml", "h9", (9,)),  # lead 9 now comes from another file
    ]

    files = applied_files({r.lead_id: r for r in records})

    assert files == {
        "one.yaml": ("h1", (1,)),
        "pair.yaml": ("h2", (2, 3)),
        "elsewhere.yaml": ("h9", (9,)),
    }


def test_the_stream_parses_in_a_bounded_window_and_gives_the_serial_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(1, 31):
        _lead(tmp_path, f"lead-{n:02}.yaml", n)
    _lead(tmp_path, "lead-31.yaml", 5)  # a duplicate, found in stream order
    serial = loader.load_tree(tmp_path)
    monkeypatch.setattr(loader, "PARALLEL_MIN_FILES", 1)
    monkeypatch.setattr(loader, "PARSE_WINDOW", 2)
    monkeypatch.setattr("os.cpu_count", lambda: 2)

    result, leads = loader.stream_tree(tmp_path)
    first = next(leads)
    assert first.lead_id == 1 and len(result.files) < 31  # not everything parsed up front
    rest = list(leads)

    assert [first, *rest] == serial.leads
    assert (result.files, result.problems) == (serial.files, serial.problems)
    assert [str(p) for p in result.problems] == [
        f"{tmp_path}/lead-31.yaml:1: leadId: 5 is defined twice: here and in "
        f"{tmp_path}/lead-05.yaml:1"
    ]
