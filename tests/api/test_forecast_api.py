"""/forecast/* over the seeded warehouse plus a history sync.

The seed: epic NW-1 (Northwind) has NW-3 open in team App; epic CO-1 (Contoso, team Pay) has CO-2
open, and CO-2 blocks NW-3. ``history`` adds CO-3 and CO-4 under CO-1 and one finished item a day
for Pay and App over the 90 days before 1 March 2026, so every forecast is exact: Pay needs 3 days
for CO-1, and NW-1 waits for it.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from fastapi.testclient import TestClient

from pmolens.api.app import create_app
from pmolens.pipeline.refresh import refresh
from pmolens.warehouse.store import Staged
from tests.api.conftest import VIEWER, auth
from tests.factories import work_items

AS_OF = datetime(2026, 3, 1, 12, tzinfo=UTC)


def history_items(source: str, team: str, org: str, prefix: str) -> pl.DataFrame:
    rows = []
    for i in range(1, 91):
        done = AS_OF.replace(hour=10) - timedelta(days=i)
        rows.append(
            {"item_id": f"{source}:{prefix}{i}", "source": source, "team": team,
             "organisation": org, "status_category": "done", "raw_status": "Done",
             "created": done - timedelta(days=1), "resolved": done}
        )  # fmt: skip
    return work_items(*rows)


@pytest.fixture
def history(runtime, settings):
    wh = runtime.warehouse
    co = pl.concat(
        [
            history_items("co", "Pay", "Contoso", "h"),
            work_items(
                *[
                    {
                        "item_id": f"co:{n}",
                        "source": "co",
                        "key": f"CO-{n}",
                        "parent_id": "co:1",
                        "team": "Pay",
                        "organisation": "Contoso",
                        "estimate": 2.0,
                    }
                    for n in (3, 4)
                ]
            ),
        ]
    )
    nw = history_items("nw", "App", "Northwind", "h")
    for source, items in (("co", co), ("nw", nw)):
        run_id = wh.begin_run(source, "incremental", None)
        wh.commit_sync(run_id, source, Staged(work_items=[items]), live_ids=None, cursor=None)
    refresh(wh, settings, as_of=AS_OF)
    return runtime


@pytest.fixture
def api(history):
    with TestClient(create_app(history), headers=auth(VIEWER)) as c:
        yield c


def test_needs_a_token(history):
    with TestClient(create_app(history)) as c:
        assert c.get("/forecast/epics").status_code == 401


def test_epic_forecasts_wait_on_the_blocking_epic(api):
    rows = {r["key"]: r for r in api.get("/forecast/epics").json()}
    co1, nw1 = rows["CO-1"], rows["NW-1"]
    assert (co1["remaining_items"], co1["p50"], co1["p95"]) == (3, "2026-03-04", "2026-03-04")
    assert nw1["own_p85"] == "2026-03-02"  # one item at one a day, alone
    assert nw1["p85"] == "2026-03-04"  # but CO-2 (in CO-1) blocks NW-3
    assert (nw1["driven_by_key"], nw1["driven_share"]) == ("CO-1", 1.0)
    assert nw1["dependency_delay_days_p85"] == 2
    assert nw1["blockers"] == ["co:1"]


def test_epic_filters(api):
    assert [r["key"] for r in api.get("/forecast/epics", params={"team": "App"}).json()] == ["NW-1"]
    assert [r["key"] for r in api.get("/forecast/epics?organisation=Contoso").json()] == ["CO-1"]
    assert [r["key"] for r in api.get("/forecast/epics?epic=co:1").json()] == ["CO-1"]
    assert api.get("/forecast/epics?limit=0").status_code == 422
    assert api.get("/forecast/epics?teem=App").status_code == 422


def test_epics_as_csv_and_parquet(api):
    csv = api.get("/forecast/epics?format=csv")
    assert csv.headers["content-type"].startswith("text/csv")
    frame = pl.read_csv(io.BytesIO(csv.content))
    assert set(frame["key"].to_list()) == {"CO-1", "NW-1"}
    parquet = api.get("/forecast/epics", params={"format": "parquet"})
    assert pl.read_parquet(io.BytesIO(parquet.content)).height == 2


def test_how_many_by_date(api):
    default = {r["team"]: r for r in api.get("/forecast/teams").json()}
    assert default["Pay"]["target_date"] == "2026-04-12"  # six weeks after the sync day
    assert (default["Pay"]["items_p85"], default["Pay"]["organisation"]) == (42, "Contoso")
    rows = api.get("/forecast/teams", params={"date": "2026-03-11", "team": "App"}).json()
    assert [(r["team"], r["days"], r["items_p50"]) for r in rows] == [("App", 10, 10)]
    assert api.get("/forecast/teams?date=2026-02-01").status_code == 422  # before the sync
    assert api.get("/forecast/teams?date=soon").status_code == 422
    assert api.get("/forecast/teams?organisation=Nowhere").json() == []


def test_initiatives_route_answers(api):
    assert api.get("/forecast/initiatives").json() == []  # the seed has no initiatives
