"""Sync orchestration: connector batches -> staged frames -> one atomic commit per source run.

The cursor handed to a connector is the max ``updated`` of what the last successful run committed;
the new cursor is computed from what this run read and committed together with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from connectors import registry
from connectors.base import make_client
from connectors.http import TrackerClient, TrackerError
from warehouse.config import ConfigError, Settings, SourceConfig
from warehouse.model import frame
from warehouse.store import CommitResult, Staged, Warehouse

log = logging.getLogger("pmolens.sync")

Progress = Callable[[str, int], None]  # (source, items read so far)


class SyncError(RuntimeError):
    """A source's sync failed; the warehouse is as it was. The message is safe to show."""

    def __init__(self, source: str, message: str, run_id: int | None = None) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.run_id = run_id


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
) -> CommitResult:
    """Read one source and commit it atomically. Raises SyncError (warehouse untouched).

    ``run_id``: a run already recorded with ``begin`` (the API hands out the id first).
    """
    cursor_before = None if full else warehouse.last_cursor(config.name)
    if run_id is None:
        run_id = begin(warehouse, config, full=full)
    staged = Staged()
    secrets: list[str] = []
    try:
        if client is None:
            secrets.append(config.token())
            client = make_client(config)
        async with client:
            connector = registry()[config.kind](config, client)
            # the reconciliation listing runs beside the fetch (it is round trips, not data)
            listing = asyncio.create_task(connector.live_ids()) if config.reconcile else None
            try:
                async for batch in connector.fetch(cursor_before):
                    staged.work_items.append(frame("work_items", batch.work_items))
                    staged.links.append(frame("links", batch.links))
                    staged.sprints.append(frame("sprints", batch.sprints))
                    staged.status_changes.append(frame("status_changes", batch.status_changes))
                    staged.history_missing += batch.history_missing
                    staged.problems += batch.problems
                    if progress:
                        progress(config.name, staged.item_count)
                live = await listing if listing is not None else None
            finally:
                if listing is not None and not listing.done():
                    listing.cancel()
        if live is not None:
            # an item created after the listing began but fetched by this run is alive
            live |= _native_ids(staged)
        cursor = _new_cursor(staged, cursor_before)
        return await asyncio.to_thread(
            warehouse.commit_sync,
            run_id,
            config.name,
            staged,
            live_ids=live,
            cursor=cursor,
            cross_links=settings.cross_links,
        )
    except (TrackerError, ConfigError, OSError, ValueError, KeyError, TypeError) as exc:
        message = _redact(_describe(exc), secrets)
        warehouse.fail_run(run_id, message, staged.problems)
        raise SyncError(config.name, message, run_id) from None
    except BaseException as exc:  # cancelled / interrupted: record, then let it propagate
        warehouse.fail_run(run_id, _redact(f"interrupted ({type(exc).__name__})", secrets))
        raise


def begin(warehouse: Warehouse, config: SourceConfig, *, full: bool = False) -> int:
    """Record the start of a run and return its id."""
    cursor_before = None if full else warehouse.last_cursor(config.name)
    mode = "full" if cursor_before is None else "incremental"
    return warehouse.begin_run(config.name, mode, cursor_before)


async def sync_all(
    warehouse: Warehouse,
    settings: Settings,
    *,
    sources: list[str] | None = None,
    full: bool = False,
    progress: Progress | None = None,
) -> list[SyncOutcome]:
    """Sync sources side by side; one failing source never stops or spoils the others."""
    chosen = [settings.source(n) for n in sources] if sources else settings.sources
    warehouse.register_config(settings)

    async def one(config: SourceConfig) -> SyncOutcome:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            result = await sync_source(warehouse, settings, config, full=full, progress=progress)
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
    latest: datetime | None = None
    for part in staged.work_items:
        if part.height:
            value = part.select(pl.col("updated").max()).item()
            if value is not None and (latest is None or value > latest):
                latest = value
    if before is not None and (latest is None or before > latest):
        return before
    return latest


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TrackerError | ConfigError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
