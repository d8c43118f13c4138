"""What Lofty does with each field, as facts the rest of the tool reads: its limits, what it
cuts, which lists compare as sets, which fields travel together, which are deprecated or never
shown; and lengths counted as Lofty's Java server counts them, in UTF-16 code units (an emoji,
any character outside the Basic Multilingual Plane, is 2).
"""

from __future__ import annotations

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
EXACT_FLOAT_MAX = 2**53  # beyond it a decimal number no longer holds every whole number

LEAD_TYPES: dict[str, int] = {
    "Other": -1,
    "Seller": 1,
    "Buyer": 2,
    "Renter": 5,
    "Investor": 6,
    "Agent": 7,
    "Homeowner": 8,
    "Landlord": 9,
}
NAME_LIMIT = 30  # firstName, lastName, each groups/segments item
TAG_LIMIT = 64  # each tags/tagsAdd item
STAGE_LIMIT = 19  # "less than 20 characters"
PHONE_LIMIT = 20  # "No more than 20 characters per phone"
FAMILY_LIMIT = 4  # "You can add up to 4 family members"
TRUNCATED_FIELDS: dict[str, int] = {
    "firstName": NAME_LIMIT,
    "lastName": NAME_LIMIT,
    "groups": NAME_LIMIT,
    "segments": NAME_LIMIT,
    "tags": TAG_LIMIT,
    "tagsAdd": TAG_LIMIT,
}
DEPRECATED_FIELDS: dict[str, str] = {
    "streetAddress": "use property.streetAddress instead",
    "city": "use property.city instead",
    "state": "use property.state instead",
    "zipCode": "use property.zipCode instead",
    "groups": "use segments instead",
}
# Lists whose order and duplicates mean nothing to Lofty; compared as sets.
SET_LIKE_PATHS: frozenset[tuple[str, ...]] = frozenset(
    {
        ("tags",),
        ("tagsAdd",),
        ("tagsRemove",),
        ("groups",),
        ("segments",),
        ("leadTypes",),
        ("inquiry", "propertyType"),
    }
)
# Lists of objects that Lofty identifies by one of their keys; compared as sets keyed by it.
KEYED_PATHS: dict[tuple[str, ...], str] = {("customAttributeList",): "attributeName"}
# Every other list is ordered: the first email or phone is the primary one.
PROPERTY_ADDRESS_FIELDS = ("streetAddress", "city", "state", "zipCode")
# Pairs of a nested object where the first may not exceed the second.
MIN_MAX_PAIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "inquiry": (
        ("priceMin", "priceMax"),
        ("bedroomsMin", "bedroomsMax"),
        ("bathroomsMin", "bathroomsMax"),
    ),
    "property": (("priceMin", "priceMax"),),
}
# Sent together whenever either changes (Lofty reads the id in the light of the scope).
OWNERSHIP_FIELDS = ("ownershipScope", "ownershipId")
# Sent together whenever any changes (`tags` sent alone would drop the tagsAdd names).
TAG_FIELDS = frozenset({"tags", "tagsAdd", "tagsRemove", "clearAllTags"})
# The tag lists that clearAllTags: true rules out: it removes every tag and takes precedence.
TAG_LISTS = ("tags", "tagsAdd", "tagsRemove")
# Values never echoed in a message: messages reach CI logs (see "Privacy" in the docs).
SENSITIVE_FIELDS = frozenset({"emails", "phones"})

# --- lengths as Lofty counts them -----------------------------------------------------------------


def utf16_len(text: str) -> int:
    """The length of `text` in UTF-16 code units, as Java's String.length() counts it."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def utf16_cut(text: str, limit: int) -> str:
    """The first `limit` UTF-16 code units of `text`, one fewer where the cut would split a
    surrogate pair (an emoji is kept whole or not at all)."""
    if text.isascii() or len(text) * 2 <= limit:
        return text[:limit]
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return text[:index]
    return text
