"""What-if on an epic's forecast (issue 13.5): pin a blocker's finish day, drop a dependency,
move the epic to another team; re-forecast next to the current one, same seed, nothing stored.

Constant throughput makes the dates exact: E1 (team A, 2 items at 1 a day) waits on E2 (team B,
6 items at 1 a day) through the link E2-0 -> E1-0, so E1 lands on day 6 instead of day 2.
Team C finishes 3 a day and already serves E3 (3 items, ranked first).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from pmolens.pipeline.refresh import refresh
from pmolens.warehouse.analyses import Inputs
from pmolens.warehouse.analyses.forecast import change_query, parse_change, what_if
from pmolens.warehouse.config import settings_from_dict
from pmolens.warehouse.results import ResultCache
from pmolens.warehouse.store import Staged, Warehouse
from pmolens.warehouse.transforms.flow import prepare
from pmolens.warehouse.transforms.forecast import (
    ForecastParams,
    WhatIf,
    WhatIfError,
    forecast,
    what_if_forecast,
)
from tests.factories import frame, northwind_source, work_items

AS_OF = datetime(2026, 3, 1, 12, tzinfo=UTC)
DAY0 = date(2026, 3, 1)
P = ForecastParams(trials=1000, seed=11)


def day(n: int) -> date:
    return DAY0 + timedelta(days=n)


def daily(**teams: list[int]) -> pl.DataFrame:
    rows = [
        {"team": team, "date": DAY0 - timedelta(days=len(values) - i), "items": n}
        for team, values in teams.items()
        for i, n in enumerate(values)
    ]
    return pl.DataFrame(rows, schema={"team": pl.String, "date": pl.Date, "items": pl.Int64})


def links(*pairs: tuple[str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"blocker_id": b, "dependent_id": d} for b, d in pairs],
        schema={"blocker_id": pl.String, "dependent_id": pl.String},
    )


def epic(eid: str, team: str, rank: str, n: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [{"item_id": eid, "level": "epic", "team": team, "rank": rank}]
    rows += [{"item_id": f"{eid}-{i}", "parent_id": eid, "team": team} for i in range(n)]
    return rows


DATA = prepare(
    work_items(*epic("E1", "A", "b", 2), *epic("E2", "B", "c", 6), *epic("E3", "C", "a", 3)),
    frame("status_changes"),
    AS_OF,
)
EDGES = links(("E2-0", "E1-0"))
EXACT = daily(A=[1] * 30, B=[1] * 30, C=[3] * 30)


def run(epic_id: str, change: WhatIf, history: pl.DataFrame = EXACT) -> tuple[dict, dict]:
    frame_ = what_if_forecast(DATA, EDGES, history, P, epic_id, change)
    assert frame_["run"].to_list() == ["current", "scenario"]
    return frame_.row(0, named=True), frame_.row(1, named=True)


def test_no_change_is_the_current_forecast():
    history = daily(A=[0, 1, 2, 0, 3] * 6, B=[1, 0, 0, 2, 0] * 6, C=[3, 0, 1] * 10)
    current, scenario = run("E1", WhatIf(), history)
    assert {**scenario, "run": "current"} == current
    # bit-identical to the epic's row in the forecast itself (same seed, same simulated nodes)
    full = forecast(DATA, EDGES, history, P).epics
    row = full.filter(pl.col("epic_id") == "E1").drop("backlog_position").row(0, named=True)
    assert {k: current[k] for k in row} == row
    assert current["driven_by"] == "E2"


def test_current_is_the_forecast_row_even_when_max_nodes_leaves_blockers_out():
    """max_epics 2 picks E3 and E1 (rank a, b); max_nodes 2 then leaves E1's blocker E2 out, so
    the forecast says day 2 with one unforecast blocker: the what-if's "current" says the same."""
    capped = ForecastParams(trials=200, seed=11, max_epics=2, max_nodes=2)
    row = forecast(DATA, EDGES, EXACT, capped).epics.filter(pl.col("epic_id") == "E1")
    frame_ = what_if_forecast(DATA, EDGES, EXACT, capped, "E1", WhatIf(team="C"))
    current, scenario = frame_.row(0, named=True), frame_.row(1, named=True)
    assert {k: current[k] for k in row.columns if k != "backlog_position"} == {
        k: v for k, v in row.row(0, named=True).items() if k != "backlog_position"
    }
    assert (current["p85"], current["unforecast_blockers"]) == (day(2), 1)
    assert scenario["p85"] == day(2)  # C: E3's 3 then E1's 2 at 3 a day
    # an epic beyond max_epics is simulated on top of the selection
    beyond = what_if_forecast(DATA, EDGES, EXACT, capped, "E2", WhatIf(team="C"))
    assert beyond["p85"].to_list() == [day(6), day(3)]


