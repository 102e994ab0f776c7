"""GET /forecast/epics/{epic_id}/what-if over the seeded warehouse plus a throughput history.

The seed: epic NW-1 has NW-3 open in team App; epic CO-1 (team Pay) has CO-2 open, and CO-2
blocks NW-3. ``history`` adds CO-3 and CO-4 under CO-1 and finished items every day of the 90
before 1 March 2026 (Pay and App one a day, Web two), so the dates are exact: CO-1 lands on
4 March, NW-1's own work on 2 March, and NW-1 waits for CO-1.
"""

from __future__ import annotations

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
URL = "/forecast/epics/{}/what-if"


def history_items(source: str, team: str, org: str, per_day: int) -> pl.DataFrame:
    done = [AS_OF.replace(hour=10) - timedelta(days=i) for i in range(1, 91)]
    return work_items(
        *[
            {"item_id": f"{source}:h{team}{i}-{j}", "source": source, "team": team,
             "organisation": org, "status_category": "done", "raw_status": "Done",
             "created": at - timedelta(days=1), "resolved": at}
            for i, at in enumerate(done) for j in range(per_day)
        ]
    )  # fmt: skip


@pytest.fixture
def api(runtime, settings):
    wh = runtime.warehouse
    more = [
        {"item_id": f"co:{n}", "source": "co", "key": f"CO-{n}", "parent_id": "co:1",
         "team": "Pay", "organisation": "Contoso"}
        for n in (3, 4)
    ]  # fmt: skip
    co = pl.concat([history_items("co", "Pay", "Contoso", 1), work_items(*more)])
    nw = pl.concat(
        [history_items("nw", "App", "Northwind", 1), history_items("nw", "Web", "Northwind", 2)]
    )
    for source, items in (("co", co), ("nw", nw)):
        run_id = wh.begin_run(source, "incremental", None)
        wh.commit_sync(run_id, source, Staged(work_items=[items]), live_ids=None, cursor=None)
    refresh(wh, settings, as_of=AS_OF)
    with TestClient(create_app(runtime), headers=auth(VIEWER)) as client:
        yield client


def test_needs_a_token(api):
    assert api.get(URL.format("NW-1"), headers={"Authorization": ""}).status_code == 401


def test_no_change_is_the_forecast_shown_on_the_epics_route(api):
    answer = api.get(URL.format("NW-1")).json()
    row = next(r for r in api.get("/forecast/epics").json() if r["key"] == "NW-1")
    assert answer["current"] == {k: row[k] for k in answer["current"]}
    assert answer["scenario"] == answer["current"]
    assert (answer["epic_id"], answer["as_of"], answer["query"]) == ("nw:1", "2026-03-01", "")
    assert (answer["current"]["p85"], answer["current"]["driven_by_key"]) == ("2026-03-04", "CO-1")
    assert answer["p85_shift_days"] == 0
    # the kept moment named explicitly is the same answer
    assert api.get(URL.format("nw:1"), params={"as_of": AS_OF.isoformat()}).json() == answer


def test_pin_drop_and_move(api):
    pinned = api.get(URL.format("NW-1"), params={"pin": "CO-2=2026-03-20"}).json()
    assert pinned["scenario"]["p85"] == "2026-03-20"
    assert (pinned["scenario"]["driven_by_key"], pinned["p85_shift_days"]) == ("CO-1", 16)
    assert pinned["change"]["pins"] == [{"id": "co:2", "key": "CO-2", "date": "2026-03-20"}]
    assert pinned["query"] == "pin=co%3A2%3D2026-03-20"  # by id: the shareable link
    dropped = api.get(URL.format("NW-1"), params={"drop": "CO-2=NW-3"}).json()
    assert dropped["scenario"]["p85"] == dropped["current"]["own_p85"] == "2026-03-02"
    assert dropped["scenario"]["driven_by"] is None
    moved = api.get(URL.format("CO-1"), params={"team": "Web"}).json()  # 3 items at 2 a day
    assert (moved["current"]["p85"], moved["scenario"]["p85"]) == ("2026-03-04", "2026-03-03")
    assert moved["scenario"]["teams"] == ["Web"] and moved["change"]["team"] == "Web"
    both = api.get(URL.format("NW-1"), params=[("pin", "CO-2=2026-03-20"), ("team", "Web")])
    assert both.json()["scenario"]["p85"] == "2026-03-20"


@pytest.mark.parametrize("epic", ["NW-99", "NW-3", "co:2"])
def test_unknown_epic_is_404(api, epic):
    response = api.get(URL.format(epic))
    assert response.status_code == 404
    assert epic in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"pin": "CO-2=soon"}, None),  # not ITEM=YYYY-MM-DD: refused by the schema
        ({"pin": "CO-2"}, None),
        ({"drop": "CO-2"}, None),
        ({"pinn": "CO-2=2026-03-20"}, None),  # unknown parameter
        ({"pin": "CO-2=2026-02-30"}, "not a day"),
        ({"team": "Mobile"}, "known teams: App, Pay, Web"),
        ({"pin": "nw:hApp0-0=2026-03-20"}, "not open work"),  # done, in no epic
        ({"drop": "NW-3=CO-2"}, "no open dependency"),  # the wrong way round
    ],
)
def test_malformed_or_impossible_change_is_422(api, params, words):
    response = api.get(URL.format("NW-1"), params=params)
    assert response.status_code == 422, response.text
    if words is not None:
        assert words in response.json()["detail"]


def test_pin_on_something_that_does_not_block_the_epic_is_422(api):
    response = api.get(URL.format("CO-1"), params={"pin": "NW-3=2026-03-20"})
    assert response.status_code == 422
    assert "does not block epic co:1" in response.json()["detail"]
