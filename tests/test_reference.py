"""The field reference in docs/ is generated from the model and kept up to date."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.reference import READ_BACK_BEGIN, READ_BACK_END, main, markdown, with_read_back
from tests.vendor import REPO

FIELDS_DOC = REPO / "docs" / "fields.md"


def test_the_committed_field_reference_is_up_to_date() -> None:
    assert FIELDS_DOC.read_text("utf-8") == markdown(), (
        "regenerate: python -m reconciler.reference > docs/fields.md"
    )


def test_the_reference_names_every_field_with_how_it_compares_and_clears() -> None:
    text = markdown()
    for row in (
        "| `tags` | list of: text |  | each item to 64 | set | `[]` |",
        "| `customAttributeList` | list of objects (below) |  |  | keyed set (by `attributeName`)",
        "| `leadFamilyMemberList` | list of objects (below) | at most 4 items |  | ordered |",
        "| `stage` | text | at most 19 characters |  | value | `''` |",
        "| `preQual` | one of `Yes`, `No` |  |  | value | `''` |",
        "| `birthday` | date `MMM d, yyyy` |  |  | value | `''` |",
        "| `ownershipScope` | one of `TEAM`, `OFFICE`, `PERSONAL` |  |  | value | no: it always",
        "| `inquiry` | object (below) |  |  | object | no |",
    ):
        assert row in text, row
    assert "\n## `leadTransaction.commissions.*[]`\n" in text


def test_the_readme_links_the_reference() -> None:
    assert "](docs/fields.md)" in (REPO / "README.md").read_text("utf-8")


def test_regenerating_rewrites_only_the_read_back_table(tmp_path: Path) -> None:
    doc = tmp_path / "reading.md"
    doc.write_text(f"# Reading\n\nprose\n\n{READ_BACK_BEGIN}\n| stale |\n{READ_BACK_END}\n\nmore\n")
    main(["--read-back", str(doc)])
    text = doc.read_text("utf-8")
    assert "| stale |" not in text
    assert text.startswith(f"# Reading\n\nprose\n\n{READ_BACK_BEGIN}\n\n| field |")
    assert "| `stage` | `stage` (the name; `stageId` is Lofty's) | compared |" in text
    assert "| `leadTransaction` | not read back" in text
    assert text.endswith(f"{READ_BACK_END}\n\nmore\n")
    assert with_read_back(text) == text


def test_regenerating_a_file_without_the_markers_is_refused(tmp_path: Path) -> None:
    doc = tmp_path / "reading.md"
    doc.write_text("# Reading\n")
    with pytest.raises(ValueError, match="markers are missing"):
        main(["--read-back", str(doc)])
    assert doc.read_text("utf-8") == "# Reading\n"
