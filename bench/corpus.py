"""The lead trees and fully-applied states the plan benchmarks share within one run.

One tree of 100,000 generated leads serves all sizes (see `leadgen`). The applied states are
built in-process with the real planner (`make_plan` against an empty state, then
`open_state(path).write(records)`), one 10,000-lead branch per task on a pool of processes;
the records of a branch are those of the whole tree with the branch's folder in front.
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import leadgen
from harness import say, timed

from reconciler.plan import make_plan
from reconciler.state import LeadRecord, Snapshot, open_state

_SUBTREE = {1_000: "s0/t0", 10_000: "s0", 100_000: ""}
_BRANCH = leadgen.PER_LEAF * leadgen.LEAVES_PER_BRANCH  # leads per folder s<N>


def _branch_records(root: str) -> list[LeadRecord]:
    made, _ = make_plan(Path(root), Snapshot(None, 0, {}), state_name="bench")
    return [c.record for c in made.changes if c.record is not None]


def _under(prefix: str, records: list[LeadRecord]) -> list[LeadRecord]:
    """Records of the leads below `prefix`, with file paths made relative to it."""
    if not prefix:
        return records
    cut = len(prefix) + 1
    return [
        LeadRecord(r.lead_id, r.file[cut:], r.source_hash, r.file_leads, r.applied_json)
        for r in records
        if r.file.startswith(prefix + "/")
    ]


class Corpus:
    """Generated lead trees and their applied states, below `base`."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "leads"
        self.generated = 0
        self._branches: dict[int, list[LeadRecord]] = {}  # records of s<N>, paths from the root
        self._states: dict[int, Path] = {}
        self._committed = -1

    def checkout(self) -> None:
        """Make `base` a git checkout with every generated lead file committed, as a CI job's
        clone would be (so a plan can take git's word for the files it tracks)."""
        if self._committed == self.generated:
            # Files edited and put back have new times: let git re-check them, as a clone would
            # not need to.
            _git(self.base, "update-index", "-q", "--refresh")
            return
        if not (self.base / ".git").exists():
            _git(self.base, "init", "-q")
        _git(self.base, "add", "-A", "leads")
        _git(
            self.base,
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
            # 100,000 new loose objects would start `git gc --auto` in the background, packing
            # them on one core for a minute while the plans are measured; a clone has them
            # packed already.
            "-c",
            "gc.auto=0",
            "-c",
            "maintenance.auto=false",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            f"{self.generated} leads",
        )
        self._committed = self.generated

    def tree(self, size: int) -> Path:
        """The folder holding exactly `size` leads (1k, 10k or 100k), generating as needed."""
        if self.generated < size:
            count = max(size, _BRANCH)  # the states are built a whole branch at a time
            seconds = timed(lambda: leadgen.generate(self.root, count))
            say(f"  generated {count:,} lead files in {seconds:.1f}s")
            self.generated = count
        return self.root / _SUBTREE[size] if _SUBTREE[size] else self.root

    def state(self, size: int) -> Path:
        """A state file in which every lead of `tree(size)` is applied (file hashes included)."""
        if size not in self._states:
            records = _under(_SUBTREE[size], self._records(size))
            path = self.base / f"state-{size}.json"
            open_state(str(path), env={}).write(records)
            self._states[size] = path
        return self._states[size]

    def _records(self, size: int) -> list[LeadRecord]:
        self.tree(size)
        wanted = range(max(1, size // _BRANCH))
        missing = [b for b in wanted if b not in self._branches]
        if missing:
            folders = [str(self.root / f"s{b}") for b in missing]

            def build() -> None:
                workers = min(len(folders), os.cpu_count() or 1)
                with ProcessPoolExecutor(max_workers=workers) as pool:
                    for b, found in zip(missing, pool.map(_branch_records, folders), strict=True):
                        self._branches[b] = _prefixed(f"s{b}", found)

            seconds = timed(build)
            say(
                f"  planned {len(missing) * _BRANCH:,} leads for the applied states "
                f"in {seconds:.1f}s"
            )
        return [r for b in wanted for r in self._branches[b]]


def _git(cwd: Path, *args: str) -> None:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    # update-index --refresh exits 1 when files need updating, which is what it is asked to fix
    if done.returncode not in (0, 1) or (done.returncode and "update-index" not in args):
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")


def _prefixed(prefix: str, records: list[LeadRecord]) -> list[LeadRecord]:
    return [
        LeadRecord(r.lead_id, f"{prefix}/{r.file}", r.source_hash, r.file_leads, r.applied_json)
        for r in records
    ]
