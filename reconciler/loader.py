"""Lead files -> validated leads: find the files, hash them, parse the changed ones, check them.

Every problem in every file is collected and reported together, each with file, line and field.
A file whose content hash says it is already applied is not parsed at all.

Only regular files inside the leads folder are read, and never more than the size limit of one:
a FIFO, a device or a socket, or a symlink that leads out of the folder, is a problem for that
path, found without reading it (so without hanging on it or filling memory from it).
"""

from __future__ import annotations

import errno
import hashlib
import multiprocessing
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import LeadsFolderError, Problem
from reconciler.model import Checked, Lead, check, lead_id_of
from reconciler.yamlio import (
    MAX_FILE_BYTES,
    Document,
    FieldPath,
    YamlProblem,
    decode,
    load_documents,
    too_large,
)

# Lead files end in .yaml or .yml, in any case (`Jane.YAML` too): a file a user named so is
# meant to be read, and skipping it silently would leave its lead unmanaged.
LEAD_FILE_SUFFIXES = (".yaml", ".yml")
PARALLEL_MIN_FILES = 2000  # below this, starting worker processes costs more than it saves
MAX_WORKERS = 4
_CAN_FORK = "fork" in multiprocessing.get_all_start_methods()

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
    cut: bool = False  # a value Lofty will cut short (the plan marks it where it shows it)

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


def is_lead_file(name: str) -> bool:
    """Whether a file name is a lead file's: `.yaml` or `.yml` in any case, not hidden."""
    return name.lower().endswith(LEAD_FILE_SUFFIXES) and not name.startswith(".")


def discover(root: Path) -> list[str]:
    """Lead files below `root`, as sorted relative POSIX paths; hidden folders are skipped, and
    so are symlinked folders (a symlinked file is listed, then read only if it stays inside)."""
    if not root.is_dir():
        raise LeadsFolderError(f"{root}: no such folder of lead files (use --dir)")
    # Plain strings, not Path objects: a warm plan of 10,000 files spends more time building
    # Paths than reading the files.
    found: list[str] = []
    top = os.fspath(root)
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = os.path.relpath(folder, top).replace(os.sep, "/")
        prefix = "" if rel == "." else rel + "/"
        found.extend(prefix + name for name in files if is_lead_file(name))
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
    entries: list[tuple[str, str, Sequence[int] | None]] = []
    pending: list[tuple[str, bytes, bool]] = []
    inside = os.path.realpath(root)
    for rel in discover(root) if only is None else sorted(only):
        # Paths from `only` were not found by walking the folder: any part of them may be a link.
        resolve = only is not None
        data = _read(os.path.join(root, rel), inside, result.display(rel), result.problems, resolve)
        if data is None:
            continue
        digest = hashlib.sha256(data).hexdigest()
        known = known_unchanged(rel, digest) if known_unchanged else None
        entries.append((rel, digest, known))
        if known is None:
            pending.append((result.display(rel), data, strict))
    parsed = _parse_all(pending)
    seen: dict[int, str] = {}
    for rel, digest, known in entries:
        shown = result.display(rel)
        if known is not None:
            result.files.append(SourceFile(rel, digest, tuple(known), parsed=False))
            for lead_id in known:
                _claim(lead_id, shown, None, seen, result.problems)
            continue
        found = next(parsed)
        result.parsed_files += 1
        result.problems.extend(found.problems)
        result.warnings.extend(found.warnings)
        docs: list[LeadDoc] = []
        for lead, line, lead_id, id_line in found.leads:
            # An invalid document still claims its leadId, so a duplicate is reported with it.
            if not _claim(lead_id, shown, id_line, seen, result.problems) or lead is None:
                continue
            # A lead parsed in a worker process comes back as its (valid) plain value.
            model = lead if isinstance(lead, Lead) else Lead.model_validate(lead)
            docs.append(LeadDoc(model, rel, shown, line))
        result.files.append(SourceFile(rel, digest, tuple(d.lead_id for d in docs), parsed=True))
        result.leads.extend(docs)
    return result


def line_of(load: LoadResult, doc: LeadDoc, path: FieldPath) -> int:
    """The line of `path` in the lead `doc`, read again from its file.

    Leads keep no node tree (most never need one), so the few messages the planner adds about
    a field look their line up here; the lead's first line stands in if the file changed.
    """
    data = _read(os.path.join(load.root, doc.source), os.path.realpath(load.root), "", [], True)
    try:
        documents = load_documents(decode(data), collect=True) if data is not None else ()
        for document in documents:
            if document.line == doc.line:
                return document.line_of(path)
    except YamlProblem:
        pass
    return doc.line


_OPEN_FLAGS = (
    os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)


