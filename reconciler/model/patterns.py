"""The patterns shared by the validator and the JSON Schema, so that an editor never flags a
file `reconciler validate` accepts.

Each is written in the common ground of Python's `re` and ECMAScript (editors' JSON Schema
checks), with or without ECMAScript's `u` flag. `_END` stands for "end of text": unlike `$`,
it does not let a trailing newline through in Python. Each `*_PATTERN` string goes into the
schema; its compiled `*_RE` twin is what the validator uses.
"""

from __future__ import annotations

import re

from reconciler.model.limits import LEAD_TYPES

_END = r"(?![\s\S])"
_ASTRAL = r"[^\u0000-\uFFFF]"  # a character taking 2 UTF-16 units; in JS without `u`, none
_BMP = r"[\u0000-\uFFFF]"


def utf16_max_pattern(limit: int) -> str:
    """At most `limit` UTF-16 units: for each k, not (k astral characters and limit+1-k
    characters). Without the `u` flag JS counts units already and finds no astral character.
    Each astral character is found by skipping the others (`[BMP]*`), so nothing backtracks."""
    parts = [rf"(?![\s\S]{{{limit + 1}}})"]
    for k in range(1, limit // 2 + 2):
        parts.append(rf"(?!(?=(?:{_BMP}*{_ASTRAL}){{{k}}})[\s\S]{{{limit + 1 - k}}})")
    return "^" + "".join(parts)


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
_BIRTHDAY_YEAR = r"(?!0000)[0-9]{4}"
# `MMM d, yyyy` as Java's parser reads it: the day with or without a leading zero; a real date.
BIRTHDAY_PATTERN = (
    r"^(?:(?:Jan|Mar|May|Jul|Aug|Oct|Dec) (?:0?[1-9]|[12][0-9]|3[01])"
    r"|(?:Apr|Jun|Sep|Nov) (?:0?[1-9]|[12][0-9]|30)"
    r"|Feb (?:0?[1-9]|1[0-9]|2[0-8])"
    rf"), {_BIRTHDAY_YEAR}{_END}|^Feb 29, (?!0000){_LEAP_YEAR}{_END}|^{_END}"
)
# RFC 3339 date-time (OpenAPI's `date-time`), e.g. 2023-11-07T05:31:56Z; a real date.
DATE_TIME_PATTERN = (
    r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    rf"|{_LEAP_YEAR}-02-29)"
    r"[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?"
    rf"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]){_END}"
)
EMAIL_PATTERN = rf"^[^@\s]+@[^@\s]+\.[^@\s]+{_END}"
# A number written as text (bathrooms), or '' to clear it.
NUMERIC_TEXT_PATTERN = rf"^(?:[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)?{_END}"
_JSON_SPACE = r"[ \t\n\r]*"
_JSON_STRING = r'"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"'
# A multi_select value: a JSON array of strings, e.g. ["Garage","Yard"].
JSON_STRING_ARRAY_PATTERN = (
    rf"^{_JSON_SPACE}\[{_JSON_SPACE}(?:{_JSON_STRING}(?:{_JSON_SPACE},{_JSON_SPACE}"
    rf"{_JSON_STRING})*)?{_JSON_SPACE}\]{_JSON_SPACE}{_END}"
)
NOT_BLANK_PATTERN = r"\S"
TRANSACTION_NAME_PATTERN = rf"^[^<>]*[^<>\s][^<>]*{_END}"
# A name matched as written: no blank, no space around it.
TRIMMED_NAME_PATTERN = rf"^\S(?:[\s\S]*\S)?{_END}"
LEAD_TYPE_NAME_PATTERN = (
    "^(?:"
    + "|".join("".join(f"[{c.upper()}{c.lower()}]" for c in name) for name in LEAD_TYPES)
    + f"){_END}"
)

BIRTHDAY_RE = re.compile(BIRTHDAY_PATTERN)
# Any date of that form, real or not: tells "not a real date" from "not a birthday at all".
BIRTHDAY_SHAPE_RE = re.compile(rf"^(?:{'|'.join(_MONTHS)}) [0-9]{{1,2}}, [0-9]{{4}}{_END}")
DATE_TIME_RE = re.compile(DATE_TIME_PATTERN)
EMAIL_RE = re.compile(EMAIL_PATTERN)
NUMERIC_TEXT_RE = re.compile(NUMERIC_TEXT_PATTERN)
JSON_STRING_ARRAY_RE = re.compile(JSON_STRING_ARRAY_PATTERN)
NOT_BLANK_RE = re.compile(NOT_BLANK_PATTERN)
TRIMMED_NAME_RE = re.compile(TRIMMED_NAME_PATTERN)
