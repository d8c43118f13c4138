"""Writing Lofty's values into lead files in place (`plan --refresh --write-drift`).

Each test writes a real lead file, hands `write_back` the edits a drift would carry, and checks
what a reviewer sees: the exact lines `git diff` would show, and the file read back by
reconciler's own loader.
"""

from __future__ import annotations

import difflib
import os
import stat
from pathlib import Path

import pytest

from reconciler.errors import ReconcilerError, WriteBackError
from reconciler.loader import load_tree
from reconciler.writeback import FieldEdit, write_back

JANE = """\
# yaml-language-server: $schema=../schema/lead.schema.json
# First-time buyer from the spring open house.
leadId: 101
firstName: Jane   # as she signs
lastName: 'Doe'
emails:
  - jane.doe@example.com   # personal
  # the work address comes second
  - jdoe@company.example
phones: ["+14155551234"]
stage: Pending  # set by the open-house import
source: Open House
tags: [Hot Lead, Pre-Approved]
segments:
  - First-Time Buyers   # since 2024
  - Downtown Area
preQual: "Yes"
inquiry:
  priceMin: 350000
  priceMax: 525000   # the pre-approval
  propertyType: [Condo, Townhouse]
  locations:
    - city: Austin
      stateCode: TX
    - zipCode: "78704"
# nothing below this line
"""


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    return path


def changes(before: str, after: str) -> list[str]:
    """The lines `git diff` would show, without headers and hunk markers."""
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    return [line for line in list(diff)[2:] if not line.startswith("@@")]


def lead_values(root: Path, file: str, lead_id: int) -> dict[str, object]:
    """The lead as reconciler's loader reads it (the file must be valid)."""
    loaded = load_tree(root, only=[file])
    assert loaded.problems == []
    [doc] = [doc for doc in loaded.leads if doc.lead_id == lead_id]
    return doc.lead.model_dump(mode="json", exclude_unset=True)


def edit(path: tuple[str | int, ...], value: object, lead_id: int = 101) -> FieldEdit:
    return FieldEdit(lead_id=lead_id, path=path, value=value)


def test_a_top_level_value_changes_alone_keeping_its_trailing_comment(tmp_path: Path) -> None:
    file = write(tmp_path, "jane.yaml", JANE)
    write_back(tmp_path, "jane.yaml", [edit(("stage",), "Closed")])
    assert changes(JANE, file.read_text()) == [
        "-stage: Pending  # set by the open-house import",
        "+stage: Closed   # set by the open-house import",
    ]
    assert lead_values(tmp_path, "jane.yaml", 101)["stage"] == "Closed"


def test_several_fields_change_and_every_other_line_stays_byte_for_byte(tmp_path: Path) -> None:
    file = write(tmp_path, "jane.yaml", JANE)
    write_back(
        tmp_path,
        "jane.yaml",
        [
            edit(("firstName",), "Janet"),
            edit(("lastName",), "Doe-Smith"),
            edit(("inquiry", "priceMax"), 600000),
            edit(("tags",), ["Hot Lead", "Cash"]),
        ],
    )
    assert changes(JANE, file.read_text()) == [
        "-firstName: Jane   # as she signs",
        "-lastName: 'Doe'",
        "+firstName: Janet  # as she signs",
        "+lastName: 'Doe-Smith'",  # the quoting of the value it replaces
        "-tags: [Hot Lead, Pre-Approved]",
        "+tags: [Hot Lead, Cash]",
        "-  priceMax: 525000   # the pre-approval",
        "+  priceMax: 600000   # the pre-approval",
    ]
    values = lead_values(tmp_path, "jane.yaml", 101)
    assert values["inquiry"]["priceMax"] == 600000  # type: ignore[index]
    assert values["tags"] == ["Hot Lead", "Cash"]


