"""/alignment/* and /impediments over the seeded two-organisation warehouse."""

from __future__ import annotations

import io

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


def test_needs_a_token(runtime):
    with TestClient(create_app(runtime)) as c:
        assert c.get("/alignment/findings").status_code == 401


def test_rule_catalogue_with_thresholds_in_force(api):
    body = api.get("/alignment/rules").json()
    assert len(body) == 14
    stale = next(r for r in body if r["id"] == "stale_work")
    assert stale["thresholds"]["stale_days"] == 14
    assert stale["owner_role"] == "Team PO" and stale["enabled"] is True
    csv = api.get("/alignment/rules?format=csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert pl.read_csv(io.BytesIO(csv.content)).height == 14


def test_findings_filters(api):
    everything = api.get("/alignment/findings").json()
    assert everything["total"] == len(everything["items"]) > 0
    assert {f["status"] for f in everything["items"]} == {"new"}
    owners = api.get("/alignment/findings", params={"rule": "no_owner"}).json()["items"]
    assert sorted(f["item_id"] for f in owners) == ["co:1", "nw:1"]
    assert {f["owner_role"] for f in owners} == {"Chief PO"}
    contoso = api.get(
        "/alignment/findings", params={"rule": "no_owner", "organisation": "Contoso"}
    ).json()
    assert [f["key"] for f in contoso["items"]] == ["CO-1"]
    assert contoso["items"][0]["url"] == "https://tracker.example/browse/CO-1"
    by_role = api.get("/alignment/findings", params={"owner_role": "Chief PO"}).json()["items"]
    assert {f["owner_role"] for f in by_role} == {"Chief PO"}
    team = api.get("/alignment/findings", params={"team": "Pay"}).json()["items"]
    assert team and {f["team"] for f in team} == {"Pay"}
    assert api.get("/alignment/findings", params={"status": "resolved"}).json()["total"] == 0
    page = api.get("/alignment/findings", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == everything["total"] and len(page["items"]) == 1
    assert api.get("/alignment/findings", params={"severity": "high"}).status_code == 422
    assert api.get("/alignment/findings", params={"rulez": "x"}).status_code == 422
    parquet = api.get("/alignment/findings?format=parquet&rule=no_owner")
    assert pl.read_parquet(io.BytesIO(parquet.content)).height == 2


def test_resolved_findings_after_the_next_sync(runtime, api, settings):
    fixed = work_items(
        {
            "item_id": "co:1",
            "source": "co",
            "key": "CO-1",
            "level": "epic",
            "team": "Pay",
            "organisation": "Contoso",
            "assignee": "Carla",
        }
    )
    run_id = runtime.warehouse.begin_run("co", "incremental", None)
    runtime.warehouse.commit_sync(
        run_id, "co", Staged(work_items=[fixed]), live_ids=None, cursor=None
    )
    refresh(runtime.warehouse, settings)
    resolved = api.get("/alignment/findings", params={"status": "resolved"}).json()["items"]
    assert [(f["rule"], f["item_id"]) for f in resolved] == [("no_owner", "co:1")]
    assert resolved[0]["resolved_at"] is not None
    still = api.get("/alignment/findings", params={"rule": "no_owner", "status": "open"}).json()
    assert [(f["item_id"], f["status"]) for f in still["items"]] == [("nw:1", "open")]


def test_scores_by_team_and_organisation_with_trend(api):
    teams = api.get("/alignment/scores").json()
    assert teams["by"] == "team"
    rows = {(s["organisation"], s["team"]): s for s in teams["scores"]}
    assert ("Contoso", "Pay") in rows
    for score in rows.values():
        assert 0 <= score["score"] <= 100
        assert [p["score"] for p in score["trend"]] == [score["score"]]  # one sync so far
    orgs = api.get("/alignment/scores", params={"by": "organisation"}).json()["scores"]
    assert sorted(s["organisation"] for s in orgs) == ["Contoso", "Northwind"]
    assert all(s["team"] is None for s in orgs)
    one = api.get("/alignment/scores", params={"organisation": "Contoso"}).json()["scores"]
    assert {s["organisation"] for s in one} == {"Contoso"}
    csv = api.get("/alignment/scores?by=organisation&format=csv")
    assert pl.read_csv(io.BytesIO(csv.content)).height == 2


def _start_nw3(runtime, settings) -> None:
    """NW-3 goes in progress while its blocker CO-2 is not done: it is blocked now."""
    started = work_items(
        {
            "item_id": "nw:3",
            "source": "nw",
            "key": "NW-3",
            "parent_id": "nw:1",
            "team": "App",
            "organisation": "Northwind",
            "estimate": 5.0,
            "status_category": "in_progress",
            "raw_status": "In Progress",
        }
    )
    link = frame(  # a synced item comes with its links
        "links",
        {"source": "nw", "link_id": "L1", "from_item": "co:2", "to_item": "nw:3",
         "kind": "blocks", "raw_type": "Blocks"},
    )  # fmt: skip
    run_id = runtime.warehouse.begin_run("nw", "incremental", None)
    runtime.warehouse.commit_sync(
        run_id, "nw", Staged(work_items=[started], links=[link]), live_ids=None, cursor=None
    )
    refresh(runtime.warehouse, settings)


def test_impediments_backlog_and_filters(runtime, settings, api):
    # seeded, NW-3 is to do, unplanned, waiting on CO-2: not blocked now, so no impediment
    assert api.get("/impediments").json()["total"] == 0
    _start_nw3(runtime, settings)
    body = api.get("/impediments").json()
    blocked = [i for i in body["items"] if i["item_id"] == "nw:3"]
    assert blocked and blocked[0]["reason"] == "blocked_by_dependency"
    assert blocked[0]["level"] in ("team", "sos", "eat")
    weights = [i["weight"] for i in body["items"]]
    assert weights == sorted(weights, reverse=True)
    level = blocked[0]["level"]
    assert api.get("/impediments", params={"level": level}).json()["total"] >= 1
    assert api.get("/impediments", params={"team": "Nobody"}).json()["total"] == 0
    assert api.get("/impediments", params={"level": "ceo"}).status_code == 422
    csv = api.get("/impediments?format=csv")
    assert csv.status_code == 200 and "held_up_keys" in csv.text


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_report_sections_over_the_seeded_warehouse(runtime, settings, lang):
    from pmolens.reports.blocks import ReportContext, Section
    from pmolens.reports.sections import alignment as alignment_section
    from pmolens.reports.sections import impediments as impediment_section
    from pmolens.warehouse.analyses import Inputs
    from pmolens.warehouse.store import utcnow

    _start_nw3(runtime, settings)
    inputs = Inputs(runtime.warehouse.frames(), settings, utcnow(), runtime.warehouse)
    ctx = ReportContext(inputs, lang, None, pl.DataFrame())
    for module in (alignment_section, impediment_section):
        section = module.build(ctx)
        assert isinstance(section, Section) and section.tables
        for figure in section.figures:
            assert "<script>" not in figure.spec()  # tracker text reaches plotly escaped
    top = alignment_section.build(ctx).tables[0][1]
    keys = [row[2]["text"] for row in top.rows if isinstance(row[2], dict)]
    assert "CO-1" in keys and "NW-1" in keys
    backlog = impediment_section.build(ctx).tables[0][1]
    assert any(row[1]["text"] == "NW-3" for row in backlog.rows)
