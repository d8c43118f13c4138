"""Run every benchmark and print each ratio next to its target (`make bench`).

Benchmarks are scripts, not timed tests: each compares against a baseline measured in the same
run (the machine is shared and noisy), and a missed target is reported, not failed. The exit
status is non-zero only when a benchmark crashed.

    python bench/run_all.py                 # everything, about 15 minutes on 2 cores
    python bench/run_all.py --only b d      # a subset (letters as in docs/performance.md)
    python bench/run_all.py --quick         # the rate benchmark on a 10 s window, not 60 s
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

# The benchmark modules import each other by name, and F starts its PostgreSQL server with the
# suite's own helper (tests/pgcluster.py): the bench folder and the repo root are on the path.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

import bench_apply  # noqa: E402
from bench_plan import PlanBench  # noqa: E402
from bench_scale import ScaleBench, read_side  # noqa: E402
from corpus import Corpus  # noqa: E402
from harness import Result, say, workspace  # noqa: E402

COLUMNS = ("benchmark", "measured", "baseline", "ratio", "target", "result")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="LETTER", help="a b c d e f h r")
    parser.add_argument("--quick", action="store_true", help="rate limit on a 10 s window")
    options = parser.parse_args()
    wanted = {letter.lower() for letter in options.only or "abcdefhr"}
    quick = options.quick or bool(os.environ.get("BENCH_QUICK"))

    results: list[Result] = []
    crashed: list[str] = []
    started = time.perf_counter()
    version = _code_version()
    say(f"reconciler at {version}")
    with workspace("plan") as plan_work:
        corpus = Corpus(plan_work)
        plans = PlanBench(corpus, plan_work)
        scale = ScaleBench(corpus, plan_work)
        steps: list[tuple[str, str, Callable[[], Result | list[Result] | None]]] = [
            ("a", "A. apply throughput", lambda: _in_workspace("a1", bench_apply.throughput)),
            (
                "a",
                "A. apply under a rate limit",
                lambda: _in_workspace("a2", lambda p: bench_apply.rate_limited(p, quick=quick)),
            ),
            ("b", "B. warm and no-op plans of 10k, per lead", scale.per_lead_10k),
            ("c", "C. cold plan", plans.cold_10k),
            ("d", "D. no-op plan at 100k in git", scale.noop_100k),
            ("e", "E. scaling", plans.scaling),
            ("f", "F. PostgreSQL state", lambda: _in_workspace("f", bench_apply.postgres)),
            ("h", "H. apply 100 changes, 100k vs 1k state", scale.apply_by_state_size),
            ("r", "R. the read side (import, refresh)", lambda: _in_workspace("r", read_side)),
        ]
        for letter, title, step in steps:
            if letter not in wanted:
                continue
            say(f"\n== {title}")
            step_started = time.perf_counter()
            try:
                produced = step()
            except Exception:
                crashed.append(title)
                say(f"  CRASHED:\n{traceback.format_exc()}")
                continue
            for result in produced if isinstance(produced, list) else [produced]:
                if result is not None:
                    results.append(result)
                    say(
                        f"  {result.name}: {result.measured} vs {result.baseline} "
                        f"-> {result.ratio:.3g} (target {result.target})"
                    )
            say(f"  ({time.perf_counter() - step_started:.0f}s)")
    _table(results, crashed)
    say(
        f"\nTotal {time.perf_counter() - started:.0f}s; reconciler at {version}; "
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs."
    )
    if _code_version() != version:
        say(f"WARNING: the code changed during the run (now {_code_version()}); numbers mix both")
    return 1 if crashed else 0


def _code_version() -> str:
    """The commit measured, and whether the package had uncommitted changes (a shared repo)."""
    repo = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "an unknown commit"
    dirty = git("status", "--porcelain", "--", "reconciler", "pyproject.toml")
    return commit + (" + uncommitted changes" if dirty else "")


def _in_workspace(
    name: str, fn: Callable[[Path], Result | list[Result] | None]
) -> Result | list[Result] | None:
    with workspace(name) as path:
        return fn(path)


def _table(results: list[Result], crashed: list[str]) -> None:
    rows = [
        (
            r.name,
            r.measured,
            r.baseline,
            f"{r.ratio:.3g}",
            r.target,
            "PASS" if r.passed else "MISS",
        )
        for r in results
    ]
    rows += [(title, "-", "-", "-", "-", "CRASH") for title in crashed]
    widths = [max(len(str(row[i])) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    say("\n" + "  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)))
    say("  ".join("-" * w for w in widths))
    for row in rows:
        say("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    for r in results:
        say(f"\n{r.name}:")
        for note in r.notes:
            say(f"  - {note}")


if __name__ == "__main__":
    sys.exit(main())
