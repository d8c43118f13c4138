"""`make demo`: the whole loop on embedded defaults, against the built-in sandbox.

Run from the repository root (where `leads/` is); it is a script, not part of the package,
because only `make demo` in a checkout uses it.

Starts `reconciler sandbox` on a free loopback port, then runs validate, plan, apply and plan
again as a user would, each as a real `reconciler` process, and stops the sandbox.
The demo keeps its own local state file so that it starts from scratch every time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

DEMO_STATE = Path(".reconciler/demo/state.json")
DEMO_TOKEN = "demo-access-token"  # the sandbox's own credential; not a Lofty secret


def _step(title: str, args: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> None:
    print(f"\n=== {title}\n$ reconciler {' '.join(args)}", flush=True)
    code = subprocess.call([sys.executable, "-m", "reconciler", *args], env=env)
    if code not in ok:
        raise SystemExit(f"demo: `reconciler {args[0]}` exited {code}")


def main() -> None:
    """Run the demo from the repository root (where `leads/` is)."""
    shutil.rmtree(DEMO_STATE.parent, ignore_errors=True)
    env = {**os.environ, "RECONCILER_STATE": str(DEMO_STATE), "LOFTY_ACCESS_TOKEN": DEMO_TOKEN}
    env.pop("LOFTY_API_KEY", None)
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "sandbox", "--port", "0", "--latency-ms", "20"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert sandbox.stdout is not None
        url = sandbox.stdout.readline().strip().rsplit(" ", 1)[-1]
        if not url.startswith("http://127.0.0.1:"):
            raise SystemExit(f"demo: the sandbox did not start (said {url!r})")
        env["LOFTY_API_URL"] = url
        print(f"Started the Lofty sandbox at {url}; state file: {DEMO_STATE}")
        _step("1. Validate the lead files", ["validate", "--dir", "leads"], env)
        _step("2. Plan: what would change in Lofty", ["plan", "--dir", "leads"], env)
        _step(
            "3. Apply: send exactly those changes",
            ["apply", "--dir", "leads", "--auto-approve"],
            env,
        )
        _step(
            "4. Plan again: nothing left to do",
            ["plan", "--dir", "leads", "--detailed-exitcode"],
            env,
        )
        print("\nDemo complete: the sandbox now stores what the plan said; the state records it.")
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


if __name__ == "__main__":
    main()
