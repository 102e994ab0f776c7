"""/dependencies/* and /teams/{team}/scrum-of-scrums over the seeded two-organisation warehouse.

The seed has one blocks link: CO-2 (Contoso, Pay) blocks NW-3 (Northwind, App, epic NW-1).
``planned`` adds a Northwind timing conflict with a second sync, so the trend has two points.
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


@pytest.fixture
def api(runtime):
    with TestClient(create_app(runtime), headers=auth(VIEWER)) as c:
        yield c


@pytest.fixture
def planned(runtime, settings):
    """Second sync: NW-5 (Web, due 1 Feb) blocks NW-4 (App, due 10 Jan): a 22-day conflict."""
    items = work_items(
        {"item_id": "nw:4", "source": "nw", "key": "NW-4", "team": "App",
         "organisation": "Northwind", "due_date": date(2026, 1, 10), "parent_id": "nw:1"},
        {"item_id": "nw:5", "source": "nw", "key": "NW-5", "team": "Web",
         "organisation": "Northwind", "due_date": date(2026, 2, 1)},
    )  # fmt: skip
    links = frame(
        "links",
        {"source": "nw", "link_id": "L2", "from_item": "nw:5", "to_item": "nw:4",
         "kind": "blocks", "raw_type": "Blocks"},
    )  # fmt: skip
    wh = runtime.warehouse
    run_id = wh.begin_run("nw", "incremental", None)
    wh.commit_sync(
        run_id, "nw", Staged(work_items=[items], links=[links]), live_ids=None, cursor=None
    )
    refresh(wh, settings, as_of=datetime(2026, 1, 5, tzinfo=UTC))
    return runtime


def test_needs_a_token(runtime):
    with TestClient(create_app(runtime)) as c:
        assert c.get("/dependencies").status_code == 401
        assert c.get("/teams/App/scrum-of-scrums").status_code == 401


def test_edges_and_filters(api):
    body = api.get("/dependencies").json()
    assert body["total"] == 1
    edge = body["items"][0]
    assert (edge["blocker_key"], edge["dependent_key"]) == ("CO-2", "NW-3")
    assert (edge["blocker_org"], edge["dependent_org"]) == ("Contoso", "Northwind")
    assert edge["cross_org"] is True and edge["open"] is True and edge["timing"] == "unplanned"
    assert edge["dependent_epic_key"] == "NW-1" and edge["dependent_blocked_days"] == 0.0
    for params, total in (
        ({"organisation": "Contoso"}, 1),
        ({"team": "Web"}, 0),
        ({"epic": "NW-1"}, 1),
        ({"epic": "nw:1"}, 1),
        ({"flag": "cross_org"}, 1),
        ({"flag": "red_line"}, 0),
        ({"status": "closed"}, 0),
        ({"status": "waiting"}, 1),
    ):
        assert api.get("/dependencies", params=params).json()["total"] == total, params
    assert api.get("/dependencies", params={"flag": "nope"}).status_code == 422
    assert api.get("/dependencies", params={"orgnisation": "x"}).status_code == 422


def test_csv_and_parquet(api):
    csv = api.get("/dependencies", params={"format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert pl.read_csv(io.BytesIO(csv.content))["link_id"].to_list() == ["L1"]
    parquet = api.get("/dependencies/matrix", headers={"Accept": "application/vnd.apache.parquet"})
    cells = pl.read_parquet(io.BytesIO(parquet.content))
    assert cells["open"].to_list() == [1] and cells["link_ids"].to_list() == [["L1"]]


def test_matrix_by_team_and_organisation(api):
    team = api.get("/dependencies/matrix").json()
    assert team["by"] == "team"
    assert [
        (c["blocker_org"], c["blocker_team"], c["dependent_org"], c["dependent_team"], c["open"])
        for c in team["cells"]
    ] == [("Contoso", "Pay", "Northwind", "App", 1)]
    org = api.get("/dependencies/matrix", params={"by": "organisation"}).json()
    assert [(c["blocker_org"], c["dependent_org"], c["open"]) for c in org["cells"]] == [
        ("Contoso", "Northwind", 1)
    ]
    assert api.get("/dependencies/matrix", params={"organisation": "Nobody"}).json()["cells"] == []


def test_conflicts_cycles_chains_bottlenecks(api, planned):
    red = api.get("/dependencies/conflicts").json()
    assert [(e["link_id"], e["timing"], e["slip_days"]) for e in red] == [("L2", "conflict", 22)]
    assert api.get("/dependencies/conflicts", params={"team": "Pay"}).json() == []
    assert api.get("/dependencies/cycles").json() == []
    chains = api.get("/dependencies/chains").json()
    assert [(c["scope"], c["epic_key"], c["chain_items"], c["head_key"]) for c in chains] == [
        ("all", None, 2, "NW-5"),  # later planned end (1 Feb) wins the tie
        ("epic", "NW-1", 2, "NW-5"),
    ]
    assert chains[0]["planned_days"] == 27 and chains[0]["path"] == ["NW-5", "NW-4"]
    items = api.get("/dependencies/bottlenecks").json()["items"]
    assert [(b["key"], b["dependents"], b["exact"]) for b in items] == [
        ("CO-2", 1, True),
        ("NW-5", 1, True),
    ]
    teams = api.get("/dependencies/bottlenecks", params={"by": "team"}).json()["teams"]
    assert [(t["team"], t["dependents"]) for t in teams] == [("Pay", 1), ("Web", 1)]


def test_scrum_of_scrums(api, planned):
    app = api.get("/teams/App/scrum-of-scrums").json()
    assert app["summary"]["impeded_items"] == 2 and app["summary"]["hindering"] == 0
    assert app["summary"]["partners"] == ["Pay (Contoso)", "Web (Northwind)"]
    assert [e["link_id"] for e in app["impediments"]] == ["L2", "L1"]  # red line first
    web = api.get("/teams/Web/scrum-of-scrums", params={"organisation": "Northwind"}).json()
    assert [e["dependent_key"] for e in web["hindering"]] == ["NW-4"]
    assert api.get("/teams/Nobody/scrum-of-scrums").status_code == 404
    assert (
        api.get("/teams/App/scrum-of-scrums", params={"organisation": "Contoso"}).status_code == 404
    )


def test_trend_has_one_point_per_sync(api, planned):
    points = api.get("/dependencies/trend").json()
    assert [(p["open"], p["conflicts"], p["cross_org_share"]) for p in points] == [
        (1.0, 0.0, 1.0),
        (2.0, 1.0, 0.5),
    ]
    contoso = api.get("/dependencies/trend", params={"organisation": "Contoso"}).json()
    assert [p["open"] for p in contoso] == [1.0, 1.0]
    csv = api.get("/dependencies/trend", params={"format": "csv"})
    assert pl.read_csv(io.BytesIO(csv.content)).height == 2


def test_report_section_in_both_languages(runtime, settings, planned):
    import pmolens.reports.steering as steering
    from pmolens.reports.sections import dependencies as section

    assert section in steering.SECTIONS()
    wh = runtime.warehouse
    en = steering.build_report(wh, settings, lang="en", as_of=datetime(2026, 1, 5, tzinfo=UTC))
    assert "Red lines, by slip" in en and "NW-4" in en and "Critical chains" in en
    nl = steering.build_report(wh, settings, lang="nl", organisation="Contoso", plotly="cdn")
    assert "Afhankelijkheden" in nl and "Rode lijnen" in nl and "CO-2" in nl
    assert "NW-5" not in nl  # the Northwind-only conflict is out of Contoso's scope
