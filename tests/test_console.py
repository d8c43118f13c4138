"""The console: where output goes, and that a closed pipe or Ctrl-D never ends in a traceback."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from reconciler.console import Console


class ClosedPipe(io.StringIO):
    """A stream whose reader has gone away, as `| head -1` leaves stdout."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_results_go_to_stdout_and_messages_to_stderr() -> None:
    console = Console(out=io.StringIO(), err=io.StringIO())
    console.say("result")
    console.note("message")
    assert console.out.getvalue() == "result\n"  # type: ignore[attr-defined]
    assert console.err.getvalue() == "message\n"  # type: ignore[attr-defined]


def test_a_closed_output_pipe_silences_that_stream_only() -> None:
    console = Console(out=ClosedPipe(), err=io.StringIO())
    console.say("first")
    console.say("second")  # no second attempt, no exception
    console.note("still heard")
    assert console.closed == {"out"}
    assert console.err.getvalue() == "still heard\n"  # type: ignore[attr-defined]


def test_ctrl_d_or_anything_but_yes_at_the_prompt_is_a_no() -> None:
    def eof(prompt: str) -> str:
        raise EOFError

    assert not Console(out=io.StringIO(), err=io.StringIO(), ask=eof).confirm("Apply? ")
    assert not Console(out=io.StringIO(), err=io.StringIO(), ask=lambda p: "y").confirm("?")
    assert Console(out=io.StringIO(), err=io.StringIO(), ask=lambda p: " yes\n").confirm("?")


def test_state_list_into_a_pipe_closed_early_exits_cleanly(tmp_path: Path) -> None:
    from reconciler.state import LeadRecord, open_state

    state = str(tmp_path / "state.json")
    records = [LeadRecord(i, f"{i}.yaml", "h", (i,), "{}") for i in range(1, 20001)]
    open_state(state, env={}).write(records)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOFTY_", "RECONCILER_"))}
    script = (
        f"{sys.executable} -m reconciler state list --state {state} | head -1; "
        "echo status=${PIPESTATUS[0]}"
    )
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.stdout.splitlines() == ["1\t1.yaml", "status=0"]
    assert "Traceback" not in done.stderr and "Internal error" not in done.stderr
