"""Fixtures for every test: an isolated environment (autouse), and the PostgreSQL server.

The helpers behind them live in tests/helpers.py and tests/pgcluster.py; tests import those,
never this file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.helpers import PG_HBA, PostgresServer, is_product_setting
from tests.pgcluster import ClusterFailed, PostgresUnavailable, temporary_cluster

# ---------------------------------------------------------------------------------------------
# Isolation: no test sees the developer's Lofty credential, API URL or state, or their HOME.
# Without this a CliRunner test run from a shell holding LOFTY_ACCESS_TOKEN would send it.
# ---------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def isolated_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Clear LOFTY_* and RECONCILER_STATE and point HOME at an empty folder of the test's own.

    The folder is not inside `tmp_path`, so a test that lists its `tmp_path` finds only its own
    files. Subprocess tests build their environment from this one (`tests.helpers.base_env`).
    """
    for name in list(os.environ):
        if is_product_setting(name):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    return home


# ---------------------------------------------------------------------------------------------
# PostgreSQL: one throwaway cluster per session for the shared-state backend tests.
#
# Without server binaries the tests skip locally, but fail under CI (CI=true), where a skip
# would hide that the backend went untested. How the binaries are found: tests/pgcluster.py.
# ---------------------------------------------------------------------------------------------


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's cluster, with a password-only role besides the trusted superuser."""
    with ExitStack() as stack:
        try:
            cluster = stack.enter_context(temporary_cluster(hba=PG_HBA))
        except PostgresUnavailable as exc:
            if _in_ci():
                pytest.fail(f"{exc} (CI is set: the PostgreSQL tests must run, not skip)")
            pytest.skip(str(exc))
        except ClusterFailed as exc:
            pytest.fail(str(exc))
        server = PostgresServer(cluster.host, cluster.port)
        server.create_password_role()
        yield server


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> str:
    """The DSN of a fresh, empty database of its own for one test."""
    return postgres_server.dsn_for(postgres_server.create_database())
