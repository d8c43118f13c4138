"""The terminal plan: the exact lines a user reads, colour only when asked."""

from __future__ import annotations

import re

from reconciler.plan import FieldChange
from reconciler.render import RenderOptions, render

from .plans import make_plan, sample_plan, update

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_every_kind_of_change_reads_as_documented() -> None:
    out = render(sample_plan(), "text", RenderOptions())
    assert out == (
        "- lead 3 (leads/gone.yaml): forget (removed from the lead files: the lead leaves the "
        "state; nothing is called or deleted in Lofty)\n"
        "\n"
        "+ lead 2 (leads/new.yaml): manage (first apply: every field is sent)\n"
        '    + firstName: "Jane"\n'
        '    + tags: ["a", "b"]\n'
        "\n"
        "~ lead 651095960136642 (leads/seller.yaml): update\n"
        '    ~ firstName: "Bob" -> "Robert"\n'
        '    ~ inquiry.locations[0].city: "Austin" -> "Dallas"\n'
        "    + inquiry.priceMax: 500000\n"
        "      (inquiry is sent whole)\n"
        '    ~ segments: ["A"] -> []\n'
        "    - source: no longer managed (nothing is sent; the state forgets it)\n"
        "\n"
        "~ lead 4 (leads/z.yaml): update\n"
        "    - stage: no longer managed (nothing is sent; the state forgets it)\n"
        "      (no call is made for this lead: only the state changes)\n"
        "\n"
        "Warning: leads/new.yaml:5: lastName: is 33 characters; Lofty silently keeps the first "
        "30: 'Abcdefghijabcdefghijabcdefghij'\n"
        "\n"
        "Plan: 1 to manage, 2 to update, 1 to forget, 120 unchanged.\n"
    )


def test_removed_part_of_a_nested_value_shows_what_was_there() -> None:
    plan = make_plan(
        update(9, "leads/a.yaml", FieldChange("inquiry.locations[1]", "remove", {"city": "Waco"}))
    )
    lines = render(plan, "text", RenderOptions()).splitlines()
    assert '    - inquiry.locations[1]: {"city": "Waco"}' in lines
    assert "      (inquiry is sent whole)" in lines


def test_no_colour_unless_asked() -> None:
    plain = render(sample_plan(), "text", RenderOptions(color=False))
    coloured = render(sample_plan(), "text", RenderOptions(color=True))
    assert "\x1b" not in plain
    assert "\x1b[32m+\x1b[0m" in coloured  # the manage sign in green
    assert "\x1b[31m-\x1b[0m" in coloured  # the forget sign in red
    assert ANSI.sub("", coloured) == plain


def test_no_changes_says_so() -> None:
    out = render(make_plan(unchanged=7), "text", RenderOptions())
    assert out == "No changes. 7 leads match the last-applied state.\n"
    assert render(make_plan(unchanged=1), "text", RenderOptions()).startswith(
        "No changes. 1 lead matches"
    )


def test_values_cannot_smuggle_terminal_escapes_or_bidi_tricks() -> None:
    plan = make_plan(
        update(
            5,
            "leads/\x1b[2Jevil.yaml",
            FieldChange("firstName", "change", "Bob", "\x1b[31mRed\u202eevil\x9b"),
        )
    )
    out = render(plan, "text", RenderOptions(color=False))
    assert "\x1b" not in out and "\u202e" not in out and "\x9b" not in out
    assert '~ firstName: "Bob" -> "\\u001b[31mRed\\u202eevil\\u009b"' in out
    assert "lead 5 (leads/\\u001b[2Jevil.yaml): update" in out


def test_targeted_plan_says_others_were_not_compared() -> None:
    plan = make_plan(
        update(5, "leads/a.yaml", FieldChange("stage", "change", "A", "B")), targets=("5",)
    )
    out = render(plan, "text", RenderOptions())
    assert out.startswith(
        "Note: only the targeted leads were planned (--target 5); no others were compared.\n"
    )
