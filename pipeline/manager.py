"""One sync per source at a time inside a long-running process (``pmolens serve``).

Every run is recorded in ``sync_runs``; results are refreshed once after the syncs that were
running have finished; a refresh failure is kept and shown, never swallowed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pmolens.connectors.http import TrackerClient
from pmolens.pipeline.refresh import refresh, refresh_after_sync
from pmolens.pipeline.sync import SyncError, begin, sync_source
from pmolens.warehouse.config import ConfigError, Settings, SourceConfig
from pmolens.warehouse.secrets import redact
from pmolens.warehouse.store import Warehouse

log = logging.getLogger("pmolens.serve")


class AlreadySyncing(RuntimeError):
    def __init__(self, sources: list[str]) -> None:
        super().__init__(f"already syncing: {', '.join(sources)}")
        self.sources = sources


class SyncManager:
    """All syncs of a server: one per source at a time, results refreshed after the last ends."""

    def __init__(
        self,
        warehouse: Warehouse,
        settings: Settings,
        *,
        client_factory: Callable[[SourceConfig], TrackerClient] | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.settings = settings
        self.client_factory = client_factory  # tests and the demo hand in their own clients
        self.running: dict[str, asyncio.Task[None]] = {}
        self.refresh_error: str | None = None  # why the kept results are stale, if they are
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
        # on the lake a worker elsewhere may hold a source: claim them all before starting any
        claimed: list[str] = []
        for config in chosen:
            if not self.warehouse.claim_source(config.name):
                for name in claimed:
                    self.warehouse.release_source(name)
                raise AlreadySyncing([config.name])
            claimed.append(config.name)
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
                client=client,
            )
        except SyncError as exc:
            log.warning("sync failed: %s", exc)
        except Exception:  # a bug must not kill the server; the run is marked failed
            log.exception("sync of %s crashed", config.name)
        finally:
            self.running.pop(config.name, None)
        if not self.running:
            await self.refresh()

    @property
    def refreshing(self) -> bool:
        """Whether the results are being recomputed right now (jobs that follow syncs wait)."""
        return self._refresh_lock.locked()

    async def refresh(self) -> None:
        """Recompute the kept results. A failure never passes silently: the synced data stays
        committed, the results stay at their last generation, and ``refresh_error`` (shown by
        ``/health``, status degraded) says why until a refresh succeeds."""
        async with self._refresh_lock:
            try:
                # the file: this server is the one writer; the lake: one process at a time
                again = refresh if self.warehouse.lake is None else refresh_after_sync
                await asyncio.to_thread(again, self.warehouse, self.settings)
            except Exception as exc:
                log.debug("results refresh failed", exc_info=True)
                first = (str(exc).strip().splitlines() or [""])[0]
                self.refresh_error = redact(f"{type(exc).__name__}: {first}"[:500])
                log.error("results refresh failed, results stay stale: %s", self.refresh_error)
            else:
                self.refresh_error = None

    async def wait(self) -> None:
        """Until every running sync (and its refresh) is done. For tests and shutdown."""
        while self.running:
            await asyncio.gather(*self.running.values(), return_exceptions=True)
        async with self._refresh_lock:
            pass