def _read(
    path: str, inside: str, shown: str, problems: list[Problem], resolve: bool
) -> bytes | None:
    """The bytes of the regular file at `path`, if it lies inside the folder `inside` (a real
    path) and is within the size limit; else None, with a problem saying why.

    The file is opened without following a last-component symlink and without blocking (a FIFO
    opens at once), then checked with fstat before a byte is read. A symlink, or with `resolve`
    any path, is first resolved and must stay inside the folder.
    """
    try:
        fd = _open_inside(path, inside, resolve)
    except _Refused as exc:
        problems.append(Problem(shown, None, None, str(exc)))
        return None
    except OSError as exc:
        problems.append(Problem(shown, None, None, f"cannot read: {exc.strerror}"))
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            problems.append(Problem(shown, None, None, _not_regular(info.st_mode)))
            return None
        if info.st_size > MAX_FILE_BYTES:
            problems.append(Problem(shown, None, None, too_large(info.st_size)))
            return None
        data = _read_capped(fd, info.st_size)
    except OSError as exc:
        problems.append(Problem(shown, None, None, f"cannot read: {exc.strerror}"))
        return None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:  # it grew after the check
        problems.append(Problem(shown, None, None, too_large(len(data))))
        return None
    return data


class _Refused(Exception):
    """A path that is not read, and why (the message)."""


def _open_inside(path: str, inside: str, resolve: bool) -> int:
    if not resolve:
        try:
            return os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # a socket cannot be opened at all
                raise _Refused(_not_regular(os.lstat(path).st_mode)) from None
            if exc.errno != errno.ELOOP:  # ELOOP: the last component is a symlink
                raise
    real = os.path.realpath(path)
    if os.path.commonpath([real, inside]) != inside:
        raise _Refused(
            "is a symlink to a file outside the leads folder; only files inside it are read"
        )
    return _open_inside(real, inside, resolve=False)


def _not_regular(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISDIR, "a folder"),
    )
    kind = next((name for test, name in kinds if test(mode)), "not a regular file")
    return f"is {kind}, not a regular file; only regular files are read as lead files"


def _read_capped(fd: int, size: int) -> bytes:
    """At most MAX_FILE_BYTES + 1 bytes (one more than allowed shows the file grew)."""
    data = os.read(fd, min(size, MAX_FILE_BYTES) + 1)
    while len(data) <= MAX_FILE_BYTES:
        more = os.read(fd, MAX_FILE_BYTES + 1 - len(data))
        if not more:
            break
        data += more
    return data


@dataclass(slots=True)
class _Parsed:
    """What one file holds: for each document with a usable leadId, (the valid lead as a model
    or plain value, or None when the document is invalid; document line; leadId; its line),
    and the file's problems and warnings."""

    leads: list[tuple[Lead | dict[str, Any] | None, int, int, int]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[LeadWarning] = field(default_factory=list)


def _parse_all(pending: list[tuple[str, bytes, bool]]) -> Iterator[_Parsed]:
    """Parse files in order; many of them are spread over worker processes.

    Parsing and checking YAML is most of a cold plan and each file is independent, so on a
    machine with several cores it runs in parallel. Workers send back plain values rather
    than models (unpickling models costs more than validating again), and results stream in
    order so the parent validates while the workers parse.
    """
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    if len(pending) < PARALLEL_MIN_FILES or workers < 2 or not _CAN_FORK:
        for shown, data, strict in pending:
            yield _parse_file(shown, data, strict, keep_models=True)
        return
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield from pool.imap(_parse_in_worker, pending, chunksize=64)


def _parse_in_worker(item: tuple[str, bytes, bool]) -> _Parsed:
    shown, data, strict = item
    return _parse_file(shown, data, strict, keep_models=False)


def _parse_file(shown: str, data: bytes, strict: bool, *, keep_models: bool) -> _Parsed:
    found = _Parsed()
    documents = 0
    try:
        # Documents before a problem that ends the file are still checked and reported.
        for document in load_documents(decode(data), collect=True):
            documents += 1
            _check_document(document, shown, strict, keep_models, found)
    except YamlProblem as exc:
        found.problems.append(Problem(shown, exc.line, None, str(exc)))
        return found
    if not documents:
        found.problems.append(Problem(shown, 1, None, "file holds no lead (it is empty)"))
    return found


def _check_document(
    document: Document, shown: str, strict: bool, keep_models: bool, found: _Parsed
) -> None:
    for flaw in document.flaws:
        found.problems.append(
            Problem(shown, flaw.line, format_path(flaw.path) or None, flaw.message)
        )
    checked = check(
        document.value,
        may_hold_null=document.has_null,
        settled=[flaw.path for flaw in document.flaws if flaw.covers],
    )
    _place(checked, document, shown, strict, found)
    lead_id = checked.lead.leadId if checked.lead is not None else lead_id_of(document.value)
    if lead_id is None:
        return
    lead: Lead | dict[str, Any] | None = None
    if checked.lead is not None and not document.flaws:
        lead = checked.lead if keep_models else document.value
    found.leads.append((lead, document.line, lead_id, document.line_of(("leadId",))))


def _place(checked: Checked, doc: Document, shown: str, strict: bool, result: _Parsed) -> None:
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
            result.warnings.append(
                LeadWarning(shown, where, lead_id, name, finding.message, cut=True)
            )


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
