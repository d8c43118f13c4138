"""The lead model: accepted shapes, effective values and warnings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reconciler.model import check, comparable, effective, utf16_cut, utf16_len


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


# --- lengths counted as Lofty's Java server counts them: UTF-16 code units ----------------------

EMOJI = "\U0001f600"  # one character in Python, two UTF-16 code units in Java


def test_utf16_length_counts_an_emoji_as_two_and_a_cut_never_splits_one() -> None:
    assert utf16_len("abc") == 3
    assert utf16_len("é中" + EMOJI) == 4
    assert utf16_cut("a" * 28 + EMOJI + "b", 30) == "a" * 28 + EMOJI
    assert utf16_cut("a" * 29 + EMOJI + "b", 30) == "a" * 29  # 31 units would split the pair
    assert utf16_cut("a" * 40, 30) == "a" * 30


def test_a_name_is_cut_where_lofty_cuts_it_counting_emoji_as_two() -> None:
    checked = check({"leadId": 1, "firstName": EMOJI * 16, "tags": ["t" * 63 + EMOJI]})
    assert checked.lead is not None
    values = effective(checked.lead)
    assert values["firstName"] == EMOJI * 15  # 30 units
    assert values["tags"] == ["t" * 63]  # 65 units; the emoji would straddle the cut
    messages = {f.path: f.message for f in checked.truncations}
    assert messages[("firstName",)] == (
        "is 32 characters as Lofty counts them (an emoji is 2); Lofty silently keeps the "
        f"first 30: {EMOJI * 15!r}"
    )
    assert messages[("tags", 0)] == (
        "is 65 characters as Lofty counts them (an emoji is 2); Lofty silently keeps the "
        f"first 63 (the 64th would split an emoji): {'t' * 63!r}"
    )


def test_stage_and_phone_limits_count_utf16_units() -> None:
    assert check({"leadId": 1, "stage": EMOJI * 9 + "a"}).errors == []  # 19 units
    errors = check({"leadId": 1, "stage": EMOJI * 10, "phones": ["+1" + EMOJI * 10]}).errors
    assert [(f.path, f.message) for f in errors] == [
        (
            ("stage",),
            "is 20 characters; stage must be at most 19 characters (Lofty counts an emoji as 2)",
        ),
        (
            ("phones", 0),
            "is 22 characters; a phone number must be at most 20 characters "
            "(Lofty counts an emoji as 2)",
        ),
    ]


# --- what the vendor accepts ------------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        "buyingTimeFrame",
        "sellingTimeFrame",
        "preQual",
        "houseToSell",
        "fthb",
        "withBuyerAgent",
        "mortgage",
        "buyHouse",
        "withListingAgent",
        "language",
        "birthday",
    ],
)
def test_an_empty_string_clears_an_enum_like_field_or_the_birthday(field: str) -> None:
    checked = check({"leadId": 1, field: ""})
    assert checked.errors == []
    assert checked.lead is not None and effective(checked.lead) == {field: ""}


def test_an_empty_string_clears_a_family_birthday_and_a_property_type() -> None:
    data = {
        "leadId": 1,
        "leadFamilyMemberList": [{"firstName": "Lin", "birthday": ""}],
        "property": {"city": "Austin", "propertyType": ""},
    }
    assert check(data).errors == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ownershipScope", ""),
        ("customAttributeList", [{"attributeName": "A", "attributeType": "", "value": "x"}]),
        ("leadTransaction", {"transactionName": "Deal", "transactionType": ""}),
    ],
)
def test_an_empty_string_cannot_clear_a_field_that_always_has_a_value(
    field: str, value: Any
) -> None:
    errors = check({"leadId": 1, field: value}).errors
    assert len(errors) == 1
    assert errors[0].message.endswith("; it cannot be cleared")


def test_a_birthday_with_a_zero_padded_day_is_valid_and_the_same_date() -> None:
    padded = check({"leadId": 1, "birthday": "Jun 05, 2001"}).lead
    plain = check({"leadId": 1, "birthday": "Jun 5, 2001"}).lead
    assert padded is not None and plain is not None
    assert effective(padded) == effective(plain) == {"birthday": "Jun 5, 2001"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Feb 29, 2001", "'Feb 29, 2001' is not a real date"),
        ("Jun 31, 2001", "'Jun 31, 2001' is not a real date"),
        ("2001-06-05", "must look like 'Jun 5, 2001' (MMM d, yyyy), or '' to clear it"),
        ("June 5, 2001", "must look like 'Jun 5, 2001' (MMM d, yyyy), or '' to clear it"),
    ],
)
def test_a_birthday_must_be_a_real_mmm_d_yyyy_date(value: str, message: str) -> None:
    assert check({"leadId": 1, "birthday": "Feb 29, 2000"}).errors == []  # a leap year
    errors = check({"leadId": 1, "birthday": value}).errors
    assert [f.path for f in errors] == [("birthday",)]
    assert errors[0].message.startswith(message)


def test_assigned_user_id_must_be_at_least_1() -> None:
    for bad in (0, -5):
        errors = check({"leadId": 1, "assignedUserId": bad}).errors
        assert [(f.path, f.message) for f in errors] == [
            (("assignedUserId",), "must be at least 1")
        ]
    assert check({"leadId": 1, "assignedUserId": 1}).errors == []


def test_inquiry_create_and_update_times_are_date_times() -> None:
    good = {"createTime": "2023-11-07T05:31:56Z", "updateTime": "2024-02-29T23:59:59.5+01:00"}
    assert check({"leadId": 1, "inquiry": good}).errors == []
    for bad in ("yesterday", "2023-11-07", "2023-02-29T05:31:56Z", "2023-11-07T25:00:00Z"):
        errors = check({"leadId": 1, "inquiry": {"createTime": bad}}).errors
        assert [f.path for f in errors] == [("inquiry", "createTime")], bad
        assert "must be a date-time like '2023-11-07T05:31:56Z'" in errors[0].message


def test_transaction_type_and_status_outside_what_lofty_documents_are_errors() -> None:
    def errors(transaction: dict[str, Any]) -> list[tuple[Any, str]]:
        data = {"leadId": 1, "leadTransaction": {"transactionName": "12 Elm St", **transaction}}
        return [(f.path[-1], f.message) for f in check(data).errors]

    assert errors({"transactionType": "Listing", "transactionStatus": "Pre-contract"}) == []
    assert errors({"transactionType": "purchase"}) == [
        ("transactionType", "must be 'Purchase', 'Listing', 'Lease' or 'Other', not 'purchase'")
    ]
    [(where, message)] = errors({"transactionStatus": "Pre-contract"})
    assert where == "transactionStatus" and message.startswith("needs transactionType beside it")
    for status in ("", " Closed", "Closed "):
        [(where, message)] = errors({"transactionType": "Purchase", "transactionStatus": status})
        assert message.startswith("must be a status name of the team's pipeline"), status


def test_custom_attribute_names_are_unique_and_multi_select_values_json_arrays() -> None:
    attributes = [
        {"attributeName": "Must Haves", "attributeType": "multi_select", "value": "Garage"},
        {"attributeName": "Must Haves", "attributeType": "text", "value": "x"},
        {"attributeName": "Pool", "attributeType": "multi_select", "value": '["Yes"]'},
        {"attributeName": "  ", "attributeType": "text", "value": "x"},
    ]
    errors = check({"leadId": 1, "customAttributeList": attributes}).errors
    assert [(f.path, f.message) for f in errors] == [
        (
            ("customAttributeList", 0, "value"),
            'a multi_select value must be a JSON array of strings, e.g. \'["Garage","Yard"]\'',
        ),
        (
            ("customAttributeList", 1, "attributeName"),
            "'Must Haves' is already set by customAttributeList[0]; each attribute may appear once",
        ),
        (("customAttributeList", 3, "attributeName"), "must not be blank"),
    ]


def test_custom_attributes_compare_as_a_set_keyed_by_name() -> None:
    a = {"attributeName": "A", "attributeType": "text", "value": "1"}
    b = {"attributeName": "B", "attributeType": "text", "value": "2"}
    one = check({"leadId": 1, "customAttributeList": [a, b]}).lead
    two = check({"leadId": 1, "customAttributeList": [b, a]}).lead
    assert one is not None and two is not None
    assert effective(two)["customAttributeList"] == [b, a]  # sent in the file's order
    assert comparable(effective(one)) == comparable(effective(two))


def test_tags_remove_overlap_compares_the_names_lofty_keeps() -> None:
    long_tag = "t" * 70
    errors = check({"leadId": 1, "tags": [long_tag], "tagsRemove": ["t" * 64]}).errors
    assert [f.path for f in errors] == [("tagsRemove", 0)]
    assert f"{'t' * 64!r} is also in tags" in errors[0].message


def test_a_tags_remove_name_longer_than_a_tag_can_be_warns() -> None:
    checked = check({"leadId": 1, "tagsRemove": ["old", "x" * 65]})
    assert checked.errors == []
    assert [(f.path, f.message) for f in checked.warnings] == [
        (
            ("tagsRemove", 1),
            "is 65 characters, and Lofty keeps a tag name to 64: no tag can have this name, so "
            f"removing it does nothing; write the name as Lofty keeps it: {'x' * 64!r}",
        )
    ]


def test_whole_numbers_written_as_decimals_are_the_numbers_they_spell() -> None:
    checked = check({"leadId": 7.0, "inquiry": {"priceMax": 1e6, "bedroomsMin": 2.0}})
    assert checked.lead is not None
    assert checked.lead.leadId == 7
    assert effective(checked.lead) == {"inquiry": {"priceMax": 1000000, "bedroomsMin": 2}}
    errors = check({"leadId": 1, "inquiry": {"bedroomsMin": 2.5}}).errors
    assert [f.message for f in errors] == ["must be a whole number, not a decimal number"]


def test_effective_and_comparable_work_on_any_valid_lead_and_comparable_is_idempotent() -> None:
    lead = check(
        {
            "leadId": 1,
            "tags": ["b", "a", "b"],
            "leadFamilyMemberList": [{"firstName": "Lin", "birthday": "Jul 02, 1988"}],
            "customAttributeList": [
                {"attributeName": "Z", "attributeType": "text", "value": "1"},
                {"attributeName": "A", "attributeType": "text", "value": "2"},
            ],
        }
    ).lead
    assert lead is not None
    values = comparable(effective(lead))
    assert values["tags"] == ["a", "b"]
    assert values["leadFamilyMemberList"] == [{"firstName": "Lin", "birthday": "Jul 2, 1988"}]
    assert [a["attributeName"] for a in values["customAttributeList"]] == ["A", "Z"]
    assert comparable(values) == values


# --- messages in the tool's own words -----------------------------------------------------------

_INTERNALS = (
    "Input should",
    "valid dictionary",
    "instance of",
    "str",
    "[^",
    "Value error",
    "pattern",
)


@pytest.mark.parametrize(
    "data",
    [
        {"leadId": 1, "inquiry": "3 bedrooms"},
        {"leadId": 1, "property": ["Austin"]},
        {"leadId": 1, "leadTransaction": 5},
        {"leadId": 1, "tags": "Hot Lead"},
        {"leadId": 1, "emails": ["not-an-email"]},
        {"leadId": 1, "firstName": 5},
        {"leadId": 1, "firstName": True},
        {"leadId": 1, "cannotCall": "no"},
        {"leadId": "12"},
        {"leadId": 1, "inquiry": {"bedroomsMin": "two"}},
        {"leadId": 1, "property": {"city": "X", "bathrooms": "two"}},
        {"leadId": 1, "property": {"city": "X", "lotSize": float("nan")}},
        {"leadId": 1, "preQual": "Maybe"},
        {"leadId": 1, "leadTypes": "Buyer"},
        {"leadId": 1, "leadFamilyMemberList": [{"firstName": "A"}] * 5},
        {"leadId": 1, "birthday": 20010605},
        {"leadId": 2**64},
        {"leadId": 1, "segments": [["nested"]]},
    ],
)
def test_messages_never_show_validator_internals_and_say_one_thing(data: dict[str, Any]) -> None:
    errors = check(data).errors
    assert len(errors) == 1, errors
    assert not any(word in errors[0].message for word in _INTERNALS), errors[0].message


def test_a_string_where_a_list_belongs_hints_the_list() -> None:
    [error] = check({"leadId": 1, "tags": "Hot Lead"}).errors
    assert error.message == "must be a list, not text; write it in brackets: tags: [Hot Lead]"


def test_messages_never_echo_an_email_or_a_phone() -> None:
    data = {
        "leadId": 1,
        "emails": "jane.doe@example.com",
        "phones": [14155559876, "+1415555987654321012345"],
        "leadFamilyMemberList": [{"firstName": "Lin", "emails": ["lin@example"]}],
    }
    errors = check(data).errors
    assert [f.path for f in errors] == [
        ("emails",),
        ("phones", 0),
        ("phones", 1),
        ("leadFamilyMemberList", 0, "emails", 0),
    ]
    text = json.dumps([f.message for f in errors])
    for secret in ("jane", "14155559876", "1415555987654321012345", "lin@"):
        assert secret not in text
    assert errors[0].message == "must be a list, not text; write it in brackets: emails: [...]"
    assert errors[1].message.startswith("must be text, not a whole number; quote it in YAML")
