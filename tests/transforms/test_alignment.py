"""Alignment rules on small hand-built frames: each rule fires where it must and nowhere else."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl
import pytest

from pmolens.warehouse.config import ConfigError, settings_from_dict
from pmolens.warehouse.transforms import alignment as A
from tests.factories import T0, frame, work_items

AS_OF = T0 + timedelta(days=30)  # 2026-01-31
DAY = timedelta(days=1)


def hits(
    rule_id: str,
    frames: dict[str, pl.DataFrame],
    edges: pl.DataFrame | None = None,
    config: dict[str, Any] | None = None,
    as_of=AS_OF,
) -> list[tuple[Any, ...]]:
    """(item_id or team, severity, owner_role) of one rule's findings, sorted."""
    resolved = A.resolve_rules(config)[rule_id]
    out = A.run_rule(resolved, A.RuleContext(frames, edges, as_of))
    assert out.columns == list(A.FINDINGS_SCHEMA)
    assert set(out["rule"].to_list()) <= {rule_id}
    return sorted(
        (r["item_id"] or f"team {r['team']}", r["severity"], r["owner_role"])
        for r in out.iter_rows(named=True)
    )


def one(rule_id: str, frames, edges=None, config=None, as_of=AS_OF) -> dict[str, Any]:
    resolved = A.resolve_rules(config)[rule_id]
    out = A.run_rule(resolved, A.RuleContext(frames, edges, as_of))
    assert out.height == 1, out
    return out.row(0, named=True)


def edge(blocker: str, dependent: str, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "blocker_id": blocker,
        "dependent_id": dependent,
        "blocker_key": blocker,
        "dependent_key": dependent,
        "blocker_title": f"Item {blocker}",
        "dependent_title": f"Item {dependent}",
        "blocker_org": "Org",
        "dependent_org": "Org",
        "blocker_category": "todo",
        "dependent_category": "todo",
        "cross_team": True,
        "cross_org": False,
        "open": True,
        "unresolved": False,
    }
    row.update(kw)
    return row


def edges(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=A.EDGES_SCHEMA)


def sprint(sprint_id: str, team: str, start, days: int = 14, state: str | None = None) -> dict:
    return {
        "sprint_id": sprint_id,
        "source": "s",
        "name": sprint_id,
        "team": team,
        "state": state,
        "start": start,
        "end": start + timedelta(days=days),
    }


# ------------------------------------------------------------------------------ 1 orphan work


def test_orphan_work_fires_on_open_features_and_stories_without_an_epic_above():
    items = work_items(
        {"item_id": "E1", "level": "epic"},
        {"item_id": "S1", "parent_id": "E1"},  # under an epic: aligned
        {"item_id": "F1", "level": "feature", "raw_type": "Feature"},  # no parent
        {"item_id": "S2", "parent_id": "F1"},  # under a loose feature
        {"item_id": "S3", "status_category": "done"},  # done: not reported by default
        {"item_id": "I1", "level": "initiative"},
        {"item_id": "S4", "parent_id": "I1"},  # under a goal directly: aligned
        {"item_id": "T1", "level": "task"},  # tasks are not in scope
        {"item_id": "S5", "parent_id": "gone"},  # parent not a live item
    )
    frames = {"work_items": items}
    assert hits("orphan_work", frames) == [
        ("F1", "warning", "Team PO"),
        ("S2", "warning", "Team PO"),
        ("S5", "warning", "Team PO"),
    ]
    row = one("orphan_work", {"work_items": items.filter(pl.col("item_id") == "S5")})
    assert row["message"] == (
        "Story S5 'Item S5' has no path up to an epic or initiative: link it to the epic it "
        "serves or stop it"
    )
    assert row["since"] == T0
    assert row["url"] == "https://tracker.example/browse/S5"
    with_done = hits("orphan_work", frames, config={"orphan_work": {"include_done": True}})
    assert ("S3", "warning", "Team PO") in with_done


def test_orphan_work_passes_when_everything_hangs_under_an_epic():
    items = work_items(
        {"item_id": "E1", "level": "epic"},
        {"item_id": "F1", "level": "feature", "parent_id": "E1"},
        {"item_id": "S1", "parent_id": "F1"},
    )
    assert hits("orphan_work", {"work_items": items}) == []


# ------------------------------------------------------------------- 2 epic without initiative


def test_epic_without_strategic_parent_only_where_the_organisation_uses_initiatives():
    items = work_items(
        {"item_id": "I1", "level": "initiative", "organisation": "A"},
        {"item_id": "E1", "level": "epic", "parent_id": "I1", "organisation": "A"},
        {"item_id": "E2", "level": "epic", "organisation": "A"},
        {"item_id": "E3", "level": "epic", "organisation": "A", "status_category": "done"},
        {"item_id": "E4", "level": "epic", "organisation": "B"},  # B has no initiatives
    )
    assert hits("epic_without_strategic_parent", {"work_items": items}) == [
        ("E2", "warning", "Chief PO")
    ]
    row = one("epic_without_strategic_parent", {"work_items": items})
    assert row["message"] == (
        "Epic E2 'Item E2' is not under an initiative, while A steers with initiatives: "
        "link it to the initiative it serves"
    )
    passing = items.filter(pl.col("item_id") != "E2")
    assert hits("epic_without_strategic_parent", {"work_items": passing}) == []


# ----------------------------------------------------------------------------------- 3 no owner


