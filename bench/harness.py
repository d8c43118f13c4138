"""What every benchmark shares: running the CLI as a real process, the sandbox, results.

Each CLI run is one `sys.executable -m reconciler ...` process, started and reaped by the small
`launch.py` so that its own wall time, CPU time and peak RSS are known (`RUSAGE_CHILDREN` would
mix in every earlier child, and a direct child would inherit this process's peak RSS).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
TOKEN = "bench-access-token"  # the sandbox's throwaway credential, not a Lofty secret
_run_numbers = itertools.count(1)  # each run keeps its own output files


@dataclass(frozen=True)
class Run:
    """One finished CLI process."""

    args: tuple[str, ...]
    wall: float  # seconds, process start to exit
    cpu: float  # user + system seconds of the process
    maxrss_kib: int  # peak resident set size (KiB on Linux)
    returncode: int
    out: Path
    err: Path

    def output(self) -> str:
        return self.out.read_text("utf-8", "replace")

    def last_line(self) -> str:
        lines = self.output().rstrip("\n").splitlines()
        return lines[-1] if lines else ""

    def check(self, *codes: int) -> Run:
        """Fail the benchmark (a crash, not a miss) when the CLI exited unexpectedly."""
        if self.returncode not in (codes or (0,)):
            tail = self.err.read_text("utf-8", "replace")[-2000:]
            raise RuntimeError(
                f"`reconciler {' '.join(self.args)}` exited {self.returncode}:\n{tail}"
            )
        return self


# The "yaml" baseline: CSafeLoader parsing every lead file below argv[1], in one process.
PARSE_ALL = """
import os, sys, time, yaml
start = time.perf_counter()
count = 0
for folder, dirs, files in os.walk(sys.argv[1]):
    for name in files:
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(folder, name), encoding="utf-8") as handle:
                yaml.load(handle.read(), Loader=yaml.CSafeLoader)
            count += 1
print(count, time.perf_counter() - start)
"""


def env(**extra: str) -> dict[str, str]:
    """A clean environment: no inherited Lofty/reconciler settings, no colour."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LOFTY_", "RECONCILER_"))}
    base.update(NO_COLOR="1", PYTHONUNBUFFERED="1", LOFTY_ACCESS_TOKEN=TOKEN)
    base.update(extra)
    return base


def run_process(
    argv: Sequence[str], *, workdir: Path, environ: dict[str, str], label: tuple[str, ...]
) -> Run:
    """Run `argv` to completion with stdout/stderr to files in `workdir`; time and measure it.

    The command is started by `launch.py`, which times it and reads its own peak RSS (see there
    why this process must not fork it directly).
    """
    number = next(_run_numbers)
    out, err = workdir / f"run-{number}.out", workdir / f"run-{number}.err"
    measured = workdir / f"run-{number}.json"
    launcher = [sys.executable, "-S", str(BENCH_DIR / "launch.py"), str(measured)]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        subprocess.run(
            [*launcher, *argv],
            cwd=workdir,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            check=True,
        )
    result = json.loads(measured.read_text("utf-8"))
    return Run(
        label,
        result["wall"],
        result["cpu"],
        result["maxrss_kib"],
        result["returncode"],
        out,
        err,
    )


def cli(*args: str, workdir: Path, environ: dict[str, str] | None = None) -> Run:
    """`reconciler ARGS` as a real process."""
    return run_process(
        [sys.executable, "-m", "reconciler", *args],
        workdir=workdir,
        environ=environ or env(),
        label=args,
    )


def no_refresh(workdir: Path) -> tuple[str, ...]:
    """`--no-refresh` when `apply` refreshes by default: the benchmarks of apply's own speed
    (A, F, H) apply against the state alone, as before refresh existed; R measures refresh."""
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "apply", "--help"],
        capture_output=True,
        text=True,
        env=env(),
        cwd=workdir,
        timeout=60,
    )
    return ("--no-refresh",) if "--no-refresh" in done.stdout else ()


def python(code: str, *args: str, workdir: Path) -> Run:
    """A small Python program as its own process (for in-process measurements and baselines)."""
    return run_process(
        [sys.executable, "-c", code, *args], workdir=workdir, environ=env(), label=("-c", *args)
    )


class Sandbox:
    """`reconciler sandbox` as a subprocess on 127.0.0.1, port 0."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "sandbox", "--port", "0", *args],
            env=env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("Sandbox listening on http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"the sandbox did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[-1]

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_sandbox/stats", timeout=30) as response:
            result: dict[str, Any] = json.load(response)
        return result

    def env(self, **extra: str) -> dict[str, str]:
        return env(LOFTY_API_URL=self.url, **extra)

    def cpu_seconds(self) -> float | None:
        """User + system CPU the sandbox has used so far (Linux /proc), None elsewhere."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def sandbox(*args: str) -> Iterator[Sandbox]:
    running = Sandbox(*args)
    try:
        yield running
    finally:
        running.stop()


@contextmanager
def workspace(prefix: str) -> Iterator[Path]:
    """A temporary folder, removed afterwards (set BENCH_KEEP=1 to keep it for a look)."""
    path = Path(tempfile.mkdtemp(prefix=f"reconciler-bench-{prefix}-"))
    try:
        yield path
    finally:
        if os.environ.get("BENCH_KEEP"):
            print(f"  (kept {path})", flush=True)
        else:
            shutil.rmtree(path, ignore_errors=True)


@dataclass
class Result:
    """One line of the results table. `ratio` is compared with `target` by `passed`."""

    name: str
    measured: str
    baseline: str
    ratio: float
    target: str  # e.g. "<= 1.15" or ">= 0.9"
    notes: list[str] = field(default_factory=list)
    extra_ok: bool = True  # a condition beside the ratio (e.g. zero 429 responses)

    @property
    def passed(self) -> bool:
        op, _, bound = self.target.partition(" ")
        value = float(bound)
        within = self.ratio <= value if op == "<=" else self.ratio >= value
        return within and self.extra_ok


def best(runs: Sequence[Run]) -> Run:
    """The fastest of repeated runs: noise from a shared machine only ever adds time."""
    return min(runs, key=lambda r: r.wall)


def say(text: str) -> None:
    print(text, flush=True)


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def mib(kib: int) -> float:
    return kib / 1024
