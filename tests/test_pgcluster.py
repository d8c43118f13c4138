"""tests/pgcluster.py finds PostgreSQL server binaries the way a user's machine has them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import pgcluster
from tests.pgcluster import PostgresUnavailable, find_binaries


def _install(folder: Path, version: str) -> Path:
    """Fake `initdb` (reporting `version`) and `pg_ctl` in `folder`."""
    folder.mkdir(parents=True)
    for tool in ("initdb", "pg_ctl"):
        script = folder / tool
        script.write_text(f'#!/bin/sh\necho "{tool} (PostgreSQL) {version} (Debian)"\n')
        script.chmod(0o755)
    return folder


@pytest.fixture
def debian(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty stand-in for /usr/lib/postgresql; `_install(debian / "16" / "bin", ...)`."""
    root = tmp_path / "usr-lib-postgresql"
    root.mkdir()
    monkeypatch.setattr(pgcluster, "DEBIAN_BIN_GLOB", f"{root}/*/bin")
    return root


def test_the_newest_debian_major_wins_by_number_not_by_name(debian: Path) -> None:
    for version in ("9.6.24", "13.16", "16.4", "15.18"):
        _install(debian / version.rsplit(".", 1)[0] / "bin", version)

    found = find_binaries({"PATH": ""})

    assert (found.folder, found.version, found.major) == (debian / "16" / "bin", "16.4", 16)


def test_initdb_on_path_comes_first_through_its_symlink(debian: Path, tmp_path: Path) -> None:
    _install(debian / "16" / "bin", "16.4")
    real = _install(tmp_path / "opt" / "pg14" / "bin", "14.12")
    on_path = tmp_path / "bin"
    on_path.mkdir()
    (on_path / "initdb").symlink_to(real / "initdb")  # like /usr/local/bin/initdb here

    found = find_binaries({"PATH": str(on_path)})

    assert (found.folder, found.major) == (real, 14)


def test_a_major_older_than_13_is_passed_over(debian: Path, tmp_path: Path) -> None:
    old = _install(tmp_path / "old" / "bin", "12.20")
    _install(debian / "13" / "bin", "13.16")

    assert find_binaries({"PATH": str(old)}).major == 13


def test_nothing_usable_says_what_was_refused_and_what_to_do(debian: Path, tmp_path: Path) -> None:
    _install(debian / "12" / "bin", "12.20")

    with pytest.raises(PostgresUnavailable) as raised:
        find_binaries({"PATH": ""})

    message = str(raised.value)
    assert f"{debian}/12/bin is PostgreSQL 12.20; 13 or newer is needed" in message
    assert "install the `postgresql` package" in message and "RECONCILER_PG_BIN" in message


def test_an_explicit_folder_is_used_or_refused_never_replaced(debian: Path, tmp_path: Path) -> None:
    _install(debian / "16" / "bin", "16.4")
    chosen = _install(tmp_path / "chosen", "17.2")

    assert find_binaries({"RECONCILER_PG_BIN": str(chosen), "PATH": ""}).folder == chosen
    with pytest.raises(PostgresUnavailable, match=r"RECONCILER_PG_BIN=/nowhere has no `initdb`"):
        find_binaries({"RECONCILER_PG_BIN": "/nowhere", "PATH": ""})
