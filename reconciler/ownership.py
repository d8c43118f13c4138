"""Field ownership: who wins when a field is edited both in git and in Lofty's UI.

A team declares it per field in `reconciler.yaml` (or `--config PATH`):

```yaml
fields:
  stage: shared            # the default: a git change is sent; an edit in Lofty is drift, kept
  tags: enforce            # the file wins: drift is reverted by the next apply
  inquiry.priceMin: initial  # sent when the lead comes under management, then left to agents
```

A dotted path names a key of a nested object (`inquiry`, `property`, `leadTransaction`); a
key without a policy of its own takes its object's, and a field not listed is `shared`.
"""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel

from reconciler.errors import InvalidLeadFilesError, Problem
from reconciler.model import Lead
from reconciler.yamlio import YamlProblem, decode, load_documents

Policy = Literal["shared", "enforce", "initial"]
POLICIES: tuple[Policy, ...] = get_args(Policy)
DEFAULT_CONFIG = "reconciler.yaml"
_MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Ownership:
    """The policy of every field path; `source` is the file it came from (None: defaults)."""

    policies: Mapping[str, Policy] = field(default_factory=dict)
    source: str | None = None

    def policy(self, path: str) -> Policy:
        """The policy of `path` (`inquiry.priceMin`), else of its object (`inquiry`), else
        `shared`."""
        while True:
            found = self.policies.get(path)
            if found is not None:
                return found
            parent, dot, _ = path.rpartition(".")
            if not dot:
                return "shared"
            path = parent


def load_ownership(path: Path | None) -> Ownership:
    """The ownership in `path`, or in `reconciler.yaml` here if it exists, else the defaults.

    A config given explicitly must exist. Every problem is reported at once, with its line.
    """
    chosen = path if path is not None else Path(DEFAULT_CONFIG)
    if path is None and not chosen.exists():
        return Ownership()
    shown = str(chosen)
    try:
        documents = list(load_documents(decode(_read(chosen))))
    except OSError as exc:
        raise InvalidLeadFilesError(
            [Problem(shown, None, None, f"cannot read the config: {exc.strerror or exc}")]
        ) from None
    except YamlProblem as exc:
        raise InvalidLeadFilesError([Problem(shown, exc.line, None, str(exc))]) from None
    if len(documents) > 1:
        raise InvalidLeadFilesError([Problem(shown, documents[1].line, None, "one document only")])
    if not documents:
        return Ownership(source=shown)
    document = documents[0]
    problems: list[Problem] = []
    policies: dict[str, Policy] = {}
    data = document.value
    if not isinstance(data, dict):
        problems.append(Problem(shown, document.line, None, "expected a mapping with `fields:`"))
    else:
        for key in data:
            if key != "fields":
                problems.append(
                    Problem(shown, document.line_of((key,)), key, "unknown setting; use `fields`")
                )
        fields = data.get("fields", {})
        if not isinstance(fields, dict):
            problems.append(
                Problem(shown, document.line_of(("fields",)), "fields", "expected FIELD: POLICY")
            )
            fields = {}
        for name, policy in fields.items():
            line = document.line_of(("fields", name))
            why = _field_problem(name)
            if why is not None:
                problems.append(Problem(shown, line, name, why))
            elif policy not in POLICIES:
                problems.append(
                    Problem(
                        shown,
                        line,
                        name,
                        f"unknown policy {policy!r}; use one of {', '.join(POLICIES)}",
                    )
                )
            else:
                policies[name] = policy
    if problems:
        raise InvalidLeadFilesError(problems)
    return Ownership(policies, shown)


def _read(path: Path) -> bytes:
    """The file's bytes, only from a regular file (a FIFO must not hang the run) and only
    within the size limit."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file")
        if info.st_size > _MAX_CONFIG_BYTES:
            raise OSError(0, f"over the {_MAX_CONFIG_BYTES:,}-byte limit")
        return file.read(_MAX_CONFIG_BYTES + 1)


def _field_problem(path: str) -> str | None:
    """Why `path` names no field a lead file can manage, or None when it does."""
    model: type[BaseModel] | None = Lead
    parts = path.split(".")
    for depth, part in enumerate(parts):
        if model is None:
            return f"{'.'.join(parts[:depth])} has no keys to own separately"
        fields = model.model_fields
        if part not in fields or (depth == 0 and part == "leadId"):
            where = "a lead" if depth == 0 else ".".join(parts[:depth])
            close = difflib.get_close_matches(part, [n for n in fields if n != "leadId"], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return f"unknown field: {part!r} is not a field of {where}{hint}"
        model = _object_model(fields[part].annotation)
    return None


def _object_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a nested object field (not of a list of objects: items go whole)."""
    for hint in (annotation, *get_args(annotation)):
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            return hint
    return None
