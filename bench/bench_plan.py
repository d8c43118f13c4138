"""Plan benchmarks C and E: the cold plan, and scaling (with the cold plan's peak at 100k).

Every plan is a whole `reconciler plan` process (interpreter start, imports, state, files,
rendering to a file). C is measured against a baseline taken in the same run, on the same
files: parsing all of them with PyYAML's `yaml.load(text, Loader=yaml.CSafeLoader)` in one
process. Repeated runs are interleaved (baseline, plan, baseline, plan...) so that a noisy
neighbour slows both alike, and the fastest of each is kept. The warm and no-op plans are in
`bench_scale` (issue 16's rows).
"""

from __future__ import annotations

from pathlib import Path

from corpus import Corpus
from harness import PARSE_ALL, Result, Run, best, cli, mib, python, say


class PlanBench:
    """The plan benchmarks of one run; measurements are shared (C feeds E, D feeds E)."""

    def __init__(self, corpus: Corpus, work: Path) -> None:
        self.corpus = corpus
        self.work = work
        self.cold: dict[int, Run] = {}
        self.noop: dict[int, Run] = {}
        self._empty = work / "empty-state.json"  # never written: plan does not write state

    def plan(self, size: int, state: Path, *codes: int) -> Run:
        tree = self.corpus.tree(size)
        args = ("plan", "--dir", str(tree), "--state", str(state), "--detailed-exitcode")
        return cli(*args, workdir=self.work).check(*codes)

    def baseline(self, size: int) -> Run:
        run = python(PARSE_ALL, str(self.corpus.tree(size)), workdir=self.work).check()
        count = int(run.output().split()[0])
        if count != size:
            raise RuntimeError(f"the baseline parsed {count} files, not {size}")
        return run

    # C ----------------------------------------------------------------------------------------

    def cold_10k(self) -> Result:
        """The same 10k files, empty state: every file parsed, validated, planned, rendered."""
        baselines, plans = [], []
        for _ in range(2):
            baselines.append(self.baseline(10_000))
            plans.append(self.plan(10_000, self._empty, 2))
        baselines.append(self.baseline(10_000))
        plan, base = best(plans), best(baselines)
        self.cold[10_000] = plan
        return Result(
            "C. cold plan 10k",
            f"{plan.wall:.2f}s",
            f"{base.wall:.2f}s yaml",
            plan.wall / base.wall,
            "<= 1.5",
            [
                f"plan CPU {plan.cpu:.2f}s, output {plan.out.stat().st_size / 1e6:.1f} MB "
                f"of plan text; baseline CPU {base.cpu:.2f}s"
            ],
        )

    # E ----------------------------------------------------------------------------------------

    def scaling(self) -> list[Result]:
        """Plan time per lead at 1k, 10k, 100k, cold and no-op: it must not grow with size."""
        for size in (1_000, 10_000):
            if size not in self.noop:
                state = self.corpus.state(size)
                self.noop[size] = best([self.plan(size, state, 0) for _ in range(3)])
        if 100_000 not in self.noop:
            self.noop[100_000] = self.plan(100_000, self.corpus.state(100_000), 0)
        if 1_000 not in self.cold:
            self.cold[1_000] = best([self.plan(1_000, self._empty, 2) for _ in range(3)])
        if 10_000 not in self.cold:
            self.cold[10_000] = best([self.plan(10_000, self._empty, 2) for _ in range(2)])
        if 100_000 not in self.cold:
            self.cold[100_000] = self.plan(100_000, self._empty, 2)
        cold_peak = mib(self.cold[100_000].maxrss_kib)
        results = [
            Result(
                "E. cold plan 100k: peak RSS",
                f"{cold_peak:.0f} MiB",
                "600 MiB",
                cold_peak / 600,
                "<= 1.0",
                [
                    f"wall {self.cold[100_000].wall:.1f}s; peak RSS is the largest of the "
                    "process and the worker processes it parses with"
                ],
            )
        ]
        for kind, runs in (("cold", self.cold), ("no-op", self.noop)):
            per_lead = {size: runs[size].wall / size for size in sorted(runs)}
            curve = ", ".join(
                f"{size // 1000}k: {runs[size].wall:.2f}s = {1e6 * t:.0f}us/lead "
                f"({mib(runs[size].maxrss_kib):.0f} MiB)"
                for size, t in per_lead.items()
            )
            marginal_small = (runs[10_000].wall - runs[1_000].wall) / 9_000
            marginal_large = (runs[100_000].wall - runs[10_000].wall) / 90_000
            growth = per_lead[100_000] / per_lead[10_000]
            verdict = "grows" if growth > 1.0 else "does not grow"
            say(f"  {kind} plan: {curve}")
            results.append(
                Result(
                    f"E. scaling, {kind} plan",
                    f"{1e6 * per_lead[100_000]:.0f}us/lead @100k",
                    f"{1e6 * per_lead[10_000]:.0f}us/lead @10k",
                    growth,
                    "<= 1.1",
                    [
                        curve,
                        f"per-lead time {verdict} from 10k to 100k (x{growth:.2f}); marginal "
                        f"cost {1e6 * marginal_small:.0f}us/lead (1k->10k), "
                        f"{1e6 * marginal_large:.0f}us/lead (10k->100k); "
                        "target allows 10% for noise",
                    ],
                )
            )
        return results