def test_a_missing_key_is_added_at_the_end_of_its_leads_mapping_in_key_order(
    tmp_path: Path,
) -> None:
    text = "leadId: 101\nfirstName: Jane\nstage: Pending\n---\nleadId: 102\nfirstName: Bo\n"
    file = write(tmp_path, "two.yaml", text)
    write_back(tmp_path, "two.yaml", [edit(("source",), "Zillow")])
    assert file.read_text() == (
        "leadId: 101\nfirstName: Jane\nstage: Pending\nsource: Zillow\n"
        "---\nleadId: 102\nfirstName: Bo\n"
    )


def test_a_nested_key_is_replaced_and_a_missing_one_added_at_the_end_of_its_mapping(
    tmp_path: Path,
) -> None:
    file = write(tmp_path, "jane.yaml", JANE)
    write_back(
        tmp_path,
        "jane.yaml",
        [edit(("inquiry", "priceMin"), 400000), edit(("inquiry", "bedroomsMin"), 2)],
    )
    assert changes(JANE, file.read_text()) == [
        "-  priceMin: 350000",
        "+  priceMin: 400000",
        "+  bedroomsMin: 2",
    ]
    after = file.read_text().splitlines()
    assert after[after.index("  bedroomsMin: 2") - 1] == '    - zipCode: "78704"'


def test_a_whole_nested_object_updates_key_by_key(tmp_path: Path) -> None:
    file = write(tmp_path, "jane.yaml", JANE)
    inquiry = {
        "priceMin": 350000,
        "priceMax": 550000,
        "locations": [{"city": "Austin", "stateCode": "TX"}, {"zipCode": "78704"}],
    }
    write_back(tmp_path, "jane.yaml", [edit(("inquiry",), inquiry)])
    assert changes(JANE, file.read_text()) == [
        "-  priceMax: 525000   # the pre-approval",
        "-  propertyType: [Condo, Townhouse]",
        "+  priceMax: 550000   # the pre-approval",
    ]
    assert lead_values(tmp_path, "jane.yaml", 101)["inquiry"] == inquiry


def test_a_flow_list_stays_flow_and_a_block_list_stays_block_with_its_comments(
    tmp_path: Path,
) -> None:
    file = write(tmp_path, "jane.yaml", JANE)
    write_back(
        tmp_path,
        "jane.yaml",
        [
            edit(("tags",), ["Hot Lead", "Pre-Approved", "Referral"]),
            edit(("segments",), ["First-Time Buyers", "Downtown Area", "East Side"]),
            edit(("emails",), ["jane.doe@example.com", "jane@new.example"]),
        ],
    )
    assert changes(JANE, file.read_text()) == [
        "-  - jdoe@company.example",
        "+  - jane@new.example",
        "-tags: [Hot Lead, Pre-Approved]",
        "+tags: [Hot Lead, Pre-Approved, Referral]",
        "+  - East Side",
    ]
    values = lead_values(tmp_path, "jane.yaml", 101)
    assert values["segments"] == ["First-Time Buyers", "Downtown Area", "East Side"]


def test_a_shorter_block_list_drops_only_the_items_gone(tmp_path: Path) -> None:
    file = write(tmp_path, "jane.yaml", JANE)
    write_back(tmp_path, "jane.yaml", [edit(("segments",), ["First-Time Buyers"])])
    assert changes(JANE, file.read_text()) == ["-  - Downtown Area"]


def test_a_new_list_is_flow_when_short_and_its_strings_quoted_where_yaml_would_misread_them(
    tmp_path: Path,
) -> None:
    file = write(tmp_path, "bo.yaml", "leadId: 101\nfirstName: Bo\n")
    write_back(tmp_path, "bo.yaml", [edit(("phones",), ["+14155550100", "02134"])])
    assert file.read_text() == 'leadId: 101\nfirstName: Bo\nphones: ["+14155550100", "02134"]\n'


@pytest.mark.parametrize(
    "value", ["Yes", "No", "02134", "+14155551234", "1e6", "2001-06-05", "true", "12:30", ""]
)
def test_a_string_yaml_would_misread_is_written_quoted_and_reads_back_as_that_string(
    tmp_path: Path, value: str
) -> None:
    text = "leadId: 101\nsource: Web  # from the form\nlastName: Doe\n"
    file = write(tmp_path, "bo.yaml", text)
    write_back(tmp_path, "bo.yaml", [edit(("source",), value)])
    assert file.read_text().splitlines()[1].startswith(f'source: "{value}" ')
    assert lead_values(tmp_path, "bo.yaml", 101)["source"] == value


