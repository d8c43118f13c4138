"""Writing lead files, for `reconciler import`: what a person would have written by hand.

Keys come in the schema's order (`leadId` first, nested objects in their own model's order),
short lists of plain values in flow style (`tags: [Hot Lead, Zillow]`), phones and zip codes
always quoted so that YAML never reads them as numbers, and the schema modeline first so that
editors check the file as it is edited. Files are written atomically and never over another.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from reconciler.files import create_file
from reconciler.model import Lead
from reconciler.yamlio import quote_like_the_reader

SCHEMA_MODELINE = "# yaml-language-server: $schema="
_FLOW_WIDTH = 80  # a list of plain values longer than this on one line goes one per line
_QUOTED_KEYS = frozenset({"phones", "zipCode"})
_SLUG = re.compile(r"[^a-z0-9]+")


class _Quoted(str):
    """A string always written in double quotes."""


try:  # libyaml's emitter is several times faster: an import of 10,000 leads spends most here
    _BaseDumper: type[yaml.SafeDumper] = yaml.CSafeDumper  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _BaseDumper = yaml.SafeDumper


class _Dumper(_BaseDumper):  # type: ignore[valid-type,misc]
    """Block mappings, flow lists when short, quotes where YAML could misread a value."""


def _represent_list(dumper: yaml.SafeDumper, items: list[Any]) -> yaml.Node:
    plain = all(isinstance(i, str | int | float | bool) for i in items)
    flow = plain and len(", ".join(map(str, items))) <= _FLOW_WIDTH
    return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=flow)


def _represent_quoted(dumper: yaml.SafeDumper, text: _Quoted) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(text), style='"')


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(_Quoted, _represent_quoted)
quote_like_the_reader(_Dumper)


def ordered(values: Mapping[str, Any], model: type[BaseModel] = Lead) -> dict[str, Any]:
    """`values` with keys in the model's (the schema's) order, nested objects too, phones and
    zip codes marked for quoting."""
    position = _positions(model)
    last = len(position)
    result: dict[str, Any] = {}
    for name in sorted(values, key=lambda n: position.get(n, last)):
        result[name] = _ordered_value(name, values[name], model)
    return result


@cache
def _positions(model: type[BaseModel]) -> dict[str, int]:
    return {name: index for index, name in enumerate(model.model_fields)}


def _ordered_value(name: str, value: Any, model: type[BaseModel]) -> Any:
    nested = _item_model(model, name)
    if isinstance(value, dict) and nested is not None:
        return ordered(value, nested)
    if isinstance(value, list):
        return [_ordered_value(name, item, model) for item in value]
    if isinstance(value, str) and name in _QUOTED_KEYS:
        return _Quoted(value)
    return value


@cache
def _item_model(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    field = model.model_fields.get(name)
    stack: list[Any] = [field.annotation] if field is not None else []
    while stack:
        hint = stack.pop()
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            return hint
        stack.extend(getattr(hint, "__args__", ()))
    return None


def render_lead_file(
    values: Mapping[str, Any], *, modeline: str | None = None, comment: str | None = None
) -> str:
    """The text of a lead file holding one lead (`values` must include `leadId`)."""
    head = []
    if modeline:
        head.append(f"{SCHEMA_MODELINE}{modeline}")
    if comment:
        head.extend(f"# {line}" if line else "#" for line in comment.splitlines())
    body = yaml.dump(
        ordered(values),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
        indent=2,
    )
    return "\n".join([*head, body]) if head else body


def file_name(values: Mapping[str, Any]) -> str:
    """A readable, portable file name: `jane-doe-651095960136641.yaml`."""
    words = " ".join(str(values.get(k) or "") for k in ("firstName", "lastName"))
    ascii_words = unicodedata.normalize("NFKD", words).encode("ascii", "ignore").decode()
    slug = _SLUG.sub("-", ascii_words.lower()).strip("-")[:40].strip("-")
    return f"{slug}-{values['leadId']}.yaml" if slug else f"lead-{values['leadId']}.yaml"


def write_new_file(path: Path, text: str, *, sync_folder: bool = True) -> None:
    """Create `path` with `text`, atomically, refusing to replace anything already there
    (FileExistsError): an import interrupted half-way never leaves a half-written lead file,
    and a file that appeared meanwhile is kept. With `sync_folder=False` the caller makes the
    new names durable itself (`files.fsync_folder`), once for many files."""
    create_file(path, text.encode("utf-8"), sync_folder=sync_folder)
