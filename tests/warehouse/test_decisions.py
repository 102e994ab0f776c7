"""What needs a decision today, and what changed since: each kind appears for its reason and
not otherwise, nothing is listed twice, and every line says its sentence in both languages."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from pmolens.reports.decision_text import decision_sentence
from pmolens.reports.i18n import translator
from pmolens.warehouse.settings_analytics import ImpedimentParams
from pmolens.warehouse.transforms.alignment.lifecycle import FINDINGS_STATE_SCHEMA
from pmolens.warehouse.transforms.calendar import Calendar
from pmolens.warehouse.transforms.decisions import (
    CHANGES_SCHEMA,
    DECISIONS_SCHEMA,
    KINDS,
    ROLES,
    changes_since,
    decisions,
)
from pmolens.warehouse.transforms.dependencies import FULL_EDGES_SCHEMA
from pmolens.warehouse.transforms.forecast import EPIC_SCHEMA
from pmolens.warehouse.transforms.impediments import BACKLOG_SCHEMA

AS_OF = datetime(2026, 3, 6, 12, tzinfo=UTC)  # a Friday
TODAY = AS_OF.date()
DAY = timedelta(days=1)


def edge(blocker: str, dependent: str, timing: str, **kw: Any) -> dict[str, Any]:
    org = kw.pop("org", "Northwind")
    return {
        "blocker_id": blocker, "dependent_id": dependent, "link_id": f"{blocker}>{dependent}",
        "source": "nw", "blocker_key": blocker.upper(), "dependent_key": dependent.upper(),
        "blocker_url": f"https://t/{blocker}", "dependent_url": f"https://t/{dependent}",
        "blocker_team": "Web", "dependent_team": "App", "blocker_org": kw.pop("blocker_org", org),
        "dependent_org": org, "blocker_category": "todo", "dependent_category": "todo",
        "open": True, "unresolved": False, "timing": timing, "age_days": 10.0,
        "cross_team": True, "cross_org": False, **kw,
    }  # fmt: skip


def edges(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=FULL_EDGES_SCHEMA)


def epic(epic_id: str, **kw: Any) -> dict[str, Any]:
    return {
        "epic_id": epic_id, "key": epic_id.upper(), "title": f"Epic {epic_id}",
        "url": f"https://t/{epic_id}", "team": "App", "organisation": "Northwind", "teams": ["App"],
        "backlog_position": 1, "remaining_items": 3, "p50": TODAY + 5 * DAY,
        "p85": TODAY + 10 * DAY, "p95": TODAY + 12 * DAY, "own_p85": TODAY + 10 * DAY,
        "target_date": None, "p_on_time": None, "driven_by": None, "driven_by_key": None,
        "driven_share": None, "dependency_delay_days_p85": 0, "blockers": [],
        "unforecast_blockers": 0, "cycle_broken": False, "note": None, **kw,
    }  # fmt: skip


def epics(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=EPIC_SCHEMA)


def impediment(item_id: str, level: str, age: float, **kw: Any) -> dict[str, Any]:
    return {
        "item_id": item_id, "key": item_id.upper(), "url": f"https://t/{item_id}",
        "title": f"Impediment {item_id}", "team": "App", "organisation": "Northwind",
        "reason": "flagged", "since": AS_OF - timedelta(days=age), "age_days": age,
        "held_up_items": 0, "held_up_keys": [], "held_up_estimate": 0.0, "held_up_value": 0.0,
        "weight": 0.0, "level": level, **kw,
    }  # fmt: skip


def impediments(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=BACKLOG_SCHEMA)


def finding(rule: str, item_id: str | None, severity: str, first_seen: datetime, **kw: Any):
    return {
        "rule": rule, "severity": severity, "item_id": item_id,
        "key": item_id.upper() if item_id else None, "url": None, "team": "App",
        "organisation": "Northwind", "owner_role": "PMO", "message": "English prose",
        "since": first_seen - DAY, "first_seen": first_seen, "last_seen": AS_OF,
        "resolved_at": None, "status": "new" if first_seen == AS_OF else "open", "open_days": 1.0,
        **kw,
    }  # fmt: skip


def findings(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=FINDINGS_STATE_SCHEMA)


NONE_E, NONE_F, NONE_I, NONE_S = edges(), epics(), impediments(), findings()


def run(e=NONE_E, f=NONE_F, i=NONE_I, s=NONE_S, **kw: Any) -> pl.DataFrame:
    out = decisions(e, f, i, s, AS_OF, **kw)
    assert out.schema == pl.Schema(DECISIONS_SCHEMA)
    assert out["rank"].to_list() == list(range(1, out.height + 1))
    order = [KINDS.index(k) for k in out["kind"]]
    assert order == sorted(order)
    assert set(out["owner_role"]) <= set(ROLES)
    assert not out.select("kind", "item_id", "other_item_id").is_duplicated().any()
    for row in out.iter_rows(named=True):
        assert "English prose" not in row["detail_params"]
        for lang in ("en", "nl"):
            text = decision_sentence(row, translator(lang))
            assert "{" not in text and "–" not in text, (row["detail_key"], text)
    return out


def kinds(frame: pl.DataFrame) -> list[tuple[str, str | None, str | None]]:
    return list(frame.select("kind", "key", "other_key").iter_rows())


def test_nothing_to_decide_on_empty_frames():
    assert run().height == 0


def test_red_lines_that_move_a_date_and_cross_organisation_ones_at_risk():
    e = edges(
        # a conflict always moves the plan: listed even without a forecast epic
        edge("b1", "d1", "conflict", slip_days=12, dependent_planned_end=TODAY + 3 * DAY),
        # unscheduled blocker whose waiting epic E1 is forecast later because of it
        edge("b2", "d2", "unscheduled_blocker", dependent_epic="e1", dependent_epic_key="E1",
             blocker_epic="e9", dependent_planned_end=TODAY + 4 * DAY),
        # at risk, epic E1 delayed, but by another blocker: not this line's doing
        edge("b3", "d3", "at_risk", dependent_epic="e1", blocker_epic="e8",
             dependent_planned_end=TODAY + 4 * DAY),
        # at risk, epic E2 not delayed at all
        edge("b4", "d4", "at_risk", dependent_epic="e2", blocker_epic="e9",
             dependent_planned_end=TODAY + 4 * DAY),
        # across organisations, at risk, moves nothing: a cross-organisation line
        edge("c1", "d5", "at_risk", blocker_org="Contoso", cross_org=True,
             dependent_planned_end=TODAY + 4 * DAY),
        # across organisations and a conflict: a red line (the Chief PO acts), not both
        edge("c2", "d6", "conflict", blocker_org="Contoso", cross_org=True, slip_days=3,
             dependent_planned_end=TODAY + 4 * DAY),
        # not red lines: on track, done, an unplanned pair
        edge("b7", "d7", "on_track"),
        edge("b8", "d8", "done", open=False),
        edge("b9", "d9", "unplanned"),
        # the same pair stored twice (both trackers keep the link): one line
        edge("b1", "d1", "conflict", slip_days=12, link_id="again",
             dependent_planned_end=TODAY + 3 * DAY),
    )  # fmt: skip
    f = epics(
        epic("e1", dependency_delay_days_p85=6, blockers=["e9"]),
        epic("e2", dependency_delay_days_p85=0, blockers=["e9"]),
    )
    out = run(e, f)
    assert kinds(out) == [
        ("red_line", "D1", "B1"),
        ("red_line", "D6", "C2"),
        ("red_line", "D2", "B2"),
        ("cross_org_at_risk", "D5", "C1"),
    ]
    rows = {r["key"]: r for r in out.iter_rows(named=True)}
    assert rows["D1"]["slip_days"] == 12 and rows["D1"]["owner_role"] == "SoS Master"
    assert rows["D6"]["owner_role"] == "Chief PO"  # across organisations
    assert (rows["D2"]["slip_days"], rows["D2"]["epic_key"]) == (6, "E1")  # the epic's delay
    assert rows["D2"]["p85"] == TODAY + 10 * DAY
    assert (rows["D5"]["other_organisation"], rows["D5"]["owner_role"]) == ("Contoso", "Chief PO")
    assert rows["D1"]["since"] == AS_OF - 10 * DAY  # the dependency exists since
    assert rows["D1"]["due"] == TODAY + 3 * DAY
    text = decision_sentence(rows["D1"], translator("nl"))
    assert text == "D1 (App) staat 12 dagen eerder gepland dan B1 (Web), waar het op wacht: " \
        "herplan één van beide"  # fmt: skip


def test_overdue_epics_and_epics_below_their_target_chance():
    e = edges(edge("x1", "y1", "on_track", blocker_team="Pay", blocker_org="Contoso"))
    f = epics(
        epic("late", target_date=TODAY - 3 * DAY, p_on_time=0.0, p85=TODAY + 9 * DAY),
        epic("later", target_date=TODAY - 10 * DAY, p_on_time=0.0, p85=None),
        epic("unlikely", target_date=TODAY + 5 * DAY, p_on_time=0.2, driven_by="x1",
             driven_by_key="X1", dependency_delay_days_p85=4),
        epic("coin", target_date=TODAY + 5 * DAY, p_on_time=0.5),  # 50 %: not below
        epic("today", target_date=TODAY, p_on_time=0.4),  # due today: not overdue yet
        epic("undated", p_on_time=None),
    )  # fmt: skip
    out = run(e, f)
    assert kinds(out) == [
        ("epic_overdue", "LATER", None),
        ("epic_overdue", "LATE", None),
        ("epic_below_target_chance", "UNLIKELY", "X1"),
        ("epic_below_target_chance", "TODAY", None),
    ]
    rows = {r["key"]: r for r in out.iter_rows(named=True)}
    assert rows["LATE"]["since"] == datetime(2026, 3, 4, tzinfo=UTC)  # the day after the target
    assert rows["LATE"]["slip_days"] == 12 and rows["LATE"]["owner_role"] == "Chief PO"
    unlikely = rows["UNLIKELY"]
    assert (unlikely["other_team"], unlikely["other_organisation"]) == ("Pay", "Contoso")
    assert unlikely["since"] == AS_OF  # no earlier sync kept: first seen now
    assert json.loads(rows["LATER"]["detail_params"])["p85"] == {
        "label": "decision_beyond_horizon",
        "text": None,
    }
    assert decision_sentence(rows["LATER"], translator("en")).startswith(
        "Epic LATER is 10 days past its target date 24 Feb 2026; forecast (P85): beyond the "
    )


def test_below_target_chance_since_the_first_sync_of_its_current_spell():
    f = epics(epic("e", target_date=TODAY + 5 * DAY, p_on_time=0.1))
    history = pl.DataFrame(
        {
            "epic_id": ["e"] * 4,
            "as_of": [AS_OF - d * DAY for d in (9, 6, 3, 1)],
            "p_on_time": [0.3, 0.8, 0.4, 0.2],  # below, back above, below since 3 days
        }
    )
    out = run(f=f, forecast_history=history)
    assert out["since"].to_list() == [AS_OF - 3 * DAY]


def test_impediments_at_the_eat_and_about_to_reach_it():
    p = ImpedimentParams()  # the ladder's thresholds: 15 days to the EAT
    i = impediments(
        impediment("eat1", "eat", 20.0, weight=12.0, held_up_items=2),
        impediment("eat2", "eat", 3.0, weight=45.0, held_up_items=30),  # by weight
        impediment("mon", "sos", 14.0),  # reaches 15 days on Saturday: no working day away
        impediment("tue", "sos", 11.5),  # on Tuesday: 2 working days away (Monday, Tuesday)
        impediment("wed", "sos", 10.5),  # on Wednesday: 3 working days away
        impediment("team", "team", 4.9),  # the team's rung: the Scrum of Scrums handles it
    )
    out = run(i=i, thresholds=p)
    assert kinds(out) == [
        ("impediment_eat", "EAT1", None),
        ("impediment_eat", "EAT2", None),
        ("impediment_escalating", "MON", None),
        ("impediment_escalating", "TUE", None),
    ]
    rows = {r["key"]: r for r in out.iter_rows(named=True)}
    assert rows["EAT1"]["owner_role"] == "EAT" and rows["MON"]["owner_role"] == "SoS Master"
    assert rows["MON"]["due"] == date(2026, 3, 7) and rows["TUE"]["due"] == date(2026, 3, 10)
    assert rows["EAT1"]["since"] == AS_OF - 20 * DAY
    # the thresholds come from the settings: a later EAT rung moves who is about to reach it
    later = run(i=i, thresholds=ImpedimentParams(eat_age_days=16.0))
    assert [k for k, *_ in kinds(later)].count("impediment_escalating") == 1
    # a six-day week makes Saturday a working day: Tuesday is then 3 away
    six = Calendar(working_days={"Northwind": ("mon", "tue", "wed", "thu", "fri", "sat")})
    assert kinds(run(i=i, thresholds=p, calendar=six))[2:] == [
        ("impediment_escalating", "MON", None)
    ]
    nl = decision_sentence(rows["TUE"], translator("nl"))
    assert nl == (
        "TUE (gemarkeerd) houdt het werk al 11 dagen tegen en gaat op 10-03-2026 naar het "
        "Executive Action Team (na 15 dagen): los het op in de Scrum of Scrums of bereid de "
        "escalatie voor"
    )


def test_new_critical_findings_not_already_on_the_list():
    e = edges(edge("b1", "d1", "conflict", slip_days=2))
    s = findings(
        finding("dependency_timing_conflict", "d1", "critical", AS_OF),  # d1 is a red line
        finding("dod_drift", "x", "critical", AS_OF - 3 * DAY, owner_role="Executive Action Team"),
        finding("dod_drift", None, "critical", AS_OF),  # a team-level finding
        finding("stale_work", "y", "warning", AS_OF),
        finding("dod_drift", "old", "critical", AS_OF - 20 * DAY),  # not new any more
        finding("dod_drift", "gone", "critical", AS_OF, status="resolved", resolved_at=AS_OF),
    )
    out = run(e, s=s)
    assert kinds(out) == [
        ("red_line", "D1", "B1"),
        ("critical_finding", "X", None),
        ("critical_finding", None, None),
    ]
    x = out.row(1, named=True)
    assert x["owner_role"] == "EAT" and x["since"] == AS_OF - 4 * DAY
    assert decision_sentence(x, translator("nl")) == (
        "Nieuwe kritieke bevinding: Afwijkende Definition of Done (X)"
    )
    assert decision_sentence(out.row(2, named=True), translator("en")).endswith("(App · Northwind)")


def test_timezone_naive_as_of_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        decisions(NONE_E, NONE_F, NONE_I, NONE_S, datetime(2026, 3, 6))


# ---------------------------------------------------------------------------- what changed

SINCE = AS_OF - 14 * DAY


def test_what_changed_since():
    then = {
        "findings": findings(
            finding("stale_work", "a", "warning", SINCE),
            finding("dod_drift", "b", "critical", SINCE),
        ),
        "forecast_epics": epics(
            epic("slips", p85=TODAY + 2 * DAY),
            epic("gains", p85=TODAY + 20 * DAY),
            epic("week", p85=TODAY + 3 * DAY),
            epic("closed", p85=TODAY),
        ),
        "dependency_conflicts": edges(edge("b1", "d1", "conflict", slip_days=1)),
    }
    now = {
        "findings": findings(
            finding("stale_work", "a", "warning", SINCE),  # still open
            finding("dod_drift", "b", "critical", SINCE, status="resolved", resolved_at=AS_OF),
            finding("orphan_work", "c", "warning", AS_OF),
        ),
        "forecast_epics": epics(
            epic("slips", p85=TODAY + 10 * DAY),  # 8 days later
            epic("gains", p85=TODAY + 5 * DAY),  # 15 days earlier
            epic("week", p85=TODAY + 10 * DAY),  # exactly a week: not "moved"
            epic("new", p85=TODAY + 50 * DAY),  # not forecast then: nothing to compare
        ),
        "dependency_edges": edges(
            edge("b1", "d1", "on_track"), edge("b2", "d2", "at_risk", cross_org=True)
        ),
    }
    out = changes_since(now, then, SINCE)
    assert out.schema == pl.Schema(CHANGES_SCHEMA)
    assert out["since"].unique().to_list() == [SINCE]
    assert [(k, key) for k, key in out.select("kind", "key").iter_rows()] == [
        ("red_line_new", "D2"),
        ("epic_p85_moved", "GAINS"),
        ("epic_p85_moved", "SLIPS"),
        ("finding_new", "C"),
        ("finding_resolved", "B"),
        ("red_line_gone", "D1"),
    ]
    rows = {(r["kind"], r["key"]): r for r in out.iter_rows(named=True)}
    slips = rows[("epic_p85_moved", "SLIPS")]
    assert (slips["old_p85"], slips["new_p85"], slips["delta_days"]) == (
        TODAY + 2 * DAY, TODAY + 10 * DAY, 8
    )  # fmt: skip
    assert rows[("finding_resolved", "B")]["at"] == AS_OF
    assert rows[("red_line_new", "D2")]["owner_role"] == "Chief PO"
    t_nl, t_en = translator("nl"), translator("en")
    assert decision_sentence(rows[("epic_p85_moved", "GAINS")], t_en) == (
        "Epic GAINS: P85 moved 15 days earlier, from 26 Mar 2026 to 11 Mar 2026"
    )
    assert decision_sentence(rows[("finding_resolved", "B")], t_nl) == (
        "Opgelost (kritiek): Afwijkende Definition of Done (B)"
    )
    assert decision_sentence(rows[("red_line_new", "D2")], t_nl) == (
        "Nieuwe rode lijn (zelfde sprint of einddatum): D2 (App) wacht op B2 (Web)"
    )


def test_nothing_changed_and_missing_sides():
    same = {"findings": findings(finding("stale_work", "a", "warning", SINCE))}
    assert changes_since(same, same, SINCE).height == 0
    # a name missing on one side gives no changes of its kinds
    only_now = {"dependency_edges": edges(edge("b1", "d1", "conflict"))}
    assert changes_since(only_now, {}, SINCE).height == 0
    assert changes_since({}, {}, SINCE).schema == pl.Schema(CHANGES_SCHEMA)