def test_no_owner_on_open_epics_and_features_without_assignee():
    items = work_items(
        {"item_id": "E1", "level": "epic"},
        {"item_id": "E2", "level": "epic", "assignee": "Ann"},
        {"item_id": "E3", "level": "epic", "status_category": "done"},
        {"item_id": "F1", "level": "feature", "parent_id": "E2", "assignee": "  "},
        {"item_id": "F2", "level": "feature", "parent_id": "E2", "assignee": "Bob"},
        {"item_id": "S1", "parent_id": "F2"},  # stories are not in scope
    )
    assert hits("no_owner", {"work_items": items}) == [
        ("E1", "warning", "Chief PO"),
        ("F1", "warning", "Team PO"),
    ]
    owned = items.with_columns(pl.lit("Ann").alias("assignee"))
    assert hits("no_owner", {"work_items": owned}) == []


# ----------------------------------------------------------------------- 4 unestimated committed


def test_unestimated_committed_work_in_active_and_future_sprints():
    sprints = frame(
        "sprints",
        sprint("A", "T", AS_OF - 5 * DAY, state="active"),
        sprint("F", "T", AS_OF + 9 * DAY, state="future"),
        sprint("C", "T", AS_OF - 20 * DAY, state="closed"),
    )
    items = work_items(
        {"item_id": "S1", "sprint_id": "A"},  # fires, warning
        {"item_id": "S2", "sprint_id": "F"},  # fires, info (future sprint)
        {"item_id": "S3", "sprint_id": "C"},  # closed sprint: not committed any more
        {"item_id": "S4", "sprint_id": "A", "estimate": 0.0},  # estimated (0 is an estimate)
        {"item_id": "T1", "level": "task", "parent_id": "S4", "sprint_id": "A"},  # sub-task
        {"item_id": "S5", "sprint_id": "A", "status_category": "done"},
        {"item_id": "S6"},  # no sprint
    )
    frames = {"work_items": items, "sprints": sprints}
    assert hits("unestimated_committed", frames) == [
        ("S1", "warning", "Team PO"),
        ("S2", "info", "Team PO"),
    ]
    s2 = one("unestimated_committed", {**frames, "work_items": items.filter(item_id="S2")})
    assert s2["since"] == AS_OF  # a future sprint's start is not in the past
    assert s2["message"] == (
        "Story S2 'Item S2' is in future sprint 'F' without an estimate: estimate it in refinement"
    )
    only_active = {"unestimated_committed": {"sprint_states": ["active"]}}
    assert hits("unestimated_committed", frames, config=only_active) == [
        ("S1", "warning", "Team PO")
    ]


def test_unestimated_committed_derives_the_sprint_state_from_dates_when_missing():
    sprints = frame("sprints", sprint("X", "T", AS_OF - 3 * DAY))  # no state: active by dates
    items = work_items({"item_id": "S1", "sprint_id": "X"}, {"item_id": "S2", "estimate": 3.0})
    assert hits("unestimated_committed", {"work_items": items, "sprints": sprints}) == [
        ("S1", "warning", "Team PO")
    ]


# ------------------------------------------------------------------------- 5 priority inversion


def test_priority_inversion_one_finding_per_low_priority_blocker():
    items = work_items(*({"item_id": i} for i in ("B1", "B2", "B3", "B4", "D1", "D2", "D3")))
    e = edges(
        # B1 (P3, team Y) blocks D1 (P1, team X): inversion
        edge("B1", "D1", blocker_priority_rank=3, dependent_priority_rank=1,
             blocker_team="Y", dependent_team="X"),
        # ...and D2 at the edge of max_rank (2): also an inversion, same finding
        edge("B1", "D2", blocker_priority_rank=3, dependent_priority_rank=2,
             blocker_team="Y", dependent_team="X"),
        # D3 is P3: not high priority (max_rank 2)
        edge("B2", "D3", blocker_priority_rank=4, dependent_priority_rank=3),
        # blocker as important as the dependent: fine
        edge("B3", "D1", blocker_priority_rank=1, dependent_priority_rank=1),
        # unprioritised blocker counts as low
        edge("B4", "D1", blocker_priority_rank=None, dependent_priority_rank=1, blocker_team="Z"),
    )  # fmt: skip
    frames = {"work_items": items}
    assert hits("priority_inversion", frames, e) == [
        ("B1", "warning", "Chief PO"),
        ("B4", "warning", "Chief PO"),
    ]
    b1 = one("priority_inversion", frames, e.filter(pl.col("blocker_id") == "B1"))
    assert b1["message"] == (
        "B1 'Item B1' (P3, Y) blocks higher-priority work of other teams: D1 (P1, X), D2 (P2, X); "
        "raise its priority or re-plan the dependent work"
    )
    assert hits(
        "priority_inversion", frames, e, {"priority_inversion": {"unprioritised_is_low": False}}
    ) == [("B1", "warning", "Chief PO")]
    assert hits("priority_inversion", frames, e, {"priority_inversion": {"max_rank": 1}}) == [
        ("B1", "warning", "Chief PO"),
        ("B4", "warning", "Chief PO"),
    ]


def test_priority_inversion_ignores_same_team_done_and_unresolved_edges():
    items = work_items({"item_id": "B1"}, {"item_id": "D1"})
    low = {"blocker_priority_rank": 5, "dependent_priority_rank": 1}
    e = edges(
        edge("B1", "D1", cross_team=False, **low),
        edge("B1", "D1", blocker_category="done", **low),
        edge("B1", "D1", dependent_category="done", **low),
        edge("B1", "D1", unresolved=True, **low),
    )
    assert hits("priority_inversion", {"work_items": items}, e) == []


