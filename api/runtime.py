"""What `pmolens serve` runs besides HTTP: the sync manager and the cron scheduler.

All syncs of a server go through one ``SyncManager`` in the server's event loop: one sync per
source at a time (a second request is refused, the scheduler skips), every run recorded in
``sync_runs``, results refreshed once after the syncs that were running have finished.

The scheduler uses APScheduler's ``CronTrigger`` to compute fire times but drives them from
``tick(now)``, so tests move a fake clock instead of sleeping; missed runs (the server was down or
busy) are coalesced into one.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from apscheduler.triggers.cron import CronTrigger

from warehouse import results
from warehouse.config import ConfigError, Settings, SourceConfig
from warehouse.store import Warehouse
from warehouse.sync import SyncError, begin, sync_source

log = logging.getLogger("pmolens.serve")


class AlreadySyncing(RuntimeError):
    def __init__(self, sources: list[str]) -> None:
        super().__init__(f"already syncing: {', '.join(sources)}")
        self.sources = sources


@dataclass
class Runtime:
    """Everything a request needs, built once per app.

    ``instance``: this server's random id, written in the single-writer claim and answered by
    ``/health``, so a claim is trusted only when its server answers as itself.
    """

    settings: Settings
    warehouse: Warehouse
    syncs: SyncManager
    results: results.ResultCache
    instance: str = field(default_factory=lambda: secrets.token_hex(16))

    def start(self) -> None:
        """This process is now the warehouse's one writer: every run still ``running`` was left
        by a process that died (a killed server or CLI sync) and is marked abandoned."""
        abandoned = self.warehouse.abandon_running()
        if abandoned:
            log.warning("marked %d run(s) left running by a stopped process abandoned", abandoned)


class SyncManager:
    def __init__(
        self,
        warehouse: Warehouse,
        settings: Settings,
        *,
        client_factory: Callable[[SourceConfig], object] | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.settings = settings
        self.client_factory = client_factory  # tests and the demo hand in their own clients
        self.running: dict[str, asyncio.Task[None]] = {}
        self._refresh_lock = asyncio.Lock()

    def start(
        self,
        sources: list[str] | None = None,
        *,
        full: bool = False,
        allow_mass_delete: bool = False,
    ) -> list[int]:
        """Start syncs in the background; returns their run ids. Refuses busy sources."""
        chosen = [self.settings.source(n) for n in sources] if sources else self.settings.sources
        if not chosen:
            raise ConfigError("no sources configured")
        busy = [c.name for c in chosen if c.name in self.running]
        if busy:
            raise AlreadySyncing(busy)
        self.warehouse.register_config(self.settings)
        run_ids = []
        for config in chosen:
            run_id = begin(self.warehouse, config, full=full)
            task = asyncio.get_running_loop().create_task(
                self._run(config, run_id, full, allow_mass_delete)
            )
            self.running[config.name] = task
            run_ids.append(run_id)
        return run_ids

    async def _run(
        self, config: SourceConfig, run_id: int, full: bool, allow_mass_delete: bool = False
    ) -> None:
        try:
            client = self.client_factory(config) if self.client_factory else None
            await sync_source(
                self.warehouse,
                self.settings,
                config,
                full=full,
                run_id=run_id,
                allow_mass_delete=allow_mass_delete,
                client=client,  # type: ignore[arg-type]
            )
        except SyncError as exc:
            log.warning("sync failed: %s", exc)
        except Exception:  # a bug must not kill the server; the run is marked failed
            log.exception("sync of %s crashed", config.name)
        finally:
            self.running.pop(config.name, None)
        if not self.running:
            await self.refresh()

    async def refresh(self) -> None:
        async with self._refresh_lock:
            await asyncio.to_thread(results.refresh, self.warehouse, self.settings)

    async def wait(self) -> None:
        """Until every running sync (and its refresh) is done. For tests and shutdown."""
        while self.running:
            await asyncio.gather(*self.running.values(), return_exceptions=True)
        async with self._refresh_lock:
            pass


class SyncScheduler:
    """Cron per source (``schedule`` in the config), ticked by a clock that tests control."""

    def __init__(
        self,
        settings: Settings,
        manager: SyncManager,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.manager = manager
        self.clock = clock
        self.triggers = {
            s.name: CronTrigger.from_crontab(s.schedule, timezone=UTC)
            for s in settings.sources
            if s.schedule
        }
        now = clock()
        self.next_fire: dict[str, datetime | None] = {
            name: trigger.get_next_fire_time(None, now) for name, trigger in self.triggers.items()
        }
        self.skipped: list[str] = []

    def tick(self) -> list[str]:
        """Start every source whose time has come; missed fire times collapse into one run."""
        now = self.clock()
        started = []
        for name, due in list(self.next_fire.items()):
            if due is None or due > now:
                continue
            trigger = self.triggers[name]
            following = trigger.get_next_fire_time(due, due)
            while following is not None and following <= now:  # coalesce missed runs
                following = trigger.get_next_fire_time(following, following)
            self.next_fire[name] = following
            try:
                self.manager.start([name])
                started.append(name)
            except AlreadySyncing:
                self.skipped.append(name)  # one sync per source at a time
        return started

    def seconds_to_next(self) -> float:
        pending = [d for d in self.next_fire.values() if d is not None]
        if not pending:
            return 60.0
        return max(0.5, min((min(pending) - self.clock()).total_seconds(), 60.0))

    async def run_forever(self) -> None:
        while True:
            self.tick()
            await asyncio.sleep(self.seconds_to_next())


def validate_schedules(settings: Settings) -> None:
    """A bad cron expression is a config error at start-up, not a silent no-op."""
    for source in settings.sources:
        if source.schedule:
            try:
                CronTrigger.from_crontab(source.schedule, timezone=UTC)
            except ValueError as exc:
                raise ConfigError(
                    f"sources ({source.name}).schedule: {source.schedule!r} is not a cron "
                    f"expression ({exc}); use five fields, e.g. '*/30 * * * *'"
                ) from None


def make_runtime(settings: Settings, warehouse: Warehouse | None = None) -> Runtime:
    warehouse = warehouse or Warehouse(settings.warehouse_path)
    warehouse.register_config(settings)
    return Runtime(
        settings=settings,
        warehouse=warehouse,
        syncs=SyncManager(warehouse, settings),
        results=results.ResultCache(warehouse, settings),
    )
