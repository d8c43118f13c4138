"""Escaping and masking: what no value from a file or a server may do to a terminal or a log."""

from __future__ import annotations

import pytest

from reconciler.sanitize import clean, mask_text, mask_value, safe_lines, scrub

HOSTILE = "x\n::error title=pwn::injected\x1b]0;TITLE\x07.yaml"


def test_clean_spells_controls_and_invisible_characters_and_keeps_the_rest() -> None:
    assert clean("Zoë 🏡 Nguyễn") == "Zoë 🏡 Nguyễn"
    assert clean(HOSTILE) == "x\\u000a::error title=pwn::injected\\u001b]0;TITLE\\u0007.yaml"
    assert clean("evil\u202etxt.yaml\u200b") == "evil\\u202etxt.yaml\\u200b"
    assert clean("a\u2028b") == "a\\u2028b"


def test_safe_lines_keeps_line_breaks_but_defuses_workflow_commands() -> None:
    text = "error: x\n::error title=pwn::injected\n  ::warning::too\nfine :: here\n"
    assert safe_lines(text).splitlines() == [
        "error: x",
        "\\u003a:error title=pwn::injected",
        "  \\u003a:warning::too",
        "fine :: here",
    ]
    assert safe_lines("see ##[error]boom") == "see #\\u0023[error]boom"


def test_safe_lines_keeps_colour_codes_only_when_asked() -> None:
    text = "\x1b[32m+\x1b[0m name: \x1b]0;TITLE\x07"
    assert safe_lines(text, keep_colour=True) == "\x1b[32m+\x1b[0m name: \\u001b]0;TITLE\\u0007"
    assert "\x1b" not in safe_lines(text)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("INVALID: jane.doe@example.com is taken", "INVALID: j***@example.com is taken"),
        ("call +1 (415) 555-1234 now", "call +**************34 now"),
        ("lead 651095960136641 priced 525000", "lead 651095960136641 priced 525000"),
    ],
)
def test_free_text_masks_emails_and_international_phones_but_not_ids(
    text: str, masked: str
) -> None:
    assert mask_text(text) == masked


def test_masking_a_value_follows_the_field_however_deep() -> None:
    member = {"firstName": "Ann", "emails": ["ann@x.com"], "phones": ["+14155550122"]}
    assert mask_value("leadFamilyMemberList[1]", member) == {
        "firstName": "Ann",
        "emails": ["a***@x.com"],
        "phones": ["+*********22"],
    }
    assert mask_value("firstName", "ann@x.com") == "ann@x.com"  # not a sensitive field


def test_scrub_replaces_every_secret() -> None:
    assert scrub("Bearer abc123 and abc123", ("abc123",)) == "Bearer *** and ***"
