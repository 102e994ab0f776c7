"""Faults, counted: many syncs of all three tracker kinds under injected 429s, 5xx and
wrong-shaped 200s lose no row, duplicate none, and every run record matches its commit.

Bounded: a 600-item portfolio on the loopback simulator, backoff waits capped at 10 ms, about
15-25 s on two cores. ``bench/fault_bench.py`` runs the same campaign at a larger size.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from connectors.simulator import DEMO_TOKEN, Simulator
from tests.warehouse.fault_campaign import ANCHOR, run_campaign, schedule


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