# --------------------------------------------------------------------- 6 dependency timing


def test_dependency_timing_conflict_severity_by_slip_and_owner_by_team_boundary():
    items = work_items(*({"item_id": i} for i in ("B1", "B2", "B3", "D1", "D2", "D3", "D4")))
    end = (AS_OF + 10 * DAY).date()
    e = edges(
        edge("B1", "D1", timing="conflict", slip_days=14, dependent_planned_end=end),  # critical
        edge("B2", "D2", timing="conflict", slip_days=13, cross_team=False),  # warning, team
        edge("B3", "D3", timing="unscheduled_blocker", blocker_team="Y", blocker_org="Org"),
        edge("B1", "D4", timing="on_track"),
        edge("B2", "D4", timing="conflict", slip_days=30, open=False),  # closed: no finding
    )
    frames = {"work_items": items}
    assert hits("dependency_timing_conflict", frames, e) == [
        ("D1", "critical", "SoS Master"),
        ("D2", "warning", "Team PO"),
        ("D3", "warning", "SoS Master"),
    ]
    d3 = one("dependency_timing_conflict", frames, e.filter(pl.col("dependent_id") == "D3"))
    assert d3["message"] == (
        "D3 'Item D3' is planned to finish ? but its blocker B3 (Y, Org) is not planned at all: "
        "get it scheduled"
    )
    tuned = {"dependency_timing_conflict": {"unscheduled_blocker": False, "critical_slip_days": 15}}
    assert hits("dependency_timing_conflict", frames, e, tuned) == [
        ("D1", "warning", "SoS Master"),
        ("D2", "warning", "Team PO"),
    ]


def test_dependency_timing_conflict_one_finding_per_dependent_worst_first():
    items = work_items({"item_id": "B1"}, {"item_id": "B2"}, {"item_id": "D1"})
    e = edges(
        edge("B1", "D1", timing="conflict", slip_days=3),
        edge("B2", "D1", timing="conflict", slip_days=20),
    )
    row = one("dependency_timing_conflict", {"work_items": items}, e)
    assert row["severity"] == "critical"
    assert "20 days before its blocker B2" in row["message"]
    assert row["message"].endswith("re-plan one of them (+1 more)")


# ------------------------------------------------------------------------ 7 sprint cadence

MON = T0 + 4 * DAY  # 2026-01-05, a Monday


def _cadence(*teams: tuple[str, int, int]) -> dict[str, pl.DataFrame]:
    """teams: (name, offset days from MON, sprint length): three sprints each, up to AS_OF."""
    rows = []
    for name, offset, length in teams:
        for n in range(3):
            start = MON + timedelta(days=offset - 14 + n * length)
            rows.append(sprint(f"{name}{n}", name, start, length))
    return {
        "work_items": work_items(),
        "sprints": frame("sprints", *rows),
        "teams": frame("teams", *({"team": n, "organisation": "Org", "source": "s"} for n, *_ in teams)),
    }  # fmt: skip


def test_sprint_cadence_flags_the_team_whose_boundaries_differ_from_the_majority():
    frames = _cadence(("A", 0, 14), ("B", 14, 14), ("C", 7, 14), ("D", 0, 21))
    assert hits("sprint_cadence_misalignment", frames) == [
        ("team C", "warning", "SoS Master"),
        ("team D", "warning", "SoS Master"),
    ]
    c = next(
        r
        for r in A.run_rule(
            A.resolve_rules(None)["sprint_cadence_misalignment"], A.RuleContext(frames, None, AS_OF)
        ).iter_rows(named=True)
        if r["team"] == "C"
    )
    assert c["item_id"] is None
    assert c["message"] == (
        "Team C of Org runs 14-day sprints (latest started Mon 2026-01-26), while 2 of its 4 "
        "teams run 14-day sprints (latest started Mon 2026-01-19): align the sprint boundaries"
    )


def test_sprint_cadence_passes_for_teams_one_sprint_apart_on_the_same_cadence():
    assert hits("sprint_cadence_misalignment", _cadence(("A", 0, 14), ("B", 14, 14))) == []
    # one team alone has nothing to align with (min_teams 2)
    assert hits("sprint_cadence_misalignment", _cadence(("A", 3, 14))) == []


# -------------------------------------------------------------------------------- 8 DoD drift


def _dod_items(team: str, statuses: list[str], n: int = 5) -> list[dict[str, Any]]:
    return [
        {"item_id": f"{team}{i}", "team": team, "raw_status": statuses[i % len(statuses)],
         "status_category": "in_progress", "updated": AS_OF - DAY}
        for i in range(n)
    ]  # fmt: skip


def test_dod_drift_flags_the_team_whose_workflow_differs():
    flow = ["To Do", "In Progress", "Review", "Done"]
    items = work_items(
        *_dod_items("A", flow),
        *_dod_items("B", flow),
        *_dod_items("C", ["To Do", "Doing", "Done"]),
        *_dod_items("D", ["Whatever"], n=4),  # below min_items (5): not compared
    )
    frames = {"work_items": items}
    assert hits("dod_drift", frames) == [("team C", "warning", "SoS Master")]
    row = one("dod_drift", frames)
    assert row["message"] == (
        "Team C uses a story workflow that differs from the one 2 of 3 teams of product Org "
        "share (extra: doing; missing: in progress, review): align the Definition of Done"
    )
    # teams mapped to different products are not compared
    products = {"dod_drift": {"products": {"A": "P1", "B": "P1", "C": "P2"}}}
    assert hits("dod_drift", frames, config=products) == []
    same = work_items(*_dod_items("A", flow), *_dod_items("B", flow))
    assert hits("dod_drift", {"work_items": same}) == []