def test_pinning_the_blocker_later_moves_the_epic_and_names_the_blocker():
    current, scenario = run("E1", WhatIf(pins=(("E2-3", date(2026, 4, 1)),)))  # item -> its epic
    assert (current["p85"], current["own_p85"], current["driven_by"]) == (day(6), day(2), "E2")
    assert scenario["p50"] == scenario["p85"] == scenario["p95"] == date(2026, 4, 1)
    assert (scenario["driven_by"], scenario["driven_by_key"]) == ("E2", "E2")
    assert scenario["driven_share"] == 1.0
    assert scenario["dependency_delay_days_p85"] == (date(2026, 4, 1) - day(2)).days
    # earlier than its own work: the blocker no longer drives; a day in the past is day 0
    for pin in (day(1), date(2025, 1, 1)):
        _, early = run("E1", WhatIf(pins=(("E2", pin),)))
        assert (early["p85"], early["driven_by"], early["dependency_delay_days_p85"]) == (
            day(2),
            None,
            0,
        )


def test_dropping_the_only_dependency_leaves_the_own_date():
    for pair in (("E2-0", "E1-0"), ("E2", "E1"), ("E2-0", "E1")):  # items, epics, mixed
        current, scenario = run("E1", WhatIf(drop=(pair,)))
        assert scenario["p85"] == scenario["own_p85"] == current["own_p85"] == day(2)
        assert (scenario["blockers"], scenario["driven_by"]) == ([], None)
        assert scenario["dependency_delay_days_p85"] == 0
        assert current["p85"] == day(6)


def test_moving_to_a_faster_team_lands_earlier_in_its_backlog_order():
    current, scenario = run("E2", WhatIf(team="C"))
    assert (current["p85"], current["teams"]) == (day(6), ["B"])
    # C does 3 a day but serves E3 (ranked first, 3 items) before E2's 6: day 3
    assert (scenario["p85"], scenario["teams"], scenario["team"]) == (day(3), ["C"], "C")
    assert scenario["remaining_items"] == current["remaining_items"] == 6
    # the dependent follows its blocker to the new date
    _, e1 = run("E1", WhatIf(team="B"))  # E1's own 2 items queue behind E2 in B: day 8
    assert e1["p85"] == day(8)


@pytest.mark.parametrize(
    ("epic_id", "change", "code", "words"),
    [
        ("E9", WhatIf(), "unknown_epic", "E9"),
        ("E1-0", WhatIf(), "unknown_epic", "E1-0"),  # a story is not an epic
        ("E1", WhatIf(team="Z"), "unknown_team", "known teams: A, B, C"),
        ("E1", WhatIf(pins=(("E3", DAY0),)), "not_a_blocker", "does not block epic E1"),
        ("E1", WhatIf(pins=(("E1-1", DAY0),)), "pin_self", "E1's own work"),
        ("E1", WhatIf(pins=(("nowhere", DAY0),)), "not_forecast", "nowhere"),
        ("E1", WhatIf(pins=(("E2", DAY0), ("E2-1", day(3)))), "pin_twice", "two different"),
        ("E1", WhatIf(drop=(("E3", "E1"),)), "no_such_dependency", "E3 -> E1"),
        ("E2", WhatIf(drop=(("E2-0", "E1-0"),)), "no_such_dependency", "epic E2"),  # downstream
    ],
)
def test_a_change_that_cannot_move_the_date_is_refused(epic_id, change, code, words):
    with pytest.raises(ValueError, match=words) as caught:
        run(epic_id, change)
    assert isinstance(caught.value, WhatIfError) and caught.value.code == code


def test_a_pin_behind_a_dropped_link_is_refused():
    with pytest.raises(WhatIfError, match="does not block"):
        run("E1", WhatIf(pins=(("E2", day(9)),), drop=(("E2", "E1"),)))


def test_the_url_form_round_trips():
    change = parse_change(["NW-5=2026-04-01", "a=b=2026-05-02"], ["NW-5=NW-4"], "App")
    assert change == WhatIf(
        pins=(("NW-5", date(2026, 4, 1)), ("a=b", date(2026, 5, 2))),
        drop=(("NW-5", "NW-4"),),
        team="App",
    )
    query = change_query(change)
    assert query == "pin=NW-5%3D2026-04-01&pin=a%3Db%3D2026-05-02&drop=NW-5%3DNW-4&team=App"
    assert parse_change(team="") == WhatIf()
    for pins, drop in ((["NW-5"], []), (["NW-5=2026-02-30"], []), ([], ["NW-5"]), ([], ["=x"])):
        with pytest.raises(WhatIfError):
            parse_change(pins, drop)


# ----------------------------------------------------------- over a warehouse, with keys


