"""`make demo`: the whole loop on embedded defaults, against the built-in sandbox.

Run from the repository root (where `leads/` is); it is a script, not part of the package,
because only `make demo` in a checkout uses it.

It starts `reconciler sandbox` on a free loopback port, holding a few dozen realistic leads of
its own and the example leads, and then runs, each as a real `reconciler` process:
validate, plan, apply and plan again (the loop a team runs on every change); `import` of the
leads Lofty already holds (adoption); an agent's edit in "Lofty's UI" caught by
`plan --refresh` as drift, and accepted with `--write-drift`. It works on a copy of `leads/`
under `.reconciler/demo/` with a state file of its own there, so it starts from scratch every
time and never touches the repository's files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

DEMO = Path(".reconciler/demo")
DEMO_LEADS = DEMO / "leads"
DEMO_STATE = DEMO / "state.json"
DEMO_TOKEN = "demo-access-token"  # the sandbox's own credential; not a Lofty secret
GENERATED = 24  # realistic leads the sandbox holds before the demo starts
AGENT_EDITED = 651095960136641  # the example buyer, whose stage an agent moves along


def _step(title: str, args: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> None:
    print(f"\n=== {title}\n$ reconciler {' '.join(args)}", flush=True)
    code = subprocess.call([sys.executable, "-m", "reconciler", *args], env=env)
    if code not in ok:
        raise SystemExit(f"demo: `reconciler {args[0]}` exited {code}")


def _admin(url: str, path: str, body: dict[str, object]) -> None:
    """Call one of the sandbox's admin endpoints (as the agent in Lofty's UI, say)."""
    request = urllib.request.Request(
        f"{url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # the sandbox, on loopback
        answer.read()


def _example_ids() -> list[int]:
    ids = []
    for path in sorted(Path("leads").glob("*.yaml")):
        for line in path.read_text("utf-8").splitlines():
            if line.startswith("leadId:"):
                ids.append(int(line.split(":", 1)[1]))
    return ids


def main() -> None:
    """Run the demo from the repository root (where `leads/` is)."""
    shutil.rmtree(DEMO, ignore_errors=True)
    shutil.copytree("leads", DEMO_LEADS)
    shutil.copytree("schema", DEMO / "schema")  # where the files' schema modeline points
    env = {**os.environ, "RECONCILER_STATE": str(DEMO_STATE), "LOFTY_ACCESS_TOKEN": DEMO_TOKEN}
    env.pop("LOFTY_API_KEY", None)
    sandbox = subprocess.Popen(
        [
            *(sys.executable, "-m", "reconciler", "sandbox", "--port", "0"),
            *("--latency-ms", "20", "--generate", str(GENERATED), "--random-seed", "7"),
        ],
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
        _admin(url, "/_sandbox/leads", {"leadIds": _example_ids()})  # they exist in "Lofty"
        print(f"Started the Lofty sandbox at {url}; lead files: {DEMO_LEADS}; state: {DEMO_STATE}")
        leads = ["--dir", str(DEMO_LEADS)]
        _step("1. Validate the lead files", ["validate", *leads], env)
        _step("2. Plan: what would change in Lofty", ["plan", *leads], env)
        _step("3. Apply: send exactly those changes", ["apply", *leads, "--auto-approve"], env)
        _step("4. Plan again: nothing left to do", ["plan", *leads, "--detailed-exitcode"], env)
        _step(
            "5. Import: adopt the leads Lofty already holds from Zillow, as lead files",
            ["import", *leads, "--query", "source=Zillow"],
            env,
        )
        _step("6. Plan: the imported leads need nothing", ["plan", *leads], env)
        print(f"\n=== An agent moves lead {AGENT_EDITED} to another stage in Lofty's UI")
        _admin(url, f"/_sandbox/leads/{AGENT_EDITED}/agent-edit", {"stage": "Appointment Set"})
        _step(
            "7. Plan with --refresh: the agent's edit shows as drift",
            ["plan", *leads, "--refresh", "--detailed-exitcode"],
            env,
            ok=(2,),
        )
        _step(
            "8. Accept Lofty's value as a git change",
            ["plan", *leads, "--refresh", "--write-drift"],
            env,
        )
        _step(
            "9. Apply: already so in Lofty, so only the state moves",
            ["apply", *leads, "--auto-approve"],
            env,
        )
        _step(
            "10. Plan with --refresh: files, state and Lofty agree",
            ["plan", *leads, "--refresh", "--detailed-exitcode"],
            env,
        )
        print("\nDemo complete: Lofty, the lead files and the state agree.")
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


if __name__ == "__main__":
    main()