def test_dod_drift_required_state_skipped_on_the_way_to_done():
    items = work_items(
        {"item_id": "S1", "team": "A", "status_category": "done", "raw_status": "Done"},
        {"item_id": "S2", "team": "A", "status_category": "done", "raw_status": "Done"},
    )
    changes = frame(
        "status_changes",
        {"item_id": "S1", "change_id": "1", "at": AS_OF - 3 * DAY, "field": "status",
         "from_status": "In Progress", "to_status": "Done", "to_category": "done"},
        {"item_id": "S2", "change_id": "1", "at": AS_OF - 4 * DAY, "field": "status",
         "from_status": "In Progress", "to_status": "Review", "to_category": "in_progress"},
        {"item_id": "S2", "change_id": "2", "at": AS_OF - 3 * DAY, "field": "status",
         "from_status": "Review", "to_status": "Done", "to_category": "done"},
    )  # fmt: skip
    frames = {"work_items": items, "status_changes": changes}
    config = {"dod_drift": {"required_states": ["Review"]}}
    assert hits("dod_drift", frames, config=config) == [("S1", "warning", "Team PO")]
    row = one("dod_drift", frames, config=config)
    assert row["message"] == (
        "Story S1 'Item S1' reached done on 2026-01-28 without passing 'Review': check it "
        "against the Definition of Done"
    )
    assert hits("dod_drift", frames) == []  # no required states by default


# ------------------------------------------------------------------------------ 9 stale work


def test_stale_work_in_progress_without_update_for_n_days_edge_included():
    items = work_items(
        {"item_id": "S1", "status_category": "in_progress", "updated": AS_OF - 14 * DAY},
        {"item_id": "S2", "status_category": "in_progress", "updated": AS_OF - 13 * DAY},
        {"item_id": "S3", "status_category": "todo", "updated": AS_OF - 40 * DAY},
    )
    assert hits("stale_work", {"work_items": items}) == [("S1", "warning", "Team PO")]
    row = one("stale_work", {"work_items": items})
    assert row["message"] == (
        "Story S1 'Item S1' has been in progress without an update for 14 days (since "
        "2026-01-17): unblock it, finish it or put it back"
    )
    assert (
        hits("stale_work", {"work_items": items}, config={"stale_work": {"stale_days": 15}}) == []
    )


def test_stale_epic_no_child_progress_for_n_days():
    items = work_items(
        {"item_id": "E1", "level": "epic", "status_category": "in_progress"},
        {"item_id": "S1", "parent_id": "E1", "status_category": "in_progress",
         "updated": AS_OF - DAY},
        {"item_id": "E2", "level": "epic", "status_category": "in_progress"},
        {"item_id": "S2", "parent_id": "E2", "status_category": "in_progress",
         "updated": AS_OF - DAY},
    )  # fmt: skip
    changes = frame(
        "status_changes",
        {"item_id": "S1", "change_id": "1", "at": AS_OF - 30 * DAY, "field": "status",
         "to_category": "in_progress"},
        {"item_id": "S2", "change_id": "1", "at": AS_OF - 29 * DAY, "field": "status",
         "to_category": "in_progress"},
    )  # fmt: skip
    frames = {"work_items": items, "status_changes": changes}
    assert hits("stale_work", frames) == [("E1", "warning", "Chief PO")]
    assert one("stale_work", frames)["since"] == AS_OF - 30 * DAY


# ---------------------------------------------------------------------------- 10 done but open


def test_done_but_open_both_directions():
    items = work_items(
        {"item_id": "E1", "level": "epic", "status_category": "done", "resolved": AS_OF - DAY},
        {"item_id": "S1", "parent_id": "E1"},
        {"item_id": "E2", "level": "epic"},
        {"item_id": "S2", "parent_id": "E2", "status_category": "done", "resolved": AS_OF - DAY},
        {"item_id": "E3", "level": "epic"},
        {"item_id": "S3", "parent_id": "E3"},
        {"item_id": "S4", "parent_id": "E3", "status_category": "done"},
        {"item_id": "E4", "level": "epic"},  # no items: nothing to contradict
    )
    assert hits("done_but_open", {"work_items": items}) == [
        ("E1", "warning", "Chief PO"),
        ("E2", "info", "Chief PO"),
    ]
    e1 = one("done_but_open", {"work_items": items.filter(pl.col("item_id").is_in(["E1", "S1"]))})
    assert e1["message"] == (
        "Epic E1 'Item E1' is closed but 1 of its 1 items are still open (S1): reopen the epic "
        "or close or move the items"
    )


# ----------------------------------------------------------------------------- 11 epic spread


