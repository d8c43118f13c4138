"""Benchmarks of issue 16: plans in a git checkout, state writes at 100k, and the read side.

- no-op plans in a git checkout, against reading and hashing every lead file once (the floor
  of any planner that must look at every file without git);
- warm plan's per-lead work (the whole process minus a `plan` of an empty tree) against
  CSafeLoader parsing every file;
- apply of 100 changes with a 100,000-lead state against the same with a 1,000-lead state;
- `import --query`, `plan --refresh` and apply with refresh, counted by the sandbox.

Every CLI run is a whole process (see `harness`); runs are interleaved with their baselines and
the fastest of each kept.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import leadgen
import yaml
from corpus import Corpus
from harness import (
    PARSE_ALL,
    Result,
    Run,
    Sandbox,
    best,
    cli,
    env,
    mib,
    no_refresh,
    python,
    sandbox,
)

EDITED = list(range(0, 10_000, 100))  # 100 leads spread over the 10k tree
REPEATS = 5  # runs of each plan and baseline, interleaved; the fastest of each is kept

_READ_HASH = """
import hashlib, os, sys, time
start = time.perf_counter()
count = 0
for folder, dirs, files in os.walk(sys.argv[1]):
    dirs[:] = [d for d in dirs if not d.startswith(".")]
    for name in files:
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(folder, name), "rb") as handle:
                data = handle.read()
            hashlib.sha1(b"blob %d\\0" % len(data) + data).hexdigest()
            count += 1
