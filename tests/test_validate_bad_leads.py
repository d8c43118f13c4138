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
    "assigned_user_id_zero.yaml": (2, "assignedUserId", "must be at least 1"),
    "bedrooms_min_over_max.yaml": (3, "inquiry.bedroomsMin", "greater than bedroomsMax"),
    "birthday_bad_format.yaml": (2, "birthday", "MMM d, yyyy"),
    "birthday_iso_date.yaml": (2, "birthday", "MMM d, yyyy"),
    "birthday_not_a_real_date.yaml": (2, "birthday", "'Feb 30, 2001' is not a real date"),
    "custom_attribute_duplicate_name.yaml": (
        6,
        "customAttributeList[1].attributeName",
        "'School' is already set by customAttributeList[0]",
    ),
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
    "inquiry_create_time_not_a_date_time.yaml": (3, "inquiry.createTime", "must be a date-time"),
    "inquiry_not_a_mapping.yaml": (2, "inquiry", "must be a mapping of fields"),
    "key_not_a_name.yaml": (2, None, "is not a field name"),
    "lead_id_5000_digits.yaml": (2, "leadId", "is a number too long to read (5,000 characters)"),
    "lead_id_missing.yaml": (1, "leadId", "required"),
    "lead_id_negative.yaml": (1, "leadId", "must be at least 1"),
    "lead_id_zero.yaml": (1, "leadId", "must be at least 1"),
    "list_at_top_level.yaml": (1, None, "mapping of fields, not a list"),
    "non_utf8.yaml": (2, None, "not valid UTF-8"),
    "multi_select_not_json.yaml": (
        5,
        "customAttributeList[0].value",
        "a multi_select value must be a JSON array of strings",
    ),
    "nested_too_deep.yaml": (2, "segments[0][0][0][0][0]", "nested more than 32 levels deep"),
    "null_value.yaml": (2, "firstName", "null is not a value"),
    "office_without_ownership_id.yaml": (
        1,
        "ownershipId",
        "required when ownershipScope is OFFICE",
    ),
    "ownership_scope_cleared.yaml": (2, "ownershipScope", "it cannot be cleared"),
    "phone_too_long.yaml": (2, "phones[0]", "at most 20 characters"),
    "phone_unquoted_number.yaml": (3, "phones[0]", "quote it"),
    "price_min_over_max.yaml": (3, "inquiry.priceMin", "greater than priceMax"),
    "property_address_empty.yaml": (2, "property", "non-blank address field"),
    "python_tag.yaml": (2, None, "unsupported YAML tag"),
    "stage_emoji_too_long.yaml": (2, "stage", "is 20 characters; stage must be at most 19"),
    "stage_too_long.yaml": (2, "stage", "at most 19 characters"),
    "syntax_error.yaml": (3, None, "YAML syntax error"),
    "tab_indentation.yaml": (3, None, "indent with spaces: YAML does not allow tabs"),
    "tags_not_a_list.yaml": (2, "tags", "write it in brackets: tags: [Hot Lead]"),
    "transaction_name_angle_brackets.yaml": (3, "leadTransaction.transactionName", "'<' or '>'"),
    "transaction_status_without_type.yaml": (
        4,
        "leadTransaction.transactionStatus",
        "needs transactionType beside it",
    ),
    "transaction_type_unknown.yaml": (
        4,
        "leadTransaction.transactionType",
        "must be 'Purchase', 'Listing', 'Lease' or 'Other', not 'Sale'",
    ),
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


def test_messages_never_echo_the_email_or_phone_they_are_about(tmp_path: Path) -> None:
    for name in ("email_invalid.yaml", "phone_unquoted_number.yaml", "phone_too_long.yaml"):
        shutil.copy(CORPUS / name, tmp_path / name)
    code, lines = _validate(tmp_path)
    assert code == 1
    # The values in those files, as written (a number's digits, unquoted, as well).
    values = ["not-an-email", "14155551234", "555-1234"]
    for value in values:
        assert not any(value in line for line in lines), value


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
