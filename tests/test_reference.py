"""The field reference in docs/ is generated from the model and kept up to date."""

from __future__ import annotations

from reconciler.reference import markdown
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
    assert "`docs/fields.md`" in (REPO / "README.md").read_text("utf-8")
