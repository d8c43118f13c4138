"""Making text safe to show: escaping what a terminal or CI log would obey, masking client data.

Values come from lead files and servers that a reviewer may not trust, and plans and logs are
read by many people. Two kinds of protection live here, used by the renderers (on values, by
field) and by the console (on every line it writes, as the last line of defence):

* **Escaping**: control and invisible format characters are spelled `\\uXXXX`, so no value can
  repaint a terminal or pass as another; a line that would start a GitHub workflow command
  (`::error::`, `##[...]`) is defused so that no value can forge an annotation or a mask.
* **Masking**: emails (`j***@example.com`) and phone numbers (`+*********34`) show enough to tell
  two apart and no more, unless the user asks for `--show-sensitive`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

SENSITIVE_FIELDS = ("emails", "phones")

_INDEX = re.compile(r"\[\d+\]")
# Anything outside printable ASCII is looked at one by one; plain text is skipped in C.
_NOT_PLAIN = re.compile(r"[^\x20-\x7e]")
_NOT_PLAIN_KEEP_LINES = re.compile(r"[^\x20-\x7e\n\t]")
# The colour codes a renderer adds itself (the values inside them are already escaped).
_SGR = re.compile(r"\x1b\[[0-9;]*m")
# A workflow command is a line whose first non-blank characters are `::`; the legacy `##[`
# form is honoured anywhere in a line.
_WORKFLOW_COMMAND = re.compile(r"^([ \t]*):(?=:)", re.MULTILINE)
_LEGACY_COMMAND = re.compile(r"##\[")
_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_PHONE = re.compile(r"\+\d(?:[ ().-]{0,2}\d){6,19}")


# Controls, invisible format characters (bidi overrides, zero-width), and line or paragraph
# separators: each could make a value act or read as something else.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def _spelled(match: re.Match[str]) -> str:
    ch = match.group(0)
    if unicodedata.category(ch) not in _UNSAFE_CATEGORIES:
        return ch
    return f"\\u{ord(ch):04x}"


def clean(text: str) -> str:
    """`text` as one safe line: control and format characters (newlines too) spelled `\\uXXXX`."""
    if text.isascii() and text.isprintable():  # the common case
        return text
    return _NOT_PLAIN.sub(_spelled, text)


def safe_lines(text: str, *, keep_colour: bool = False) -> str:
    """`text` keeping its own line breaks and tabs, with everything else a terminal or a CI
    runner would act on escaped or defused."""
    if not (text.isascii() and text.isprintable()):
        if keep_colour and "\x1b" in text:
            parts = _SGR.split(text)
            codes = _SGR.findall(text)
            escaped = [_NOT_PLAIN_KEEP_LINES.sub(_spelled, part) for part in parts]
            text = "".join(p + c for p, c in zip(escaped, [*codes, ""], strict=True))
        else:
            text = _NOT_PLAIN_KEEP_LINES.sub(_spelled, text)
    if "::" in text:
        text = _WORKFLOW_COMMAND.sub(r"\1\\u003a", text)
    if "##[" in text:
        text = _LEGACY_COMMAND.sub(r"#\\u0023[", text)
    return text


def mask_email(email: str) -> str:
    """`jane.doe@example.com` -> `j***@example.com`: enough to tell two addresses apart."""
    local, at, domain = email.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_phone(phone: str) -> str:
    """`+14155551234` -> `+*********34`: same length, only a leading `+` and the last 2 digits."""
    digits = [m.start() for m in re.finditer(r"\d", phone)]
    last_two = set(digits[-2:])
    return "".join(
        ch if (i == 0 and ch == "+") or i in last_two else "*" for i, ch in enumerate(phone)
    )


# Top-level fields that hold emails or phones somewhere inside.
_HOLDING_SENSITIVE = frozenset({*SENSITIVE_FIELDS, "leadFamilyMemberList"})


def mask_value(path: str, value: Any) -> Any:
    """`value` of the field at `path` (e.g. `leadFamilyMemberList[0]`) with every email and phone
    number in it masked, however deep."""
    top = path.split(".", 1)[0].split("[", 1)[0]
    if top not in _HOLDING_SENSITIVE:  # most fields: nothing to mask, nothing to walk
        return value
    names = _INDEX.sub("", path).split(".")
    return _mask(value, names[-1] if names[-1] in SENSITIVE_FIELDS else None)


def _mask(value: Any, field: str | None) -> Any:
    if isinstance(value, dict):
        return {k: _mask(v, k if k in SENSITIVE_FIELDS else None) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(item, field) for item in value]
    if isinstance(value, str) and field == "emails":
        return mask_email(value)
    if isinstance(value, str) and field == "phones":
        return mask_phone(value)
    return value


def mask_text(text: str) -> str:
    """Free text with anything that looks like an email or an international phone number
    (`+` and 7 or more digits) masked. Bare digit runs stay: they are lead ids and prices."""
    if "@" in text:
        text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    if "+" in text:
        text = _PHONE.sub(lambda m: mask_phone(m.group(0)), text)
    return text


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret replaced by `***`."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text
