"""Monte Carlo forecasts on small frames: exact dates where throughput is constant, and the
properties that must hold for any throughput: determinism, monotonicity, the dependency rule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from pmolens.warehouse.config import ConfigError
from pmolens.warehouse.transforms.flow import prepare
from pmolens.warehouse.transforms.forecast import (
    NEVER,
    ForecastParams,
    TeamStream,
    crossings_few,
    crossings_sorted,
    forecast,
    forecast_how_many,
    plan,
    simulate,
    team_rng,
    topological_order,
)
from tests.factories import frame, work_items

AS_OF = datetime(2026, 3, 1, 12, tzinfo=UTC)
DAY0 = date(2026, 3, 1)
P = ForecastParams(trials=2000, seed=7)


def daily(**teams: list[int]) -> pl.DataFrame:
    """Daily throughput history per team (the window ends the day before AS_OF)."""
    rows = []
    for team, values in teams.items():
        for i, n in enumerate(values):
            rows.append({"team": team, "date": DAY0 - timedelta(days=len(values) - i), "items": n})
    return pl.DataFrame(rows, schema={"team": pl.String, "date": pl.Date, "items": pl.Int64})


def edges(*pairs: tuple[str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"blocker_id": b, "dependent_id": d} for b, d in pairs],
        schema={"blocker_id": pl.String, "dependent_id": pl.String},
    )


def epic(eid: str, team: str, rank: str, **extra: object) -> dict[str, object]:
    return {"item_id": eid, "level": "epic", "team": team, "rank": rank, **extra}


def stories(epic_id: str, team: str, n: int, done: int = 0) -> list[dict[str, object]]:
    return [
        {
            "item_id": f"{epic_id}-{i}",
            "parent_id": epic_id,
            "team": team,
            "status_category": "done" if i < done else "todo",
        }
        for i in range(n)
    ]


def data(*rows: dict[str, object]):
    return prepare(work_items(*rows), frame("status_changes"), AS_OF)


def test_constant_throughput_gives_exact_dates_in_rank_order():
    d = data(
        epic("E1", "A", "a"),
        *stories("E1", "A", 3),
        epic("E2", "A", "b", due_date=date(2026, 3, 5)),
        *stories("E2", "A", 4, done=2),  # 2 remaining, served after E1's 3
    )
    result = forecast(d, edges(), daily(A=[1] * 30), P).epics.sort("key")
    assert result["remaining_items"].to_list() == [3, 2]
    assert result["p50"].to_list() == [date(2026, 3, 4), date(2026, 3, 6)]
    assert result["p95"].to_list() == [date(2026, 3, 4), date(2026, 3, 6)]
    # E2 lands on day 5 at the earliest, its target is day 4: never on time
    assert result["p_on_time"].to_list() == [None, 0.0]


def test_probability_of_target_date():
    d = data(epic("E1", "A", "a", due_date=date(2026, 3, 6)), *stories("E1", "A", 5))
    exact = forecast(d, edges(), daily(A=[1] * 30), P).epics
    assert exact["p_on_time"].to_list() == [1.0]  # day 5 <= day 5
    # half the days finish one item, half none: P(5 items in 5 days) = 1/32
    coin = forecast(d, edges(), daily(A=[0, 1] * 15), ForecastParams(trials=20_000)).epics
    assert coin["p_on_time"][0] == pytest.approx(1 / 32, abs=0.006)


def test_same_seed_same_forecast_and_seed_matters():
    rows = [epic("E1", "A", "a"), *stories("E1", "A", 6), epic("E2", "B", "b")]
    rows += stories("E2", "B", 9)
    history = daily(A=[0, 1, 2, 0, 3] * 6, B=[1, 0, 0, 2, 0] * 6)
    one = forecast(data(*rows), edges(), history, P).epics
    two = forecast(data(*rows), edges(), history, P).epics
    assert one.equals(two)
    sim1 = simulate(plan(data(*rows), edges(), history), 2000, 7)
    sim2 = simulate(plan(data(*rows), edges(), history), 2000, 8)
    assert not np.array_equal(sim1.final, sim2.final)


def test_more_remaining_work_never_forecasts_earlier():
    history = daily(A=[0, 1, 2, 0, 3, 0, 0, 1] * 4)
    small = data(epic("E1", "A", "a"), *stories("E1", "A", 10))
    large = data(epic("E1", "A", "a"), *stories("E1", "A", 14))
    s1 = simulate(plan(small, edges(), history), 2000, 3)
    s2 = simulate(plan(large, edges(), history), 2000, 3)
    assert (s2.final >= s1.final).all()  # trial by trial
    assert (s2.final > s1.final).any()
    f1 = forecast(small, edges(), history, P).epics
    f2 = forecast(large, edges(), history, P).epics
    for q in ("p50", "p85", "p95"):
        assert f2[q][0] >= f1[q][0]


def test_epic_never_forecast_before_its_blocker():
    """E1 (fast team A) waits on an item of E2 (slow team B, other organisation)."""
    rows = [
        epic("E1", "A", "a"),
        *stories("E1", "A", 2),
        epic("E2", "B", "b", organisation="Partner"),
        *stories("E2", "B", 8),
    ]
    history = daily(A=[1] * 30, B=[0, 0, 1, 2, 0] * 6)
    deps = edges(("E2-3", "E1-0"))
    p = plan(data(*rows), deps, history)
    sim = simulate(p, 2000, 1)
    i1, i2 = sim.index("E1"), sim.index("E2")
    assert (sim.final[:, i1] >= sim.final[:, i2]).all()  # per trial
    assert (sim.own[:, i1] == 2).all()  # alone it would land on day 2
    result = forecast(data(*rows), deps, history, P).epics.sort("key")
    e1, e2 = result.row(0, named=True), result.row(1, named=True)
    for q in ("p50", "p85", "p95"):
        assert e1[q] >= e2[q]
    assert e1["own_p85"] == date(2026, 3, 3)
    assert e1["driven_by"] == "E2" and e1["driven_by_key"] == "E2"
    assert e1["driven_share"] == 1.0
    assert e1["dependency_delay_days_p85"] > 0
    assert e1["blockers"] == ["E2"]
    assert e2["driven_by"] is None


def test_done_blocker_holds_nothing_and_unknown_blocker_is_counted():
    rows = [
        epic("E1", "A", "a"),
        *stories("E1", "A", 2),
        epic("E2", "B", "b"),
        *stories("E2", "B", 3, done=3),
    ]
    history = daily(A=[1] * 30, B=[1] * 30)
    deps = edges(("E2-0", "E1-0"), ("elsewhere:9", "E1-1"))
    e1 = forecast(data(*rows), deps, history, P).epics.filter(pl.col("epic_id") == "E1")
    assert e1["p85"][0] == date(2026, 3, 3)
    assert e1["driven_by"][0] is None
    assert e1["unforecast_blockers"][0] == 1


def test_blocking_item_outside_epics_is_forecast_and_cycles_are_broken():
    rows = [
        epic("E1", "A", "a"),
        *stories("E1", "A", 1),
        epic("E2", "A", "b"),
        *stories("E2", "A", 1),
        {"item_id": "X", "team": "B", "rank": "a"},  # no epic, blocks E1
    ]
    history = daily(A=[1] * 30, B=[0, 1] * 15)
    deps = edges(("X", "E1-0"), ("E1-0", "E2-0"), ("E2-0", "E1-0"))
    result = forecast(data(*rows), deps, history, P).epics.sort("key")
    # X is outside the E1 <-> E2 cycle: its edge stays. Inside the cycle E1 and E2 each wait on
    # one member; E1 (then the smaller id) loses its edge from E2, so E1 waits on X only and E2
    # waits on E1. Both are cycle members, so both are marked.
    assert result["cycle_broken"].to_list() == [True, True]
    assert result["blockers"].to_list() == [["X"], ["E1"]]
    assert result["p85"][1] >= result["p85"][0]


def test_cycle_is_broken_inside_the_cycle_only():
    """Issue 12: P302 is in no cycle but waits on PAY1, a member of the PAY1 -> PAY2 -> PAY3 ->
    PAY1 cycle; U (in no cycle) blocks PAY2. The old rule picked the waiting node with the fewest
    unfinished blockers anywhere - P302 (1 blocker, smallest id) - and dropped (PAY1, P302).
    Only an edge between cycle members may go: each member waits on one member, so PAY1 (the
    smallest id) loses (PAY3, PAY1); every other edge, into and out of the cycle, is kept."""
    rows = [
        epic("P302", "T1", "a"),
        *stories("P302", "T1", 1),
        epic("PAY1", "T2", "b"),
        *stories("PAY1", "T2", 2),
        epic("PAY2", "T3", "c"),
        *stories("PAY2", "T3", 5),
        epic("PAY3", "T4", "d"),
        *stories("PAY3", "T4", 1),
        epic("U", "T5", "e"),
        *stories("U", "T5", 7),
    ]
    deps = edges(
        ("PAY1-0", "P302-0"),
        ("PAY1-1", "PAY2-0"),
        ("PAY2-0", "PAY3-0"),
        ("PAY3-0", "PAY1-0"),
        ("U-0", "PAY2-1"),
    )
    history = daily(T1=[1] * 30, T2=[1] * 30, T3=[1] * 30, T4=[1] * 30, T5=[1] * 30)
    sim = simulate(plan(data(*rows), deps, history), 500, 1)
    assert sim.broken == [("PAY3", "PAY1")]
    assert sim.in_cycle == {"PAY1", "PAY2", "PAY3"}
    assert sim.blockers == {
        "P302": ["PAY1"],
        "PAY1": [],
        "PAY2": ["PAY1", "U"],
        "PAY3": ["PAY2"],
        "U": [],
    }
    # one item a day per team, own = remaining items: P302 1, PAY1 2, PAY2 5, PAY3 1, U 7;
    # PAY1 2 (its edge from PAY3 dropped), PAY2 max(5, 2, 7) = 7, PAY3 max(1, 7) = 7,
    # P302 max(1, PAY1 2) = 2 - with the old rule P302 landed on day 1, before its blocker
    finals = {n: set(sim.final[:, sim.index(n)].tolist()) for n in sim.node_ids}
    assert finals == {"P302": {2}, "PAY1": {2}, "PAY2": {7}, "PAY3": {7}, "U": {7}}
    result = forecast(data(*rows), deps, history, P).epics.sort("key")
    assert result["key"].to_list() == ["P302", "PAY1", "PAY2", "PAY3", "U"]
    assert result["cycle_broken"].to_list() == [False, True, True, True, False]
    assert result["p85"].to_list() == [
        date(2026, 3, 3),
        date(2026, 3, 3),
        date(2026, 3, 8),
        date(2026, 3, 8),
        date(2026, 3, 8),
    ]
    assert result["driven_by"].to_list() == ["PAY1", None, "U", "PAY2", None]


def test_every_kept_edge_holds_per_trial_and_at_every_percentile():
    """Same graph, uneven throughput: per trial a dependent never ends before a kept blocker
    (every edge except the one dropped inside the cycle), hence at every percentile."""
    rows = [
        epic("P302", "T1", "a"),
        *stories("P302", "T1", 1),
        epic("PAY1", "T2", "b"),
        *stories("PAY1", "T2", 2),
        epic("PAY2", "T3", "c"),
        *stories("PAY2", "T3", 5),
        epic("PAY3", "T4", "d"),
        *stories("PAY3", "T4", 1),
        epic("U", "T5", "e"),
        *stories("U", "T5", 7),
    ]
    deps = edges(
        ("PAY1-0", "P302-0"),
        ("PAY1-1", "PAY2-0"),
        ("PAY2-0", "PAY3-0"),
        ("PAY3-0", "PAY1-0"),
        ("U-0", "PAY2-1"),
    )
    history = daily(
        T1=[0, 1, 0, 0, 2] * 6,
        T2=[0, 0, 1, 0, 0] * 6,
        T3=[3, 0, 1, 0, 2] * 6,
        T4=[1, 0] * 15,
        T5=[0, 2, 0, 1, 0] * 6,
    )
    p = plan(data(*rows), deps, history)
    sim = simulate(p, 3000, 11)
    kept = [(b, d) for d, bl in sim.blockers.items() for b in bl]
    assert sorted(kept) == sorted(set(p.edges.iter_rows()) - {("PAY3", "PAY1")})
    for b, d in kept:
        assert (sim.final[:, sim.index(d)] >= sim.final[:, sim.index(b)]).all(), (b, d)
    result = forecast(data(*rows), deps, history, P).epics
    dates = {r["epic_id"]: r for r in result.iter_rows(named=True)}
    for b, d in (("PAY1", "P302"), ("PAY1", "PAY2"), ("U", "PAY2"), ("PAY2", "PAY3")):
        for q in ("p50", "p85", "p95"):
            assert dates[d][q] >= dates[b][q], (b, d, q)


def test_topological_order_breaks_only_edges_still_on_a_cycle():
    """One component A0, B, C, D (C -> D -> C, D -> B -> A0 -> C). A0, B and D each wait on one
    member, C on two: A0 (fewest, smallest id) loses (B, A0). Left waiting: C <-> D, and B on D.
    B is in no cycle of what is left, so it keeps its edge although it has the smallest id: C
    (one blocker, then id) loses (D, C)."""
    pairs = [("C", "D"), ("D", "C"), ("D", "B"), ("B", "A0"), ("A0", "C")]
    order, broken, members = topological_order(["A0", "B", "C", "D"], pairs)
    assert broken == [("B", "A0"), ("D", "C")]
    assert members == {"A0", "B", "C", "D"}
    assert order == ["A0", "C", "D", "B"]
    # two cycles joined by an edge between them: that edge is kept, one edge per cycle goes
    pairs = [("A", "B"), ("B", "C"), ("C", "A"), ("B", "A"), ("C", "D"), ("D", "E"), ("E", "D")]
    order, broken, members = topological_order(list("ABCDE"), pairs)
    # A waits on B and C, B on A, C on B: B (one, then id) loses (A, B); D and E wait on one
    # member of their cycle each: D loses (E, D); (C, D) stays
    assert broken == [("A", "B"), ("E", "D")]
    assert members == set("ABCDE")
    assert order == ["B", "C", "A", "D", "E"]
    assert topological_order(["X", "Y"], [("X", "Y")]) == (["X", "Y"], [], set())


def test_team_without_throughput_has_no_dates_and_says_why():
    d = data(epic("E1", "A", "a"), *stories("E1", "A", 2))
    e = forecast(d, edges(), daily(A=[0] * 30), P).epics
    assert e["p50"].to_list() == [None]
    assert "finished nothing" in e["note"][0]


def test_max_epics_takes_the_first_in_backlog_order_and_caps_blockers():
    rows = [epic("E1", "A", "b"), *stories("E1", "A", 1), epic("E2", "A", "a")]
    rows += stories("E2", "A", 1)
    e = forecast(data(*rows), edges(), daily(A=[1] * 10), ForecastParams(max_epics=1)).epics
    assert e["epic_id"].to_list() == ["E2"]
    rows += [epic("E3", "B", "c"), *stories("E3", "B", 1)]
    capped = forecast(
        data(*rows),
        edges(("E3-0", "E2-0")),
        daily(A=[1] * 10, B=[1] * 10),
        ForecastParams(max_epics=1, max_nodes=1),
    ).epics
    assert capped["unforecast_blockers"].to_list() == [1]


def test_initiative_lands_with_its_last_epic():
    rows = [
        {"item_id": "I1", "level": "initiative", "due_date": date(2026, 3, 10)},
        epic("E1", "A", "a", parent_id="I1"),
        *stories("E1", "A", 2),
        epic("E2", "B", "b", parent_id="I1"),
        *stories("E2", "B", 6),
    ]
    ini = forecast(data(*rows), edges(), daily(A=[1] * 30, B=[2] * 30), P).initiatives
    row = ini.row(0, named=True)
    assert (row["epics"], row["remaining_items"]) == (2, 8)
    assert row["p85"] == date(2026, 3, 4)  # E2: 6 items at 2 a day, E1 on day 2
    assert row["driven_by"] == "E2" and row["p_on_time"] == 1.0


def test_how_many_by_date_exact_and_monotone():
    history = daily(A=[2] * 30, B=[0, 1, 3] * 10)
    out = forecast_how_many(history, AS_OF, [date(2026, 3, 15), date(2026, 4, 12)], 4000, 1)
    a = out.filter(pl.col("team") == "A")
    assert a["days"].to_list() == [14, 42]
    assert a["items_p85"].to_list() == [28, 84]
    b = out.filter(pl.col("team") == "B")
    assert b["zero_day_share"][0] == pytest.approx(1 / 3)
    assert b["items_mean"][1] > b["items_mean"][0]
    stream = TeamStream(np.array([0, 1, 3]), 500, team_rng(1, "B"))
    assert (stream.items_by(42) >= stream.items_by(14)).all()


def test_stream_finish_days_match_a_day_by_day_count():
    stream = TeamStream(np.array([0, 1, 2, 5]), 300, team_rng(0, "T"))
    targets = np.array([1, 7, 40, 41, 200])
    days = stream.finish_days(targets, 3650)
    for t in range(0, 300, 37):  # brute force on a few trials
        for j, target in enumerate(targets):
            first = next(d for d in range(1, 400) if stream.items_by(d)[t] >= target)
            assert days[t, j] == first
    assert (stream.finish_days(np.array([10**6]), 100) == NEVER).all()


def test_slow_team_far_ahead_keeps_its_dates_however_the_horizon_grows():
    """One item per 90 days: the horizon is drawn in large steps, yet the days (pinned from the
    chunk-by-chunk implementation) and the days asked in small steps are the same."""
    slow = np.array([0] * 89 + [1])
    targets = np.array([1, 4, 12, 40])
    days = TeamStream(slow, 1000, team_rng(3, "slow")).finish_days(targets, 3650)
    pct = np.percentile(days, [50, 85, 95], axis=0, method="inverted_cdf").T.tolist()
    assert pct[:3] == [[60, 177, 283], [335, 556, 701], [1078, 1439, 1663]]
    assert pct[3] == [NEVER] * 3  # 40 items take ~3,600 days: most trials beyond the horizon
    assert (days == NEVER).sum(axis=0).tolist() == [0, 0, 0, 538]
    assert int(days[days < NEVER].sum()) == 3_059_575
    stepwise = TeamStream(slow, 1000, team_rng(3, "slow"))
    parts = [stepwise.finish_days(targets[i : i + 1], 3650) for i in range(len(targets))]
    assert np.array_equal(np.concatenate(parts, axis=1), days)


def test_crossings_few_targets_match_the_matrix_method():
    rng = np.random.default_rng(5)
    cum = np.concatenate(
        [np.zeros((50, 1), dtype=np.int64), np.cumsum(rng.integers(0, 3, (50, 40)), axis=1)],
        axis=1,
    )
    for targets in ([1], [3, 3, 17], [1, 40, 41, 80, 500]):
        t = np.array(targets)
        assert np.array_equal(crossings_few(cum, t), crossings_sorted(cum, t))


def test_params_name_the_bad_key():
    with pytest.raises(ConfigError, match=r"analytics\.forecast\.trials"):
        ForecastParams.from_mapping({"trials": 5})
    with pytest.raises(ConfigError, match=r"analytics\.forecast\.trails: unknown key"):
        ForecastParams.from_mapping({"trails": 5000})
    assert ForecastParams.from_mapping({"how_many_weeks": [1, 2]}).how_many_weeks == (1, 2)
