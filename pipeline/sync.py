"""Sync orchestration: connector batches -> staged frames -> one atomic commit per source run.

The cursor handed to a connector is the max ``updated`` of what the last successful run committed;
the new cursor is computed from what this run read and committed together with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from pmolens.connectors import registry
from pmolens.connectors.base import Connector, make_client
from pmolens.connectors.http import TrackerClient, TrackerError
from pmolens.connectors.mapping import gc_paused
from pmolens.warehouse.config import ConfigError, Settings, SourceConfig
from pmolens.warehouse.model import frame
from pmolens.warehouse.secrets import redact
from pmolens.warehouse.store import CommitResult, Staged, Warehouse

log = logging.getLogger("pmolens.sync")

# (source, items read so far, items the tracker says the run reads, or None when it does not say:
# Jira DC's search total, the Jira Cloud id listing's length, the Azure DevOps WIQL id count)
Progress = Callable[[str, int, int | None], None]


class SyncError(RuntimeError):
    """A source's sync failed; the warehouse is as it was. The message is safe to show."""

    def __init__(self, source: str, message: str, run_id: int | None = None) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.run_id = run_id


class SourceBusy(SyncError):
    """Another process syncs this source right now (on the lake: it holds the source's lock).
    Nothing was recorded or committed for this attempt."""

    def __init__(self, source: str) -> None:
        super().__init__(
            source,
            "already syncing in another process (it holds the source's lock); this run was "
            "refused - see `pmolens status`",
        )


@dataclass(frozen=True)
class SyncOutcome:
    source: str
    result: CommitResult | None
    error: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.error is None


async def sync_source(
    warehouse: Warehouse,
    settings: Settings,
    config: SourceConfig,
    *,
    full: bool = False,
    client: TrackerClient | None = None,
    progress: Progress | None = None,
    run_id: int | None = None,
    allow_mass_delete: bool = False,
) -> CommitResult:
    """Read one source and commit it atomically. Raises SyncError (warehouse untouched).

    ``run_id``: a run already recorded with ``begin`` (the API hands out the id first).
    ``allow_mass_delete``: lift the source's ``max_delete_share`` guard for this run.

    The run record is the truth about the commit: a run recorded ``failed`` committed nothing
    and did not move its cursor. Once the commit has started it is never abandoned half-way: a
    cancellation waits for it, so the record says what landed.
    """
    if run_id is None:
        run_id = begin(warehouse, config, full=full)
    try:
        return await _sync_claimed(
            warehouse, settings, config, run_id, full, client, progress, allow_mass_delete
        )
    finally:
        warehouse.release_source(config.name)


async def _sync_claimed(
    warehouse: Warehouse,
    settings: Settings,
    config: SourceConfig,
    run_id: int,
    full: bool,
    client: TrackerClient | None,
    progress: Progress | None,
    allow_mass_delete: bool,
) -> CommitResult:
    """The run itself, once ``begin`` recorded it and this process holds the source."""
    # read after the claim: on the lake another worker may have just moved it
    cursor_before = None if full else warehouse.last_cursor(config.name)
    staged = Staged()
    secrets: list[str] = []
    try:
        if client is None:
            secrets.append(config.token())
            client = make_client(config)
        async with client:
            connector = registry()[config.kind](config, client)
            live = await _read(connector, config, cursor_before, staged, progress)
        if live is not None:
            # an item created after the listing began but fetched by this run is alive
            live |= _native_ids(staged)
        cursor = _new_cursor(staged, cursor_before)
        commit = asyncio.ensure_future(
            asyncio.to_thread(
                warehouse.commit_sync,
                run_id,
                config.name,
                staged,
                live_ids=live,
                cursor=cursor,
                cross_links=settings.cross_links,
                max_delete_share=None if allow_mass_delete else config.max_delete_share,
            )
        )
        return await _finish(commit)
    except asyncio.CancelledError:
        warehouse.fail_run(run_id, "interrupted before its commit: nothing was committed")
        raise
    except Exception as exc:  # every failure is one line for the user; the traceback is debug
        log.debug("sync of %s failed", config.name, exc_info=True)
        message = redact(_describe(exc, config), secrets)
        warehouse.fail_run(run_id, message, [redact(p, secrets) for p in staged.problems])
        raise SyncError(config.name, message, run_id) from None


