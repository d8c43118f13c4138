"""reconciler.files: atomic writes, whole or not at all, nothing left behind."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from reconciler.files import create_file, replace_file


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _default_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _fail(*args: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


class _Interrupted(BaseException):
    """Stands for Ctrl-C (KeyboardInterrupt would stop pytest itself)."""


def test_replace_creates_a_missing_file_with_the_usual_permissions(tmp_path: Path) -> None:
    path = tmp_path / "p.plan"
    replace_file(path, b"one\r\ntwo\n")
    assert path.read_bytes() == b"one\r\ntwo\n"  # bytes as given: no newline translation
    assert _mode(path) == _default_mode()
    assert _names(tmp_path) == ["p.plan"]


def test_replace_keeps_the_permissions_of_the_file_it_replaces(tmp_path: Path) -> None:
    path = tmp_path / "jane.yaml"
    path.write_bytes(b"old\n")
    os.chmod(path, 0o640)
    replace_file(path, b"new\n")
    assert path.read_bytes() == b"new\n"
    assert _mode(path) == 0o640
    assert _names(tmp_path) == ["jane.yaml"]


def test_replace_checks_the_written_file_beside_the_target_before_the_rename(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jane.yaml"
    path.write_bytes(b"old\n")
    os.chmod(path, 0o600)
    seen: list[tuple[Path, bytes, bytes, int]] = []

    def check(temp: Path) -> None:
        seen.append((temp, temp.read_bytes(), path.read_bytes(), _mode(temp)))

    replace_file(path, b"new\n", check=check)
    [(temp, written, current, mode)] = seen
    assert temp.parent == tmp_path
    # Hidden and not a `.yaml` name: the loader never reads a half-written file as a lead file.
    assert temp.name.startswith(".jane.yaml.") and temp.name.endswith(".partial")
    assert (written, current, mode) == (b"new\n", b"old\n", 0o600)
    assert path.read_bytes() == b"new\n"
    assert _names(tmp_path) == ["jane.yaml"]


@pytest.mark.parametrize("problem", [ValueError("would not read back"), _Interrupted()])
def test_a_failed_check_leaves_the_target_as_it_was_and_no_temporary_file(
    tmp_path: Path, problem: BaseException
) -> None:
    path = tmp_path / "jane.yaml"
    path.write_bytes(b"old\n")

    def check(temp: Path) -> None:
        raise problem

    with pytest.raises(type(problem)):
        replace_file(path, b"new\n", check=check)
    assert path.read_bytes() == b"old\n"
    assert _names(tmp_path) == ["jane.yaml"]


@pytest.mark.parametrize("call", ["fsync", "replace"])
def test_a_failed_replace_leaves_the_target_as_it_was_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str
) -> None:
    path = tmp_path / "jane.yaml"
    path.write_bytes(b"old\n")
    monkeypatch.setattr(os, call, _fail)
    with pytest.raises(OSError) as caught:
        replace_file(path, b"new\n")
    assert caught.value.strerror == "No space left on device"  # the caller words the error
    assert path.read_bytes() == b"old\n"
    assert _names(tmp_path) == ["jane.yaml"]


def test_replace_into_a_missing_folder_is_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        replace_file(tmp_path / "missing" / "p.plan", b"{}\n")
    assert _names(tmp_path) == []


def test_the_data_is_synced_to_disk_before_it_takes_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash right after the rename must not leave an empty file under the target's name."""
    events: list[str] = []
    fsync, replace, link = os.fsync, os.replace, os.link

    def logged_fsync(fd: int) -> None:
        events.append("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        fsync(fd)

    def logged_replace(source: Path, target: Path) -> None:
        events.append("rename")
        replace(source, target)

    def logged_link(source: Path, target: Path) -> None:
        events.append("link")
        link(source, target)

    monkeypatch.setattr(os, "fsync", logged_fsync)
    monkeypatch.setattr(os, "replace", logged_replace)
    monkeypatch.setattr(os, "link", logged_link)
    replace_file(tmp_path / "p.plan", b"{}\n")
    create_file(tmp_path / "jane.yaml", b"leadId: 1\n")
    assert events == ["fsync file", "rename", "fsync folder", "fsync file", "link", "fsync folder"]


def test_create_writes_a_new_file_with_the_usual_permissions(tmp_path: Path) -> None:
    path = tmp_path / "jane.yaml"
    create_file(path, b"leadId: 1\n")
    assert path.read_bytes() == b"leadId: 1\n"
    assert _mode(path) == _default_mode()
    assert _names(tmp_path) == ["jane.yaml"]


def test_create_never_replaces_a_file_or_writes_through_a_link(tmp_path: Path) -> None:
    path = tmp_path / "jane.yaml"
    path.write_bytes(b"leadId: 1\n")
    link = tmp_path / "bob.yaml"
    link.symlink_to(tmp_path / "nowhere.yaml")  # dangling: opening it would create the target
    for taken in (path, link):
        with pytest.raises(FileExistsError):
            create_file(taken, b"leadId: 2\n")
    assert path.read_bytes() == b"leadId: 1\n"
    assert link.is_symlink() and not (tmp_path / "nowhere.yaml").exists()
    assert _names(tmp_path) == ["bob.yaml", "jane.yaml"]


def test_a_failed_create_leaves_no_file_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "fsync", _fail)
    with pytest.raises(OSError, match="No space left on device"):
        create_file(tmp_path / "jane.yaml", b"leadId: 1\n")
    assert _names(tmp_path) == []