print(count, time.perf_counter() - start)
"""


class ScaleBench:
    """Rows 1-4 and 6 of issue 16, on the shared corpus (a git checkout)."""

    def __init__(self, corpus: Corpus, work: Path) -> None:
        self.corpus = corpus
        self.work = work
        self.empty_tree = corpus.base / "empty-tree"  # inside the checkout, like the leads
        self.empty_tree.mkdir(exist_ok=True)
        self._none = work / "no-state.json"  # never written: plan does not write state

    def plan(self, tree: Path, state: Path, *codes: int) -> Run:
        args = ("plan", "--dir", str(tree), "--state", str(state), "--detailed-exitcode")
        return cli(*args, workdir=self.work).check(*codes)

    def empty_plan(self) -> Run:
        return self.plan(self.empty_tree, self._none, 0)

    def baseline(self, script: str, size: int) -> Run:
        run = python(script, str(self.corpus.tree(size)), workdir=self.work).check()
        count = int(run.output().split()[0])
        if count != size:
            raise RuntimeError(f"the baseline saw {count} files, not {size}")
        return run

    # rows 2 and 3 -------------------------------------------------------------------------------

    def per_lead_10k(self) -> list[Result]:
        """Warm (100 edited) and no-op plans of 10k leads in a checkout: per-lead work."""
        tree, state = self.corpus.tree(10_000), self.corpus.state(10_000)
        self.corpus.checkout()
        parse, hashing, empty, noop, warm = [], [], [], [], []
        for _ in range(REPEATS):
            empty.append(self.empty_plan())
            hashing.append(self.baseline(_READ_HASH, 10_000))
            noop.append(self.plan(tree, state, 0))
        leadgen.edit(self.corpus.root, EDITED)
        try:
            for _ in range(REPEATS):
                parse.append(self.baseline(PARSE_ALL, 10_000))
                empty.append(self.empty_plan())
                warm.append(self.plan(tree, state, 2))
        finally:
            leadgen.edit(self.corpus.root, EDITED, edited=False)
        expected = "Plan: 0 to manage, 100 to update, 0 to forget, 9900 unchanged."
        if best(warm).last_line() != expected:
            raise RuntimeError(f"warm plan said {best(warm).last_line()!r}, not {expected!r}")
        floor, base_parse, base_hash = best(empty), best(parse), best(hashing)
        warm_work = best(warm).wall - floor.wall
        noop_work = best(noop).wall - floor.wall
        floor_note = (
            f"`plan` of an empty tree (start-up, imports, git, an empty state): {floor.wall:.2f}s"
        )
        return [
            Result(
                "B. warm plan 10k, per-lead work",
                f"{warm_work:.3f}s",
                f"{base_parse.wall:.2f}s yaml",
                warm_work / base_parse.wall,
                "<= 0.08",
                [
                    f"whole process {best(warm).wall:.2f}s (CPU {best(warm).cpu:.2f}s, peak "
                    f"{mib(best(warm).maxrss_kib):.0f} MiB) minus the empty plan; {floor_note}",
                    "in a git checkout: the 100 edited files are the ones git reports modified",
                ],
            ),
            Result(
                "B. no-op plan 10k in git, per-lead",
                f"{noop_work:.3f}s",
                f"{base_hash.wall:.2f}s read+hash",
                noop_work / base_hash.wall,
                "<= 1.0",
                [
                    f"whole process {best(noop).wall:.2f}s minus the empty plan; the baseline "
                    "reads every file and computes its git blob id, in one process"
                ],
            ),
        ]

    # row 1 ----------------------------------------------------------------------------------------

    def noop_100k(self) -> Result:
        """No-op plan of 100k leads in a checkout, whole process, vs reading+hashing them."""
        tree, state = self.corpus.tree(100_000), self.corpus.state(100_000)
        self.corpus.checkout()
        plans, hashing = [], []
        for _ in range(REPEATS):
            hashing.append(self.baseline(_READ_HASH, 100_000))
            plans.append(self.plan(tree, state, 0))
        plan, base = best(plans), best(hashing)
        startup = best([cli("--version", workdir=self.work).check() for _ in range(3)])
        reads = [python(_READ_STATE, str(state), workdir=self.work).check() for _ in range(3)]
        read_seconds = min(float(r.output().split()[1]) for r in reads)
        return Result(
            "D. no-op plan 100k in git",
            f"{plan.wall:.2f}s",
            f"{base.wall:.2f}s read+hash",
            plan.wall / base.wall,
            "<= 1.0",
            [
                f"whole process, CPU {plan.cpu:.2f}s, peak {mib(plan.maxrss_kib):.0f} MiB; "
                f"{plan.last_line()}",
                f"state file {state.stat().st_size / 1e6:.0f} MB, read in-process in "
                f"{read_seconds:.2f}s; `reconciler --version` {startup.wall:.2f}s",
            ],
        )

    # row 6 ----------------------------------------------------------------------------------------

    def apply_by_state_size(self) -> Result:
        """Apply 100 changed leads with a 100k-lead state vs a 1k-lead state (same 100 edits)."""
        edited = list(range(0, 1_000, 10))  # 100 leads inside the 1k tree, so in both trees
        sizes = (1_000, 100_000)
        inputs = {n: (self.corpus.tree(n), self.corpus.state(n)) for n in sizes}
        self.corpus.checkout()
        own: dict[int, list[float]] = {n: [] for n in sizes}
        runs: dict[int, list[Run]] = {n: [] for n in sizes}
        quiet = no_refresh(self.work)
        leadgen.edit(self.corpus.root, edited)
        try:
            with sandbox("--latency-ms", "20") as box:
                for _ in range(3):
                    for n in sizes:
                        tree, pristine = inputs[n]
                        state = self._fresh_state(pristine, n)
                        planned = self.plan(tree, state, 2)
                        if "100 to update, 0 to forget" not in planned.last_line():
                            raise RuntimeError(f"plan at {n}: {planned.last_line()}")
                        args = ("apply", "--dir", str(tree), "--state", str(state), *quiet)
                        applied = cli(
                            *args, "--auto-approve", workdir=self.work, environ=box.env()
                        ).check()
                        if "100 applied (100 PUT)" not in applied.output():
                            raise RuntimeError(f"apply at {n}: {applied.output()[-400:]}")
                        runs[n].append(applied)
                        own[n].append(applied.wall - planned.wall)
        finally:
            leadgen.edit(self.corpus.root, edited, edited=False)
        large, small = min(own[100_000]), min(own[1_000])
        return Result(
            "H. apply 100: 100k vs 1k state",
            f"{large:.2f}s",
            f"{small:.2f}s @1k",
            large / small,
            "<= 1.3",
            [
                "apply's own work: the whole `apply` process minus a `plan` of the same input "
                "and state just before it (start-up, state read, planning, rendering cancel "
                "out), fastest of 3; sandbox --latency-ms 20, --parallelism 4",
                "apply wall "
                + ", ".join(f"{n // 1000}k: {best(runs[n]).wall:.2f}s" for n in sizes),
            ],
        )

    def _fresh_state(self, pristine: Path, size: int) -> Path:
        copy = self.work / f"apply-state-{size}.json"
        for leftover in copy.parent.glob(copy.name + "*"):
            leftover.unlink()
        shutil.copyfile(pristine, copy)
        return copy


_READ_STATE = """
import sys, time
from reconciler.state import open_state
start = time.perf_counter()
snapshot = open_state(sys.argv[1], env={}).read()
print(len(snapshot.leads), time.perf_counter() - start)
"""

# --- the read side (rows 7) ------------------------------------------------------------------

IMPORT_GENERATE = 60_000  # generated leads; `--query source=Zillow` picks about a sixth
IMPORT_QUERY = "source=Zillow"
SEED = "7"
# Lofty's limit as Lofty counts it: 600 a minute, in one-minute windows. (Squeezed into 600/min
# as 10 per one-second window, the import measured the sandbox rather than the client: Reset
# is whole epoch seconds and the sandbox starts a window at the first request after the last
# one ended, so each 1 s window took 2 s however fast the client was.)
RATE = ("--rate-limit", "600", "--rate-window", "60")
APPLY_CHANGES = 1_000
MANAGED = 10_000
SOURCES = ("Zillow", "Realtor.com", "Open House", "Website", "Referral", "Facebook Ads")


def _supports(command: str, flag: str, workdir: Path) -> bool:
    """Whether `reconciler COMMAND --help` lists `flag` (a feature still being built)."""
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", command, "--help"],
        capture_output=True,
        text=True,
        env=env(),
        cwd=workdir,
        timeout=60,
    )
    return flag in done.stdout


def _not_yet(name: str, target: str, why: str) -> Result:
    return Result(name, "-", "-", float("nan"), target, [f"not available yet: {why}"], False)


# The sandbox answers one list page in four short by default, so that tests catch a client that
# assumes full pages; no client can then page 10,000 leads in N/100 + 5 calls. Lofty's own
# pages are full but for the last one or a rare short one: the benchmarks ask for that.
PAGES = ("--short-page-rate", "0.02")


def read_side(base: Path) -> list[Result]:
    """`import --query` of ~10k leads, `plan --refresh` of them, apply with refresh of 1,000."""
    tree, state = base / "leads", base / "state.json"
    generate = ("--generate", str(IMPORT_GENERATE), "--random-seed", SEED)
    with sandbox(*generate, *RATE, *PAGES) as box:
        imported = _import(base, box, IMPORT_QUERY, tree, state)
        stats = box.stats()
    count = sum(1 for _ in tree.rglob("*.yaml"))
    if f"{count} imported" not in imported.output():
        raise RuntimeError(f"import: {imported.output()[-400:]}")
    calls = stats["requests"]
    allowed = count / 100 + 5
    ideal = calls / 10.0
    results = [
        Result(
            f"R. import --query {count / 1000:.0f}k: calls",
            f"{calls}",
            f"{allowed:.0f} allowed",
            calls / allowed,
            "<= 1.0",
            [
                f"sandbox --generate {IMPORT_GENERATE} ({IMPORT_QUERY} matches {count}), "
                f"limit 600/min (one-minute windows); {stats['status_counts']}"
            ],
        ),
        Result(
            "R. import --query: wall / ideal",
            f"{imported.wall:.1f}s",
            f"{ideal:.1f}s at limit",
            imported.wall / ideal,
            "<= 1.2",
            [
                "ideal = calls / (600/min); the whole process: start-up, the list pages, "
                f"{count} lead files and their state records written; CPU {imported.cpu:.1f}s"
            ],
        ),
    ]
    # The refresh rows manage a whole account of 10,000 leads (a refresh that pages the list
    # reads the account, whoever is managed): every source imported, one query each.
    managed = ("--generate", str(MANAGED), "--random-seed", SEED)
    tree, state = base / "managed", base / "managed-state.json"
    with sandbox(*managed, *PAGES) as box:
        for source in SOURCES:
            _import(base, box, f"source={source}", tree, state)
        results.append(_plan_refresh(base, box, tree, state))
    results.append(_apply_with_refresh(base, tree, state, managed))
    return results


def _import(base: Path, box: Sandbox, query: str, tree: Path, state: Path) -> Run:
    """`reconciler import --query QUERY` from `box` into `tree`, recorded in `state`."""
    args = ("import", "--query", query, "--dir", str(tree), "--state", str(state))
    return cli(*args, workdir=base, environ=box.env()).check()


def _plan_refresh(base: Path, box: Sandbox, tree: Path, state: Path) -> Result:
    count = sum(1 for _ in tree.rglob("*.yaml"))
    name, target = f"R. plan --refresh {count / 1000:.0f}k: calls", "<= 1.0"
    if not _supports("plan", "--refresh", base):
        return _not_yet(name, target, "`reconciler plan --help` lists no --refresh")
    before = box.stats()["requests"]
    args = ("plan", "--refresh", "--dir", str(tree), "--state", str(state))
    run = cli(*args, "--detailed-exitcode", workdir=base, environ=box.env()).check(0, 2)
    stats = box.stats()
    calls = stats["requests"] - before
    allowed = count / 100 + 5
    return Result(
        name,
        f"{calls}",
        f"{allowed:.0f} allowed",
        calls / allowed,
        target,
        [
            f"the account holds the {count} managed leads (sandbox --generate {MANAGED}, "
            f"imported one source at a time); plan wall {run.wall:.2f}s; {run.last_line()}"
        ],
    )


def _apply_with_refresh(base: Path, tree: Path, state: Path, generate: tuple[str, ...]) -> Result:
    name, target = "R. apply+refresh 1k @600/min", ">= 0.9"
    if not _supports("apply", "--no-refresh", base):
        return _not_yet(name, target, "`reconciler apply` does not refresh (no --no-refresh)")
    files = sorted(tree.rglob("*.yaml"))[:APPLY_CHANGES]
    for path in files:
        _edit_stage(path)
    limit, window = 600, 60.0
    latency = ("--latency-ms", "50")
    with sandbox(
        *generate, *latency, *PAGES, "--rate-limit", str(limit), "--rate-window", "60"
    ) as box:
        run = cli(
            "apply",
            "--dir",
            str(tree),
            "--state",
            str(state),
            "--auto-approve",
            # As row A: with the default 4, the last window's 500 PUTs take 7 s at 50 ms each
            # (latency, not pacing), and that tail alone would decide this row.
            "--parallelism",
            "10",
            workdir=base,
            environ=box.env(),
        ).check(0, 1)
        stats = box.stats()
    requests = stats["requests"]
    span = stats["last_request_at"] - stats["first_request_at"]
    # Fixed windows: a perfect client sends a window's budget at each window's start, so its
    # requests span (windows needed - 1) whole windows; more time than that is lost rate.
    perfect = (-(-requests // limit) - 1) * window
    too_many = stats["status_counts"].get("429", 0)
    return Result(
        name,
        f"{span:.1f}s",
        f"{perfect:.0f}s perfect",
        perfect / span if span else 0.0,
        target,
        [
            f"{requests} requests ({APPLY_CHANGES} changed leads, refresh reads, access check), "
            f"{too_many} answered 429; whole apply {run.wall:.1f}s; {run.last_line()}"
        ],
        extra_ok=too_many == 0,
    )


def _edit_stage(path: Path) -> None:
    """A reviewer's edit of an imported lead file: another stage."""
    document = yaml.safe_load(path.read_text("utf-8"))
    document["stage"] = "Nurture" if document.get("stage") != "Nurture" else "New"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), "utf-8")
