"""A small simulated chain (three organisations, three trackers, synced over real HTTP and
refreshed), shared by the report tests that need realistic data: test_dutch and test_charts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from pmolens.warehouse.config import Settings
from pmolens.warehouse.store import Warehouse
from tests.factories import simulated_chain


@dataclass
class Chain:
    warehouse: Warehouse
    settings: Settings


@pytest.fixture(scope="session")
def demo_chain(tmp_path_factory) -> Iterator[Chain]:
    settings, _ = simulated_chain(tmp_path_factory.mktemp("report-chain"), size=500)
    with Warehouse(settings.warehouse_path) as warehouse:
        yield Chain(warehouse, settings)
