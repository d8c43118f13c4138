"""Lead files -> validated leads: find the files, hash them, parse the changed ones, check them.

Every problem in every file is collected and reported together, each with file, line and field.
A file whose content hash says it is already applied is not parsed at all.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.errors import Problem, ReconcilerError
from reconciler.model import Checked, Lead, check
from reconciler.yamlio import Document, FieldPath, YamlProblem, decode, load_documents

LEAD_FILE_SUFFIXES = (".yaml", ".yml")

# Given a file's path and content hash, the lead ids it is known to hold at that hash when it is
# fully applied (so it need not be parsed), or None when it must be parsed.
KnownUnchanged = Callable[[str, str], Sequence[int] | None]


@dataclass(frozen=True, slots=True)
class LeadDoc:
    """One valid lead document and where it came from (`source` relative to the leads folder,
    `file` as shown to the user)."""

    lead: Lead
    source: str
    file: str
    line: int

    @property
    def lead_id(self) -> int:
        return self.lead.leadId


@dataclass(frozen=True, slots=True)
class LeadWarning:
    """Something a reviewer should know about a valid lead (a silent cut, a deprecated field)."""

    file: str
    line: int
    lead_id: int | None
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A lead file: its path relative to the leads folder, its content hash, its leads."""

    path: str
    digest: str
    lead_ids: tuple[int, ...]
    parsed: bool


@dataclass
class LoadResult:
    """Everything read from a leads folder."""

    root: Path
    files: list[SourceFile] = field(default_factory=list)
    leads: list[LeadDoc] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[LeadWarning] = field(default_factory=list)
    parsed_files: int = 0

    def __post_init__(self) -> None:
        self._prefix = "" if str(self.root) in ("", ".") else f"{self.root.as_posix()}/"

    def display(self, rel: str) -> str:
        """How to name a file to the user: the folder as they gave it, then the file."""
        return self._prefix + rel


def format_path(path: FieldPath) -> str:
    """`("inquiry", "locations", 0, "city")` -> `inquiry.locations[0].city`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def discover(root: Path) -> list[str]:
    """Lead files below `root`, as sorted relative POSIX paths; hidden folders are skipped."""
    if not root.is_dir():
        raise ReconcilerError(f"{root}: no such folder of lead files (use --dir)")
    # Plain strings, not Path objects: a warm plan of 10,000 files spends more time building
    # Paths than reading the files.
    found: list[str] = []
    top = os.fspath(root)
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = os.path.relpath(folder, top).replace(os.sep, "/")
        prefix = "" if rel == "." else rel + "/"
        found.extend(
            prefix + name
            for name in files
            if name.endswith(LEAD_FILE_SUFFIXES) and not name.startswith(".")
        )
    return sorted(found)


def load_tree(
    root: Path,
    *,
    strict: bool = False,
    known_unchanged: KnownUnchanged | None = None,
    only: Iterable[str] | None = None,
) -> LoadResult:
    """Read every lead file below `root` (or just `only`), skipping the ones known unchanged."""
    result = LoadResult(root)
    seen: dict[int, str] = {}
    for rel in discover(root) if only is None else sorted(only):
        data = _read(os.path.join(root, rel), result.display(rel), result.problems)
        if data is None:
            continue
        digest = hashlib.sha256(data).hexdigest()
        known = known_unchanged(rel, digest) if known_unchanged else None
        if known is not None:
            result.files.append(SourceFile(rel, digest, tuple(known), parsed=False))
            for lead_id in known:
                _claim(lead_id, result.display(rel), None, seen, result.problems)
            continue
        result.parsed_files += 1
        docs = _parse(data, rel, strict, seen, result)
        result.files.append(SourceFile(rel, digest, tuple(d.lead_id for d in docs), parsed=True))
        result.leads.extend(docs)
    return result


def _read(path: str, shown: str, problems: list[Problem]) -> bytes | None:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        problems.append(Problem(shown, None, None, f"cannot read: {exc.strerror}"))
        return None


def _parse(
    data: bytes, rel: str, strict: bool, seen: dict[int, str], result: LoadResult
) -> list[LeadDoc]:
    shown = result.display(rel)
    try:
        documents = list(load_documents(decode(data)))
    except YamlProblem as exc:
        result.problems.append(Problem(shown, exc.line, None, str(exc)))
        return []
    if not documents:
        result.problems.append(Problem(shown, 1, None, "file holds no lead (it is empty)"))
        return []
    docs: list[LeadDoc] = []
    for document in documents:
        checked = check(document.value, may_hold_null=document.has_null)
        _place(checked, document, shown, strict, result)
        if checked.lead is None:
            continue
        line = document.line_of(("leadId",))
        if _claim(checked.lead.leadId, shown, line, seen, result.problems):
            docs.append(LeadDoc(checked.lead, rel, shown, document.line))
    return docs


def _place(checked: Checked, doc: Document, shown: str, strict: bool, result: LoadResult) -> None:
    lead_id = checked.lead.leadId if checked.lead else None
    for finding in checked.errors:
        result.problems.append(
            Problem(
                shown, doc.line_of(finding.path), format_path(finding.path) or None, finding.message
            )
        )
    for finding in checked.warnings:
        result.warnings.append(
            LeadWarning(
                shown,
                doc.line_of(finding.path),
                lead_id,
                format_path(finding.path),
                finding.message,
            )
        )
    for finding in checked.truncations:
        where, name = doc.line_of(finding.path), format_path(finding.path)
        if strict:
            result.problems.append(Problem(shown, where, name, f"{finding.message} (--strict)"))
        else:
            result.warnings.append(LeadWarning(shown, where, lead_id, name, finding.message))


def _claim(
    lead_id: int, shown: str, line: int | None, seen: dict[int, str], problems: list[Problem]
) -> bool:
    """Record where `lead_id` is defined; a second definition is a problem naming both places."""
    where = shown if line is None else f"{shown}:{line}"
    first = seen.setdefault(lead_id, where)
    if first == where:
        return True
    problems.append(
        Problem(shown, line, "leadId", f"{lead_id} is defined twice: here and in {first}")
    )
    return False