def test_epic_spread_more_than_max_teams_open():
    def epic(eid: str, teams: list[str]) -> list[dict[str, Any]]:
        return [{"item_id": eid, "level": "epic"}] + [
            {"item_id": f"{eid}-{t}", "parent_id": eid, "team": t} for t in teams
        ]

    items = work_items(
        *epic("E1", ["A", "B", "C", "D"]),
        *epic("E2", ["A", "B", "C"]),  # at the limit
        {"item_id": "E2-done", "parent_id": "E2", "team": "D", "status_category": "done"},
    )
    assert hits("epic_spread", {"work_items": items}) == [("E1", "warning", "Chief PO")]
    assert one("epic_spread", {"work_items": items})["message"] == (
        "Epic E1 'Item E1' has open work in 4 teams (A, B, C, D), more than 3: slice it along "
        "team lines or name one lead team"
    )
    assert hits("epic_spread", {"work_items": items}, config={"epic_spread": {"max_teams": 2}}) == [
        ("E1", "warning", "Chief PO"),
        ("E2", "warning", "Chief PO"),
    ]


# ---------------------------------------------------------------------------- 12 WIP overload


def test_wip_overload_against_configured_limit():
    items = work_items(
        *({"item_id": f"A{i}", "team": "A", "status_category": "in_progress"} for i in range(3)),
        *({"item_id": f"B{i}", "team": "B", "status_category": "in_progress"} for i in range(2)),
    )
    config = {"wip_overload": {"limits": {"A": 2, "B": 2}}}
    assert hits("wip_overload", {"work_items": items}, config=config) == [
        ("team A", "critical", "Team PO")
    ]
    assert one("wip_overload", {"work_items": items}, config=config)["message"] == (
        "Team A has 3 items in progress, above its WIP limit of 2: stop starting, finish work first"
    )
    assert hits("wip_overload", {"work_items": items}) == []  # no limits, no history


def test_wip_overload_against_the_teams_own_85th_percentile():
    def started(item: str, ago: int) -> dict[str, Any]:
        return {"item_id": item, "change_id": "1", "at": AS_OF - ago * DAY, "field": "status",
                "to_category": "in_progress"}  # fmt: skip

    items = work_items(
        *({"item_id": f"C{i}", "team": "C", "status_category": "in_progress"} for i in range(3)),
        *({"item_id": f"D{i}", "team": "D", "status_category": "in_progress"} for i in range(2)),
    )
    changes = frame(
        "status_changes",
        started("C0", 100),  # one item for months ...
        started("C1", 2),  # ... then two more in the last two days
        started("C2", 2),
        started("D0", 100),  # steady at two
        started("D1", 100),
    )
    frames = {"work_items": items, "status_changes": changes}
    assert hits("wip_overload", frames) == [("team C", "warning", "Team PO")]
    row = one("wip_overload", frames)
    assert row["message"] == (
        "Team C has 3 items in progress, above its usual level (85th percentile of daily WIP "
        "over the last 90 days: 1): stop starting, finish work first"
    )
    assert row["since"] == AS_OF - 2 * DAY  # the first day-end above the usual level
    short = {"wip_overload": {"min_history_days": 91}}  # not enough history to judge
    assert hits("wip_overload", frames, config=short) == []


# ------------------------------------------------------------------------ 13 duplicate effort


def test_duplicate_effort_near_identical_titles_in_other_teams():
    items = work_items(
        {"item_id": "S1", "team": "A", "title": "Build the payment form"},
        {"item_id": "S2", "team": "B", "title": "Build payment forms!"},
        {"item_id": "S3", "team": "A", "title": "Build payment form"},  # same team as S1
        {"item_id": "S4", "team": "C", "title": "Build the login page"},
        {"item_id": "S5", "team": "C", "title": "payment", "organisation": "Other"},  # too short
        {"item_id": "S6", "team": "D", "title": "Build payment form", "status_category": "done"},
    )
    assert hits("duplicate_effort", {"work_items": items}) == [
        ("S1", "warning", "Chief PO"),
        ("S2", "warning", "Chief PO"),
        ("S3", "warning", "Chief PO"),
    ]
    s2 = next(
        r
        for r in A.run_rule(
            A.resolve_rules(None)["duplicate_effort"],
            A.RuleContext({"work_items": items}, None, AS_OF),
        ).iter_rows(named=True)
        if r["item_id"] == "S2"
    )
    assert s2["message"] == (
        "Story S2 'Build payment forms!' looks like S1 'Build the payment form' of team A (Org) "
        "(title similarity 1) and 1 more similar items: agree who does it and link the items"
    )
    # the English message is the catalogue's sentence with the same parameters, word for word
    # (a whole-number similarity once read "1.0" in the message and "1" in the sentence)
    from pmolens.reports import finding_text  # noqa: F401  (registers the finding sentences)
    from pmolens.reports.i18n import CATALOGUE
    from pmolens.reports.sentence import sentence

    english = sentence(s2["message_key"], s2["message_params"], lambda k: CATALOGUE[k]["en"])
    assert english == s2["message"]


def test_duplicate_effort_across_organisations_goes_to_the_pmo_and_respects_jaccard():
    items = work_items(
        {"item_id": "X1", "team": "A", "organisation": "O1",
         "title": "Customer portal single sign on"},
        {"item_id": "Y1", "team": "B", "organisation": "O2",
         "title": "Customer portal single sign on login"},
    )  # fmt: skip
    # tokens: {customer, portal, single, sign} vs + {login}: Jaccard 4/5 = 0.8 (at the edge)
    assert hits("duplicate_effort", {"work_items": items}) == [
        ("X1", "warning", "PMO"),
        ("Y1", "warning", "PMO"),
    ]
    strict = {"duplicate_effort": {"min_jaccard": 0.81}}
    assert hits("duplicate_effort", {"work_items": items}, config=strict) == []


