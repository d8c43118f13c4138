"""Lead files written for import read back to the same values and look hand-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.leadfile import file_name, render_lead_file, write_new_file
from reconciler.model import check
from reconciler.yamlio import load_documents

LEAD = {
    "tags": ["Hot Lead", "Zillow"],
    "leadId": 651095960136641,
    "firstName": "Zoë",
    "lastName": "Nguyễn",
    "phones": ["+14155551234"],
    "preQual": "Yes",
    "inquiry": {"priceMax": 525000, "priceMin": 350000, "locations": [{"zipCode": "02134"}]},
    "property": {"zipCode": "02134", "id": 5, "city": "Austin"},
    "birthday": "Jun 5, 2001",
    "stage": "2023-11-07",
}


def test_a_written_file_reads_back_to_the_same_valid_lead() -> None:
    text = render_lead_file(LEAD, modeline="../schema/lead.schema.json")
    (document,) = load_documents(text)
    assert document.value == LEAD
    assert check(document.value).errors == []


def test_keys_follow_the_schema_and_values_yaml_could_misread_are_quoted() -> None:
    text = render_lead_file(LEAD, modeline="../schema/lead.schema.json", comment="From Lofty")
    assert text.splitlines() == [
        "# yaml-language-server: $schema=../schema/lead.schema.json",
        "# From Lofty",
        "leadId: 651095960136641",
        "firstName: Zoë",
        "lastName: Nguyễn",
        'phones: ["+14155551234"]',
        "stage: '2023-11-07'",
        "tags: [Hot Lead, Zillow]",
        "inquiry:",
        "  priceMin: 350000",
        "  priceMax: 525000",
        "  locations:",
        '  - zipCode: "02134"',
        "property:",
        "  city: Austin",
        '  zipCode: "02134"',
        "  id: 5",
        "birthday: Jun 5, 2001",
        "preQual: 'Yes'",
    ]


def test_text_that_yaml_1_2_reads_as_a_number_is_quoted_and_reads_back() -> None:
    lead = {"leadId": 1, "firstName": "1e6", "lastName": "0o17", "source": ".5E3", "stage": "1."}
    (document,) = load_documents(render_lead_file(lead))
    assert document.value == lead


def test_long_lists_go_one_item_per_line() -> None:
    tags = [f"Tag number {i}" for i in range(10)]
    text = render_lead_file({"leadId": 1, "tags": tags})
    assert "tags:\n- Tag number 0\n- Tag number 1\n" in text


@pytest.mark.parametrize(
    ("values", "name"),
    [
        (
            {"leadId": 7, "firstName": "Zoë", "lastName": "O'Brien-Nguyễn"},
            "zoe-o-brien-nguyen-7.yaml",
        ),
        ({"leadId": 7, "firstName": "李"}, "lead-7.yaml"),
        ({"leadId": 7}, "lead-7.yaml"),
        ({"leadId": 7, "firstName": "../../etc/passwd"}, "etc-passwd-7.yaml"),
    ],
)
def test_file_names_are_readable_and_portable(values: dict[str, object], name: str) -> None:
    assert file_name(values) == name


def test_writing_never_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "jane.yaml"
    write_new_file(path, "leadId: 1\n")
    with pytest.raises(FileExistsError):
        write_new_file(path, "leadId: 2\n")
    assert path.read_text() == "leadId: 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["jane.yaml"]  # no partial file left
