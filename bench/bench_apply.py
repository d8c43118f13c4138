"""Apply benchmarks: A (latency-bound throughput, pacing under a rate limit) and F (PostgreSQL).

Each scenario gets its own tree of "changed" leads: every lead already applied in the state,
then edited as a reviewer would (stage, one more tag, a nested `inquiry.priceMax`), so apply
sends one field-level PUT per lead. The state is copied fresh before every run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import leadgen
from harness import Result, Run, Sandbox, best, cli, no_refresh, sandbox, say

from reconciler.plan import make_plan
from reconciler.state import LeadRecord, Snapshot, open_state

LATENCY_MS = 50
PARALLELISM = 10


class ChangedLeads:
    """`count` leads below `base`, all applied in a pristine state, then all edited."""

    def __init__(self, base: Path, count: int) -> None:
        self.base = base
        self.count = count
        self.root = base / "leads"
        leadgen.generate(self.root, count)
        made, _ = make_plan(self.root, Snapshot(None, 0, {}), state_name="bench")
        self.records: list[LeadRecord] = [c.record for c in made.changes if c.record]
        self.pristine = base / "pristine-state.json"
        open_state(str(self.pristine), env={}).write(self.records)
        leadgen.edit(self.root, list(range(count)))
        self._runs = 0

    def fresh_state(self) -> Path:
        self._runs += 1
        path = self.base / f"state-{self._runs}.json"
        shutil.copyfile(self.pristine, path)
        return path

    def apply(self, box: Sandbox, state: str, *extra: str) -> Run:
        args = ("apply", "--dir", str(self.root), "--state", state, "--auto-approve", *extra)
        args += no_refresh(self.base)
        run = cli(*args, workdir=self.base, environ=box.env()).check()
        summary = f"{self.count} applied ({self.count} PUT), 0 failed, 0 skipped."
        if summary not in run.output():
            raise RuntimeError(f"apply did not apply every lead: {run.output()[-500:]}")
        return run

    def plan(self, state: str) -> Run:
        args = ("plan", "--dir", str(self.root), "--state", state, "--detailed-exitcode")
        return cli(*args, workdir=self.base).check(2)


def throughput(base: Path) -> Result:
    """A: 1,000 changed leads, 50 ms per call, parallelism 10: ideal 1000 x 50 ms / 10 = 5 s."""
    leads = ChangedLeads(base, 1_000)
    ideal = leads.count * LATENCY_MS / 1000 / PARALLELISM
    runs: list[tuple[Run, float, float | None]] = []
    for _ in range(2):
        with sandbox("--latency-ms", str(LATENCY_MS)) as box:
            cpu_before = box.cpu_seconds()
            run = leads.apply(box, str(leads.fresh_state()), "--parallelism", str(PARALLELISM))
            cpu_after = box.cpu_seconds()
            stats = box.stats()
        span = stats["last_request_at"] - stats["first_request_at"] + LATENCY_MS / 1000
        server_cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
        runs.append((run, span, server_cpu))
    run, span, server_cpu = min(runs, key=lambda triple: triple[0].wall)
    before = best([leads.plan(str(leads.fresh_state())) for _ in range(2)])
    return Result(
        "A. apply 1k @50ms, p=10",
        f"{run.wall:.2f}s",
        f"{ideal:.2f}s ideal",
        run.wall / ideal,
        "<= 1.15",
        [
            f"whole `apply` process; the calls themselves spanned {span:.2f}s "
            f"(x{span / ideal:.2f} of ideal, from the sandbox's first/last request)",
            f"start-up + planning + rendering the same plan (`plan` alone): {before.wall:.2f}s; "
            f"the apply process used {run.cpu:.2f}s of CPU",
            "the sandbox used "
            + ("?" if server_cpu is None else f"{server_cpu:.2f}s")
            + " of CPU serving the calls; it is one Python process, so that work is serialized "
            "and adds to the ideal span",
        ],
    )


def rate_limited(base: Path, *, quick: bool) -> Result:
    """A: under a sandbox limit of 600 requests/minute, achieved rate / limit, zero 429s.

    With fixed windows a client may send a whole window's budget in one burst, so rate over
    (first request .. last request) flatters a run that ends inside a burst. N = k*L + 1
    requests make the last one open window k+1: a perfect client then spans exactly k windows,
    and (N - 1) / (last - first) equals the limit. Apply's access check (one GET before the
    first PUT) is one of them, so k*L leads are changed.
    """
    limit, window = (100, 10.0) if quick else (600, 60.0)
    windows = 3
    count = windows * limit  # + the access check = k*L + 1 requests
    leads = ChangedLeads(base, count)
    say(
        f"  rate limit {limit}/{window:g}s window (= {60 * limit / window:g}/min); "
        f"{count} leads and the access check over {windows} windows: about {windows * window:.0f}s"
    )
    args = ("--latency-ms", str(LATENCY_MS), "--rate-limit", str(limit))
    with sandbox(*args, "--rate-window", str(window)) as box:
        run = leads.apply(box, str(leads.fresh_state()), "--parallelism", str(PARALLELISM))
        stats = box.stats()
    elapsed = stats["last_request_at"] - stats["first_request_at"]
    per_minute = (stats["requests"] - 1) / elapsed * 60
    allowed = 60 * limit / window
    too_many = stats["status_counts"].get("429", 0)
    return Result(
        f"A. rate under {allowed:g}/min",
        f"{per_minute:.0f}/min",
        f"{allowed:g}/min",
        per_minute / allowed,
        ">= 0.9",
        [
            f"sandbox --rate-limit {limit} --rate-window {window:g}; {stats['requests']} "
            f"requests in {elapsed:.1f}s (first..last), {too_many} answered 429; "
            f"whole apply {run.wall:.1f}s",
            "rate = (requests - 1) / (last - first): with k*L+1 requests a perfect client "
            "scores exactly 1.0",
        ],
        extra_ok=too_many == 0 and stats["requests"] == count + 1,
    )


def postgres(base: Path) -> Result | None:
    """F: apply 1,000 changed leads with the state in PostgreSQL vs in the local file."""
    from tests.pgcluster import PostgresError, temporary_cluster

    leads = ChangedLeads(base, 1_000)
    try:
        # Durable (fsync on, unlike the suite's): the local state it is compared with fsyncs
        # every write.
        with temporary_cluster(durable=True) as server, sandbox() as box:
            local_runs, pg_runs = [], []
            for n in range(3):
                local = str(leads.fresh_state())
                local_runs.append(leads.apply(box, local, "--parallelism", str(PARALLELISM)))
                url = f"{server.url()}?workspace=bench{n}"
                backend = open_state(url, env={})
                try:
                    backend.write(leads.records)
                finally:
                    backend.close()
                pg_runs.append(leads.apply(box, url, "--parallelism", str(PARALLELISM)))
    except PostgresError as exc:
        say(f"  skipped: {exc}")
        return None
    local_best, pg_best = best(local_runs), best(pg_runs)
    return Result(
        "F. apply 1k, PostgreSQL state",
        f"{pg_best.wall:.2f}s",
        f"{local_best.wall:.2f}s local",
        pg_best.wall / local_best.wall,
        "<= 1.3",
        [
            f"sandbox without latency, --parallelism {PARALLELISM}; "
            f"PostgreSQL {server.binaries.version}; "
            f"local runs {', '.join(f'{r.wall:.2f}' for r in local_runs)}s, "
            f"PostgreSQL runs {', '.join(f'{r.wall:.2f}' for r in pg_runs)}s"
        ],
    )