def test_title_tokens_normalise_case_punctuation_stop_words_and_plurals():
    titles = pl.DataFrame(
        {"item_id": ["1"], "title": ["De API's voor Payments: (v2) and the logs"]}
    )
    tokens = sorted(A.title_tokens(titles)["token"].to_list())
    assert tokens == ["api", "log", "payment", "v2"]


# --------------------------------------------------------------------- 14 unassigned in sprint


def test_unassigned_in_active_sprint():
    sprints = frame(
        "sprints",
        sprint("A", "T", AS_OF - 5 * DAY, state="active"),
        sprint("F", "T", AS_OF + 9 * DAY, state="future"),
    )
    items = work_items(
        {"item_id": "S1", "sprint_id": "A", "status_category": "in_progress"},
        {"item_id": "S2", "sprint_id": "A"},
        {"item_id": "S3", "sprint_id": "A", "assignee": "Ann"},
        {"item_id": "S4", "sprint_id": "F"},
        {"item_id": "S5", "sprint_id": "A", "status_category": "done"},
    )
    frames = {"work_items": items, "sprints": sprints}
    assert hits("unassigned_in_active_sprint", frames) == [
        ("S1", "warning", "Team PO"),
        ("S2", "info", "Team PO"),
    ]
    assert (
        hits("unassigned_in_active_sprint", {**frames, "work_items": items.filter(item_id="S3")})
        == []
    )


# ---------------------------------------------------------------- engine and configuration


def _two_orgs() -> dict[str, pl.DataFrame]:
    return {
        "work_items": work_items(
            {
                "item_id": "A1",
                "organisation": "OrgA",
                "status_category": "in_progress",
                "updated": AS_OF - 20 * DAY,
            },
            {
                "item_id": "B1",
                "organisation": "OrgB",
                "status_category": "in_progress",
                "updated": AS_OF - 20 * DAY,
            },
        )
    }


def test_thresholds_tuned_per_organisation():
    frames = _two_orgs()
    assert hits("stale_work", frames) == [
        ("A1", "warning", "Team PO"),
        ("B1", "warning", "Team PO"),
    ]
    tuned = {"stale_work": {"organisations": {"OrgB": {"stale_days": 30}}}}
    assert hits("stale_work", frames, config=tuned) == [("A1", "warning", "Team PO")]
    # the base setting moves, OrgB keeps its own
    tuned["stale_work"]["stale_days"] = 25
    assert hits("stale_work", frames, config=tuned) == []


def test_rules_switched_off_globally_or_per_organisation():
    frames = _two_orgs()
    off_b = {"orphan_work": {"organisations": {"OrgB": {"enabled": False}}}}
    assert hits("orphan_work", frames, config=off_b) == [("A1", "warning", "Team PO")]
    only_b = {"orphan_work": {"enabled": False, "organisations": {"OrgB": {"enabled": True}}}}
    assert hits("orphan_work", frames, config=only_b) == [("B1", "warning", "Team PO")]
    findings = A.evaluate(frames, None, AS_OF, {"orphan_work": {"enabled": False}})
    assert "orphan_work" not in findings["rule"].to_list()
    assert "stale_work" in findings["rule"].to_list()


def test_evaluate_returns_the_contract_columns_most_severe_first():
    items = work_items(
        {"item_id": "A1", "team": "A", "status_category": "in_progress"},
        {"item_id": "A2", "team": "A", "status_category": "in_progress"},
    )
    out = A.evaluate({"work_items": items}, None, AS_OF, {"wip_overload": {"limits": {"A": 1}}})
    assert out.schema == pl.Schema(A.FINDINGS_SCHEMA)
    assert out["severity"].to_list()[0] == "critical"
    assert A.evaluate({"work_items": work_items()}, None, AS_OF).height == 0


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"orphan_wrk": {}}, "rules.orphan_wrk: unknown rule id - known rules: "),
        ({"stale_work": {"stale_dayz": 3}}, "rules.stale_work.stale_dayz: unknown key (known: "),
        ({"stale_work": {"stale_days": "3"}}, "rules.stale_work.stale_days: must be a number"),
        ({"stale_work": {"enabled": "no"}}, "rules.stale_work.enabled: must be true or false"),
        (
            {"epic_spread": {"organisations": {"O": {"max_teams": [1]}}}},
            "rules.epic_spread.organisations.O.max_teams: must be a number",
        ),
        ({"wip_overload": {"limits": {"A": "x"}}}, "rules.wip_overload.limits: values must be"),
    ],
)
def test_bad_rule_settings_are_config_errors_at_load(rules, message):
    with pytest.raises(ConfigError) as err:
        settings_from_dict({"rules": rules}, source_name="pmolens.toml")
    assert str(err.value).startswith("pmolens.toml: ")
    assert message in str(err.value)


def test_rule_catalogue_shows_the_settings_in_force():
    config = {"stale_work": {"stale_days": 10, "organisations": {"OrgB": {"enabled": False}}}}
    cat = A.rule_catalogue(config)
    assert cat["id"].to_list() == list(A.RULES)
    assert len(A.RULES) == 14
    stale = cat.filter(id="stale_work").row(0, named=True)
    assert stale["enabled"] is True and stale["custom"] is False
    assert '"stale_days": 10' in stale["thresholds"]
    assert stale["organisations"] == '{"OrgB": {"enabled": false}}'
    assert set(cat["owner_role"]) <= set(A.OWNER_ROLES)
    assert cat.filter(pl.col("rationale").str.len_chars() < 40).height == 0


