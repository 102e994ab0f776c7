"""Cron per source (``schedule`` in the config) for ``pmolens serve``, and jobs that follow syncs.

APScheduler's ``CronTrigger`` computes fire times, but ``tick(now)`` drives them, so tests move a
fake clock instead of sleeping; missed runs (the server was down or busy) are coalesced into one.

A job (``add_job``; the upper layers register scheduled report deliveries this way) runs on its
own cron *after the syncs it follows*: when its time comes while one of those sources is syncing,
or while the results refresh after a sync runs, it waits until they are done, so it sees that
sync's committed data and its kept results. It never starts a sync itself, and it never waits
longer than ``max_wait`` (then it runs on what is committed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from pmolens.pipeline.manager import AlreadySyncing, SyncManager
from pmolens.warehouse.config import ConfigError, Settings

log = logging.getLogger("pmolens.serve")


@dataclass
class Job:
    """Something to run on a cron after the syncs of ``follows`` (source names) are done."""

    name: str
    trigger: CronTrigger
    run: Callable[[], Awaitable[object]]
    follows: frozenset[str]
    next_fire: datetime | None = None
    due_since: datetime | None = None  # its time came; waiting for the syncs it follows
    task: asyncio.Task[object] | None = field(default=None, repr=False)


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
        self.jobs: dict[str, Job] = {}
        self.max_wait = timedelta(hours=1)

    def add_job(
        self,
        name: str,
        cron: str,
        run: Callable[[], Awaitable[object]],
        *,
        follows: Collection[str] = (),
    ) -> None:
        """Run ``run()`` on ``cron``, after any running sync of ``follows`` (and the results
        refresh after it) is done. One run per job at a time; missed fire times coalesce."""
        trigger = CronTrigger.from_crontab(cron, timezone=UTC)
        self.jobs[name] = Job(
            name, trigger, run, frozenset(follows), trigger.get_next_fire_time(None, self.clock())
        )

    def tick(self) -> list[str]:
        """Start every source whose time has come; missed fire times collapse into one run.
        Then start the jobs that are due and no longer wait for a sync (``tick_jobs``)."""
        started = self._tick_syncs()
        if self.jobs:
            self.tick_jobs()
        return started

    def tick_jobs(self) -> list[str]:
        """Start each due job whose followed syncs are done; returns the jobs started."""
        now = self.clock()
        started = []
        running, refreshing = set(self.manager.running), self.manager.refreshing
        for job in self.jobs.values():
            if job.next_fire is not None and job.next_fire <= now:
                following = job.trigger.get_next_fire_time(job.next_fire, job.next_fire)
                while following is not None and following <= now:  # coalesce missed runs
                    following = job.trigger.get_next_fire_time(following, following)
                job.next_fire = following
                if job.task is not None and not job.task.done():
                    self.skipped.append(job.name)  # the last run is still going: one at a time
                elif job.due_since is None:
                    job.due_since = now
            if job.due_since is None:
                continue
            waiting = refreshing or bool(job.follows & running)
            if waiting and now - job.due_since < self.max_wait:
                continue
            if waiting:
                log.warning(
                    "job %s waited %s for its syncs: running on what is committed",
                    job.name,
                    self.max_wait,
                )
            job.due_since = None
            job.task = asyncio.get_running_loop().create_task(self._run_job(job))
            started.append(job.name)
        return started

    async def wait_jobs(self) -> None:
        """Until every running job is done (shutdown and tests)."""
        tasks = [job.task for job in self.jobs.values() if job.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run_job(self, job: Job) -> None:
        try:
            await job.run()
        except Exception:  # a job's failure is its own to record; it must not stop the scheduler
            log.exception("scheduled job %s failed", job.name)

    def _tick_syncs(self) -> list[str]:
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
        if any(job.due_since is not None for job in self.jobs.values()):
            return 1.0  # a job waits for a sync: look again soon
        pending = [d for d in self.next_fire.values() if d is not None]
        pending += [job.next_fire for job in self.jobs.values() if job.next_fire is not None]
        if not pending:
            return 60.0
        return max(0.5, min((min(pending) - self.clock()).total_seconds(), 60.0))

    async def run_forever(self) -> None:
        while True:
            self.tick()
            await asyncio.sleep(self.seconds_to_next())


def validate_schedules(settings: Settings) -> None:
    """A bad cron expression (a source's schedule, a report's cron) is a config error at
    start-up, not a silent no-op."""
    for source in settings.sources:
        if source.schedule:
            try:
                CronTrigger.from_crontab(source.schedule, timezone=UTC)
            except ValueError as exc:
                raise ConfigError(
                    f"sources ({source.name}).schedule: {source.schedule!r} is not a cron "
                    f"expression ({exc}); use five fields, e.g. '*/30 * * * *'"
                ) from None
    for report in settings.reports:
        try:
            CronTrigger.from_crontab(report.cron, timezone=UTC)
        except ValueError as exc:
            raise ConfigError(
                f"reports ({report.name}).cron: {report.cron!r} is not a cron expression "
                f"({exc}); use five fields, e.g. '0 7 * * mon' (Mondays 07:00 UTC)"
            ) from None
