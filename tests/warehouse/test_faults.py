"""Faults, counted: many syncs of all three tracker kinds under injected 429s, 5xx and
wrong-shaped 200s lose no row, duplicate none, and every run record matches its commit.

Bounded: a 600-item portfolio on the loopback simulator, backoff waits capped at 10 ms, about
15-25 s on two cores. ``bench/fault_bench.py`` runs the same campaign at a larger size.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from pmolens.pipeline.sync import sync_all
from pmolens.simulator import DEMO_TOKEN, TOKEN_ENV, Simulator
from pmolens.simulator.protocol import Reply
from pmolens.simulator.server import SimApp
from pmolens.warehouse.store import Warehouse
from tests.warehouse.fault_campaign import (
    ANCHOR,
    patch_clients,
    run_campaign,
    schedule,
    settings_for,
)


def test_wrong_shaped_200s_are_deterministic_and_counted() -> None:
    with Simulator(seed=7, size=300, anchor=ANCHOR, tenants=("northwind",)) as sim:
        auth = ("pmo@northwind.example", DEMO_TOKEN)
        with httpx.Client(base_url=sim.base_url("northwind"), auth=auth, timeout=10) as client:
            knobs = httpx.post(f"{sim.url}/_sim/faults", json={"rate_malformed": 1.0}).json()
            assert knobs["rate_malformed"] == 1.0
            first = client.get("/rest/api/3/myself")
            second = client.get("/rest/api/3/myself")
            body = {"jql": "project = NW", "maxResults": 10}
            third = client.post("/rest/api/3/search/jql", json=body)
            sim.set_faults(rate_malformed=0.0)
            fine = client.get("/rest/api/3/myself")
        assert first.status_code == second.status_code == third.status_code == 200
        assert first.json() == {"errorMessages": ["maintenance"]}
        assert second.headers["content-type"].startswith("text/html")
        assert "maintenance" in second.text
        assert third.json() == {"errorMessages": ["maintenance"]}
        assert fine.json()["timeZone"]
        assert sim.stats["faults"]["malformed"] == 3


def test_a_hundred_faults_lose_nothing_and_every_run_record_matches(tmp_path: Path) -> None:
    report = run_campaign(tmp_path, size=600, rounds=schedule(16))

    assert report.mismatches == []
    assert report.rows_lost == 0
    assert report.rows_duplicated == 0
    assert report.rows_stale == 0
    assert report.live_marked_deleted == 0
    assert report.runs_mismatched == 0
    # the campaign really was one: enough faults of every kind, runs of every outcome
    assert report.injected >= 100, report.faults
    assert min(report.faults[k] for k in ("429", "5xx", "malformed")) >= 20, report.faults
    assert report.outcomes["failed"] >= 3, report.outcomes
    assert report.outcomes["success"] + report.outcomes["partial"] >= 30, report.outcomes
    assert report.runs == 3 * report.rounds == 3 * 17  # 16 under faults, 1 fault-free


def test_an_item_skipped_by_a_partial_run_is_read_again_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One work item's workitemsbatch answer stays wrong-shaped for a whole run: the run skips
    it (partial, with a problem line) and commits the rest; the next, fault-free incremental run
    must still bring that item's change in, however far the cursor moved meanwhile."""
    poison: set[int] = set()
    handle = SimApp.handle

    async def poisoned(self: SimApp, scope: dict[str, Any], raw: bytes) -> Reply:
        batch = scope["path"].endswith("/_apis/wit/workitemsbatch")
        if batch and poison & set(json.loads(raw).get("ids", [])):
            return Reply(200, {"errorMessages": ["maintenance"]})
        return await handle(self, scope, raw)

    monkeypatch.setattr(SimApp, "handle", poisoned)
    monkeypatch.setenv(TOKEN_ENV, DEMO_TOKEN)
    undo = patch_clients(0.01)
    try:
        with Simulator(seed=7, size=600, anchor=ANCHOR, tenants=("contoso",)) as sim:
            settings = settings_for(sim, tmp_path / "w.duckdb")
            with Warehouse(settings.warehouse_path) as wh:
                assert asyncio.run(sync_all(wh, settings, sources=["contoso-ado"], full=True))[0].ok
                # a day of changes: the victim changes early, others later (the cursor moves on)
                changed = sim.mutate(
                    fraction=0.05, seed=3, deletes=0, moves=0, advance_minutes=1440
                )
                victim = int(changed["updated"][0]["id"])
                poison.add(victim)
                [run] = asyncio.run(sync_all(wh, settings, sources=["contoso-ado"]))
                assert run.result is not None and run.result.problems  # partial: it skipped one
                poison.clear()
                assert asyncio.run(sync_all(wh, settings, sources=["contoso-ado"]))[0].ok
                p = sim.portfolio
                index = p.index_of_native(0, victim)
                assert index is not None
                stored = wh.query(
                    "SELECT epoch(updated)::BIGINT FROM work_items WHERE native_id = ?",
                    [str(victim)],
                ).item()
                assert stored == int(p.updated[index])
    finally:
        undo()
