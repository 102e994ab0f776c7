"""/backlog-health and its tables over the seeded warehouse plus a sync with a sprint.

Second sync (as of 20 Jan 2026): Web's sprint 2-15 Jan finished NW-6 (4 points); NW-7 (8 points,
ranked, described, unblocked) is Web's ready backlog -> ready depth 8 / 4 = 2 sprints, grade A.
App's NW-3 is unranked and blocked by CO-2 (grade D); Pay's CO-2 is unestimated too (grade E).
No initiatives, so each organisation's work is one programme named after the organisation.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import polars as pl
import pytest
from fastapi.testclient import TestClient

from pmolens.api.app import create_app
from pmolens.pipeline.refresh import refresh
from pmolens.warehouse.store import Staged
from tests.api.conftest import VIEWER, auth
from tests.factories import frame, work_items


def _at(day: int) -> datetime:
    return datetime(2026, 1, day, tzinfo=UTC)


@pytest.fixture
def api(runtime, settings):
    items = work_items(
        {"item_id": "nw:6", "source": "nw", "key": "NW-6", "team": "Web", "parent_id": "nw:1",
         "organisation": "Northwind", "status_category": "done", "estimate": 4.0,
         "resolved": _at(5)},
        {"item_id": "nw:7", "source": "nw", "key": "NW-7", "team": "Web", "parent_id": "nw:1",
         "organisation": "Northwind", "estimate": 8.0, "rank": "a"},
    )  # fmt: skip
    sprints = frame(
        "sprints",
        {"sprint_id": "nw:s1", "source": "nw", "native_id": "s1", "name": "Web 1", "team": "Web",
         "state": "closed", "start": _at(2), "end": _at(15)},
    )  # fmt: skip
    wh = runtime.warehouse
    run_id = wh.begin_run("nw", "incremental", None)
    wh.commit_sync(
        run_id, "nw", Staged(work_items=[items], sprints=[sprints]), live_ids=None, cursor=None
    )
    refresh(wh, settings, as_of=_at(20))
    with TestClient(create_app(runtime), headers=auth(VIEWER)) as c:
        yield c


def test_needs_a_token(runtime):
    with TestClient(create_app(runtime)) as c:
        assert c.get("/backlog-health").status_code == 401


def test_team_backlogs_graded_with_signals(api):
    teams = api.get("/backlog-health", params={"by": "team"}).json()
    assert [(r["scope"], r["grade"], r["points"]) for r in teams] == [
        ("App", "D", 4),
        ("Pay", "E", 6),
        ("Web", "A", 0),
    ]
    web = teams[2]
    assert (web["items"], web["velocity"], web["ready_estimate"]) == (1, 4.0, 8.0)
    assert (web["ready_depth_sprints"], web["top_n_ready_share"]) == (2.0, 1.0)
    assert web["ordering_present"] is True and web["grade_reasons"] == []
    assert web["organisation"] == "Northwind"
    app = teams[0]
    assert app["grade_reasons"] == [
        "not ordered: 0% ranked, 0 duplicate ranks",
        "ready depth unknown: no velocity in the last 3 closed sprints",
        "only 0% of the top 10 items ready (target 80%)",
    ]


def test_filters(api):
    assert [r["grade"] for r in api.get("/backlog-health", params={"team": "Web"}).json()] == ["A"]
    contoso = api.get("/backlog-health", params={"organisation": "Contoso"}).json()
    assert sorted((r["by"], r["scope"]) for r in contoso) == [
        ("organisation", "Contoso"),
        ("programme", "Contoso"),
        ("team", "Pay"),
    ]
    programme = api.get("/backlog-health", params={"programme": "Northwind"}).json()
    assert [(r["by"], r["items"], r["epics_open"]) for r in programme] == [("programme", 1, 1)]
    assert {r["scope"] for r in api.get("/backlog-health", params={"grade": "E"}).json()} >= {"Pay"}


def test_net_flow_scope_change_and_epics(api):
    flow = api.get("/backlog-health/net-flow").json()
    assert [(r["team"], r["sprint"], r["intake_items"], r["done_items"]) for r in flow] == [
        ("Web", "Web 1", 0, 1)
    ]
    assert flow[0]["done_estimate"] == 4.0 and flow[0]["net_items"] == -1
    assert api.get("/backlog-health/net-flow", params={"team": "App"}).json() == []
    assert len(api.get("/backlog-health/net-flow", params={"closed": "true"}).json()) == 1
    change = api.get("/backlog-health/scope-change", params={"programme": "Northwind"}).json()
    assert [
        (r["key"], r["items_at_window_start"], r["items_added_in_window"], r["scope_change_share"])
        for r in change
    ] == [("NW-1", 0, 4, None)]  # all created 1 Jan, inside the 90 days: nothing to compare with
    epics = api.get("/backlog-health/epics", params={"organisation": "Northwind"}).json()
    assert [(e["key"], e["items_done"], e["items_total"]) for e in epics] == [("NW-1", 2, 4)]
    assert epics[0]["progress_estimate"] == pytest.approx(7 / 20)


def test_bad_values_are_422(api):
    assert api.get("/backlog-health", params={"by": "squad"}).status_code == 422
    assert api.get("/backlog-health", params={"grade": "F"}).status_code == 422
    assert api.get("/backlog-health", params={"programm": "x"}).status_code == 422
    assert api.get("/backlog-health/scope-change", params={"min_share": 2}).status_code == 422
    assert api.get("/backlog-health/epics", params={"status": "open"}).status_code == 422


def test_csv_and_parquet(api):
    csv = api.get("/backlog-health", params={"format": "csv", "by": "team"})
    assert csv.headers["content-type"].startswith("text/csv")
    table = pl.read_csv(io.BytesIO(csv.content))
    assert table["grade"].to_list() == ["D", "E", "A"]
    assert table["grade_reasons"][0].startswith("not ordered")
    parquet = api.get("/backlog-health/net-flow", params={"format": "parquet"})
    assert pl.read_parquet(io.BytesIO(parquet.content))["done_items"].to_list() == [1]
    for path in ("/backlog-health/scope-change", "/backlog-health/epics"):
        assert api.get(path, params={"format": "csv"}).status_code == 200
