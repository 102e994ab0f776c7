"""Concurrent listings over the simulator: the sliced ADO revision feed and Jira id ranges give
exactly what one sequential chain gives."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from pmolens.connectors.azure_devops import AzureDevOpsConnector
from pmolens.connectors.base import make_client
from pmolens.connectors.jira import JiraConnector
from pmolens.simulator import DEMO_TOKEN, TOKEN_ENV, Simulator, demo_settings
from pmolens.warehouse.config import settings_from_dict
from pmolens.warehouse.model import Batch

ANCHOR = datetime(2026, 6, 15, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def sim():
    with Simulator(seed=11, size=3000, anchor=ANCHOR, tenants=("northwind", "contoso")) as s:
        yield s


def _config(sim: Simulator, name: str, concurrency: int):
    data = demo_settings(sim.url)
    data["sources"] = [
        dict(s, concurrency=concurrency) for s in data["sources"] if s["name"] == name
    ]
    return settings_from_dict(data).sources[0]


def _fetch_ado(sim: Simulator, concurrency: int) -> list[Batch]:
    config = _config(sim, "contoso-ado", concurrency)

    async def go() -> list[Batch]:
        async with make_client(config) as client:
            return [b async for b in AzureDevOpsConnector(config, client).fetch(None)]

    return asyncio.run(go())


def _changes(batches: list[Batch]) -> set[tuple]:
    return {
        (c["item_id"], c["change_id"], c["to_status"]) for b in batches for c in b.status_changes
    }


def _count(sim: Simulator, needle: str) -> int:
    return sum(n for name, n in sim.stats["requests"].items() if needle in name)


def test_sliced_revision_feed_equals_the_sequential_chain(sim, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, DEMO_TOKEN)
    before = _count(sim, "workitemrevisions"), _count(sim, "/updates")
    sequential = _fetch_ado(sim, 1)
    middle = _count(sim, "workitemrevisions"), _count(sim, "/updates")
    sliced = _fetch_ado(sim, 8)
    after = _count(sim, "workitemrevisions"), _count(sim, "/updates")
    assert _changes(sliced) == _changes(sequential) and _changes(sliced)
    assert not any(b.history_missing for b in sliced)
    assert middle[1] == before[1] and after[1] == middle[1]  # no item needed /updates
    assert after[0] - middle[0] > middle[0] - before[0]  # slices: more (overlapping) pages


def test_jira_id_ranges_equal_the_sequential_listing(sim, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, DEMO_TOKEN)
    config = _config(sim, "northwind-jira", 8)

    async def go() -> tuple[set[str], list[str]]:
        async with make_client(config) as client:
            connector = JiraConnector(config, client)
            connector_ids = await connector.live_ids()
            chain = await connector._ids(connector._jql(connector._where()))
            return connector_ids, chain

    sim.mutate(fraction=0.01, seed=5, deletes=20)
    import pmolens.connectors.jira as jira

    monkeypatch.setattr(jira, "ID_PAGE", 500)  # small pages so the listing must split
    monkeypatch.setattr(jira, "RANGE_IDS", 400)
    ranged, chain = asyncio.run(go())
    assert ranged == set(chain) and len(chain) == len(set(chain))


def test_ado_items_are_fetched_while_the_feed_is_read_and_come_in_order(sim, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, DEMO_TOKEN)
    config = _config(sim, "contoso-ado", 4)

    async def go() -> list[Batch]:
        async with make_client(config) as client:
            connector = AzureDevOpsConnector(config, client)
            items_asked = asyncio.Event()
            real_items, real_feed = connector._work_items, connector._revision_feed

            async def work_items(ids, run):  # type: ignore[no-untyped-def]
                items_asked.set()
                return await real_items(ids, run)

            async def feed(run):  # type: ignore[no-untyped-def]
                # a connector that waited for the feed before asking for items would stop here
                await asyncio.wait_for(items_asked.wait(), 60)
                return await real_feed(run)

            monkeypatch.setattr(connector, "_work_items", work_items)
            monkeypatch.setattr(connector, "_revision_feed", feed)
            return [b async for b in connector.fetch(None)]

    batches = asyncio.run(go())
    natives = [int(r["native_id"]) for b in batches for r in b.work_items]
    sequential = _fetch_ado(sim, 1)
    assert natives == sorted(set(natives))  # each once, in id order, whatever finished first
    assert set(natives) == {int(r["native_id"]) for b in sequential for r in b.work_items}
    assert batches[0].sprints and not any(b.sprints for b in batches[1:])
    assert not any(b.history_missing for b in batches)
    assert _changes(batches) == _changes(sequential)
