"""/flow and its tables over the seeded warehouse plus a sync with status history.

Second sync (as of Sat 10 Jan 2026): NW-4 (Web) in progress 2 Jan -> done 5 Jan (cycle 3 days
exact, 4 whole days; lead 4 exact, 5 whole); NW-5 (Web) in progress since 3 Jan (age 7 days exact,
8 whole). App (NW-3) and Pay (CO-2) have to-do work only. Northwind has no time zone: UTC.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import polars as pl
import pytest
from fastapi.testclient import TestClient

from pmolens.api.app import create_app
from pmolens.pipeline.refresh import refresh
from pmolens.warehouse.store import Staged
from tests.api.conftest import VIEWER, auth
from tests.factories import frame, work_items

AS_OF = datetime(2026, 1, 10, tzinfo=UTC)


def _move(item: str, day: int, to: str, n: int) -> dict[str, object]:
    cats = {
        "In Progress": ("todo", "in_progress", "To Do"),
        "Done": ("in_progress", "done", "In Progress"),
    }
    old_cat, new_cat, old = cats[to]
    return {"source": "nw", "item_id": item, "change_id": f"{item}-{n}",
            "at": datetime(2026, 1, day, tzinfo=UTC), "field": "status", "from_status": old,
            "to_status": to, "from_category": old_cat, "to_category": new_cat}  # fmt: skip


@pytest.fixture
def api(runtime, settings):
    items = work_items(
        {"item_id": "nw:4", "source": "nw", "key": "NW-4", "team": "Web",
         "organisation": "Northwind", "status_category": "done", "raw_status": "Done",
         "estimate": 2.0, "parent_id": "nw:1"},
        {"item_id": "nw:5", "source": "nw", "key": "NW-5", "team": "Web",
         "organisation": "Northwind", "status_category": "in_progress",
         "raw_status": "In Progress"},
    )  # fmt: skip
    history = frame(
        "status_changes",
        _move("nw:4", 2, "In Progress", 1),
        _move("nw:4", 5, "Done", 2),
        _move("nw:5", 3, "In Progress", 1),
    )
    wh = runtime.warehouse
    run_id = wh.begin_run("nw", "incremental", None)
    wh.commit_sync(
        run_id,
        "nw",
        Staged(work_items=[items], status_changes=[history]),
        live_ids=None,
        cursor=None,
    )
    refresh(wh, settings, as_of=AS_OF)
    with TestClient(create_app(runtime), headers=auth(VIEWER)) as c:
        yield c


def test_needs_a_token(runtime):
    with TestClient(create_app(runtime)) as c:
        assert c.get("/flow").status_code == 401


def test_summary_per_team(api):
    body = api.get("/flow").json()
    assert [r["team"] for r in body] == ["App", "Pay", "Web"]
    web = body[2]
    assert web["organisation"] == "Northwind" and web["items_done"] == 1
    # percentiles on whole days
    assert web["cycle_time_days"] == {"p50": 4.0, "p70": 4.0, "p85": 4.0, "p95": 4.0}
    assert web["lead_time_days"]["p85"] == 5.0
    assert (web["wip"], web["aging_over_p85"]) == (1, 1)
    # Web's history has no waiting status: efficiency is not measurable, and says why
    assert (web["flow_efficiency"], web["efficiency_note"]) == (None, "no_waiting_status_seen")
    # 12 complete weeks before the week of Mon 5 Jan; NW-4 finished in that (current) week
    assert web["throughput_per_week"] == 0.0
    assert [r["team"] for r in api.get("/flow", params={"organisation": "Contoso"}).json()] == [
        "Pay"
    ]
    assert [r["team"] for r in api.get("/flow", params={"team": "Web"}).json()] == ["Web"]


def test_cycle_time_table_and_filters(api):
    body = api.get("/flow/cycle-time").json()
    assert body["total"] == 1
    item = body["items"][0]
    assert (item["key"], item["cycle_time_days"], item["lead_time_days"]) == ("NW-4", 3.0, 4.0)
    assert (item["cycle_days"], item["lead_days"], item["cycle_working_days"]) == (4, 5, 2)
    assert item["work_type"] == "feature"
    assert api.get("/flow/cycle-time", params={"team": "App"}).json()["total"] == 0
    assert api.get("/flow/cycle-time", params={"from": "2026-01-06"}).json()["total"] == 0
    assert api.get("/flow/cycle-time", params={"to": "2026-01-05"}).json()["total"] == 1
    assert api.get("/flow/cycle-time", params={"work_type": "defect"}).json()["total"] == 0


def test_throughput_wip_cfd(api):
    weeks = api.get("/flow/throughput", params={"team": "Web", "from": "2025-12-29"}).json()
    assert [(w["week"], w["items"]) for w in weeks] == [("2025-12-29", 0), ("2026-01-05", 1)]
    wip = api.get("/flow/wip", params={"team": "Web", "from": "2026-01-01"}).json()
    assert [d["wip"] for d in wip] == [0, 1, 2, 2, 1, 1, 1, 1, 1, 1]  # 1..10 Jan
    cfd = api.get("/flow/cfd", params={"team": "Web", "from": "2026-01-10"}).json()
    assert [(d["todo"], d["in_progress"], d["done"]) for d in cfd] == [(0, 1, 2)]  # + NW-2


def test_aging_efficiency_distribution_littles(api):
    aging = api.get("/flow/aging").json()
    assert [(a["key"], a["wip_age_days"], a["age_days"], a["age_band"]) for a in aging] == [
        ("NW-5", 8, 7.0, "above_p95")
    ]
    assert aging[0]["team_percentiles"]["p85"] == 4.0
    assert api.get("/flow/aging", params={"over_p85": "false"}).json() == []
    eff = api.get("/flow/efficiency", params={"team": "Web"}).json()
    assert (eff[0]["items"], eff[0]["active_days"], eff[0]["flow_efficiency"]) == (1, 3.0, None)
    assert eff[0]["efficiency_note"] == "no_waiting_status_seen"
    dist = api.get("/flow/distribution").json()
    assert [(d["team"], d["work_type"], d["share"]) for d in dist] == [("Web", "feature", 1.0)]
    littles = api.get("/flow/littles-law", params={"team": "Web"}).json()[0]
    assert littles["window_end"] == "2026-01-09" and littles["consistent"] is False


def test_bad_values_are_422(api):
    assert api.get("/flow", params={"teem": "Web"}).status_code == 422
    assert api.get("/flow/cycle-time", params={"work_type": "epic"}).status_code == 422
    assert api.get("/flow/throughput", params={"from": "last week"}).status_code == 422
    assert api.get("/flow/wip", params={"format": "xml"}).status_code == 422
    assert api.get("/flow/cycle-time", params={"limit": 0}).status_code == 422


def test_csv_and_parquet(api):
    csv = api.get("/flow/cycle-time", params={"format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert pl.read_csv(io.BytesIO(csv.content))["key"].to_list() == ["NW-4"]
    summary = pl.read_csv(io.BytesIO(api.get("/flow", params={"format": "csv"}).content))
    assert "cycle_p85" in summary.columns and summary.height == 3
    parquet = api.get("/flow/cfd", params={"format": "parquet"})
    cfd = pl.read_parquet(io.BytesIO(parquet.content))
    assert cfd.filter(pl.col("team") == "Web")["date"].max() == date(2026, 1, 10)
    for path in ("/flow/throughput", "/flow/wip", "/flow/aging", "/flow/efficiency",
                 "/flow/distribution", "/flow/littles-law"):  # fmt: skip
        assert api.get(path, params={"format": "csv"}).status_code == 200
