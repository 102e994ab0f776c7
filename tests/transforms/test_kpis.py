"""Scrum@Scale KPIs and portfolio value on small frames with exact expected values."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from pmolens.warehouse.config import ConfigError
from pmolens.warehouse.transforms.flow import item_frame, prepare
from pmolens.warehouse.transforms.kpis import (
    KpiParams,
    effort_by_team,
    investment_by_theme,
    portfolio_value,
    recent_sprint_kpis,
    snapshot_rows,
    sprint_kpis,
)
from tests.factories import frame, work_items

AS_OF = datetime(2026, 2, 1, tzinfo=UTC)


def at(month: int, day: int) -> datetime:
    return datetime(2026 if month < 12 else 2025, month, day, tzinfo=UTC)


def sprint_rows():
    return frame(
        "sprints",
        {"sprint_id": "S1", "name": "Sprint 1", "team": "T", "state": "closed",
         "start": at(1, 1), "end": at(1, 15)},
        {"sprint_id": "S2", "name": "Sprint 2", "team": "T", "state": "closed",
         "start": at(1, 15), "end": at(1, 29)},
    )  # fmt: skip


def scenario():
    """S1 plans A and B (done) and rolls C over to S2; D is added mid-sprint; E waits in S2."""
    items = work_items(
        {"item_id": "A", "team": "T", "created": at(12, 20), "sprint_id": "S1",
         "status_category": "done", "resolved": at(1, 10), "estimate": 3.0,
         "business_value": 8.0},
        {"item_id": "B", "level": "bug", "raw_type": "Bug", "team": "T", "created": at(12, 20),
         "sprint_id": "S1", "status_category": "done", "resolved": at(1, 12), "estimate": 2.0},
        {"item_id": "C", "team": "T", "created": at(12, 20), "sprint_id": "S2",
         "status_category": "done", "resolved": at(1, 20), "estimate": 5.0},
        {"item_id": "D", "team": "T", "created": at(1, 5), "sprint_id": "S1",
         "status_category": "done", "resolved": at(1, 14), "estimate": 1.0},
        {"item_id": "E", "team": "T", "created": at(12, 20), "sprint_id": "S2", "estimate": 8.0},
        {"item_id": "F", "level": "bug", "raw_type": "Bug", "team": "T", "created": at(1, 3),
         "labels": ["production"]},
    )  # fmt: skip
    changes = frame(
        "status_changes",
        {"item_id": "C", "change_id": "1", "at": at(1, 5), "field": "status",
         "from_status": "To Do", "to_status": "In Progress", "from_category": "todo",
         "to_category": "in_progress"},
        {"item_id": "C", "change_id": "2", "at": at(1, 20), "field": "status",
         "from_status": "In Progress", "to_status": "Done", "from_category": "in_progress",
         "to_category": "done"},
    )  # fmt: skip
    return prepare(items, changes, AS_OF)


def test_sprint_kpis_exact():
    k = sprint_kpis(scenario(), sprint_rows()).rows_by_key("sprint_id", named=True, unique=True)
    s1, s2 = k["S1"], k["S2"]
    # productivity and quality: A, B, D done in S1; B is a defect
    assert (s1["throughput_items"], s1["done_estimate"]) == (3, 6.0)
    assert (s1["defects_done"], s1["defect_share"]) == (1, pytest.approx(1 / 3))
    assert s1["escaped_defects"] == 1  # F, created in S1, labelled "production"
    assert s1["business_value_done"] == 8.0 and s2["business_value_done"] == 0.0
    # predictability: S1 held A, B (planned) and C (started in S1, moved on); D came later
    assert (s1["committed_items"], s1["committed_done_items"]) == (3, 2)
    assert s1["predictability"] == pytest.approx(2 / 3)
    assert s1["predictability_estimate"] == pytest.approx(5 / 10)
    assert s1["carried_out_items"] == 1
    # S2 held C and E; C done
    assert (s2["committed_items"], s2["committed_done_items"], s2["carried_out_items"]) == (2, 1, 1)
    assert s2["predictability"] == 0.5
    # sustainability: C was in progress at the end of S1 for 10 days, and carried into S2
    assert (s1["wip_at_end"], s1["wip_age_days_at_end"]) == (1, pytest.approx(10.0))
    assert (s2["carried_in_items"], s2["wip_at_end"]) == (1, 0)


def test_escaped_defects_null_when_nothing_is_typed_that_way():
    k = sprint_kpis(scenario(), sprint_rows(), KpiParams(escaped_labels=()))
    assert k["escaped_defects"].to_list() == [None, None]


def test_recent_sprint_kpis_sum_before_dividing():
    k = sprint_kpis(scenario(), sprint_rows())
    team = recent_sprint_kpis(k, KpiParams(trend_sprints=2)).row(0, named=True)
    assert team["sprints"] == 2
    assert team["predictability"] == pytest.approx(3 / 5)  # (2 + 1) / (3 + 2)
    assert team["defect_share"] == pytest.approx(1 / 4)
    assert team["velocity"] == pytest.approx((6.0 + 5.0) / 2)
    assert team["carried_out_per_sprint"] == 1.0
    last = recent_sprint_kpis(k, KpiParams(trend_sprints=1), by=None).row(0, named=True)
    assert (last["scope"], last["predictability"]) == ("all", 0.5)


def portfolio():
    return item_frame(
        work_items(
            {"item_id": "I1", "level": "initiative", "key": "I-1"},
            {"item_id": "E1", "level": "epic", "parent_id": "I1", "team": "A",
             "business_value": 10.0, "time_criticality": 5.0, "risk_reduction": 5.0},
            {"item_id": "s1", "parent_id": "E1", "team": "A", "estimate": 2.0,
             "status_category": "done"},
            {"item_id": "s2", "parent_id": "E1", "team": "B", "estimate": 3.0},
            {"item_id": "E2", "level": "epic", "team": "B", "business_value": 6.0, "cost": 3.0},
            {"item_id": "E3", "level": "epic", "team": "B"},
            {"item_id": "s3", "team": "B", "estimate": 4.0},
        )
    )  # fmt: skip


def test_wsjf_exact():
    v = portfolio_value(portfolio()).rows_by_key("item_id", named=True, unique=True)
    e1, e2, e3 = v["E1"], v["E2"], v["E3"]
    assert (e1["cost_of_delay"], e1["job_size"], e1["wsjf"], e1["wsjf_rank"]) == (20.0, 5.0, 4.0, 1)
    assert (e2["cost_of_delay"], e2["job_size"], e2["wsjf"], e2["wsjf_rank"]) == (6.0, 3.0, 2.0, 2)
    assert (e3["cost_of_delay"], e3["wsjf"], e3["wsjf_rank"]) == (None, None, None)
    assert (e1["initiative_id"], e1["progress_estimate"]) == ("I1", pytest.approx(0.4))
    assert v["I1"]["effort_estimate"] == 5.0 and v["I1"]["initiative_id"] is None
    by_cost = portfolio_value(portfolio(), KpiParams(job_size="cost"))
    assert by_cost.filter(pl.col("item_id") == "E1")["job_size"][0] == 5.0  # no cost: effort


def test_effort_per_team_per_epic_and_investment_by_theme():
    e = effort_by_team(portfolio()).filter(pl.col("epic_id") == "E1")
    assert e.select("team", "items", "estimate", "share_of_epic").rows() == [
        ("A", 1, 2.0, 0.4),
        ("B", 1, 3.0, 0.6),
    ]
    inv = investment_by_theme(portfolio()).rows_by_key("theme_id", named=True, unique=True)
    assert (inv["I1"]["estimate"], inv["I1"]["estimate_done"], inv["I1"]["epics"]) == (5.0, 2.0, 1)
    assert inv["I1"]["share_estimate"] == pytest.approx(5 / 9)
    assert (inv[None]["estimate"], inv[None]["epics"], inv[None]["cost"]) == (4.0, 2, 3.0)


def test_snapshot_rows_skip_missing_figures():
    f = pl.DataFrame({"team": ["A", "B"], "x": [1.0, None], "y": [float("nan"), 2.0]})
    rows = snapshot_rows(f, "kpis", pl.format("team:{}", "team"), ["x", "y"])
    assert rows.rows() == [("kpis", "x", "team:A", 1.0), ("kpis", "y", "team:B", 2.0)]


def test_params_name_the_bad_key():
    with pytest.raises(ConfigError, match="job_size"):
        KpiParams.from_mapping({"job_size": "points"})


def test_a_shared_sprint_is_one_commitment_per_team():
    """S1 serves teams T and U (one row per team in the sprints frame): each team's figures
    count only its own items in it."""
    sprints = frame(
        "sprints",
        {"sprint_id": "S1", "name": "Sprint 1", "team": "T", "state": "closed",
         "start": at(1, 1), "end": at(1, 15)},
        {"sprint_id": "S1", "name": "Sprint 1", "team": "U", "state": "closed",
         "start": at(1, 1), "end": at(1, 15)},
    )  # fmt: skip
    items = work_items(
        {"item_id": "T1", "team": "T", "created": at(12, 20), "sprint_id": "S1",
         "status_category": "done", "resolved": at(1, 10), "estimate": 3.0},
        {"item_id": "T2", "team": "T", "created": at(12, 20), "sprint_id": "S1", "estimate": 1.0},
        {"item_id": "U1", "team": "U", "created": at(12, 20), "sprint_id": "S1",
         "status_category": "done", "resolved": at(1, 12), "estimate": 5.0},
    )  # fmt: skip
    k = sprint_kpis(prepare(items, frame("status_changes"), AS_OF), sprints)
    got = k.select("team", "committed_items", "committed_done_items", "done_estimate").rows()
    assert got == [("T", 2, 1, 3.0), ("U", 1, 1, 5.0)]
