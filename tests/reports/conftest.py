"""A small simulated chain (three organisations, three trackers, synced over real HTTP and
refreshed), shared by the report tests that need realistic data: test_dutch and test_charts."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from pmolens.pipeline.refresh import refresh
from pmolens.pipeline.sync import sync_all
from pmolens.simulator import DEMO_TOKEN, Simulator, demo_settings
from pmolens.warehouse.config import Settings, settings_from_dict
from pmolens.warehouse.store import Warehouse


@dataclass
class Chain:
    warehouse: Warehouse
    settings: Settings


@pytest.fixture(scope="session")
def demo_chain(tmp_path_factory) -> Iterator[Chain]:
    directory = tmp_path_factory.mktemp("report-chain")
    os.environ["PMOLENS_DEMO_TOKEN"] = DEMO_TOKEN
    with Simulator(seed=7, size=500) as sim:
        data = demo_settings(sim.url)
        data["warehouse"] = {"path": str(directory / "report.duckdb")}
        settings = settings_from_dict(data, base_dir=directory)
        with Warehouse(settings.warehouse_path) as warehouse:
            asyncio.run(sync_all(warehouse, settings, full=True))
            refresh(warehouse, settings)
            yield Chain(warehouse, settings)
