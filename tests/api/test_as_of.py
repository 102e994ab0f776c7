"""``as_of``: every analysis route and the steering report answer as of one moment, the same one.

Warehouse "today" (results kept as of 1 Mar 2026 12:00 UTC), source nw, epic NW-1 (Web) with:

- NW-2 (Web) in progress 10 Jan, done 20 Jan (sprint S1, 5 Jan - 19 Jan, completed 19 Jan);
- NW-3 (Web) in progress 15 Jan, done 10 Feb (sprint S2, 19 Jan - 9 Feb, completed 9 Feb);
- NW-4 (App) to do, planned in S3 (9 Feb - 23 Feb, completed 23 Feb);
- NW-5 (App) created 15 Feb, in progress 20 Feb, planned in S4 (23 Feb - 9 Mar, active),
  and it blocks NW-4: the blocker ends (9 Mar) after the dependent (23 Feb), a red line.

As of D = 1 Feb 2026 (end of day) the warehouse as known then (README "As of") is: NW-5 and its
link not there yet; NW-3 in progress (resolved cleared, updated back to its 15 Jan change);
S2 active (completion cleared), S3 and S4 future. A second warehouse holding exactly that,
refreshed as of D, must answer every analysis route the same as the first one asked ``as_of=D``.

Hand counts: today 2 done (NW-2, NW-3), 3 open (NW-1, NW-4, NW-5); as of D 1 done (NW-2),
3 open (NW-1, NW-3, NW-4). Finished cycles: today 2 (NW-2 10 days, NW-3 26 days), as of D 1.
Red lines: today 1 (NW-5 -> NW-4), as of D none.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from pmolens.api import deps
from pmolens.api.app import ROUTERS, create_app
from pmolens.api.runtime import make_runtime
from pmolens.pipeline.refresh import refresh
from pmolens.reports.i18n import translator
from pmolens.reports.steering import build_report
from pmolens.warehouse import results as results_module
from pmolens.warehouse.analyses import ANALYSES, Inputs
from pmolens.warehouse.store import Staged, Warehouse
from tests.api.conftest import VIEWER, auth, chain_settings
from tests.factories import frame, work_items

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
D = "2026-02-01"
D_MOMENT = datetime(2026, 2, 1, 23, 59, 59, tzinfo=UTC)


def _day(month: int, day: int) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC)


STATUS = {"To Do": "todo", "In Progress": "in_progress", "Done": "done"}


def _move(item: str, at: datetime, old: str, new: str) -> dict[str, Any]:
    return {"source": "nw", "item_id": item, "change_id": f"{item}-{at:%m%d}", "at": at,
            "field": "status", "from_status": old, "to_status": new,
            "from_category": STATUS[old], "to_category": STATUS[new]}  # fmt: skip


def _item(item_id: str, team: str, created: datetime, status: str, **rest: Any) -> dict[str, Any]:
    return {"item_id": item_id, "source": "nw", "key": item_id.replace("nw:", "NW-"),
            "organisation": "Northwind", "team": team, "created": created, "updated": created,
            "raw_status": status, "status_category": STATUS[status], **rest}  # fmt: skip


def _sprint(n: int, team: str, start: datetime, end: datetime, state: str, complete=None):
    return {"sprint_id": f"nw:s{n}", "source": "nw", "native_id": f"s{n}", "name": f"S{n}",
            "team": team, "board": "1", "state": state, "start": start, "end": end,
            "complete": complete}  # fmt: skip


EPIC = _item("nw:1", "Web", _day(1, 1), "To Do", level="epic")
NW2 = _item("nw:2", "Web", _day(1, 2), "Done", parent_id="nw:1", estimate=3.0,
            sprint_id="nw:s1", resolved=_day(1, 20), updated=_day(1, 20))  # fmt: skip
NW4 = _item("nw:4", "App", _day(1, 5), "To Do", parent_id="nw:1", sprint_id="nw:s3")
NW3_TODAY = _item("nw:3", "Web", _day(1, 3), "Done", parent_id="nw:1", estimate=5.0,
                  sprint_id="nw:s2", resolved=_day(2, 10), updated=_day(2, 10))  # fmt: skip
NW3_AT_D = _item("nw:3", "Web", _day(1, 3), "In Progress", parent_id="nw:1", estimate=5.0,
                 sprint_id="nw:s2", updated=_day(1, 15))  # fmt: skip
NW5 = _item("nw:5", "App", _day(2, 15), "In Progress", parent_id="nw:1", sprint_id="nw:s4",
            updated=_day(2, 20))  # fmt: skip
HISTORY_TO_D = [
    _move("nw:2", _day(1, 10), "To Do", "In Progress"),
    _move("nw:2", _day(1, 20), "In Progress", "Done"),
    _move("nw:3", _day(1, 15), "To Do", "In Progress"),
]


def _today() -> Staged:
    items = work_items(
        EPIC,
        NW2,
        NW3_TODAY,
        NW4,
        NW5,
    )
    history = frame(
        "status_changes",
        *HISTORY_TO_D,
        _move("nw:3", _day(2, 10), "In Progress", "Done"),
        _move("nw:5", _day(2, 20), "To Do", "In Progress"),
    )
    sprints = frame(
        "sprints",
        _sprint(1, "Web", _day(1, 5), _day(1, 19), "closed", _day(1, 19)),
        _sprint(2, "Web", _day(1, 19), _day(2, 9), "closed", _day(2, 9)),
        _sprint(3, "App", _day(2, 9), _day(2, 23), "closed", _day(2, 23)),
        _sprint(4, "App", _day(2, 23), _day(3, 9), "active"),
    )
    link = frame("links", {"source": "nw", "link_id": "L1", "from_item": "nw:5",
                           "to_item": "nw:4", "kind": "blocks", "raw_type": "Blocks"})  # fmt: skip
    return Staged(work_items=[items], links=[link], sprints=[sprints], status_changes=[history])


def _as_known_at_d() -> Staged:
    """By hand, from README "As of": what the warehouse knew at the end of 1 Feb."""
    items = work_items(
        EPIC,
        NW2,
        NW3_AT_D,
        NW4,
    )
    sprints = frame(
        "sprints",
        _sprint(1, "Web", _day(1, 5), _day(1, 19), "closed", _day(1, 19)),
        _sprint(2, "Web", _day(1, 19), _day(2, 9), "active"),
        _sprint(3, "App", _day(2, 9), _day(2, 23), "future"),
        _sprint(4, "App", _day(2, 23), _day(3, 9), "future"),
    )
    history = frame("status_changes", *HISTORY_TO_D)
    return Staged(work_items=[items], sprints=[sprints], status_changes=[history])


def _runtime(tmp_path, name: str, staged: Staged, as_of: datetime):
    settings = chain_settings(tmp_path)
    warehouse = Warehouse(tmp_path / f"{name}.duckdb")
    rt = make_runtime(settings, warehouse)
    run_id = warehouse.begin_run("nw", "full", None)
    warehouse.commit_sync(run_id, "nw", staged, live_ids=None, cursor=None)
    refresh(warehouse, settings, as_of=as_of)
    return rt


@pytest.fixture
def today(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_VIEWER_TOKEN", VIEWER)
    rt = _runtime(tmp_path, "today", _today(), NOW)
    yield rt
    rt.warehouse.close()


@pytest.fixture
def then(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_VIEWER_TOKEN", VIEWER)
    rt = _runtime(tmp_path, "then", _as_known_at_d(), D_MOMENT)
    yield rt
    rt.warehouse.close()


def _client(rt) -> TestClient:
    return TestClient(create_app(rt), headers=auth(VIEWER))


def _as_of_routes() -> list[str]:
    """Every GET route whose answer comes from the analyses (it takes ``as_of``)."""
    return sorted(
        r.path.replace("{team}", "Web")
        for module in ROUTERS
        for r in module.router.routes
        if isinstance(r, APIRoute)
        and deps.results_as_of in deps._calls(r.dependant)
        and "GET" in (r.methods or ())
    )


def test_every_analysis_route_takes_as_of():
    app = create_app(None)  # type: ignore[arg-type]  # the OpenAPI only
    routes = _as_of_routes()
    assert {"/portfolio", "/flow", "/backlog-health", "/dependencies/conflicts",
            "/alignment/findings", "/impediments", "/kpis", "/forecast/epics"} <= set(routes)  # fmt: skip
    assert len(routes) >= 30
    params = app.openapi()["paths"]["/flow"]["get"]["parameters"]
    as_of = next(p for p in params if p["name"] == "as_of")
    assert "end of that day" in as_of["description"]


def test_every_route_as_of_d_equals_the_warehouse_known_at_d(today, then):
    with _client(today) as now_api, _client(then) as then_api:
        routes = _as_of_routes()
        differ = []
        for path in routes:
            past = now_api.get(path, params={"as_of": D})
            known = then_api.get(path)
            assert past.status_code == 200, (path, past.text)
            assert past.json() == known.json(), path
            if now_api.get(path).json() != past.json():
                differ.append(path)
    # the data changed between D and today, and that shows in every domain
    for path in ("/portfolio", "/flow/cycle-time", "/dependencies/conflicts", "/backlog-health"):
        assert path in differ


def _headlines(page: str) -> list[tuple[str, str]]:
    return re.findall(r"<div><b>([^<]*)</b><span>([^<]*)</span></div>", page)


def test_report_and_routes_agree_as_of_d(today, then):
    t = translator("en")
    past = build_report(today.warehouse, today.settings, as_of=D_MOMENT)
    known = build_report(then.warehouse, then.settings)
    now = build_report(today.warehouse, today.settings)
    assert _headlines(past) == _headlines(known)
    summary = {label: value for value, label in _headlines(past)}
    assert (summary[t("open_items")], summary[t("done_items")]) == ("3", "1")
    summary_now = {label: value for value, label in _headlines(now)}
    assert (summary_now[t("open_items")], summary_now[t("done_items")]) == ("3", "2")
    # the header names the moment to the second: ask the API for exactly that
    assert "Data as of: <b>1 Feb 2026 23:59:59 UTC</b>" in past
    assert "Data as of: <b>1 Mar 2026 12:00:00 UTC</b>" in now
    with _client(today) as api:
        epic = api.get("/portfolio", params={"as_of": D, "level": "epic"}).json()["nodes"][0]
        assert (epic["items_total"], epic["items_done"]) == (3, 1)
        epic_now = api.get("/portfolio", params={"level": "epic"}).json()["nodes"][0]
        assert (epic_now["items_total"], epic_now["items_done"]) == (4, 2)
        assert api.get("/flow/cycle-time", params={"as_of": D}).json()["total"] == 1
        assert api.get("/flow/cycle-time").json()["total"] == 2
        assert api.get("/dependencies/conflicts", params={"as_of": D}).json() == []
        red = api.get("/dependencies/conflicts").json()
        assert [(r["blocker_key"], r["dependent_key"]) for r in red] == [("NW-5", "NW-4")]


def test_as_of_the_kept_moment_reads_the_kept_results(today, monkeypatch):
    def no_recompute(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("recomputed although the kept results are as of this moment")

    monkeypatch.setattr(Inputs, "known_at", no_recompute)
    for name in list(ANALYSES):
        monkeypatch.setitem(ANALYSES, name, no_recompute)
    with _client(today) as api:
        kept = api.get("/flow/cycle-time").json()
        for as_of in (
            "2026-03-01T12:00:00Z",
            "2026-03-01T12:00:00+00:00",
            "2026-03-01T13:00:00+01:00",
        ):
            assert api.get("/flow/cycle-time", params={"as_of": as_of}).json() == kept
        assert api.get("/portfolio", params={"as_of": "2026-03-01T12:00:00Z"}).status_code == 200


def test_other_moments_are_computed_once_and_kept_bounded(today, monkeypatch):
    monkeypatch.setattr(results_module, "AS_OF_INPUTS", 1)
    cache = results_module.ResultCache(today.warehouse, today.settings, as_of_results=2)
    built: list[datetime] = []
    original = Inputs.known_at.__func__  # type: ignore[attr-defined]

    def counting(cls, frames, settings, as_of, warehouse=None):
        built.append(as_of)
        return original(cls, frames, settings, as_of, warehouse)

    monkeypatch.setattr(Inputs, "known_at", classmethod(counting))
    first = cache.get("flow_cycle_times", D_MOMENT)
    assert cache.get("flow_cycle_times", D_MOMENT) is first  # kept, not recomputed
    cache.get("flow_throughput", D_MOMENT)  # same moment: same snapshot
    assert built == [D_MOMENT]
    cache.get("flow_wip", _day(1, 20))
    assert len(cache._past) == 2 and len(cache._inputs) == 1
    assert first.height == 1


def test_as_of_is_bounded_and_iso(today):
    with _client(today) as api:
        assert api.get("/flow", params={"as_of": "0"}).status_code == 422
        assert api.get("/flow", params={"as_of": "1969-12-31"}).status_code == 422
        assert api.get("/flow", params={"as_of": "2200-01-01T00:00:00Z"}).status_code == 422
        assert api.get("/flow", params={"as_of": "2026-02-01T23:59:59"}).json() == (
            api.get("/flow", params={"as_of": D}).json()
        )


def test_known_at_rebuilds_flags_and_sprints_from_history():
    """NW-9 was flagged on 5 Jan and unflagged 20 Feb; NW-8 flagged only since 10 Feb."""
    from pmolens.warehouse.analyses.base import known_at

    items = work_items(
        _item("nw:8", "Web", _day(1, 2), "To Do", flagged=True, updated=_day(2, 10)),
        _item("nw:9", "Web", _day(1, 2), "To Do", flagged=False, updated=_day(2, 20)),
    )
    flags = frame(
        "status_changes",
        {"source": "nw", "item_id": "nw:8", "change_id": "f1", "at": _day(2, 10),
         "field": "flagged", "from_status": None, "to_status": "Impediment"},
        {"source": "nw", "item_id": "nw:9", "change_id": "f2", "at": _day(1, 5),
         "field": "flagged", "from_status": None, "to_status": "Impediment"},
        {"source": "nw", "item_id": "nw:9", "change_id": "f3", "at": _day(2, 20),
         "field": "flagged", "from_status": "Impediment", "to_status": None},
    )  # fmt: skip
    frames = {**{k: frame(k) for k in ("links", "teams", "organisations", "sources")}}
    frames |= {"work_items": items, "status_changes": flags, "sprints": _today().sprints[0]}
    at_d = known_at(frames, D_MOMENT)
    rows = at_d["work_items"].sort("item_id")
    assert rows["flagged"].to_list() == [False, True]
    assert rows["updated"].to_list() == [_day(1, 2), _day(1, 5)]
    assert at_d["status_changes"]["change_id"].to_list() == ["f2"]
    sprints = at_d["sprints"].sort("sprint_id")
    assert sprints["state"].to_list() == ["closed", "active", "future", "future"]
    assert sprints["complete"].to_list() == [_day(1, 19), None, None, None]
    # at or after the newest timestamp nothing changes
    assert all(known_at(frames, NOW)[k].equals(frames[k]) for k in frames)


def test_report_route_takes_a_day_or_the_kept_moment(today):
    with _client(today) as api:
        page = api.get("/reports/steering", params={"as_of": D}).text
        assert "Data as of: <b>1 Feb 2026 23:59:59 UTC</b>" in page
        kept = api.get("/reports/steering", params={"as_of": "2026-03-01T12:00:00Z"}).text
        assert "Data as of: <b>1 Mar 2026 12:00:00 UTC</b>" in kept
