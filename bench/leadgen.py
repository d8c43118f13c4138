"""Realistic lead files, generated fast enough to write a hundred thousand of them.

Every lead is built from its number alone (a seeded RNG per lead), so any file can be rebuilt,
edited or restored byte for byte without keeping the tree in memory. Text is produced with plain
string formatting rather than `yaml.dump`, which would take longer than the benchmarks it feeds.

The tree nests so one generation serves every size: `root/s0/t0` holds 1,000 leads,
`root/s0` 10,000 and `root` 100,000 (each folder of 1,000 files `tN` under a folder `sN`).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

FIRST_ID = 700_000_000_000
PER_LEAF = 1_000  # files per folder
LEAVES_PER_BRANCH = 10


def _words(text: str) -> list[str]:
    return text.split()


_FIRST = _words(
    "Jane Robert Maria Wei Priya Tomás Aisha Liam Noah Olivia Emma Ava Sofia Mateo Chloe "
    "Hiroshi Fatima Lucas Amara Diego Ingrid Kwame Elena Yusuf Grace Henrik Zoe Ravi Nora Ahmed"
)
_LAST = _words(
    "Doe Li Garcia Chen Natarajan Okafor Smith Johnson Müller Rossi Kowalski Nguyen Silva "
    "Haddad Andersen Tanaka O'Brien Dubois Novak Petrov Santos Kim Patel Cohen Whitfield"
)
_LONG_LAST = "Featherstonehaugh-Cholmondeley-Worthington"  # over 30 characters: a cut warning
_STAGES = ("New", "Contacted", "Nurture", "Showing", "Pending", "Qualified", "Past Client")
_SOURCES = ("Website", "Open House", "Zillow", "Referral", "Facebook Ads", "Past Client")
_TAGS = (
    "Hot Lead",
    "Pre-Approved",
    "Cash Buyer",
    "Multi-Family",
    "First-Time Buyer",
    "Relocation",
    "Luxury",
    "Downsizing",
    "Investor",
    "Waterfront",
    "Needs Follow-Up",
    "VIP",
)
_SEGMENTS = ("First-Time Buyers", "Downtown Area", "Suburbs", "Sphere", "Farm Area")
_TYPES = ("Buyer", "Seller", "Renter", "Investor", "Homeowner", "Landlord")
_PROPERTY_TYPES = ("Single Family Home", "Condo", "Townhouse", "Multi-Family")
_TIME_FRAMES = ("1-3", "3-6", "6-12", "12+", "Just Looking")
_CITIES = (
    ("Austin", "TX", "78704"),
    ("Boston", "MA", "02134"),
    ("Cupertino", "CA", "95014"),
    ("Denver", "CO", "80205"),
    ("Seattle", "WA", "98103"),
    ("Miami", "FL", "33131"),
    ("Chicago", "IL", "60614"),
)
_RELATIONS = ("Wife", "Husband", "Partner", "Father", "Mother", "Son", "Daughter")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
EDIT_TAG = "Bench Edit"


def q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def flow(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


def lead_path(n: int) -> str:
    """Where lead number `n` (0-based) lives, relative to the tree root."""
    leaf, _ = divmod(n, PER_LEAF)
    branch, leaf_in_branch = divmod(leaf, LEAVES_PER_BRANCH)
    return f"s{branch}/t{leaf_in_branch}/lead-{n:06d}.yaml"


def lead_id(n: int) -> int:
    return FIRST_ID + n


def lead_text(n: int, *, edited: bool = False) -> str:
    """The YAML of lead number `n`; `edited` is the same lead after a typical review edit
    (a stage change, one more tag, a higher price ceiling)."""
    r = random.Random(n)
    first, last = r.choice(_FIRST), r.choice(_LAST)
    if n % 97 == 0:
        last = _LONG_LAST
    city, state, zip_code = r.choice(_CITIES)
    price_min = r.randrange(200, 1500) * 1000
    price_max = price_min + r.randrange(50, 900) * 1000 + (25_000 if edited else 0)
    tags = r.sample(_TAGS, r.randint(1, 4)) + ([EDIT_TAG] if edited else [])
    stage = r.choice(_STAGES)
    if edited:  # after the draw, so that every later random choice stays the same
        stage = "Closed Won"
    email = f"{first.lower()}.{last.lower()[:12].replace(chr(39), '')}{n}@example.com"
    lines = [
        "# yaml-language-server: $schema=../schema/lead.schema.json",
        f"# Generated lead {n} for the reconciler benchmarks.",
        f"leadId: {lead_id(n)}",
        f"firstName: {first}",
        f"lastName: {q(last)}",
        "emails:",
        f"  - {email}",
    ]
    if r.random() < 0.4:
        lines.append(f"  - {first.lower()}{n}@work.example.org")
    lines.append("phones:")
    lines.append(f'  - "+1{r.randrange(200, 999)}555{r.randrange(1000, 9999)}"')
    if r.random() < 0.3:
        lines.append(f'  - "+1{r.randrange(200, 999)}555{r.randrange(1000, 9999)}"')
    lines += [
        f"leadTypes: {flow(r.sample(_TYPES, r.randint(1, 2)))}",
        f"assignedUserId: {10_000_000_000 + r.randrange(1000)}",
        f"stage: {stage}",
        f"source: {r.choice(_SOURCES)}",
        f"tags: {flow([q(t) if '-' in t else t for t in tags])}",
    ]
    if r.random() < 0.5:
        lines.append("segments:")
        lines += [f"  - {s}" for s in r.sample(_SEGMENTS, r.randint(1, 2))]
    lines += [
        f"buyingTimeFrame: {r.choice(_TIME_FRAMES)}",
        f'preQual: "{r.choice(("Yes", "No"))}"',
        "language: en",
        "inquiry:",
        f"  priceMin: {price_min}",
        f"  priceMax: {price_max}",
        f"  propertyType: {flow(r.sample(_PROPERTY_TYPES, r.randint(1, 2)))}",
        f"  bedroomsMin: {r.randint(1, 3)}",
        f"  bedroomsMax: {r.randint(3, 6)}",
        f'  bathroomsMin: "{r.randint(1, 2)}"',
        "  locations:",
        f"    - city: {city}",
        f"      stateCode: {state}",
    ]
    if r.random() < 0.5:
        lines.append(f'    - zipCode: "{zip_code}"')
    if r.random() < 0.35:
        lines += [
            "property:",
            f"  streetAddress: {r.randrange(1, 9999)} {r.choice(('Oak', 'Elm', 'Main'))} St",
            f"  city: {city}",
            f"  state: {state}",
            f'  zipCode: "{zip_code}"',
            f"  price: {price_min + 10_000}",
            f"  bedrooms: {r.randint(1, 5)}",
            f"  bathrooms: {r.choice((1, 1.5, 2, 2.5, 3))}",
            f"  propertyType: {r.choice(_PROPERTY_TYPES)}",
        ]
    if r.random() < 0.2:
        lines.append("leadFamilyMemberList:")
        for _ in range(r.randint(1, 2)):
            lines += [
                f"  - firstName: {r.choice(_FIRST)}",
                f"    lastName: {q(last)}",
                f"    relationship: {r.choice(_RELATIONS)}",
                f'    phones: ["+1{r.randrange(200, 999)}555{r.randrange(1000, 9999)}"]',
                f"    birthday: {r.choice(_MONTHS)} {r.randint(1, 28)}, {r.randint(1950, 2005)}",
            ]
    if r.random() < 0.2:
        lines += [
            "customAttributeList:",
            "  - attributeName: Down Payment",
            "    attributeType: currency",
            f'    value: "{r.randrange(20, 400) * 1000}"',
        ]
    return "\n".join(lines) + "\n"


def generate(root: Path, count: int) -> None:
    """Write leads 0..count-1 below `root` (folders created as needed)."""
    made: set[str] = set()
    for n in range(count):
        rel = lead_path(n)
        folder = rel.rpartition("/")[0]
        if folder not in made:
            os.makedirs(root / folder, exist_ok=True)
            made.add(folder)
        with open(root / rel, "w", encoding="utf-8") as out:
            out.write(lead_text(n))


def edit(root: Path, numbers: list[int], *, edited: bool = True) -> None:
    """Rewrite the given leads as edited (or, with `edited=False`, back to the original bytes)."""
    for n in numbers:
        (root / lead_path(n)).write_text(lead_text(n, edited=edited), encoding="utf-8")
