"""Every file of the bad-lead corpus gets one precise message (file:line: field), exit 1."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main

CORPUS = Path(__file__).parent / "bad_leads"

# file -> (line, field or None, a phrase the message must contain)
EXPECTED: dict[str, tuple[int, str | None, str]] = {
    "alias_bomb.yaml": (1, None, "alias bomb"),
    "bedrooms_min_over_max.yaml": (3, "inquiry.bedroomsMin", "greater than bedroomsMax"),
    "birthday_bad_format.yaml": (2, "birthday", "MMM d, yyyy"),
    "birthday_iso_date.yaml": (2, "birthday", "MMM d, yyyy"),
    "duplicate_key.yaml": (3, "firstName", "duplicate key 'firstName' (also on line 2)"),
    "email_invalid.yaml": (2, "emails[0]", "is not an email address"),
    "empty.yaml": (1, None, "empty"),
    "enum_attribute_type.yaml": (4, "customAttributeList[0].attributeType", "'currency'"),
    "enum_buying_time_frame.yaml": (2, "buyingTimeFrame", "'Just Looking'"),
    "enum_language.yaml": (2, "language", "'zh-CN'"),
    "enum_lead_type.yaml": (2, "leadTypes[1]", "unknown lead type 'Tenant'"),
    "enum_ownership_scope.yaml": (2, "ownershipScope", "'PERSONAL'"),
    "enum_prequal.yaml": (2, "preQual", "'Yes', 'No' or '' ('' clears it)"),
    "enum_selling_time_frame.yaml": (2, "sellingTimeFrame", "'Refinancing'"),
    "family_member_without_first_name.yaml": (3, "leadFamilyMemberList[0].firstName", "required"),
    "five_family_members.yaml": (2, "leadFamilyMemberList", "at most 4"),
    "key_not_a_name.yaml": (2, None, "is not a field name"),
    "lead_id_missing.yaml": (1, "leadId", "required"),
    "lead_id_negative.yaml": (1, "leadId", "must be at least 1"),
    "lead_id_zero.yaml": (1, "leadId", "must be at least 1"),
    "list_at_top_level.yaml": (1, None, "mapping of fields, not a list"),
    "non_utf8.yaml": (2, None, "not valid UTF-8"),
    "null_value.yaml": (2, "firstName", "null is not a value"),
    "office_without_ownership_id.yaml": (
        1,
        "ownershipId",
        "required when ownershipScope is OFFICE",
    ),
    "phone_too_long.yaml": (2, "phones[0]", "at most 20 characters"),
    "phone_unquoted_number.yaml": (3, "phones[0]", "quote it"),
    "price_min_over_max.yaml": (3, "inquiry.priceMin", "greater than priceMax"),
    "property_address_empty.yaml": (2, "property", "non-blank address field"),
    "python_tag.yaml": (2, None, "unsupported YAML tag"),
    "stage_too_long.yaml": (2, "stage", "at most 19 characters"),
    "syntax_error.yaml": (3, None, "YAML syntax error"),
    "transaction_name_angle_brackets.yaml": (3, "leadTransaction.transactionName", "'<' or '>'"),
    "transaction_without_name.yaml": (2, "leadTransaction.transactionName", "required"),
    "unknown_field.yaml": (3, "fistName", "did you mean 'firstName'?"),
    "unknown_nested_field.yaml": (4, "inquiry.pricemax", "did you mean 'priceMax'?"),
    "wrong_type_int.yaml": (3, "assignedUserId", "must be a whole number, not text"),
    "zip_code_unquoted.yaml": (2, "zipCode", "quote it"),
}


def test_the_corpus_is_fully_covered() -> None:
    files = {p.name for p in CORPUS.iterdir() if p.is_file()}
    assert files == set(EXPECTED)
    assert len(files) >= 25


def _validate(folder: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["validate", "--dir", str(folder)], catch_exceptions=False)
    return result.exit_code, result.stderr.splitlines()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_gets_one_precise_message(name: str, tmp_path: Path) -> None:
    shutil.copy(CORPUS / name, tmp_path / name)
    code, lines = _validate(tmp_path)
    line, field, phrase = EXPECTED[name]
    errors = [x for x in lines if x.startswith("error: ")]
    assert code == 1
    assert len(errors) == 1, lines
    where = f"error: {tmp_path.as_posix()}/{name}:{line}: "
    assert errors[0].startswith(where + (f"{field}: " if field else "")), errors[0]
    assert phrase in errors[0]
    assert not any("Traceback" in x for x in lines)


def test_duplicate_lead_id_names_both_files(tmp_path: Path) -> None:
    folder = tmp_path / "leads"
    shutil.copytree(CORPUS / "duplicate_lead_id", folder)
    code, lines = _validate(folder)
    errors = [x for x in lines if x.startswith("error: ")]
    assert code == 1
    assert errors == [
        f"error: {folder.as_posix()}/b.yaml:3: leadId: 200 is defined twice: here and in "
        f"{folder.as_posix()}/a.yaml:1"
    ]


def test_every_problem_in_every_file_is_reported_at_once(tmp_path: Path) -> None:
    for name in ("enum_language.yaml", "stage_too_long.yaml", "empty.yaml"):
        shutil.copy(CORPUS / name, tmp_path / name)
    code, lines = _validate(tmp_path)
    assert code == 1
    assert len([x for x in lines if x.startswith("error: ")]) == 3
    assert lines[-1] == "3 problems in 3 files; nothing was planned or sent."


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_text("leadId: 1\nsource: '" + "x" * (5 * 1024 * 1024) + "'\n")
    code, lines = _validate(tmp_path)
    assert code == 1
    assert "over the 4,194,304-byte limit" in lines[0]
