"""Lead files -> validated leads: find the files, hash them, parse the changed ones, check them.

Every problem in every file is collected and reported together, each with file, line and field.
A file whose content hash says it is already applied is not parsed at all; inside a git
checkout it is not even read, since git knows the content id of every file it tracks
(`reconciler.gitfiles`).

A file's content hash is git's blob id of its bytes (`blob_id`), so that git's ids and the
loader's own hashing agree. Files are parsed as a stream (`stream_tree`): a caller that decides
each lead as it comes need not hold every parsed lead at once.

Only regular files inside the leads folder are read, and never more than the size limit of one:
a FIFO, a device or a socket, or a symlink that leads out of the folder, is a problem for that
path, found without reading it (so without hanging on it or filling memory from it);
`safe_read` does that part.

Longer than the project's ~400-line habit: finding, hashing (or asking git), parsing in worker
processes and claiming leadIds are one pipeline whose stages hand each other positions and
problems; split, each part would need the others' private types.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from reconciler import gitfiles
from reconciler.errors import LeadsFolderError, Problem
from reconciler.gitfiles import blob_id
from reconciler.model import Checked, Lead, check, lead_id_of
from reconciler.safe_read import read_lead_file
from reconciler.yamlio import (
    Document,
    FieldPath,
    YamlProblem,
    decode,
    load_documents,
)

# Lead files end in .yaml or .yml, in any case (`Jane.YAML` too): a file a user named so is
# meant to be read, and skipping it silently would leave its lead unmanaged.
LEAD_FILE_SUFFIXES = (".yaml", ".yml")
PARALLEL_MIN_FILES = 2000  # below this, starting worker processes costs more than it saves
MAX_WORKERS = 4
PARSE_WINDOW = 1024  # files handed to workers and not yet taken back: bounds the memory held
_CAN_FORK = "fork" in multiprocessing.get_all_start_methods()

# Given a file's path and content hash, the lead ids it is known to hold at that hash when it is
# fully applied (so it need not be parsed), or None when it must be parsed. Either a function,
# or (much faster on a large tree) a mapping from file to (hash, lead ids) of the files fully
# applied at that hash, such as `reconciler.state.applied_files` makes.
KnownUnchanged = (
    Callable[[str, str], Sequence[int] | None] | Mapping[str, tuple[str, tuple[int, ...]]]
)


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


class SourceFile(NamedTuple):
    """A lead file: its path relative to the leads folder, its content hash (`blob_id`), its
    leads, and whether it was parsed (False: known applied at this hash, so not even read).

    A named tuple, not a dataclass: a no-op plan of 100,000 files makes one per file."""

    path: str
    digest: str
    lead_ids: tuple[int, ...]
    parsed: bool


@dataclass
class LoadResult:
    """Everything read from a leads folder (complete once the stream of leads has ended)."""

    root: Path
    files: list[SourceFile] = field(default_factory=list)
    leads: list[LeadDoc] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[LeadWarning] = field(default_factory=list)
    parsed_files: int = 0
    git: bool = False  # whether git vouched for the unchanged files (they were not read)

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
    return sorted(_walk(os.fspath(root)))


def _walk(top: str, prefix: str = "") -> list[str]:
    # Plain strings, not Path objects: a warm plan of 10,000 files spends more time building
    # Paths than reading the files.
    found: list[str] = []
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = os.path.relpath(folder, top).replace(os.sep, "/")
        inner = prefix + ("" if rel == "." else rel + "/")
        found.extend(inner + name for name in files if is_lead_file(name))
    return found


_prefetched: dict[str, gitfiles.PendingListing] = {}


def prefetch(root: Path) -> None:
    """Start asking git about `root` now, so the answer is ready when `load_tree` wants it.

    A caller that has other work first (reading the state) calls this before it; the answer
    is used by the next load of the same folder only.
    """
    if os.path.isdir(root):
        top = os.fspath(root)
        _prefetched[top] = gitfiles.PendingListing(top)


def _listing(root: Path, use_git: bool) -> tuple[list[str], gitfiles.GitListing | None]:
    """The lead files below `root` (sorted) and what git knows of them, if anything."""
    top = os.fspath(root)
    pending = _prefetched.pop(top, None)
    if not use_git:
        return discover(root), None
    if not root.is_dir():
        raise LeadsFolderError(f"{root}: no such folder of lead files (use --dir)")
    listing = (pending or gitfiles.PendingListing(top)).result()
    if listing is None:
        return discover(root), None
    found = listing.files
    for folder in listing.folders:  # untracked folders and submodules: git did not look inside
        found.extend(_walk(os.path.join(top, folder), folder + "/" if folder else ""))
    found.sort()
    return found, listing


def load_tree(
    root: Path,
    *,
    strict: bool = False,
    known_unchanged: KnownUnchanged | None = None,
    only: Iterable[str] | None = None,
    use_git: bool = True,
) -> LoadResult:
    """Read every lead file below `root` (or just `only`), skipping the ones known unchanged."""
    result, leads = stream_tree(
        root, strict=strict, known_unchanged=known_unchanged, only=only, use_git=use_git
    )
    result.leads.extend(leads)
    return result


def stream_tree(
    root: Path,
    *,
    strict: bool = False,
    known_unchanged: KnownUnchanged | None = None,
    only: Iterable[str] | None = None,
    use_git: bool = True,
) -> tuple[LoadResult, Iterator[LeadDoc]]:
    """The leads below `root` as a stream, and the result that the stream fills in.

    Files are listed and the unchanged ones settled at once; the others are parsed as the
    stream is read (in worker processes for a large tree), so a caller that handles each lead
    as it comes holds one at a time. `result.leads` stays empty: the stream is the leads. The
    result's files, problems and warnings are complete when the stream ends, and only then.
    """
    result = LoadResult(root)
    if only is None:
        rels, git = _listing(root, use_git)
    else:  # paths named by the caller were not found by a walk: any part may be a link
        rels, git = sorted(only), None
    result.git = git is not None
    ids = git.ids if git is not None else {}
    algorithm = git.algorithm if git is not None else "sha1"
    inside = os.path.realpath(root)
    resolve = only is not None
    settled = _settle(rels, known_unchanged, ids, result, inside, algorithm, resolve)
    work = [
        (os.path.join(root, rel), inside, result.display(rel), strict, resolve, algorithm)
        for rel, known in zip(rels, settled, strict=True)
        if known is None
    ]
    return result, _leads(rels, settled, _parse_all(work), result)


def _settle(
    rels: list[str],
    known_unchanged: KnownUnchanged | None,
    ids: Mapping[str, str],
    result: LoadResult,
    inside: str,
    algorithm: str,
    resolve: bool,
) -> list[tuple[str, tuple[int, ...]] | None]:
    """For each file, (its hash, its leads) when it is known applied at its hash, else None.

    A file git vouches for is not read; any other is read and hashed here (and read again by
    the parse if it must be parsed: holding the bytes of a large tree would cost more).
    """
    if known_unchanged is None:
        return [None] * len(rels)

    def digest_of(rel: str) -> str | None:
        digest = ids.get(rel)
        if digest is None:
            data = read_lead_file(os.path.join(result.root, rel), inside, "", [], resolve)
            digest = None if data is None else blob_id(data, algorithm)
        return digest

    settled: list[tuple[str, tuple[int, ...]] | None] = []
    if isinstance(known_unchanged, Mapping):
        get = known_unchanged.get
        for rel in rels:
            entry = get(rel)
            if entry is not None and digest_of(rel) == entry[0]:
                settled.append(entry)
            else:
                settled.append(None)
        return settled
    for rel in rels:
        digest = digest_of(rel)
        known = None if digest is None else known_unchanged(rel, digest)
        settled.append(None if known is None or digest is None else (digest, tuple(known)))
    return settled


def _leads(
    rels: list[str],
    settled: list[tuple[str, tuple[int, ...]] | None],
    parsed: Iterator[_Parsed],
    result: LoadResult,
) -> Iterator[LeadDoc]:
    """Fill `result` file by file, in order, and yield each valid lead as it is checked."""
    seen: dict[int, str] = {}
    files, problems = result.files, result.problems
    for rel, known in zip(rels, settled, strict=True):
        shown = result.display(rel)
        if known is not None:
            digest, lead_ids = known
            files.append(SourceFile(rel, digest, lead_ids, False))
            for lead_id in lead_ids:  # `_claim`, inlined: this runs for every unchanged lead
                first = seen.setdefault(lead_id, shown)
                if first != shown:
                    _claim(lead_id, shown, None, seen, problems)
            continue
        found = next(parsed)
        problems.extend(found.problems)
        result.warnings.extend(found.warnings)
        if found.digest is None:  # not readable: the problem says why
            continue
        result.parsed_files += 1
        docs: list[LeadDoc] = []
        for lead, line, lead_id, id_line in found.leads:
            # An invalid document still claims its leadId, so a duplicate is reported with it.
            if not _claim(lead_id, shown, id_line, seen, problems) or lead is None:
                continue
            # A lead parsed in a worker process comes back as its (valid) plain value.
            model = lead if isinstance(lead, Lead) else Lead.model_validate(lead)
            docs.append(LeadDoc(model, rel, shown, line))
        files.append(SourceFile(rel, found.digest, tuple(d.lead_id for d in docs), True))
        yield from docs


def line_of(load: LoadResult, doc: LeadDoc, path: FieldPath) -> int:
    """The line of `path` in the lead `doc`, read again from its file.

    Leads keep no node tree (most never need one), so the few messages the planner adds about
    a field look their line up here; the lead's first line stands in if the file changed.
    """
    data = read_lead_file(
        os.path.join(load.root, doc.source), os.path.realpath(load.root), "", [], True
    )
    try:
        documents = load_documents(decode(data), collect=True) if data is not None else ()
        for document in documents:
            if document.line == doc.line:
                return document.line_of(path)
    except YamlProblem:
        pass
    return doc.line


@dataclass(slots=True)
class _Parsed:
    """What one file holds: its content hash (None when it could not be read), for each
    document with a usable leadId (the valid lead as a model or plain value, or None when the
    document is invalid; document line; leadId; its line), and the file's problems and
    warnings."""

    digest: str | None = None
    leads: list[tuple[Lead | dict[str, Any] | None, int, int, int]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[LeadWarning] = field(default_factory=list)


# A file to parse: its path to open, the folder's real path, its name as shown, --strict,
# whether to resolve the whole path, and the hash algorithm.
_Work = tuple[str, str, str, bool, bool, str]


def _parse_all(work: list[_Work]) -> Iterator[_Parsed]:
    """Read, hash and parse files in order; many of them are spread over worker processes.

    Parsing and checking YAML is most of a cold plan and each file is independent, so on a
    machine with several cores it runs in parallel. Workers read the files themselves and send
    back plain values rather than models (unpickling models costs more than validating again);
    results stream in order, and at most PARSE_WINDOW files are in flight, so neither file
    contents nor parsed leads pile up ahead of the caller.
    """
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    if len(work) < PARALLEL_MIN_FILES or workers < 2 or not _CAN_FORK:
        for item in work:
            yield _parse_item(item, keep_models=True)
        return
    window = _Window(PARSE_WINDOW)
    # The pool sends whole chunks: a chunk larger than the window would wait for itself.
    chunk = max(1, min(64, PARSE_WINDOW // (2 * workers)))
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        try:
            for parsed in pool.imap(_parse_in_worker, window.feed(work), chunksize=chunk):
                window.release()
                yield parsed
        finally:
            window.close()


class _Window:
    """Lets the pool's feeding thread run at most `size` items ahead of the consumer."""

    def __init__(self, size: int) -> None:
        self._slots = threading.Semaphore(size)
        self._closed = False

    def feed(self, items: Iterable[_Work]) -> Iterator[_Work]:
        for item in items:
            # Bounded waits: the pool joins this thread when it closes, even mid-stream.
            while not self._slots.acquire(timeout=0.05):
                if self._closed:
                    return
            if self._closed:
                return
            yield item

    def release(self) -> None:
        self._slots.release()

    def close(self) -> None:
        self._closed = True


def _parse_in_worker(item: _Work) -> _Parsed:
    return _parse_item(item, keep_models=False)


def _parse_item(item: _Work, *, keep_models: bool) -> _Parsed:
    path, inside, shown, strict, resolve, algorithm = item
    found = _Parsed()
    data = read_lead_file(path, inside, shown, found.problems, resolve)
    if data is None:
        return found
    found.digest = blob_id(data, algorithm)
    _parse_file(shown, data, strict, found, keep_models=keep_models)
    return found


def _parse_file(
    shown: str, data: bytes, strict: bool, found: _Parsed, *, keep_models: bool
) -> None:
    documents = 0
    try:
        # Documents before a problem that ends the file are still checked and reported.
        for document in load_documents(decode(data), collect=True):
            documents += 1
            _check_document(document, shown, strict, keep_models, found)
    except YamlProblem as exc:
        found.problems.append(Problem(shown, exc.line, None, str(exc)))
        return
    if not documents:
        found.problems.append(Problem(shown, 1, None, "file holds no lead (it is empty)"))


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
