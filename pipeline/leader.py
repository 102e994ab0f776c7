"""One scheduler for the whole lake: the `pmolens serve` processes elect a leader through a
PostgreSQL advisory lock, and only the leader runs the cron (syncs and report deliveries).

A lock lives as long as its database session, so when the leader dies (kill -9, a lost machine)
PostgreSQL drops its session and another process takes the lock at its next try: the takeover
takes at most ``interval`` seconds plus the time PostgreSQL needs to notice the dead session
(at once for a killed process on a live machine, TCP keepalive for a lost one). A leader that
loses its session stops its scheduler before anyone else can start one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable

from pmolens.warehouse.lake import Lake, PgLock

log = logging.getLogger("pmolens.serve")

LEADER_INTERVAL = 2.0  # seconds between tries (and between checks of a held lock)


class Leadership:
    """Run ``lead()`` only while this process holds the scheduler lock; try again when not."""

    def __init__(
        self,
        lake: Lake,
        lead: Callable[[], Awaitable[object]],
        *,
        interval: float = LEADER_INTERVAL,
        name: str = "scheduler",
    ) -> None:
        self.lock: PgLock = lake.lock(name)
        self.lead = lead
        self.interval = interval
        self.leading = False

    async def run_forever(self) -> None:
        task: asyncio.Task[object] | None = None
        try:
            while True:
                if task is None:
                    if await asyncio.to_thread(self.lock.try_acquire):
                        log.warning("pmolens serve pid %d now leads the scheduler", os.getpid())
                        self.leading = True
                        task = asyncio.ensure_future(self.lead())
                elif task.done() or not await asyncio.to_thread(self.lock.alive):
                    log.warning("pmolens serve pid %d no longer leads the scheduler", os.getpid())
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
                    task = None
                    self.leading = False
                    self.lock.release()
                await asyncio.sleep(self.interval)
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            self.leading = False
            self.lock.release()