# ------------------------------------------------------------------------- custom SQL rules

CUSTOM = {
    "id": "no_description",
    "title": "Story without description",
    "rationale": "Refinement needs a description",
    "severity": "info",
    "owner_role": "Team PO",
    "sql": """
        SELECT 'ignored' AS rule, NULL AS severity, item_id, key, url, team, organisation,
               NULL AS owner_role, 'No description: ' || key AS message, created AS since
        FROM work_items WHERE level = 'story' AND NOT has_description;
    """,
}


def test_custom_sql_rule_runs_over_the_frames_and_obeys_switches():
    items = work_items(
        {"item_id": "S1", "has_description": False, "organisation": "OrgA"},
        {"item_id": "S2", "has_description": True, "organisation": "OrgA"},
        {"item_id": "S3", "has_description": False, "organisation": "OrgB"},
    )
    out = A.run_custom_rules([CUSTOM], {"work_items": items})
    assert out.schema == pl.Schema(A.FINDINGS_SCHEMA)
    assert out.select("rule", "severity", "item_id", "owner_role", "message", "since").rows() == [
        ("no_description", "info", "S1", "Team PO", "No description: S1", T0),
        ("no_description", "info", "S3", "Team PO", "No description: S3", T0),
    ]
    off_b = {"no_description": {"organisations": {"OrgB": {"enabled": False}}}}
    assert A.run_custom_rules([CUSTOM], {"work_items": items}, off_b)["item_id"].to_list() == ["S1"]
    both = A.evaluate({"work_items": items}, None, AS_OF, None, [CUSTOM])
    assert {"no_description", "orphan_work"} <= set(both["rule"].to_list())
    settings = settings_from_dict({"custom_rules": [CUSTOM], "rules": off_b})
    assert settings.custom_rules[0].id == "no_description"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"sql": "SELECT item_id, key, title AS message FROM work_items"},
            "custom_rules[0] (no_description).sql: missing columns ['organisation', "
            "'owner_role', 'rule', 'severity', 'since', 'team', 'url'] - the query must return "
            "exactly the findings columns rule, severity, item_id, key, url, team, organisation, "
            "owner_role, message, since (rename with AS",
        ),
        (
            {"sql": CUSTOM["sql"].replace("created AS since", "created AS since, 1 AS extra")},
            "custom_rules[0] (no_description).sql: unexpected columns ['extra']",
        ),
        (
            {"sql": CUSTOM["sql"].replace("created AS since", "title AS since")},
            "custom_rules[0] (no_description).sql: column since is String, must be a timestamp",
        ),
        (
            {"sql": "SELECT * FROM work_itemz"},
            "custom_rules[0] (no_description).sql: does not run against the canonical tables",
        ),
        ({"sql": "DELETE FROM work_items"}, "must be exactly one SELECT"),
        ({"sql": "SELECT 1; SELECT 2"}, "must be exactly one SELECT"),
        ({"sql": "SELEC nonsense"}, "custom_rules[0] (no_description).sql: does not parse"),
        ({"severity": "high"}, "custom_rules[0] (no_description).severity: 'high' - must be one"),
        ({"id": "orphan_work"}, "is a built-in rule - choose another id"),
        ({"id": "Bad Id"}, "must be lowercase letters"),
        ({"sql": None}, "sql: must be a non-empty SQL SELECT statement"),
        ({"where": "x"}, "unknown keys ['where'] - remove them"),
    ],
)
def test_invalid_custom_rule_is_a_clear_config_error_at_load(change, message):
    bad = {**CUSTOM, **change}
    with pytest.raises(ConfigError) as err:
        settings_from_dict({"custom_rules": [bad]}, source_name="pmolens.toml")
    assert str(err.value).startswith("pmolens.toml: ")
    assert message in str(err.value)


def test_custom_rule_failing_on_the_data_becomes_one_critical_finding():
    failing = {
        **CUSTOM,
        "sql": CUSTOM["sql"].replace("created AS since", "CAST(title AS TIMESTAMP) AS since"),
    }
    failing["sql"] = failing["sql"].replace("CAST(title AS TIMESTAMP)", "CAST(title AS DATE)")
    items = work_items({"item_id": "S1", "has_description": False, "title": "not a date"})
    out = A.run_custom_rules([failing], {"work_items": items})
    assert out.select("rule", "severity", "owner_role", "item_id").rows() == [
        ("no_description", "critical", "PMO", None)
    ]
    assert out["message"][0].startswith("Custom rule no_description failed on this data: ")


# ------------------------------------------------------------------------------- lifecycle


