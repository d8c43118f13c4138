"""A throwaway PostgreSQL cluster on 127.0.0.1, for the test suite and the benchmarks.

The server binaries are found the way a user's machine has them (`find_binaries`): the folder
named by RECONCILER_PG_BIN, else `initdb` on PATH, else the newest `/usr/lib/postgresql/*/bin`
(where Debian and Ubuntu put them, off PATH); any major from 13 on. The cluster trusts every
local connection unless given its own `pg_hba.conf`, listens on 127.0.0.1 only, on a free port,
keeps its socket in its own temporary folder, and is stopped with `pg_ctl -m immediate`.
As root it runs as `postgres` through `runuser` (initdb refuses to run as root); as a normal
user (a developer, GitHub's runners) it runs as that user.

Standard library only: `.ci/run` runs this file with the system Python, before any virtualenv
exists, to learn whether PostgreSQL must be installed (`python3 tests/pgcluster.py`).
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

BIN_ENV_VAR = "RECONCILER_PG_BIN"
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
OLDEST_MAJOR = 13  # the oldest major the PostgreSQL project still supported when this was written
RUN_AS = "postgres"

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+(?:\.\d+)?)")
_TIMEOUT = 120  # seconds for any one initdb/pg_ctl call
_LOG_TAIL = 2000  # characters of the server log quoted in an error


class PostgresError(Exception):
    """No cluster could be had: the binaries are missing, or the server would not start."""


class PostgresUnavailable(PostgresError):
    """No usable PostgreSQL server binaries here, or no way to run them (as root: no `postgres`)."""


class ClusterFailed(PostgresError):
    """`initdb` or `pg_ctl` failed; the message quotes their output and the server log's tail."""


@dataclass(frozen=True)
class Binaries:
    """A folder holding `initdb` and `pg_ctl`, and the version they report (e.g. "16.4")."""

    folder: Path
    version: str

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def tool(self, name: str) -> str:
        return str(self.folder / name)


@dataclass(frozen=True)
class Cluster:
    """A running cluster; `url()` reaches one of its databases over TCP."""

    host: str
    port: int
    folder: Path  # holds the data directory, the socket and server.log
    binaries: Binaries

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@{self.host}:{self.port}/{database}"


def find_binaries(environ: Mapping[str, str] | None = None) -> Binaries:
    """The server binaries to use, by the rule in the module docstring.

    An explicit RECONCILER_PG_BIN is used or refused, never silently replaced by another find.
    """
    env = os.environ if environ is None else environ
    configured = env.get(BIN_ENV_VAR, "").strip()
    if configured:
        return _checked(Path(configured), f"{BIN_ENV_VAR}={configured}")
    refused: list[str] = []
    for folder in _candidates(env.get("PATH", os.defpath)):
        try:
            return _checked(folder, str(folder))
        except PostgresUnavailable as exc:
            refused.append(str(exc))
    found = f" ({'; '.join(refused)})" if refused else ""
    raise PostgresUnavailable(
        f"no PostgreSQL {OLDEST_MAJOR}+ server binaries (initdb, pg_ctl) on PATH or in "
        f"{DEBIAN_BIN_GLOB}{found}: install the `postgresql` package (`.ci/run` does) "
        f"or set {BIN_ENV_VAR} to the folder holding them"
    )


def _candidates(path: str) -> list[Path]:
    """Folders to try, in order: the one of `initdb` on PATH, then Debian's, newest first."""
    folders: list[Path] = []
    on_path = shutil.which("initdb", path=path)
    if on_path:
        # A symlink such as /usr/local/bin/initdb: pg_ctl and postgres are beside its target.
        folders.append(Path(on_path).resolve().parent)
    debian = sorted(glob.glob(DEBIAN_BIN_GLOB), key=_folder_version, reverse=True)
    folders += [Path(found) for found in debian if Path(found) not in folders]
    return folders


def _folder_version(folder: str) -> tuple[int, ...]:
    """(16,) for /usr/lib/postgresql/16/bin, (9, 6) for .../9.6/bin: numeric, so 16 beats 9.6."""
    name = Path(folder).parent.name
    return tuple(int(part) for part in name.split(".")) if re.fullmatch(r"[\d.]+", name) else ()


def _checked(folder: Path, where: str) -> Binaries:
    for tool in ("initdb", "pg_ctl"):
        if not os.access(folder / tool, os.X_OK):
            raise PostgresUnavailable(f"{where} has no `{tool}`")
    try:
        done = subprocess.run(
            [str(folder / "initdb"), "--version"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PostgresUnavailable(f"{where}: `initdb --version` failed: {exc}") from None
    match = _VERSION.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise PostgresUnavailable(f"{where}: `initdb --version` said {done.stdout.strip()!r}")
    binaries = Binaries(folder, match.group(1))
    if binaries.major < OLDEST_MAJOR:
        raise PostgresUnavailable(
            f"{where} is PostgreSQL {binaries.version}; {OLDEST_MAJOR} or newer is needed"
        )
    return binaries


def run_as_prefix() -> list[str]:
    """The command prefix that runs the server's tools as a user initdb accepts."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root, and there is no `{RUN_AS}` user to run the server as "
            "(the `postgresql` package creates it)"
        ) from None
    # /usr/sbin may be off a root PATH inherited from elsewhere; runuser lives there.
    runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
    if runuser is None:
        raise PostgresUnavailable(f"running as root without `runuser` to become `{RUN_AS}`")
    return [runuser, "-u", RUN_AS, "--"]


@contextmanager
def temporary_cluster(
    *, durable: bool = False, hba: str | None = None, binaries: Binaries | None = None
) -> Iterator[Cluster]:
    """Start a new cluster, yield it, then stop it and delete its folder.

    `durable=False` turns fsync and friends off (tests want speed, not crash safety);
    `hba` replaces the default `pg_hba.conf` (trust for everyone).
    """
    binaries = binaries or find_binaries()
    as_user = run_as_prefix()
    # Not under pytest's basetemp: as root that folder is private to root.
    folder = Path(tempfile.mkdtemp(prefix="reconciler-pg-"))
    data, log = folder / "data", folder / "server.log"
    started = False
    try:
        if as_user:
            shutil.chown(folder, RUN_AS, RUN_AS)

        def run(tool: str, *args: str) -> None:
            argv = [*as_user, binaries.tool(tool), *args]
            try:
                done = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise ClusterFailed(f"`{tool}` did not finish within {_TIMEOUT}s") from None
            if done.returncode != 0:
                tail = log.read_text(errors="replace")[-_LOG_TAIL:] if log.exists() else ""
                raise ClusterFailed(f"`{tool}` failed:\n{done.stdout}{done.stderr}{tail}")

        # --no-sync: a cluster that lives for one run needs no flush of its fresh files.
        initdb = ("-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C")
        run("initdb", *initdb, "--no-sync")
        if hba is not None:
            (data / "pg_hba.conf").write_text(hba)
        port = _free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder}"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        run("pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        started = True
        yield Cluster("127.0.0.1", port, folder, binaries)
    finally:
        if started:
            stop = [*as_user, binaries.tool("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
            # On a timeout the folder goes all the same: a postmaster whose lock file is gone
            # shuts itself down.
            with suppress(subprocess.TimeoutExpired):
                subprocess.run(stop, capture_output=True, timeout=_TIMEOUT)
        shutil.rmtree(folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def main() -> int:
    """Say which server binaries the tests would use; exit 1 when none are usable."""
    try:
        binaries = find_binaries()
        run_as_prefix()
    except PostgresUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"PostgreSQL {binaries.version} in {binaries.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
