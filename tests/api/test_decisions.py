"""GET /decisions and /decisions/changes over the seeded chain plus one planted line of each
kind, and the counts reconciled with the analyses they come from: /dependencies/conflicts
(and /red-lines), /forecast/epics, /impediments and /alignment/findings.

On top of the seed (conftest.py), with one finished item a day for App, Web and Pay over the
90 days before 1 March 2026 (so the forecasts are exact):

| planted | what | kind |
| NW-20 (App) due 20 Feb, NW-21 open under it | past its target | epic_overdue |
| NW-30 (Web) due 3 Mar, 10 open items at one a day | 0 % chance | epic_below_target_chance |
| NW-5 (Web, 1 Apr) blocks NW-4 (App, 10 Mar, under NW-20; both made 20 Feb) | conflict | red_line |
| CO-3 (Pay, Contoso, 20 Mar) blocks NW-7 (App, 20 Mar, no epic) | at risk across orgs | cross_org_at_risk |
| NW-8 impediment raised 20 days ago | at the EAT | impediment_eat |
| NW-9 impediment raised 13.5 days ago: 15 days on Tue 3 Mar | 2 working days away | impediment_escalating |
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient

from pmolens.api.app import create_app
from pmolens.pipeline.refresh import refresh
from pmolens.reports.decision_text import decision_sentence
from pmolens.reports.i18n import translator
from pmolens.warehouse.store import Staged
from tests.api.conftest import VIEWER, auth
from tests.factories import frame, simulated_chain, work_items

AS_OF = datetime(2026, 3, 1, 12, tzinfo=UTC)  # a Sunday
TODAY = AS_OF.date()
SINCE = "2026-02-15"  # the end of that day: before NW-4 and NW-5 were made


def _history(source: str, team: str, org: str) -> list[dict[str, Any]]:
    rows = []
    for i in range(1, 91):
        done = AS_OF.replace(hour=10) - timedelta(days=i)
        rows.append(
            {"item_id": f"{source}:h{team}{i}", "source": source, "team": team,
             "organisation": org, "status_category": "done", "raw_status": "Done",
             "created": done - timedelta(days=1), "resolved": done}
        )  # fmt: skip
    return rows


def _nw(n: int, team: str, **kw: Any) -> dict[str, Any]:
    return {"item_id": f"nw:{n}", "source": "nw", "key": f"NW-{n}", "team": team,
            "organisation": "Northwind", **kw}  # fmt: skip


def _link(link_id: str, blocker: str, dependent: str) -> dict[str, Any]:
    return {"source": "nw", "link_id": link_id, "from_item": blocker, "to_item": dependent,
            "kind": "blocks", "raw_type": "Blocks"}  # fmt: skip


@pytest.fixture
def planted(runtime, settings):
    made = datetime(2026, 2, 20, tzinfo=UTC)
    nw = work_items(
        *_history("nw", "App", "Northwind"),
        *_history("nw", "Web", "Northwind"),
        _nw(20, "App", level="epic", due_date=date(2026, 2, 20)),
        _nw(21, "App", parent_id="nw:20"),
        _nw(30, "Web", level="epic", due_date=date(2026, 3, 3)),
        *[_nw(n, "Web", parent_id="nw:30") for n in range(31, 41)],
        _nw(4, "App", parent_id="nw:20", due_date=date(2026, 3, 10), created=made, updated=made),
        _nw(5, "Web", due_date=date(2026, 4, 1), created=made, updated=made),
        _nw(7, "App", due_date=date(2026, 3, 20)),
        _nw(8, "App", level="impediment", created=AS_OF - timedelta(days=20)),
        _nw(9, "App", level="impediment", created=AS_OF - timedelta(days=13.5)),
    )
    co = work_items(
        *_history("co", "Pay", "Contoso"),
        {"item_id": "co:3", "source": "co", "key": "CO-3", "team": "Pay",
         "organisation": "Contoso", "due_date": date(2026, 3, 20)},
    )  # fmt: skip
    links = frame("links", _link("L2", "nw:5", "nw:4"), _link("L5", "co:3", "nw:7"))
    wh = runtime.warehouse
    for source, items, link_rows in (("nw", nw, [links]), ("co", co, [])):
        run_id = wh.begin_run(source, "incremental", None)
        wh.commit_sync(
            run_id, source, Staged(work_items=[items], links=link_rows), live_ids=None, cursor=None
        )
    refresh(wh, settings, as_of=AS_OF)
    return runtime


def _app(runtime):
    return create_app(runtime)


@pytest.fixture
def api(planted):
    with TestClient(_app(planted), headers=auth(VIEWER)) as c:
        yield c


def _lines(api, **params: Any) -> list[dict[str, Any]]:
    body = api.get("/decisions", params={"limit": 10_000, **params}).json()
    assert body["total"] == len(body["items"])
    return body["items"]


def test_needs_a_token(planted):
    with TestClient(_app(planted)) as c:
        assert c.get("/decisions").status_code == 401
        assert c.get("/decisions/changes", params={"since": SINCE}).status_code == 401


def test_one_planted_line_of_each_kind(api):
    body = api.get("/decisions").json()
    got = [(r["kind"], r["key"], r["other_key"], r["owner_role"]) for r in body["items"]]
    assert got == [
        ("red_line", "NW-4", "NW-5", "SoS Master"),
        ("epic_overdue", "NW-20", "NW-5", "Chief PO"),  # NW-5 drives its date
        ("epic_below_target_chance", "NW-30", None, "Chief PO"),
        ("impediment_eat", "NW-8", None, "EAT"),
        ("impediment_escalating", "NW-9", None, "SoS Master"),
        ("cross_org_at_risk", "NW-7", "CO-3", "Chief PO"),
    ]
    assert [r["rank"] for r in body["items"]] == [1, 2, 3, 4, 5, 6]
    assert body["as_of"].startswith("2026-03-01T12:00:00")
    assert body["by_kind"]["critical_finding"] == 0  # NW-4's red-line finding: already listed
    assert sum(body["by_kind"].values()) == body["total"]
    red, overdue, below, _, escalating, cross = body["items"]
    assert (red["slip_days"], red["due"], red["epic_key"]) == (22, "2026-03-10", "NW-20")
    assert red["detail_params"]["slip_days"] == 22
    assert overdue["since"].startswith("2026-02-21") and overdue["target_date"] == "2026-02-20"
    assert (below["p_on_time"], below["p85"]) == (0.0, "2026-03-11")
    assert escalating["due"] == "2026-03-03"
    assert (cross["other_organisation"], cross["other_team"]) == ("Contoso", "Pay")
    t = translator("nl")
    assert decision_sentence(red, t) == (
        "NW-4 (App) staat 22 dagen eerder gepland dan NW-5 (Web), waar het op wacht: herplan "
        "één van beide"
    )


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def reconcile(api) -> dict[str, int]:
    """Each kind's lines computed again from the analyses' own routes (docs/decisions.md), and
    compared with GET /decisions; returns the count per kind."""
    body = api.get("/decisions", params={"limit": 10_000}).json()
    lines, as_of = body["items"], _moment(body["as_of"])
    today = str(as_of.date())
    count = {k: sum(r["kind"] == k for r in lines) for k in body["by_kind"]}
    conflicts = api.get("/dependencies/conflicts").json()
    epics = {e["epic_id"]: e for e in api.get("/forecast/epics", params={"limit": 10_000}).json()}
    # red lines that move a date: conflicts, and red lines whose waiting epic is forecast
    # later because of this blocker, one per (blocker, waiting item)
    moving = set()
    for r in conflicts:
        forecast = epics.get(r["dependent_epic"]) or {}
        node = r["blocker_epic"] or r["blocker_id"]
        delayed = (forecast.get("dependency_delay_days_p85") or 0) > 0
        if r["timing"] == "conflict" or (delayed and node in forecast.get("blockers", [])):
            moving.add((r["blocker_id"], r["dependent_id"]))

    def pairs(kind: str) -> set[tuple[str, str]]:
        return {(r["other_item_id"], r["item_id"]) for r in lines if r["kind"] == kind}

    assert pairs("red_line") == moving and count["red_line"] == len(moving)
    assert count["red_line"] <= api.get("/dependencies/red-lines").json()["red_lines"]
    pair = [(r["blocker_id"], r["dependent_id"]) for r in conflicts if r["cross_org"]]
    assert pairs("cross_org_at_risk") == {p for p in pair if p not in moving}
    overdue = {e["epic_id"] for e in epics.values() if (e["target_date"] or "9") < today}
    below = {
        e["epic_id"]
        for e in epics.values()
        if (e["p_on_time"] if e["p_on_time"] is not None else 1) < 0.5 and e["target_date"] >= today
    }
    assert {r["item_id"] for r in lines if r["kind"] == "epic_overdue"} == overdue
    assert {r["item_id"] for r in lines if r["kind"] == "epic_below_target_chance"} == below
    eat = api.get("/impediments", params={"level": "eat", "limit": 10_000}).json()
    assert count["impediment_eat"] == eat["total"]
    assert {r["item_id"] for r in lines if r["kind"] == "impediment_eat"} == {
        i["item_id"] for i in eat["items"]
    }
    sos = api.get("/impediments", params={"level": "sos", "limit": 10_000}).json()["items"]
    escalating = {r["item_id"] for r in lines if r["kind"] == "impediment_escalating"}
    assert escalating <= {i["item_id"] for i in sos}
    # new critical findings (first found in the last 14 days), less items already listed
    findings = api.get(
        "/alignment/findings", params={"severity": "critical", "status": "open", "limit": 10_000}
    ).json()
    findings = findings["items"] if isinstance(findings, dict) else findings
    listed = {r["item_id"] for r in lines if r["kind"] != "critical_finding"}
    window = as_of - timedelta(days=14)
    new = [f for f in findings if _moment(f["first_seen"]) >= window and f["item_id"] not in listed]
    assert count["critical_finding"] == len(new)
    return count


def test_counts_reconcile_with_the_analyses(api):
    count = reconcile(api)
    assert count == {
        "red_line": 1,
        "epic_overdue": 1,
        "epic_below_target_chance": 1,
        "impediment_eat": 1,
        "impediment_escalating": 1,
        "cross_org_at_risk": 1,
        "critical_finding": 0,
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The simulated chain (three organisations, three trackers), synced over HTTP."""
    from pmolens.api.runtime import make_runtime

    settings, _ = simulated_chain(
        tmp_path_factory.mktemp("decisions-demo"), size=600, server={"auth": "none"}
    )
    runtime = make_runtime(settings)
    with TestClient(_app(runtime)) as c:
        yield c
    runtime.warehouse.close()


