"""The pull-request comment: marker, masking, the size limit, and values that cannot break it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from reconciler.loader import LeadWarning
from reconciler.plan import FieldChange, LeadChange, Plan
from reconciler.render import RenderOptions, render
from reconciler.sanitize import mask_email, mask_phone

from .plans import make_plan, sample_plan, update

SUMMARY = re.compile(r"^<details><summary>(.*)</summary>$")
OPEN_FENCE = re.compile(r"^(`{3,})diff$")


def md(plan: Plan, **options: object) -> str:
    return render(plan, "markdown", RenderOptions(**options))  # type: ignore[arg-type]


def sections(out: str) -> list[tuple[str, list[str]]]:
    """Each lead section as (summary, diff lines), checking the structure GitHub will see:
    summary line, blank, an opening fence, lines no closing fence matches, the closing fence,
    blank, `</details>`. Fails on anything else inside a section."""
    lines = out.splitlines()
    found: list[tuple[str, list[str]]] = []
    i = 0
    while i < len(lines):
        match = SUMMARY.match(lines[i])
        if not match:
            assert "<details>" not in lines[i] and lines[i] != "</details>", lines[i]
            i += 1
            continue
        assert lines[i + 1] == ""
        fence = OPEN_FENCE.match(lines[i + 2])
        assert fence, lines[i + 2]
        # CommonMark: a closing fence is up to 3 spaces, then at least as many backticks.
        closing = re.compile(r"^ {0,3}" + fence.group(1) + r"`*\s*$")
        body: list[str] = []
        i += 3
        while not closing.match(lines[i]):
            assert lines[i][:2] in ("+ ", "- ", "! ", "# "), lines[i]
            body.append(lines[i])
            i += 1
        assert lines[i + 1 : i + 3] == ["", "</details>"]
        found.append((match.group(1), body))
        i += 3
    return found


def many_leads(count: int) -> Plan:
    return make_plan(
        *(
            update(
                100000 + n,
                f"leads/team-{n // 100:03d}/lead-{n}.yaml",
                FieldChange("firstName", "change", "Robert", f"Bob {n}"),
                FieldChange("emails", "change", [f"old{n}@example.com"], [f"new{n}@example.com"]),
                FieldChange("phones", "add", None, ["+14155551234"]),
                FieldChange("inquiry.priceMax", "change", 400000, 450000 + n),
            )
            for n in range(count)
        ),
        unchanged=12,
    )


def test_marker_first_then_summary_warnings_and_one_section_per_lead() -> None:
    out = md(sample_plan())
    lines = out.splitlines()
    assert lines[0] == "<!-- reconciler:plan -->"
    assert "**Plan: 1 to manage, 2 to update, 1 to forget, 120 unchanged.**" in lines[:5]
    warning = (
        "- `leads/new.yaml:5: lastName: is 33 characters; Lofty silently keeps the first 30: "
        "'Abcdefghijabcdefghijabcdefghij'`"
    )
    assert lines.index(warning) < lines.index(next(x for x in lines if x.startswith("<details>")))
    found = sections(out)
    assert [s for s, _ in found] == [
        "forget lead 3 · <code>leads/gone.yaml</code> · leaves the state",
        "manage lead 2 · <code>leads/new.yaml</code> · 2 fields",
        "update lead 651095960136642 · <code>leads/seller.yaml</code> · 5 fields",
        "update lead 4 · <code>leads/z.yaml</code> · 1 field",
    ]
    assert found[2][1] == [
        '! firstName: "Bob" -> "Robert"',
        '! inquiry.locations[0].city: "Austin" -> "Dallas"',
        "+ inquiry.priceMax: 500000",
        "# (inquiry is sent whole)",
        '! segments: ["A"] -> []',
        "- source: no longer managed (nothing is sent; the state forgets it)",
    ]
    assert "not shown" not in out


def test_no_changes_is_short_and_keeps_the_marker() -> None:
    out = md(make_plan(unchanged=3))
    assert out.splitlines()[0] == "<!-- reconciler:plan -->"
    assert "No changes. 3 leads match the last-applied state." in out
    assert "<details>" not in out
    assert len(out) < 200


def test_emails_and_phones_are_masked() -> None:
    plan = make_plan(
        update(
            1,
            "leads/a.yaml",
            FieldChange("emails", "change", ["jane.doe@example.com"], ["jd@example.org"]),
            FieldChange("phones", "add", None, ["+14155551234", "(415) 555-9876"]),
        )
    )
    out = md(plan)
    assert '! emails: ["j***@example.com"] -> ["j***@example.org"]' in out
    assert '+ phones: ["+*********34", "************76"]' in out
    for secret in ("jane.doe", "4155551234", "555-9876", "jd@"):
        assert secret not in out


def test_show_sensitive_shows_them() -> None:
    plan = make_plan(
        update(1, "leads/a.yaml", FieldChange("emails", "add", None, ["jane.doe@example.com"]))
    )
    assert '+ emails: ["jane.doe@example.com"]' in md(plan, show_sensitive=True)


def managed_family(member: dict[str, Any]) -> LeadChange:
    """A lead managed for the first time with one family member: the whole list is added."""
    field = FieldChange("leadFamilyMemberList", "add", None, [member])
    body = {"leadFamilyMemberList": [member]}
    return LeadChange(2, "leads/b.yaml", "manage", (field,), body, None)


def test_family_members_are_masked_too() -> None:
    member: dict[str, Any] = {
        "firstName": "Ann",
        "emails": ["ann.lee@x.com"],
        "phones": ["+15551112222"],
    }
    plan = make_plan(
        update(
            1,
            "leads/a.yaml",
            FieldChange("leadFamilyMemberList[0].emails[0]", "change", "al@x.com", "ann@x.com"),
            FieldChange("leadFamilyMemberList[0].phones", "change", ["+15550001111"], []),
            FieldChange("leadFamilyMemberList[1]", "add", None, member),
            FieldChange("leadFamilyMemberList[2]", "remove", member, None),
        ),
        managed_family(member),
    )
    out = md(plan)
    assert '! leadFamilyMemberList[0].emails[0]: "a***@x.com" -> "a***@x.com"' in out
    assert '! leadFamilyMemberList[0].phones: ["+*********11"] -> []' in out
    masked = '{"firstName": "Ann", "emails": ["a***@x.com"], "phones": ["+*********22"]}'
    assert f"+ leadFamilyMemberList[1]: {masked}" in out
    assert f"- leadFamilyMemberList[2]: {masked}" in out
    assert f"+ leadFamilyMemberList: [{masked}]" in out
    for secret in ("ann.lee", "al@", "5551112222", "5550001111"):
        assert secret not in out
    assert "ann.lee@x.com" in md(plan, show_sensitive=True)


@pytest.mark.parametrize(
    ("email", "masked"),
    [("jane.doe@example.com", "j***@example.com"), ("@x.com", "***@x.com"), ("nobody", "***")],
)
def test_mask_email(email: str, masked: str) -> None:
    assert mask_email(email) == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("+14155551234", "+*********34"), ("4155551234", "********34"), ("12", "12")],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_five_thousand_leads_fit_in_one_github_comment() -> None:
    out = md(many_leads(5000))
    assert len(out) <= 65_536
    shown = sections(out)
    assert 100 < len(shown) < 5000
    left_out = 5000 - len(shown)
    assert out.endswith(
        f"… {left_out:,} more changed leads not shown (comment limit). "
        "Run `reconciler plan` locally to see them all.\n"
    )
    # the leads shown are the first ones, in plan order
    assert shown[0][0].startswith("update lead 100000 ·")
    assert shown[-1][0].startswith(f"update lead {100000 + len(shown) - 1} ·")


def test_a_small_budget_is_honoured() -> None:
    out = md(many_leads(50), max_chars=2_000)
    assert len(out) <= 2_000
    shown = len(sections(out))
    assert 1 <= shown < 50
    assert f"… {50 - shown:,} more changed leads not shown" in out


def test_warnings_cannot_crowd_out_the_leads() -> None:
    warnings = tuple(
        LeadWarning(f"leads/w{n}.yaml", 3, n, "groups", "is deprecated by Lofty; use segments")
        for n in range(10_000)
    )
    plan = make_plan(*many_leads(100).changes, warnings=warnings)
    out = md(plan, max_chars=20_000)
    assert len(out) <= 20_000
    match = re.search(r"^- … ([\d,]+) more warnings not shown$", out, re.MULTILINE)
    assert match
    listed = len(re.findall(r"^- `leads/w", out, re.MULTILINE))
    assert listed + int(match.group(1).replace(",", "")) == 10_000
    assert len(sections(out)) >= 20


def test_a_budget_too_small_for_the_heading_is_refused() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        md(many_leads(3), max_chars=100)


def test_values_cannot_break_out_of_the_comment_structure() -> None:
    nasty = "x```\n</details>\n<!-- reconciler:plan --><script>alert(1)</script>````"
    plan = make_plan(
        update(
            1,
            "leads/</summary></details><b>x</b>.yaml",
            FieldChange("firstName", "change", "Bob", nasty),
            FieldChange("customAttributeList[0].value", "add", None, "``````"),
        ),
        update(2, "leads/b.yaml", FieldChange("stage", "change", "A", "B")),
        warnings=(LeadWarning("leads/a.yaml", 1, 1, "firstName", f"keeps {nasty!r}"),),
    )
    out = md(plan)
    found = sections(out)  # fails if any value closed a fence or a <details> early
    assert len(found) == 2
    summary, lines = found[0]
    assert summary == (
        "update lead 1 · <code>leads/&lt;/summary&gt;&lt;/details&gt;&lt;b&gt;x&lt;/b&gt;.yaml"
        "</code> · 2 fields"
    )
    assert lines[0] == (
        '! firstName: "Bob" -> "x```\\n</details>\\n<!-- reconciler:plan -->'
        '<script>alert(1)</script>````"'
    )
    assert [i for i, x in enumerate(out.splitlines()) if x == "<!-- reconciler:plan -->"] == [0]
    assert "\n```````diff\n" in out  # a fence longer than the value's six backticks
    warning_line = next(x for x in out.splitlines() if x.startswith("- `"))
    ticks = re.match(r"- (`+)", warning_line)
    assert ticks and len(ticks.group(1)) == 5 and warning_line.endswith(" " + ticks.group(1))


def test_long_values_are_shortened() -> None:
    plan = make_plan(update(1, "leads/a.yaml", FieldChange("firstName", "add", None, "y" * 2000)))
    line = sections(md(plan))[0][1][0]
    assert line.startswith('+ firstName: "yyy')
    assert line.endswith("… (1,702 more characters)")