def history(team: str, per_day: int) -> list[dict[str, object]]:
    done = [AS_OF.replace(hour=10) - timedelta(days=i) for i in range(1, 91)]
    return [
        {"item_id": f"nw:{team}{i}-{j}", "source": "nw", "team": team, "status_category": "done",
         "raw_status": "Done", "created": at - timedelta(days=1), "resolved": at}
        for i, at in enumerate(done) for j in range(per_day)
    ]  # fmt: skip


@pytest.fixture
def warehouse(tmp_path):
    settings = settings_from_dict(
        {
            "sources": [northwind_source()],
            "analytics": {"forecast": {"trials": 500}},
        }
    )
    open_items = [
        {"item_id": "nw:1", "key": "NW-1", "level": "epic", "team": "Web", "rank": "a"},
        *[{"item_id": f"nw:{n}", "key": f"NW-{n}", "parent_id": "nw:1", "team": "Web"}
          for n in (2, 3)],
        {"item_id": "nw:10", "key": "NW-10", "level": "epic", "team": "App", "rank": "b"},
        *[{"item_id": f"nw:{n}", "key": f"NW-{n}", "parent_id": "nw:10", "team": "App"}
          for n in (11, 12, 13, 14)],
    ]  # fmt: skip
    items = work_items(
        *[{**row, "source": "nw", "organisation": "Northwind"} for row in open_items],
        *history("Web", 1),
        *history("App", 1),
        *history("Fast", 4),
    )
    link = frame(
        "links",
        {"source": "nw", "link_id": "L1", "from_item": "nw:11", "to_item": "nw:2",
         "kind": "blocks", "raw_type": "Blocks"},
    )  # fmt: skip
    with Warehouse(tmp_path / "w.duckdb") as wh:
        wh.register_config(settings)
        run_id = wh.begin_run("nw", "full", None)
        wh.commit_sync(
            run_id, "nw", Staged(work_items=[items], links=[link]), live_ids=None, cursor=None
        )
        refresh(wh, settings, as_of=AS_OF)
        yield wh, settings


def everything(wh: Warehouse) -> dict[str, pl.DataFrame]:
    tables = wh.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    )["table_name"].to_list()
    return {t: wh.query(f'SELECT * FROM "{t}"') for t in sorted(tables)}


def test_what_if_over_the_kept_inputs_by_key_writes_nothing(warehouse):
    wh, settings = warehouse
    before, generation = everything(wh), wh.generation()
    cache = ResultCache(wh, settings)
    inputs = cache.inputs()
    assert cache.inputs() is inputs  # one snapshot per generation and moment
    answer = what_if(inputs, "NW-1", parse_change(["NW-12=2026-03-20"]))
    kept = cache.get("forecast_epics").filter(pl.col("key") == "NW-1").row(0, named=True)
    assert {k: kept[k] for k in answer["current"]} == answer["current"]
    assert (answer["epic_id"], answer["as_of"], answer["current"]["p85"]) == ("nw:1", DAY0, day(4))
    assert answer["scenario"]["p85"] == date(2026, 3, 20)
    assert answer["scenario"]["driven_by_key"] == "NW-10"
    assert answer["change"]["pins"] == [{"id": "nw:12", "key": "NW-12", "date": date(2026, 3, 20)}]
    assert answer["query"] == "pin=nw%3A12%3D2026-03-20"
    assert (answer["p50_shift_days"], answer["p85_shift_days"]) == (15, 15)

    moved = what_if(inputs, "nw:10", WhatIf(team="Fast"))  # 4 items at 4 a day
    assert (moved["current"]["p85"], moved["scenario"]["p85"]) == (day(4), day(1))
    dropped = what_if(inputs, "NW-1", WhatIf(drop=(("NW-11", "NW-2"),)))
    assert dropped["scenario"]["p85"] == dropped["current"]["own_p85"] == day(2)
    assert dropped["change"]["drop"] == [
        {"blocker": "nw:11", "blocker_key": "NW-11", "dependent": "nw:2", "dependent_key": "NW-2"}
    ]
    with pytest.raises(ValueError, match="known teams: App, Fast, Web"):
        what_if(inputs, "NW-1", WhatIf(team="Mobile"))
    with pytest.raises(ValueError, match="'NW-99'"):
        what_if(inputs, "NW-99", WhatIf())
    assert wh.generation() == generation
    after = everything(wh)
    assert after.keys() == before.keys()
    for name, table in before.items():
        assert after[name].equals(table), name


def test_a_key_naming_two_items_is_refused(warehouse):
    wh, settings = warehouse
    frames = wh.frames()
    twin = work_items({"item_id": "co:2", "source": "co", "key": "NW-2"})
    frames["work_items"] = pl.concat([frames["work_items"], twin])
    inputs = Inputs(frames, settings, AS_OF)
    with pytest.raises(WhatIfError, match="NW-2 names 2 items") as caught:
        what_if(inputs, "NW-1", parse_change(drop=["NW-11=NW-2"]))
    assert caught.value.code == "ambiguous_key"