def test_the_demo_list_reconciles_with_the_analyses(demo):
    """Issue 13: on the demo, the decisions give the same counts as /dependencies/conflicts,
    /forecast/epics and /impediments."""
    count = reconcile(demo)
    assert count["red_line"] > 0 and count["impediment_eat"] > 0  # the demo plants both


def test_filters(api):
    contoso = _lines(api, organisation="Contoso")
    assert [(r["kind"], r["key"]) for r in contoso] == [("cross_org_at_risk", "NW-7")]
    assert [r["key"] for r in _lines(api, team="Pay")] == ["NW-7"]  # the blocker's team
    assert [r["key"] for r in _lines(api, owner_role="EAT")] == ["NW-8"]
    assert [r["key"] for r in _lines(api, kind="epic_overdue")] == ["NW-20"]
    page = api.get("/decisions", params={"limit": 2, "offset": 1}).json()
    assert [r["rank"] for r in page["items"]] == [2, 3] and page["total"] == 6
    assert api.get("/decisions", params={"kind": "nonsense"}).status_code == 422
    assert api.get("/decisions", params={"owner_role": "CEO"}).status_code == 422
    assert api.get("/decisions", params={"organisaton": "Contoso"}).status_code == 422


def test_export_as_csv_and_parquet(api):
    csv = api.get("/decisions", params={"format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    table = pl.read_csv(io.BytesIO(csv.content))
    assert table.height == 6 and "detail_params" in table.columns
    parquet = api.get("/decisions", headers={"Accept": "application/vnd.apache.parquet"})
    assert pl.read_parquet(io.BytesIO(parquet.content))["kind"].to_list()[0] == "red_line"


def test_as_of_an_earlier_day(api):
    """On 15 February NW-4 and NW-5 did not exist yet (no red line), NW-8 was 6.5 days old
    (at the Scrum of Scrums, not yet the EAT); CO-3 and NW-7 were there."""
    kinds = [r["kind"] for r in _lines(api, as_of=SINCE)]
    assert kinds == ["cross_org_at_risk"]
    eat = api.get("/impediments", params={"level": "eat", "as_of": SINCE}).json()["total"]
    assert eat == 0


def test_what_changed_since(api):
    body = api.get("/decisions/changes", params={"since": SINCE, "limit": 10_000}).json()
    assert body["since"].startswith("2026-02-15T23:59:59") and body["total"] == len(body["items"])
    changes = body["items"]
    new_red = [(r["key"], r["other_key"]) for r in changes if r["kind"] == "red_line_new"]
    assert new_red == [("NW-4", "NW-5")]
    assert ("dependency_timing_conflict", "NW-4") in {
        (r["detail_params"]["rule"]["text"], r["key"])
        for r in changes
        if r["kind"] == "finding_new"
    }
    # epics whose P85 moved more than a week, as /forecast/epics now and as of then say
    now = {e["epic_id"]: e["p85"] for e in api.get("/forecast/epics").json()}
    then = {
        e["epic_id"]: e["p85"] for e in api.get("/forecast/epics", params={"as_of": SINCE}).json()
    }
    moved = {
        epic
        for epic in now.keys() & then.keys()
        if now[epic]
        and then[epic]
        and abs((date.fromisoformat(now[epic]) - date.fromisoformat(then[epic])).days) > 7
    }
    assert {r["item_id"] for r in changes if r["kind"] == "epic_p85_moved"} == moved
    assert sum(body["by_kind"].values()) == body["total"]
    only = api.get("/decisions/changes", params={"since": SINCE, "kind": "red_line_new"}).json()
    assert [r["key"] for r in only["items"]] == ["NW-4"]
    csv = api.get("/decisions/changes", params={"since": SINCE, "format": "csv"})
    assert pl.read_csv(io.BytesIO(csv.content)).height == body["total"]


def test_nothing_changed_since_now_or_later(api):
    for since in ("2026-03-01T12:00:00Z", "2030-01-01"):
        body = api.get("/decisions/changes", params={"since": since}).json()
        assert body["total"] == 0 and body["items"] == []
    week = api.get("/decisions/changes").json()  # a week before the kept moment
    assert week["since"].startswith("2026-02-22T12:00:00")
    assert api.get("/decisions/changes", params={"since": "yesterday"}).status_code == 422