async def _read(
    connector: Connector,
    config: SourceConfig,
    cursor_before: datetime | None,
    staged: Staged,
    progress: Progress | None,
) -> set[str] | None:
    """Stage every batch of the run; the reconciliation listing runs beside the fetch (it is
    round trips, not data). Returns the live ids, or None when this run does not reconcile.
    No task outlives this function: on any failure the listing is cancelled and awaited."""
    listing = asyncio.ensure_future(connector.live_ids()) if config.reconcile else None
    try:
        async for batch in connector.fetch(cursor_before):
            with gc_paused():  # rows -> columns: many objects, no cycles
                staged.work_items.append(frame("work_items", batch.work_items))
                staged.links.append(frame("links", batch.links))
                staged.sprints.append(frame("sprints", batch.sprints))
                staged.status_changes.append(frame("status_changes", batch.status_changes))
            staged.history_missing += batch.history_missing
            staged.skipped += batch.skipped
            staged.problems += batch.problems
            if progress:
                # a connector that knows how many items the run reads says so in ``total``
                progress(config.name, staged.item_count, getattr(connector, "total", None))
        return await listing if listing is not None else None
    finally:
        if listing is not None and not listing.done():
            listing.cancel()
            with contextlib.suppress(BaseException):
                await listing
        elif listing is not None and not listing.cancelled():
            # a listing that failed beside a failed fetch: retrieve its error, or asyncio prints
            # "Task exception was never retrieved" with a traceback on the CLI at exit
            listing.exception()


async def _finish(commit: asyncio.Future[CommitResult]) -> CommitResult:
    """Await a commit running in a thread; a cancellation waits for it to land, then goes on."""
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(commit)
            break
        except asyncio.CancelledError:
            if commit.done():
                result = commit.result()
                break
            cancelled = True  # the thread cannot be stopped half-way: let it finish first
    if cancelled:
        raise asyncio.CancelledError
    return result


def begin(warehouse: Warehouse, config: SourceConfig, *, full: bool = False) -> int:
    """Claim the source (SourceBusy when another process syncs it), record the start of a run
    and return its id. ``sync_source`` gives the claim back when the run ends."""
    if not warehouse.claim_source(config.name):
        raise SourceBusy(config.name)
    try:
        cursor_before = None if full else warehouse.last_cursor(config.name)
        mode = "full" if cursor_before is None else "incremental"
        return warehouse.begin_run(config.name, mode, cursor_before)
    except BaseException:
        warehouse.release_source(config.name)
        raise


async def sync_all(
    warehouse: Warehouse,
    settings: Settings,
    *,
    sources: list[str] | None = None,
    full: bool = False,
    progress: Progress | None = None,
    allow_mass_delete: bool = False,
) -> list[SyncOutcome]:
    """Sync sources side by side; one failing source never stops or spoils the others
    (``sync_source`` turns every failure into a SyncError, so no run is ever cancelled)."""
    chosen = [settings.source(n) for n in sources] if sources else settings.sources
    warehouse.register_config(settings)

    async def one(config: SourceConfig) -> SyncOutcome:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            result = await sync_source(
                warehouse,
                settings,
                config,
                full=full,
                progress=progress,
                allow_mass_delete=allow_mass_delete,
            )
            return SyncOutcome(config.name, result, None, loop.time() - started)
        except SyncError as exc:
            log.warning("%s", exc)
            return SyncOutcome(config.name, None, str(exc), loop.time() - started)

    return list(await asyncio.gather(*(one(c) for c in chosen)))


def _native_ids(staged: Staged) -> set[str]:
    ids: set[str] = set()
    for part in staged.work_items:
        ids.update(part["native_id"].to_list())
    return ids


def _new_cursor(staged: Staged, before: datetime | None) -> datetime | None:
    """The newest ``updated`` read, never behind ``before``. When an item in scope was skipped or
    its history could not be read, the cursor stays at ``before``: an incremental run only reads
    what changed after the cursor, so moving it would leave that item stale until it changes."""
    held = len(set(staged.skipped)) + len(set(staged.history_missing))
    if held:
        since = f"at {before:%Y-%m-%d %H:%M} UTC" if before is not None else "unset (full sync)"
        staged.problems.append(
            f"cursor kept {since}: {held} item(s) could not be read completely this run "
            f"and are read again by the next"
        )
        return before
    latest: datetime | None = None
    for part in staged.work_items:
        if part.height:
            value = part.select(pl.col("updated").max()).item()
            if value is not None and (latest is None or value > latest):
                latest = value
    if before is not None and (latest is None or before > latest):
        return before
    return latest


_REQUEST = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) (/\S*)")


def _describe(exc: BaseException, config: SourceConfig | None = None) -> str:
    """One line: the tracker's or config's own words, else the error type and its first line.
    A tracker's refusal or silence names what to fix: the full URL asked (the client only knows
    the path), the token's environment variable on a 401, the base_url when nothing answered."""
    if isinstance(exc, TrackerError | ConfigError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if config is not None and isinstance(exc, TrackerError):
        first = _REQUEST.sub(lambda m: f"{m[1]} {config.base_url}{m[2]}", first, count=1)
        if exc.status == 401:
            who = f" for {config.email}" if config.kind == "jira_cloud" and config.email else ""
            first = first.replace(
                "check the token environment variable of this source",
                f"the tracker refused the token in {config.token_env}{who} "
                "(sources.token_env): export a valid API token or PAT",
            )
        elif exc.status is None and "(last: " in first:  # connection errors and timeouts
            first += f" - is {config.base_url} (base_url) right and reachable from here?"
    return first[:500]