def test_a_quoted_value_keeps_its_quotes_and_a_plain_one_stays_plain(tmp_path: Path) -> None:
    text = "leadId: 101\nstage: 'Pending'\nsource: Web\npreQual: \"Yes\"\n"
    file = write(tmp_path, "bo.yaml", text)
    write_back(
        tmp_path,
        "bo.yaml",
        [edit(("stage",), "Closed"), edit(("source",), "Zillow"), edit(("preQual",), "No")],
    )
    assert file.read_text() == "leadId: 101\nstage: 'Closed'\nsource: Zillow\npreQual: \"No\"\n"


def test_in_a_file_of_several_leads_only_the_edited_documents_change(tmp_path: Path) -> None:
    text = (
        "# three leads\n"
        "---\n"
        "leadId: 101\n"
        "stage:   New    # odd spacing, left alone\n"
        "tags: [ a,b ]\n"
        "...\n"
        "---\n"
        "# the middle one\n"
        "leadId: 102\n"
        "stage: New\n"
        "tags: [ a,b ]\n"
        "---\n"
        "leadId: 103\n"
        "stage: New\n"
        "tags: [ a,b ]\n"
    )
    file = write(tmp_path, "three.yaml", text)
    write_back(
        tmp_path,
        "three.yaml",
        [edit(("tags",), ["a", "c"], 101), edit(("stage",), "Won", 103)],
    )
    assert changes(text, file.read_text()) == [
        "-tags: [ a,b ]",
        "+tags: [a, c]",
        "-stage: New",
        "+stage: Won",
    ]
    after = file.read_text().splitlines()
    assert after[3] == "stage:   New    # odd spacing, left alone"
    assert after[-2:] == ["stage: Won", "tags: [ a,b ]"]
    assert lead_values(tmp_path, "three.yaml", 102) == {
        "leadId": 102,
        "stage": "New",
        "tags": ["a", "b"],
    }


def test_lines_ruamel_would_tidy_next_to_an_edit_are_kept_as_written(tmp_path: Path) -> None:
    text = (
        "leadId: 101\n"
        "firstName:   Jane\n"
        "segments: [x,y]\n"
        "stage: New\n"
        "emails:\n"
        "- a@example.com\n"
        "phones:\n"
        '    - "+14155550100"\n'
    )
    file = write(tmp_path, "odd.yaml", text)
    write_back(tmp_path, "odd.yaml", [edit(("stage",), "Won")])
    assert changes(text, file.read_text()) == ["-stage: New", "+stage: Won"]


def test_crlf_line_endings_a_byte_order_mark_and_a_missing_final_newline_are_kept(
    tmp_path: Path,
) -> None:
    text = "leadId: 101\r\nstage: New\r\ntags: [a]"
    file = tmp_path / "win.yaml"
    file.write_bytes(b"\xef\xbb\xbf" + text.encode())
    write_back(tmp_path, "win.yaml", [edit(("stage",), "Won"), edit(("source",), "Web")])
    assert file.read_bytes() == b"\xef\xbb\xbfleadId: 101\r\nstage: Won\r\ntags: [a]\r\nsource: Web"


def test_a_value_the_file_holds_already_leaves_the_file_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = write(tmp_path, "jane.yaml", JANE)
    monkeypatch.setattr(os, "replace", _refuse)
    write_back(tmp_path, "jane.yaml", [edit(("stage",), "Pending")])
    assert file.read_text() == JANE


def test_the_files_permissions_are_kept(tmp_path: Path) -> None:
    file = write(tmp_path, "jane.yaml", JANE)
    file.chmod(0o640)
    write_back(tmp_path, "jane.yaml", [edit(("stage",), "Closed")])
    assert stat.S_IMODE(file.stat().st_mode) == 0o640


