"""What a request needs, built once per app: settings, the warehouse, the sync manager and the
kept results (``Runtime``). The sync manager and scheduler themselves are the pipeline's
(``pipeline.manager``, ``pipeline.schedule``).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

from pmolens.pipeline.manager import SyncManager
from pmolens.warehouse.config import Settings
from pmolens.warehouse.results import ResultCache
from pmolens.warehouse.store import Warehouse

log = logging.getLogger("pmolens.serve")


@dataclass
class Runtime:
    """Everything a request needs, built once per app.

    ``instance``: this server's random id, written in the single-writer claim and answered by
    ``/health``, so a claim is trusted only when its server answers as itself.
    """

    settings: Settings
    warehouse: Warehouse
    syncs: SyncManager
    results: ResultCache
    instance: str = field(default_factory=lambda: secrets.token_hex(16))

    def start(self) -> None:
        """This process is now the warehouse's one writer: every run still ``running`` was left
        by a process that died (a killed server or CLI sync) and is marked abandoned."""
        abandoned = self.warehouse.abandon_running()
        if abandoned:
            log.warning("marked %d run(s) left running by a stopped process abandoned", abandoned)


def make_runtime(settings: Settings, warehouse: Warehouse | None = None) -> Runtime:
    warehouse = warehouse or Warehouse.open(settings)
    warehouse.register_config(settings)
    return Runtime(
        settings=settings,
        warehouse=warehouse,
        syncs=SyncManager(warehouse, settings),
        results=ResultCache(warehouse, settings),
    )
