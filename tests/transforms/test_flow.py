"""Flow metrics on a hand-made status history with known answers.

Team A (dates 2026, UTC midnight; every item created 1 Jan):
  S1 in progress 2 Jan -> done 5 Jan              cycle 3, lead 4
  S2 (bug) in progress 3 Jan, Blocked 4-6 Jan, done 7 Jan   cycle 4, active 2
  S3 in progress 2 Jan -> done 13 Jan, flagged 3-4 Jan      cycle 11, active 10
  S4 in progress since 10 Jan, S7 since 5 Jan (open)
  S5 to do, no history; S6 to do -> done 6 Jan (never in progress; label tech-debt)
  T1 a task under S1 (a sub-task: not counted)
as_of 20 Jan 00:00, window 21 days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from pmolens.warehouse.config import ConfigError
from pmolens.warehouse.transforms import flow as F
from tests.factories import frame, work_items


def at(day: int, month: int = 1) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC)


AS_OF = at(20)
P = F.FlowParams(window_days=21)
CATS = {
    "To Do": "todo",
    "In Progress": "in_progress",
    "Blocked": "in_progress",
    "On Hold": "in_progress",
    "Done": "done",
}


def move(item: str, day: int, old: str, new: str, n: int = 0) -> dict[str, object]:
    return {
        "source": "s",
        "item_id": item,
        "change_id": f"{item}-{day}-{n}",
        "at": at(day),
        "field": "status",
        "from_status": old,
        "to_status": new,
        "from_category": CATS[old],
        "to_category": CATS[new],
    }


def flag(item: str, day: int, on: bool) -> dict[str, object]:
    return {
        "source": "s",
        "item_id": item,
        "change_id": f"{item}-flag-{day}",
        "at": at(day),
        "field": "flagged",
        "to_status": "true" if on else "false",
    }


ITEMS = work_items(
    {"item_id": "S1", "team": "A", "status_category": "done", "raw_status": "Done"},
    {"item_id": "S2", "team": "A", "status_category": "done", "level": "bug", "raw_type": "Bug"},
    {"item_id": "S3", "team": "A", "status_category": "done", "estimate": 5.0},
    {"item_id": "S4", "team": "A", "status_category": "in_progress", "raw_status": "In Progress"},
    {"item_id": "S5", "team": "A"},
    {"item_id": "S6", "team": "A", "status_category": "done", "labels": ["tech-debt"]},
    {"item_id": "S7", "team": "A", "status_category": "in_progress", "raw_status": "In Progress"},
    {"item_id": "T1", "team": "A", "level": "task", "parent_id": "S1", "status_category": "done"},
)
HISTORY = frame(
    "status_changes",
    move("S1", 2, "To Do", "In Progress"),
    move("S1", 5, "In Progress", "Done"),
    move("S2", 3, "To Do", "In Progress"),
    move("S2", 4, "In Progress", "Blocked"),
    move("S2", 6, "Blocked", "In Progress"),
    move("S2", 7, "In Progress", "Done"),
    move("S3", 2, "To Do", "In Progress"),
    move("S3", 13, "In Progress", "Done"),
    flag("S3", 3, True),
    flag("S3", 4, False),
    move("S4", 10, "To Do", "In Progress"),
    move("S6", 6, "To Do", "Done"),
    move("S7", 5, "To Do", "In Progress"),
    move("T1", 2, "To Do", "In Progress"),
    move("T1", 3, "In Progress", "Done"),
)


@pytest.fixture(scope="module")
def data() -> F.FlowData:
    return F.prepare(ITEMS, HISTORY, AS_OF)


@pytest.fixture(scope="module")
def cycles(data: F.FlowData):
    return F.cycle_times(ITEMS, HISTORY, AS_OF, P, data=data)


def test_cycle_and_lead_times_from_history(cycles):
    got = {r["item_id"]: r for r in cycles.iter_rows(named=True)}
    assert sorted(got) == ["S1", "S2", "S3", "S6"]  # T1 is a sub-task, S4/S5/S7 are open
    assert {k: r["cycle_time_days"] for k, r in got.items()} == {
        "S1": 3.0,
        "S2": 4.0,
        "S3": 11.0,
        "S6": None,  # never in progress: no cycle time
    }
    assert {k: r["lead_time_days"] for k, r in got.items()} == {
        "S1": 4.0,
        "S2": 6.0,
        "S3": 12.0,
        "S6": 5.0,
    }
    assert got["S2"]["work_type"] == "defect" and got["S6"]["work_type"] == "debt"
    assert got["S1"]["done_date"] == date(2026, 1, 5)
    # whole days (Vacanti): done date - start date + 1; S1 2 -> 5 Jan = 4 days
    assert {k: r["cycle_days"] for k, r in got.items()} == {
        "S1": 4,
        "S2": 5,
        "S3": 12,
        "S6": None,
    }
    assert {k: r["lead_days"] for k, r in got.items()} == {"S1": 5, "S2": 7, "S3": 13, "S6": 6}
    # working days Mon-Fri: S1 Fri 2 .. Mon 5 Jan = Fri + Mon; S3 Fri 2 .. Tue 13 Jan = 8
    assert {k: r["cycle_working_days"] for k, r in got.items()} == {
        "S1": 2,
        "S2": 3,
        "S3": 8,
        "S6": None,
    }


def test_created_in_progress_starts_at_created():
    items = work_items({"item_id": "X", "team": "A", "status_category": "done"})
    history = frame("status_changes", move("X", 4, "In Progress", "Done"))
    out = F.cycle_times(items, history, AS_OF, P)
    assert out["started"].to_list() == [at(1)] and out["cycle_time_days"].to_list() == [3.0]


def test_percentiles_use_the_smallest_value_covering_p_percent(cycles):
    row = F.cycle_time_percentiles(cycles, AS_OF, P).row(0, named=True)
    # whole days by default: cycle [4, 5, 12], lead [5, 6, 7, 13]
    assert (row["team"], row["items"]) == ("A", 4)
    assert (row["cycle_p50"], row["cycle_p70"], row["cycle_p85"], row["cycle_p95"]) == (
        5.0,
        12.0,
        12.0,
        12.0,
    )
    assert (row["lead_p50"], row["lead_p85"]) == (6.0, 13.0)
    assert row["cycle_mean_days"] == 7.0
    row = F.cycle_time_percentiles(cycles, AS_OF, P, exact=True).row(0, named=True)
    # exact cycle times [3, 4, 11]: P50 = 2nd value, P70/P85/P95 = 3rd (ceil(p * n)-th)
    assert (row["cycle_p50"], row["cycle_p70"], row["cycle_p85"], row["cycle_p95"]) == (
        4.0,
        11.0,
        11.0,
        11.0,
    )
    assert (row["lead_p50"], row["lead_p85"]) == (5.0, 12.0)  # leads [4, 5, 6, 12]
    assert row["cycle_mean_days"] == 6.0


def test_throughput_per_week_keeps_zero_weeks(cycles):
    weekly = F.throughput(cycles, AS_OF, params=P)
    assert weekly.select("week", "items").rows() == [
        (date(2025, 12, 29), 0),
        (date(2026, 1, 5), 3),  # S1 (Mon 5), S6 (6), S2 (7)
        (date(2026, 1, 12), 1),  # S3
        (date(2026, 1, 19), 0),
    ]
    assert weekly["estimate"].to_list() == [0.0, 0.0, 5.0, 0.0]
    assert weekly["complete"].to_list() == [True, True, True, False]  # 19 Jan: current week


def test_daily_throughput_has_zero_days(cycles):
    daily = F.daily_throughput(cycles, AS_OF, 7, groups=["B"])
    # the 7 full days before 20 Jan: 13..19 Jan; S3 finished on the 13th
    assert daily.filter(daily["team"] == "A")["items"].to_list() == [1, 0, 0, 0, 0, 0, 0]
    assert daily.filter(daily["team"] == "B")["items"].sum() == 0


def test_wip_per_day_and_cumulative_flow(data):
    cfd = F.cumulative_flow(ITEMS, HISTORY, AS_OF, start=date(2025, 12, 30), params=P, data=data)
    wip = F.wip_daily(cfd)
    assert wip["wip"].to_list() == (
        [0, 0, 0, 2, 3, 3, 3, 3, 2, 2, 2, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2]
    )  # 30 Dec .. 20 Jan
    last = cfd.row(-1, named=True)
    assert (last["date"], last["todo"], last["in_progress"], last["done"]) == (
        date(2026, 1, 20),
        1,
        2,
        4,
    )


def test_aging_against_team_percentiles(data, cycles):
    aging = F.aging_wip(ITEMS, HISTORY, cycles, AS_OF, P, data=data)
    # whole-day age (20 Jan - start date + 1) against whole-day percentiles [5, 12, 12, 12]
    assert aging.select("item_id", "wip_age_days", "age_days", "age_band", "over_p85").rows() == [
        ("S7", 16, 15.0, "above_p95", True),  # older than every percentile (12 days)
        ("S4", 11, 10.0, "above_p50", False),  # past the median (5), within P70 (12)
    ]
    assert aging["team_p85"].to_list() == [12.0, 12.0]


def test_flow_efficiency_counts_blocked_and_flagged_time_as_waiting(data, cycles):
    per_item = F.flow_efficiency_items(ITEMS, HISTORY, cycles, AS_OF, P, data=data)
    assert per_item.select("item_id", "active_days", "waiting_days").rows() == [
        ("S1", 3.0, 0.0),
        ("S2", 2.0, 2.0),  # Blocked 4-6 Jan is waiting
        ("S3", 10.0, 1.0),  # flagged 3-4 Jan is waiting
    ]
    team = F.flow_efficiency(ITEMS, HISTORY, cycles, AS_OF, P, data=data).row(0, named=True)
    assert team["items"] == 3 and team["flow_efficiency"] == pytest.approx(15 / 18)
    assert team["median_item_efficiency"] == pytest.approx(10 / 11)
    assert team["efficiency_note"] is None


def test_flow_efficiency_not_measurable_without_waiting_states():
    """Team B's workflow has no waiting status (only a flag): not measurable. Team C never waited
    in a finished cycle, but C2 sits in On Hold, so its workflow can show waiting: measurable."""
    items = work_items(
        {"item_id": "B1", "team": "B", "status_category": "done"},
        {"item_id": "B2", "team": "B"},
        {"item_id": "C1", "team": "C", "status_category": "done"},
        {"item_id": "C2", "team": "C", "status_category": "in_progress"},
    )
    history = frame(
        "status_changes",
        move("B1", 2, "To Do", "In Progress"),
        move("B1", 6, "In Progress", "Done"),
        flag("B1", 3, True),
        flag("B1", 4, False),
        move("C1", 2, "To Do", "In Progress"),
        move("C1", 4, "In Progress", "Done"),
        move("C2", 5, "To Do", "In Progress"),
        move("C2", 8, "In Progress", "On Hold"),
    )
    cycles = F.cycle_times(items, history, AS_OF, P)
    eff = F.flow_efficiency(items, history, cycles, AS_OF, P)
    assert eff.rows() == [
        # B1: 4 days in progress, flagged 3-4 Jan -> active 3, waiting 1; 3/4 is not shown
        ("B", 1, 3.0, 1.0, None, None, "no_waiting_status_seen"),
        ("C", 1, 2.0, 0.0, 1.0, 1.0, None),
    ]
    assert F.waiting_states_seen(items, history, AS_OF, P).rows() == [("B", False), ("C", True)]
    none = F.FlowParams(window_days=21, waiting_statuses=())
    eff = F.flow_efficiency(items, history, cycles, AS_OF, none)
    assert eff.select("team", "flow_efficiency", "efficiency_note").rows() == [
        ("B", None, "no_waiting_states_configured"),
        ("C", None, "no_waiting_states_configured"),
    ]


def test_active_statuses_are_configurable(data, cycles):
    only_review = F.FlowParams(window_days=21, active_statuses=("Review",))
    per_item = F.flow_efficiency_items(ITEMS, HISTORY, cycles, AS_OF, only_review, data=data)
    assert per_item["active_days"].to_list() == [0.0, 0.0, 0.0]


def test_flow_distribution_by_type(cycles):
    dist = F.flow_distribution(cycles, AS_OF, P)
    assert dist.select("work_type", "items", "share").rows() == [
        ("debt", 1, 0.25),
        ("defect", 1, 0.25),
        ("feature", 2, 0.5),
    ]


def test_littles_law(data, cycles):
    cfd = F.cumulative_flow(ITEMS, HISTORY, AS_OF, start=date(2025, 12, 30), params=P, data=data)
    row = F.littles_law(F.wip_daily(cfd), cycles, AS_OF, P).row(0, named=True)
    # 30 Dec .. 19 Jan: WIP sums to 43 over 21 days; 4 done; mean cycle time of [3, 4, 11] = 6
    assert row["avg_wip"] == pytest.approx(43 / 21)
    assert row["throughput_per_day"] == pytest.approx(4 / 21)
    assert row["predicted_wip"] == pytest.approx(24 / 21)
    assert row["ratio"] == pytest.approx(43 / 24)
    assert row["consistent"] is False


def test_summary_per_team_and_total(data, cycles):
    cfd = F.cumulative_flow(ITEMS, HISTORY, AS_OF, params=P, data=data)
    wip = F.wip_daily(cfd)
    aging = F.aging_wip(ITEMS, HISTORY, cycles, AS_OF, P, data=data)
    eff = F.flow_efficiency(ITEMS, HISTORY, cycles, AS_OF, P, data=data)
    littles = F.littles_law(wip, cycles, AS_OF, P)
    row = F.flow_summary(cycles, wip, aging, eff, littles, AS_OF, P).row(0, named=True)
    assert (row["team"], row["items_done"], row["cycle_p85"]) == ("A", 4, 12.0)
    # the 3 complete weeks before the week of 19 Jan (29 Dec, 5 Jan, 12 Jan): 0 + 3 + 1 items
    assert row["throughput_per_week"] == pytest.approx(4 / 3)
    assert (row["wip"], row["aging_over_p85"]) == (2, 1)
    assert row["flow_efficiency"] == pytest.approx(15 / 18)
    assert row["efficiency_note"] is None  # S2 was Blocked: waiting is visible
    assert row["littles_ratio"] == pytest.approx(43 / 24)


def test_unknown_setting_is_refused():
    with pytest.raises(
        ConfigError, match=r"analytics\.flow\.window_dayz: unknown key \(known: window_days, "
    ):
        F.FlowParams.from_mapping({"window_dayz": 30})
