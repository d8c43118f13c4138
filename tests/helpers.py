"""What tests share beyond fixtures: the CLI and the sandbox as subprocesses, and the test server.

Fixtures in the conftest files build on these; a test imports them from here, never from a
conftest. The PostgreSQL cluster itself is started by tests/pgcluster.py (the benchmarks use it
too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

# The subprocesses' credential: planted in every CLI run so a test can assert it never shows.
TOKEN = "sk-live-DO-NOT-LEAK-7f3c9a1e5b"


def is_product_setting(name: str) -> bool:
    """True for an environment variable the reconciler reads: a test must never inherit one.

    A developer's shell may hold a real Lofty credential or point at a real state; the autouse
    fixture in tests/conftest.py removes these, and `base_env` leaves them out of subprocesses.
    """
    return name.startswith("LOFTY_") or name == "RECONCILER_STATE"


def base_env(home: Path) -> dict[str, str]:
    """A subprocess environment: our credential only, HOME in the test's folder, no colour."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not is_product_setting(k) and k not in ("HOME", "NO_COLOR")
    }
    env.update(HOME=str(home), LOFTY_ACCESS_TOKEN=TOKEN, NO_COLOR="1", PYTHONUNBUFFERED="1")
    return env


# --- the sandbox as a subprocess ---------------------------------------------------------------


@dataclass
class SandboxProcess:
    """A running `reconciler sandbox` subprocess and its admin endpoints."""

    process: subprocess.Popen[str]
    url: str

    def _get(self, path: str) -> Any:
        return httpx.get(f"{self.url}{path}", timeout=10).json()

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get("/_sandbox/stats")
        return result

    def puts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get("/_sandbox/puts")["puts"]
        return result

    def lead(self, lead_id: int) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/_sandbox/leads/{lead_id}", timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()["lead"]
        return result

    def wait_for_puts(self, count: int, *, timeout: float = 30) -> None:
        """Wait until the sandbox has received `count` PUTs (a run is well under way)."""
        deadline = time.monotonic() + timeout
        while len(self.puts()) < count:
            assert time.monotonic() < deadline, f"fewer than {count} PUTs within {timeout}s"
            time.sleep(0.05)

    def register(self, *lead_ids: int) -> None:
        httpx.post(f"{self.url}/_sandbox/leads", json={"leadIds": list(lead_ids)}, timeout=10)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_sandbox_process(home: Path, *args: str) -> SandboxProcess:
    """Start `reconciler sandbox --port 0 ARGS` and wait for the line naming its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "sandbox", "--port", "0", *args],
        env=base_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("Sandbox listening on http://127.0.0.1:"):
        process.kill()
        process.wait(timeout=10)
        raise AssertionError(f"the sandbox did not start: {line!r}")
    return SandboxProcess(process, line.rsplit(" ", 1)[-1])


# --- a team's checkout, with the CLI as a subprocess -------------------------------------------


@dataclass
class Workspace:
    """A team's checkout: a leads folder, a state file, and the CLI run as a subprocess."""

    root: Path
    api_url: str = ""

    @property
    def leads(self) -> Path:
        return self.root / "leads"

    @property
    def state(self) -> Path:
        return self.root / ".reconciler" / "state.json"

    def env(self, **extra: str) -> dict[str, str]:
        env = base_env(self.root)
        if self.api_url:
            env["LOFTY_API_URL"] = self.api_url
        env.update(extra)
        return env

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "reconciler", *args],
            cwd=self.root,
            env=env or self.env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "reconciler", *args],
            cwd=self.root,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def write_lead(self, lead_id: int, name: str = "", **fields: Any) -> Path:
        path = self.leads / f"{name or lead_id}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"leadId": lead_id, **fields}, indent=1) + "\n", "utf-8")
        return path

    def write_leads(self, count: int, first_id: int = 1001) -> list[int]:
        ids = list(range(first_id, first_id + count))
        for i in ids:
            self.write_lead(
                i,
                firstName=f"Lead{i}",
                lastName="Example",
                emails=[f"lead{i}@example.com"],
                phones=[f"+1415555{i % 10000:04d}"],
                leadTypes=["Buyer"],
                tags=["Imported", f"Batch {i % 3}"],
                inquiry={
                    "priceMin": 100000 + i,
                    "priceMax": 900000,
                    "locations": [{"city": "Austin"}],
                },
            )
        return ids


# --- the test PostgreSQL server ----------------------------------------------------------------

# Logs in with a password over TCP (everyone else is trusted), so masking is testable.
PG_PASSWORD_ROLE = "reconciler_pw"
PG_PASSWORD = "s3cr3t-Pa55:w@rd/%"
PG_HBA = f"""\
local all all                     trust
host  all {PG_PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256
host  all all                127.0.0.1/32 trust
"""


@dataclass(frozen=True)
class PostgresServer:
    """The suite's cluster (started with `PG_HBA`); `dsn` reaches `postgres` as the superuser.

    `password_role` logs in over TCP only with `password` (everyone else is trusted).
    """

    host: str
    port: int
    password_role: str = PG_PASSWORD_ROLE
    password: str = PG_PASSWORD

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def create_password_role(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {self.password_role} LOGIN PASSWORD '{self.password}'")

    def create_database(self) -> str:
        """A new empty database (owned by the password role too), returning its name."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" OWNER {self.password_role}')
        return name
