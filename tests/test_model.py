"""The lead model: accepted shapes, effective values and warnings."""

from __future__ import annotations

from reconciler.model import check, comparable, effective


def test_lead_types_by_name_or_id_become_ids() -> None:
    checked = check({"leadId": 1, "leadTypes": ["buyer", 5, "Landlord"]})
    assert checked.lead is not None
    assert effective(checked.lead)["leadTypes"] == [2, 5, 9]


def test_yes_no_fields_keep_yes_unquoted_in_yaml_sense() -> None:
    checked = check({"leadId": 1, "preQual": "Yes", "fthb": "No"})
    assert checked.errors == []


def test_truncation_warns_with_the_kept_value_and_cuts_the_effective_value() -> None:
    checked = check({"leadId": 1, "firstName": "A" * 29 + "BCDEF", "tags": ["t" * 70]})
    assert checked.lead is not None
    messages = {f.path: f.message for f in checked.truncations}
    assert messages[("firstName",)] == (
        "is 34 characters; Lofty silently keeps the first 30: '" + "A" * 29 + "B'"
    )
    assert ("tags", 0) in messages
    values = effective(checked.lead)
    assert values["firstName"] == "A" * 29 + "B"
    assert values["tags"] == ["t" * 64]


def test_same_effective_value_compares_equal() -> None:
    a = check({"leadId": 1, "firstName": "A" * 30 + "xyz", "tags": ["b", "a", "b"]}).lead
    b = check({"leadId": 1, "firstName": "A" * 30 + "other", "tags": ["a", "b"]}).lead
    assert a is not None and b is not None
    assert comparable(effective(a)) == comparable(effective(b))


def test_effective_values_keep_order_but_drop_duplicates_for_set_like_lists() -> None:
    lead = check({"leadId": 1, "segments": ["b", "a", "b"], "emails": ["x@y.io", "a@b.io"]}).lead
    assert lead is not None
    assert effective(lead) == {"segments": ["b", "a"], "emails": ["x@y.io", "a@b.io"]}


def test_deprecated_fields_and_tags_with_tags_add_warn() -> None:
    checked = check({"leadId": 1, "city": "Austin", "tags": ["a"], "tagsAdd": ["b"]})
    paths = {f.path for f in checked.warnings}
    assert paths == {("city",), ("tagsAdd",)}


def test_personal_scope_needs_ownership_id_team_does_not() -> None:
    assert check({"leadId": 1, "ownershipScope": "TEAM"}).errors == []
    errors = check({"leadId": 1, "ownershipScope": "PERSONAL"}).errors
    assert [f.path for f in errors] == [("ownershipId",)]


def test_contradictory_tag_fields_are_errors() -> None:
    cleared = check({"leadId": 1, "tags": ["a"], "clearAllTags": True})
    assert [(f.path, "clearAllTags" in f.message) for f in cleared.errors] == [(("tags",), True)]
    both = check({"leadId": 1, "tagsAdd": ["vip"], "tagsRemove": ["old", "vip"]})
    assert [f.path for f in both.errors] == [("tagsRemove", 1)]
    assert check({"leadId": 1, "tagsAdd": ["vip"], "tagsRemove": ["old"]}).errors == []


def test_infinity_and_nan_are_not_numbers_lofty_accepts() -> None:
    for bad in (float("inf"), float("nan")):
        errors = check({"leadId": 1, "property": {"city": "X", "lotSize": bad}}).errors
        assert [f.path for f in errors] == [("property", "lotSize")]
    errors = check({"leadId": 1, "inquiry": {"bathroomsMin": "nan", "bathroomsMax": "2"}}).errors
    assert [f.path for f in errors] == [("inquiry", "bathroomsMin")]


def test_cross_field_rules_are_reported_together_with_type_errors() -> None:
    errors = check(
        {
            "leadId": 1,
            "phones": ["1" * 21],
            "ownershipScope": "OFFICE",
            "inquiry": {"priceMin": 9, "priceMax": 1},
        }
    ).errors
    assert [f.path for f in errors] == [("phones", 0), ("inquiry", "priceMin"), ("ownershipId",)]
