"""Cron per source (``schedule`` in the config) for ``pmolens serve``.

APScheduler's ``CronTrigger`` computes fire times, but ``tick(now)`` drives them, so tests move a
fake clock instead of sleeping; missed runs (the server was down or busy) are coalesced into one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.triggers.cron import CronTrigger

from pmolens.pipeline.manager import AlreadySyncing, SyncManager
from pmolens.warehouse.config import ConfigError, Settings


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
