"""`reconciler import`: adopt leads that already exist in Lofty as lead files (no PUT).

`reconciler import LEAD_ID...` or `reconciler import --query stage=Lead --query anyTags=Zillow`
writes one lead file per lead into `--dir` and records each as last-applied, so the next plan
says `No changes.` `--dry-run` reads Lofty and says what it would write, writing nothing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from reconciler.client import LIST_FILTERS, ClientSettings, settings_from_env
from reconciler.commands import EXIT_ERROR, EXIT_OK
from reconciler.commands.lofty import ClientFactory, lofty_client
from reconciler.console import Console
from reconciler.errors import ApiError, InvalidLeadFilesError, UsageError
from reconciler.importer import Adoption, ImportResult, Target, adopt, by_ids
from reconciler.leadfile import SCHEMA_MODELINE
from reconciler.loader import discover, load_tree
from reconciler.state import StateBackend, open_state

_SCHEMA_FILE = Path("schema") / "lead.schema.json"
_PROGRESS_EVERY = 100


@dataclass(frozen=True, kw_only=True)
class ImportOptions:
    lead_ids: tuple[int, ...] = ()
    query: tuple[str, ...] = ()  # KEY=VALUE filters of the list endpoint
    dir: Path = Path("leads")
    state: str | None = None
    dry_run: bool = False
    parallelism: int = 4
    rate_limit: float | None = None
    lock_timeout: float = 0.0


def import_leads(
    options: ImportOptions, console: Console, *, client_factory: ClientFactory = lofty_client
) -> int:
    """Adopt the leads named by id or matched by the query; exit 1 if any could not be."""
    filters = _filters(options)
    target = _target(options.dir)
    settings = settings_from_env(
        console.env, parallelism=options.parallelism, rate_limit_per_minute=options.rate_limit
    )
    state = open_state(options.state, env=console.env)
    try:
        lock = (
            nullcontext()
            if options.dry_run
            else state.lock(timeout=options.lock_timeout, on_wait=console.note)
        )
        with lock:
            if not options.dry_run:
                target.root.mkdir(parents=True, exist_ok=True)
            writes = None if options.dry_run else state
            result, stopped = asyncio.run(
                _run(options, filters, target, writes, console, client_factory, settings)
            )
    finally:
        state.close()
    _summarize(result, stopped, options, console)
    return EXIT_OK if result.ok and stopped is None else EXIT_ERROR


async def _run(
    options: ImportOptions,
    filters: dict[str, str] | None,
    target: Target,
    state: StateBackend | None,
    console: Console,
    client_factory: ClientFactory,
    settings: ClientSettings,
) -> tuple[ImportResult, str | None]:
    stopped: list[str] = []
    async with client_factory(settings, console.note) as client:
        await client.check_access()
        if filters is None:
            leads = by_ids(client, options.lead_ids, parallelism=options.parallelism)
        else:
            leads = _until_stopped(client.list_leads(filters), stopped)
        result = await adopt(
            leads,
            target,
            state,
            today=date.today().isoformat(),
            progress=_progress(console, dry_run=options.dry_run),
        )
    return result, (stopped[0] if stopped else None)


async def _until_stopped(
    leads: AsyncIterator[dict[str, Any]], stopped: list[str]
) -> AsyncIterator[dict[str, Any]]:
    """The listed leads until the list fails; what was read by then is still imported."""
    try:
        async for lead in leads:
            yield lead
    except ApiError as exc:
        stopped.append(str(exc))


def _filters(options: ImportOptions) -> dict[str, str] | None:
    """The query's filters, or None when leads are named by id; exactly one of the two."""
    if bool(options.lead_ids) == bool(options.query):
        raise UsageError(
            "name the leads to import by id (`reconciler import 651095960136641 ...`) or "
            "select them with --query KEY=VALUE, one of the two"
        )
    if not options.query:
        return None
    filters: dict[str, str] = {}
    for item in options.query:
        key, equals, value = item.partition("=")
        if not equals or not value.strip():
            raise UsageError(f"--query {item!r}: write KEY=VALUE, e.g. --query stage=Lead")
        if key not in LIST_FILTERS:
            raise UsageError(f"--query {key!r}: filter by one of {', '.join(LIST_FILTERS)}")
        if key in filters:
            raise UsageError(
                f"--query {key} given twice; join the values with commas, e.g. anyTags=A,B"
            )
        filters[key] = value.strip()
    return filters


def _target(root: Path) -> Target:
    """The leads folder and what it holds; its files must be valid (no lead may be adopted
    twice, and a duplicate cannot be ruled out in a tree that cannot be read)."""
    in_tree: dict[int, str] = {}
    if root.exists():
        load = load_tree(root)
        if load.problems:
            raise InvalidLeadFilesError(load.problems)
        in_tree = {doc.lead_id: doc.file for doc in load.leads}
        shown_root = load.display("")
    else:
        shown_root = "" if str(root) in ("", ".") else f"{root.as_posix()}/"
    return Target(root, shown_root, in_tree, _modeline(root))


def _modeline(root: Path) -> str:
    """The schema the team's files already point at; else the schema file beside the leads
    folder (`reconciler schema > schema/lead.schema.json` makes it)."""
    if root.is_dir():
        for rel in discover(root)[:50]:
            if "/" in rel:
                continue
            try:
                with open(root / rel, encoding="utf-8") as file:
                    first = file.readline(1000)
            except (OSError, UnicodeDecodeError):
                continue
            if first.startswith(SCHEMA_MODELINE):
                return first[len(SCHEMA_MODELINE) :].strip()
    return os.path.relpath(_SCHEMA_FILE, root if str(root) else ".").replace(os.sep, "/")


def _progress(console: Console, *, dry_run: bool) -> Callable[[Adoption, int], None]:
    verb = "would write" if dry_run else "wrote"

    def report(adoption: Adoption, done: int) -> None:
        if adoption.status == "imported":
            console.say(f"  {verb} {adoption.file} (lead {adoption.lead_id})")
        else:
            where = f" ({adoption.file})" if adoption.file else ""
            console.say(f"  {adoption.status}: lead {adoption.lead_id}{where}: {adoption.message}")
        for note in adoption.notes:
            console.say(f"    note: {note}")
        if done % _PROGRESS_EVERY == 0:
            console.note(f"  {done} leads read so far")

    return report


def _summarize(
    result: ImportResult, stopped: str | None, options: ImportOptions, console: Console
) -> None:
    imported, skipped, failed = (result.count(s) for s in ("imported", "skipped", "failed"))
    if options.dry_run:
        console.say(
            f"\nDry run: {imported} lead{'s' * (imported != 1)} would be imported, {skipped} "
            f"skipped, {failed} failed. Nothing was written."
        )
    else:
        console.say(
            f"\nImport {'complete' if result.ok and not stopped else 'finished with failures'}: "
            f"{imported} imported, {skipped} skipped, {failed} failed."
        )
        if imported:
            console.say(
                "Each imported lead is recorded as applied (nothing was sent to Lofty); "
                "`reconciler plan` now shows no changes for them."
            )
    if stopped is not None:
        console.say(f"The list stopped early: {stopped}. Import again to adopt the rest.")
    schema = (
        (options.dir / target_modeline).resolve()
        if (target_modeline := _modeline(options.dir))
        else None
    )
    if imported and schema is not None and not schema.exists() and not options.dry_run:
        console.note(
            f"note: the files point editors at the schema {target_modeline}; create it with "
            f"`reconciler schema > {os.path.relpath(schema)}`"
        )
