"""Backlog health on a small chain with known answers.

Team A has three closed 14-day sprints (1-15 Jan, 15-29 Jan, 29 Jan-12 Feb) and an active one;
done estimate 6, 4 + 2, 9 -> velocity 7. Its to-do backlog (ranked a..e): R1 (8) and R2 (5) are
ready, R3 has no description, R4 no estimate, R5 is blocked by B1 (team B, open) -> ready estimate
13, ready depth 13 / 7 sprints. Everything was created 1 Dec 2025 except R1 and R2 (10 Jan, the
intake of sprint 1).
Epic E1 (initiative I1) holds D1 (created before the epic started) and R1, R2 (created after).
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from pmolens.warehouse.transforms import backlog as B
from pmolens.warehouse.transforms.flow import prepare
from tests.factories import frame, work_items


def at(day: int, month: int = 1, year: int = 2026) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


AS_OF = at(20, 2)
OLD = at(1, 12, 2025)
P = B.BacklogParams(top_n=3)


def story(item_id: str, **kw: object) -> dict[str, object]:
    return {"item_id": item_id, "team": "A", "created": OLD, "updated": at(1, 2), **kw}


ITEMS = work_items(
    {"item_id": "I1", "level": "initiative", "key": "INI-1", "title": "Grow", "created": OLD},
    {"item_id": "E1", "level": "epic", "parent_id": "I1", "team": "A", "created": OLD,
     "status_category": "in_progress"},
    story("D1", status_category="done", resolved=at(5), estimate=6.0, parent_id="E1"),
    story("D2", status_category="done", resolved=at(20), estimate=4.0),
    story("D3", status_category="done", resolved=at(25), estimate=2.0),
    story("D4", status_category="done", resolved=at(2, 2), estimate=9.0),
    story("R1", estimate=8.0, rank="a", parent_id="E1", created=at(10)),
    story("R2", estimate=5.0, rank="b", parent_id="E1", created=at(10)),
    story("R3", estimate=3.0, rank="c", has_description=False),
    story("R4", rank="d"),
    story("R5", estimate=2.0, rank="e"),
    {"item_id": "B1", "team": "B", "created": OLD, "updated": at(1, 2)},
)  # fmt: skip
HISTORY = frame(
    "status_changes",
    {"source": "s", "item_id": "D1", "change_id": "1", "at": at(3), "field": "status",
     "from_status": "To Do", "to_status": "In Progress", "from_category": "todo",
     "to_category": "in_progress"},
)  # fmt: skip


def sprint(n: int, start: datetime, end: datetime, state: str) -> dict[str, object]:
    return {"sprint_id": f"s:{n}", "source": "s", "name": f"A {n}", "team": "A",
            "state": state, "start": start, "end": end}  # fmt: skip


SPRINTS = frame(
    "sprints",
    sprint(1, at(1), at(15), "closed"),
    sprint(2, at(15), at(29), "closed"),
    sprint(3, at(29), at(12, 2), "closed"),
    sprint(4, at(12, 2), at(26, 2), "active"),
)
EDGES = pl.DataFrame({"blocker_id": ["B1"], "dependent_id": ["R5"]})  # dependency_edges shape


@pytest.fixture(scope="module")
def data():
    return prepare(ITEMS, HISTORY, AS_OF)


def test_net_flow_per_sprint(data):
    flow = B.net_flow(ITEMS, SPRINTS, AS_OF, P, data=data)
    assert flow.select(
        "sprint", "closed", "intake_items", "done_items", "done_estimate"
    ).rows() == [
        ("A 1", True, 2, 1, 6.0),
        ("A 2", True, 0, 2, 6.0),
        ("A 3", True, 0, 1, 9.0),
        ("A 4", False, 0, 0, 0.0),
    ]
    assert flow["net_items"].to_list() == [1, -2, -1, 0]
    velocity = B.team_velocity(flow, P).row(0, named=True)
    assert (velocity["sprints"], velocity["velocity"]) == (3, 7.0)


def test_ready_checks():
    ready = {r["item_id"]: r for r in B.ready_items(ITEMS, EDGES, P).iter_rows(named=True)}
    assert [k for k, r in sorted(ready.items()) if r["ready"] and k.startswith("R")] == ["R1", "R2"]
    assert ready["R3"]["described"] is False and ready["R4"]["estimated"] is False
    assert ready["R5"]["unblocked"] is False


def test_ready_state_required_when_the_workflow_has_one():
    items = work_items(
        {"item_id": "X", "estimate": 1.0, "raw_status": "Ready"},
        {"item_id": "Y", "estimate": 1.0, "raw_status": "To Do"},
    )
    edges = pl.DataFrame(schema={"blocker_id": pl.String, "dependent_id": pl.String})
    ready = B.ready_items(items, edges, P).sort("item_id")
    assert ready["ready"].to_list() == [True, False]


def test_team_health_signals_and_grade(data):
    health = B.backlog_health(ITEMS, SPRINTS, HISTORY, EDGES, AS_OF, "team", P, data=data)
    a = health.filter(health["scope"] == "A").row(0, named=True)
    assert (a["items"], a["estimate_total"], a["pct_estimated"]) == (5, 18.0, 0.8)
    assert (a["ranked_share"], a["duplicate_ranks"], a["ordering_present"]) == (1.0, 0, True)
    assert (a["ready_items"], a["ready_estimate"], a["velocity"]) == (2, 13.0, 7.0)
    assert a["ready_depth_sprints"] == pytest.approx(13 / 7)
    assert (a["top_n_items"], a["top_n_ready_share"]) == (3, pytest.approx(2 / 3))
    assert (a["stale_share"], a["throughput_per_sprint"], a["intake_per_sprint"]) == (
        0.0,
        pytest.approx(4 / 3),
        pytest.approx(2 / 3),
    )
    assert (a["points"], a["grade"]) == (2, "C")
    assert a["grade_reasons"] == [
        "ready depth 1.9 sprints (healthy 2.0-4.0)",
        "only 67% of the top 3 items ready (target 80%)",
    ]
    b = health.filter(health["scope"] == "B").row(0, named=True)
    assert (b["points"], b["grade"]) == (6, "E")  # unestimated, unranked, no velocity, not ready


def test_grade_thresholds():
    base = {"items": 10, "pct_estimated": 1.0, "ordering_present": True, "ranked_share": 1.0,
            "duplicate_ranks": 0, "ready_depth_sprints": 3.0, "top_n_ready_share": 1.0,
            "stale_share": 0.0, "age_p85_days": 10.0, "intake_per_sprint": 1.0,
            "throughput_per_sprint": 1.0, "epics_with_stories_share": 1.0,
            "initiatives_with_epics_share": 1.0}  # fmt: skip
    rows = [base, {**base, "ready_depth_sprints": 5.0}, {**base, "ready_depth_sprints": 0.5,
            "pct_estimated": 0.3}, {**base, "items": 0}]  # fmt: skip
    graded = B._grade(pl.DataFrame(rows), P)
    assert graded["points"].to_list() == [0, 1, 4, 3]
    assert graded["grade"].to_list() == ["A", "B", "D", "C"]


def test_programme_is_the_initiative(data):
    health = B.backlog_health(ITEMS, SPRINTS, HISTORY, EDGES, AS_OF, "programme", P, data=data)
    row = health.filter(health["scope"] == "INI-1").row(0, named=True)
    assert (row["scope_title"], row["items"], row["epics_open"]) == ("Grow", 1, 1)  # E1 open
    assert (row["ready_estimate"], row["velocity"]) == (13.0, 2.0)  # R1+R2; D1 (6) in sprint 1 / 3
    assert health["scope"].to_list() == ["INI-1", "Org"]  # work under no initiative: the org


def test_scope_change_and_epic_progress(data):
    change = B.scope_change(ITEMS, HISTORY, AS_OF, P, data=data).row(0, named=True)
    # window 90 days: starts 22 Nov 2025, before everything was created -> nothing to compare with
    assert change["window_start"] == at(22, 11, 2025)
    assert (change["items_at_window_start"], change["items_added_in_window"]) == (0, 3)
    assert change["scope_change_share"] is None
    short = B.BacklogParams(scope_window_days=45)  # starts 6 Jan: D1 before, R1 and R2 after
    change = B.scope_change(ITEMS, HISTORY, AS_OF, short, data=data).row(0, named=True)
    assert (change["items_at_window_start"], change["items_added_in_window"]) == (1, 2)
    assert (change["estimate_at_window_start"], change["estimate_added_in_window"]) == (6.0, 13.0)
    assert change["scope_change_share"] == 2.0
    progress = B.epic_progress(ITEMS, P, data=data).row(0, named=True)
    assert (progress["items_done"], progress["items_total"]) == (1, 3)
    assert progress["progress_estimate"] == pytest.approx(6 / 19)


def test_scope_added_is_growth_against_the_scope_at_window_start():
    """Epic E of team A held 10 items at the window start (1 Dec 2025, as_of 1 Mar 2026, 90 days);
    3 were added in the window and 2 of the 10 were removed (ADO 'Removed': done category). The
    documented formula: added in the window / items at the window start = 3 / 10. Removing is not
    netted off. Epic N (opened in the window, 4 items) has no scope to compare with: null, and it
    stays out of the backlog's share."""
    as_of = at(1, 3)
    old, new = at(20, 11, 2025), at(15, 1)
    rows = [
        {"item_id": "E", "level": "epic", "team": "A", "created": old,
         "status_category": "in_progress"},
        {"item_id": "N", "level": "epic", "team": "A", "created": new,
         "status_category": "in_progress"},
    ]  # fmt: skip
    rows += [
        {"item_id": f"E{i}", "team": "A", "parent_id": "E", "created": old, "estimate": 1.0}
        for i in range(8)
    ]
    rows += [
        {"item_id": f"X{i}", "team": "A", "parent_id": "E", "created": old,
         "status_category": "done", "raw_status": "Removed"}
        for i in range(2)
    ]  # fmt: skip
    rows += [{"item_id": f"A{i}", "team": "A", "parent_id": "E", "created": new} for i in range(3)]
    rows += [{"item_id": f"N{i}", "team": "A", "parent_id": "N", "created": new} for i in range(4)]
    items = work_items(*rows)
    history = frame("status_changes")
    change = B.scope_change(items, history, as_of, P)
    assert change.select(
        "epic_id", "items_at_window_start", "items_added_in_window", "scope_change_share"
    ).rows() == [("E", 10, 3, 0.3), ("N", 0, 4, None)]
    assert change["estimate_at_window_start"].to_list() == [8.0, 0.0]
    health = B.backlog_health(items, frame("sprints"), history, EDGES, as_of, "team", P)
    row = health.row(0, named=True)
    assert (row["scope"], row["epics_open"], row["scope_change_share"]) == ("A", 2, 0.3)