def test_findings_lifecycle_new_open_resolved_and_back():
    t1, t2, t3 = AS_OF, AS_OF + DAY, AS_OF + 2 * DAY
    a = work_items({"item_id": "A1", "team": "A"}, {"item_id": "A2", "team": "A"})
    first = A.update_findings(None, A.evaluate({"work_items": a}, None, t1), t1)
    assert first.schema == pl.Schema(A.FINDINGS_STATE_SCHEMA)
    assert first.select("rule", "item_id", "status", "first_seen", "resolved_at").rows() == [
        ("orphan_work", "A1", "new", t1, None),
        ("orphan_work", "A2", "new", t1, None),
    ]
    assert first["open_days"].to_list() == [30.0, 30.0]  # since created (T0)

    # A2 gets an epic: its finding is resolved at t2, A1's stays open with its first_seen
    fixed = work_items(
        {"item_id": "E1", "level": "epic", "assignee": "Ann"},
        {"item_id": "A1", "team": "A"},
        {"item_id": "A2", "team": "A", "parent_id": "E1"},
    )
    second = A.update_findings(first, A.evaluate({"work_items": fixed}, None, t2), t2)
    assert second.select("item_id", "status", "first_seen", "last_seen", "resolved_at").rows() == [
        ("A1", "open", t1, t2, None),
        ("A2", "resolved", t1, t1, t2),
    ]
    # the same evaluation again: nothing changes but last_seen
    third = A.update_findings(second, A.evaluate({"work_items": fixed}, None, t3), t3)
    assert third.select("item_id", "status", "first_seen", "resolved_at").rows() == [
        ("A1", "open", t1, None),
        ("A2", "resolved", t1, t2),
    ]
    # A2 loses its epic again: a new finding, first seen now
    fourth = A.update_findings(third, A.evaluate({"work_items": a}, None, t3), t3)
    assert fourth.select("item_id", "status", "first_seen", "resolved_at").rows() == [
        ("A1", "open", t1, None),
        ("A2", "new", t3, None),
    ]
    # resolved findings are dropped keep_resolved_days after resolution
    later = t2 + timedelta(days=91)
    pruned = A.update_findings(second, A.evaluate({"work_items": fixed}, None, later), later)
    assert pruned["item_id"].to_list() == ["A1"]


def test_team_level_findings_are_tracked_by_team():
    items = work_items(
        *({"item_id": f"A{i}", "team": "A", "status_category": "in_progress"} for i in range(3))
    )
    config = {"wip_overload": {"limits": {"A": 2}}}
    one_run = A.evaluate({"work_items": items}, None, AS_OF, config).filter(rule="wip_overload")
    state = A.update_findings(None, one_run, AS_OF)
    again = A.update_findings(state, one_run, AS_OF + DAY)
    assert again.select("team", "status", "first_seen").rows() == [("A", "open", AS_OF)]


# ----------------------------------------------------------------------------------- scores


def test_alignment_scores_weight_items_by_their_worst_open_finding():
    items = work_items(
        {"item_id": "A1", "team": "A"},
        {"item_id": "A2", "team": "A"},
        {"item_id": "A3", "team": "A"},
        {"item_id": "A4", "team": "A", "status_category": "done"},  # done, no finding: not counted
        {"item_id": "B1", "team": "B", "organisation": "Other"},
    )
    findings = pl.DataFrame(
        [
            {"rule": "r1", "severity": "critical", "item_id": "A1", "team": "A", "organisation": "Org"},
            {"rule": "r2", "severity": "info", "item_id": "A1", "team": "A", "organisation": "Org"},
            {"rule": "r1", "severity": "warning", "item_id": "A2", "team": "A", "organisation": "Org"},
            {"rule": "r3", "severity": "critical", "item_id": None, "team": "A", "organisation": "Org"},
        ],
        schema=A.FINDINGS_SCHEMA,
    )  # fmt: skip
    team = A.alignment_scores(items, findings, "team")
    assert team.rows() == [
        ("Org", "A", 3, 2, 1.5, 50.0, 4),
        ("Other", "B", 1, 0, 0.0, 100.0, 0),
    ]
    org = A.alignment_scores(items, findings, "organisation")
    assert org.select("organisation", "score").rows() == [("Org", 50.0), ("Other", 100.0)]
    resolved = A.update_findings(findings, findings.clear(), AS_OF)  # everything resolved
    assert A.alignment_scores(items, resolved, "team")["score"].to_list() == [100.0, 100.0]


def test_daily_trend_keeps_the_last_value_per_day():
    snaps = pl.DataFrame(
        {
            "generation": [1, 2, 3, 4],
            "as_of": [
                AS_OF - 40 * DAY,
                AS_OF - 2 * DAY,
                AS_OF - 2 * DAY + timedelta(hours=1),
                AS_OF,
            ],
            "family": ["alignment"] * 4,
            "metric": ["score"] * 4,
            "scope": ["all"] * 4,
            "value": [10.0, 60.0, 70.0, 80.0],
        },
        schema_overrides={"as_of": pl.Datetime("us", "UTC")},
    )
    trend = A.daily_trend(snaps, AS_OF, 30)
    assert trend.select("day", "value").rows() == [
        ((AS_OF - 2 * DAY).date(), 70.0),
        (AS_OF.date(), 80.0),
    ]


def test_similar_title_sets_count_a_repeated_token_once():
    titles = pl.DataFrame(
        {
            "item_id": ["1", "2", "3"],
            "title": ["Login login portal page", "Portal: login page", "Portal login page export"],
        }
    )
    tokens = A.token_rows(titles)
    assert tokens.filter(item_id="1").height == 4  # before de-duplication
    item_sets, pairs = A.similar_title_sets(tokens, min_jaccard=0.75, min_tokens=3, max_block=10)
    sets = dict(item_sets.iter_rows())
    assert sets["1"] == sets["2"] != sets["3"]
    # set ids follow the sorted tokens: "export ..." before "login ..."
    assert (sets["3"], sets["1"]) == (0, 1)
    assert sorted(pairs.rows()) == [(0, 1, 0.75), (1, 0, 0.75)]
