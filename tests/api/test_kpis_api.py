"""/kpis, /kpis/teams, /kpis/trend and /portfolio/value|effort|investment over the seeded
warehouse plus one sync with a closed sprint of team Pay (1-15 February 2026).

Sprint S holds CO-10 (done on 5 Feb) and CO-11 (still open): predictability 1/2. Pay also
finishes one item a day (no sprint) on 1-14 Feb, so the sprint's throughput is 15. CO-1 gets
business value 10, time criticality 2, and estimates 2 + 2 below it: WSJF (10 + 2) / 4 = 3.
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
from tests.factories import frame, work_items

AS_OF = datetime(2026, 3, 1, 12, tzinfo=UTC)


def at(day: int, month: int = 2) -> datetime:
    return datetime(2026, month, day, 10, tzinfo=UTC)


@pytest.fixture
def sprinted(runtime, settings):
    co = dict(source="co", team="Pay", organisation="Contoso")
    items = work_items(
        {"item_id": "co:1", "key": "CO-1", "level": "epic", "business_value": 10.0,
         "time_criticality": 2.0, "title": "Payments epic", **co},
        *[{"item_id": f"co:{n}", "key": f"CO-{n}", "parent_id": "co:1", "estimate": 2.0, **co}
          for n in (3, 4)],
        {"item_id": "co:10", "key": "CO-10", "sprint_id": "co:S", "created": at(1, 1),
         "status_category": "done", "resolved": at(5), "estimate": 3.0, **co},
        {"item_id": "co:11", "key": "CO-11", "sprint_id": "co:S", "created": at(1, 1),
         "estimate": 5.0, **co},
        *[{"item_id": f"co:d{d}", "created": at(d) - timedelta(days=1), "resolved": at(d),
           "status_category": "done", **co} for d in range(1, 15)],
    )  # fmt: skip
    sprints = frame(
        "sprints",
        {"sprint_id": "co:S", "source": "co", "native_id": "S", "name": "Pay 1", "team": "Pay",
         "state": "closed", "start": datetime(2026, 2, 1, tzinfo=UTC),
         "end": datetime(2026, 2, 15, tzinfo=UTC)},
    )  # fmt: skip
    wh = runtime.warehouse
    run_id = wh.begin_run("co", "incremental", None)
    wh.commit_sync(
        run_id, "co", Staged(work_items=[items], sprints=[sprints]), live_ids=None, cursor=None
    )
    refresh(wh, settings, as_of=AS_OF)
    return runtime


@pytest.fixture
def api(sprinted):
    with TestClient(create_app(sprinted), headers=auth(VIEWER)) as c:
        yield c


def test_needs_a_token(sprinted):
    with TestClient(create_app(sprinted)) as c:
        assert c.get("/kpis").status_code == 401
        assert c.get("/portfolio/value").status_code == 401


def test_sprint_kpis(api):
    rows = api.get("/kpis", params={"team": "Pay"}).json()
    assert len(rows) == 1
    s = rows[0]
    assert (s["organisation"], s["sprint"], s["closed"]) == ("Contoso", "Pay 1", True)
    assert (s["throughput_items"], s["done_estimate"]) == (15, 3.0)
    assert (s["committed_items"], s["committed_done_items"], s["predictability"]) == (2, 1, 0.5)
    assert (s["predictability_estimate"], s["carried_out_items"]) == (3 / 8, 1)
    assert api.get("/kpis?sprint=Pay 1").json() == rows
    assert api.get("/kpis?organisation=Northwind").json() == []
    assert api.get("/kpis?closed=maybe").status_code == 422
    assert api.get("/kpis?tem=Pay").status_code == 422
    csv = api.get("/kpis?format=csv")
    assert pl.read_csv(io.BytesIO(csv.content))["throughput_items"].to_list() == [15]


def test_team_kpis_and_trend(api):
    team = api.get("/kpis/teams", params={"team": "Pay"}).json()
    assert [(t["team"], t["sprints"], t["predictability"]) for t in team] == [("Pay", 1, 0.5)]
    trend = api.get("/kpis/trend", params={"team": "Pay"}).json()
    assert trend[-1]["predictability"] == 0.5
    assert trend[-1]["throughput_per_sprint"] == 15.0
    overall = api.get("/kpis/trend").json()
    assert overall[-1]["predictability"] == 0.5
    assert api.get("/kpis/trend?team=Nobody").json() == []


def test_portfolio_value_wsjf(api):
    rows = {r["key"]: r for r in api.get("/portfolio/value", params={"level": "epic"}).json()}
    co1 = rows["CO-1"]
    assert (co1["cost_of_delay"], co1["job_size"], co1["wsjf"], co1["wsjf_rank"]) == (
        12.0,
        4.0,
        3.0,
        1,
    )
    assert rows["NW-1"]["wsjf"] is None
    assert api.get("/portfolio/value?level=story").status_code == 422
    assert [r["key"] for r in api.get("/portfolio/value?organisation=Northwind").json()] == ["NW-1"]


def test_portfolio_effort_and_investment(api):
    effort = api.get("/portfolio/effort", params={"epic": "NW-1"}).json()
    assert [(r["team"], r["items"], r["estimate"]) for r in effort] == [
        ("App", 1, 5.0),
        ("Web", 1, 3.0),
    ]
    investment = api.get("/portfolio/investment").json()
    assert [r["theme_id"] for r in investment] == [None]  # no initiatives: not aligned
    org = api.get("/portfolio/investment", params={"organisation": "Contoso"}).json()
    assert [(r["organisation"], r["epics"]) for r in org] == [("Contoso", 1)]


def test_no_path_clash_with_the_portfolio_overview(api):
    assert "nodes" in api.get("/portfolio").json()