def test_a_symlinked_lead_file_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    real = write(tmp_path, "real/jane.yaml", JANE)
    (tmp_path / "jane.yaml").symlink_to("real/jane.yaml")
    write_back(tmp_path, "jane.yaml", [edit(("stage",), "Closed")])
    assert (tmp_path / "jane.yaml").is_symlink()
    assert "stage: Closed   # set by the open-house import" in real.read_text().splitlines()


def test_a_symlink_out_of_the_leads_folder_is_refused(tmp_path: Path) -> None:
    outside = write(tmp_path, "elsewhere/jane.yaml", JANE)
    leads = tmp_path / "leads"
    leads.mkdir()
    (leads / "jane.yaml").symlink_to(outside)
    with pytest.raises(WriteBackError, match=r"^jane\.yaml: lies outside the leads folder"):
        write_back(leads, "jane.yaml", [edit(("stage",), "Closed")])
    assert outside.read_text() == JANE


# --- errors leave the file as it was ----------------------------------------------------------


def test_an_unknown_lead_is_an_error_naming_file_and_lead(tmp_path: Path) -> None:
    file = write(tmp_path, "sub/jane.yaml", JANE)
    with pytest.raises(WriteBackError) as caught:
        write_back(
            tmp_path, "sub/jane.yaml", [edit(("stage",), "Closed"), edit(("stage",), "X", 7)]
        )
    assert str(caught.value) == (
        "sub/jane.yaml: holds no lead 7; the file changed since the plan was made: plan again"
    )
    assert isinstance(caught.value, ReconcilerError)
    assert file.read_text() == JANE


@pytest.mark.parametrize(
    ("path", "missing"),
    [
        (("property", "city"), "property"),
        (("inquiry", "locations", 5, "city"), "inquiry.locations[5]"),
        (("stage", "name"), "stage.name"),
    ],
)
def test_an_unknown_path_is_an_error_naming_file_lead_and_field(
    tmp_path: Path, path: tuple[str | int, ...], missing: str
) -> None:
    file = write(tmp_path, "jane.yaml", JANE)
    field = ".".join(str(p) for p in path).replace(".5", "[5]")
    with pytest.raises(WriteBackError) as caught:
        write_back(tmp_path, "jane.yaml", [edit(path, "x")])
    assert str(caught.value) == (
        f"jane.yaml: lead 101: {field}: no such field in the file ({missing} is not there); "
        "the file changed since the plan was made: plan again"
    )
    assert file.read_text() == JANE


def test_a_value_that_would_make_the_lead_invalid_leaves_the_file_byte_identical(
    tmp_path: Path,
) -> None:
    file = write(tmp_path, "jane.yaml", JANE)
    before = file.read_bytes()
    with pytest.raises(WriteBackError) as caught:
        write_back(tmp_path, "jane.yaml", [edit(("source",), "Web"), edit(("preQual",), "Maybe")])
    message = str(caught.value)
    assert message.startswith("jane.yaml: lead 101 (source, preQual): preQual: ")
    assert "would make the file invalid (line 17)" in message
    assert message.endswith("the file is left as it was: plan again, or edit it by hand")
    assert file.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jane.yaml"]


def _refuse(*args: object) -> None:
    raise OSError(28, "No space left on device")


def test_a_failed_write_leaves_the_file_byte_identical_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = write(tmp_path, "jane.yaml", JANE)
    before = file.read_bytes()
    monkeypatch.setattr(os, "replace", _refuse)
    with pytest.raises(WriteBackError) as caught:
        write_back(tmp_path, "jane.yaml", [edit(("stage",), "Closed")])
    assert str(caught.value) == (
        "jane.yaml: cannot be written (No space left on device): lead 101 (stage); "
        "the file is left as it was: plan again, or edit it by hand"
    )
    assert file.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jane.yaml"]


def test_a_value_that_is_not_json_is_refused(tmp_path: Path) -> None:
    file = write(tmp_path, "jane.yaml", JANE)
    with pytest.raises(WriteBackError, match=r"lead 101: stage: a NoneType value cannot be"):
        write_back(tmp_path, "jane.yaml", [edit(("stage",), None)])
    assert file.read_text() == JANE
