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
    assert done.stdout.splitlines() == ["1\tleads/1.yaml", "status=0"]
    assert "Traceback" not in done.stderr and "Internal error" not in done.stderr


def test_every_line_is_scrubbed_masked_and_escaped() -> None:
    console = Console(out=io.StringIO(), err=io.StringIO(), secrets=("tok-123456",))
    console.note("error: x.yaml\n::error::pwn \x1b]0;T\x07 Bearer tok-123456 jane@example.com")
    assert console.err.getvalue() == (  # type: ignore[attr-defined]
        "error: x.yaml\n\\u003a:error::pwn \\u001b]0;T\\u0007 Bearer *** j***@example.com\n"
    )


def test_show_sensitive_shows_emails_but_never_the_secret() -> None:
    console = Console(
        out=io.StringIO(), err=io.StringIO(), secrets=("tok-123456",), show_sensitive=True
    )
    console.say("jane@example.com tok-123456")
    assert console.out.getvalue() == "jane@example.com ***\n"  # type: ignore[attr-defined]


def test_a_hostile_file_name_reaches_the_log_escaped(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from reconciler.cli import main

    leads = tmp_path / "leads"
    leads.mkdir()
    (leads / "x\n::error title=pwn::injected\x1b]0;TITLE\x07.yaml").write_text("leadId: [\n")
    result = CliRunner().invoke(main, ["validate", "--dir", str(leads)])
    assert result.exit_code == 1
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert not any(line.lstrip().startswith("::") for line in result.stderr.splitlines())
    assert "\\u003a:error title=pwn::injected\\u001b]0;TITLE\\u0007.yaml" in result.stderr


def test_plans_mask_emails_and_phones_unless_asked(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from reconciler.cli import main

    leads = tmp_path / "leads"
    leads.mkdir()
    lead = '{"leadId": 5, "emails": ["jane.doe@example.com"], "phones": ["+14155551234"]}'
    (leads / "jane.yaml").write_text(lead)
    args = ["plan", "--dir", str(leads), "--state", str(tmp_path / "s.json")]
    for fmt in ("text", "markdown", "json"):
        masked = CliRunner().invoke(main, [*args, "--format", fmt]).stdout
        assert "j***@example.com" in masked and "+*********34" in masked, fmt
        assert "jane.doe" not in masked and "4155551234" not in masked, fmt
    shown = CliRunner().invoke(main, [*args, "--show-sensitive"]).stdout
    assert "jane.doe@example.com" in shown and "+14155551234" in shown
