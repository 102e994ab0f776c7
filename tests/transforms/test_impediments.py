"""The impediment backlog: what counts, since when, what it holds up, and who must solve it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl
import pytest

from pmolens.warehouse.config import ConfigError, settings_from_dict
from pmolens.warehouse.transforms.dependencies import EDGES_SCHEMA, RED_LINES
from pmolens.warehouse.transforms.impediments import (
    BACKLOG_SCHEMA,
    ImpedimentParams,
    blocking_dependencies,
    impediment_backlog,
    impediment_snapshot,
)
from tests.factories import T0, frame, work_items

AS_OF = T0 + timedelta(days=30)
DAY = timedelta(days=1)


def edge(blocker: str, dependent: str, **kw: Any) -> dict[str, Any]:
    return {
        "blocker_id": blocker,
        "dependent_id": dependent,
        "blocker_key": blocker,
        "dependent_key": dependent,
        "blocker_category": "todo",
        "dependent_category": "todo",
        "unresolved": False,
        **kw,
    }


def edges(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=EDGES_SCHEMA)


NO_EDGES = edges()
NO_CHANGES = frame("status_changes")
#: the current sprint began 3 days ago, the next one starts in 4 days, an old one 20 days ago
SPRINTS = frame(
    "sprints",
    {"sprint_id": "now", "state": "active", "start": AS_OF - 3 * DAY, "end": AS_OF + 11 * DAY},
    {"sprint_id": "next", "state": "future", "start": AS_OF + 4 * DAY, "end": AS_OF + 18 * DAY},
    {"sprint_id": "old", "state": "closed", "start": AS_OF - 20 * DAY, "end": AS_OF - 6 * DAY},
)


def backlog(items, e=NO_EDGES, changes=NO_CHANGES, thresholds=None, blocked=None, sprints=SPRINTS):
    out = impediment_backlog(items, e, changes, AS_OF, thresholds, blocked, sprints)
    assert out.schema == pl.Schema(BACKLOG_SCHEMA)
    return out


def status(item: str, n: int, days_ago: float, frm: str | None, to: str, cats=("todo", "todo")):
    return {
        "item_id": item, "change_id": str(n), "at": AS_OF - days_ago * DAY, "field": "status",
        "from_status": frm, "to_status": to, "from_category": cats[0], "to_category": cats[1],
    }  # fmt: skip


def flag(item: str, n: int, days_ago: float, to: str):
    return {
        "item_id": item, "change_id": str(n), "at": AS_OF - days_ago * DAY, "field": "flagged",
        "to_status": to,
    }  # fmt: skip


def test_what_counts_as_an_impediment_and_why():
    ip = {"status_category": "in_progress", "raw_status": "In Progress"}
    items = work_items(
        {"item_id": "I1", "level": "impediment", "raw_type": "Impediment"},
        {"item_id": "F1", "flagged": True, "status_category": "in_progress"},
        {"item_id": "S1", "raw_status": "On Hold", "status_category": "in_progress"},
        {"item_id": "D1", **ip},  # in progress, blocker open: blocks now
        {"item_id": "D4", "sprint_id": "now"},  # committed to the current sprint
        {"item_id": "D5", "sprint_id": "next"},  # future, on track: not an impediment
        {"item_id": "D6", "sprint_id": "next"},  # future, but a red line
        {"item_id": "B1"},  # the blockers: not blocked themselves
        {"item_id": "D2", **ip},  # in progress, but its blocker is done
        {"item_id": "B2", "status_category": "done"},
        {"item_id": "D3", **ip},  # unresolved link: not counted
        {"item_id": "D7", **ip},  # linked to itself: no item holds itself up
        {"item_id": "X1", "flagged": True, "status_category": "done"},  # done: not open
        {"item_id": "X3", "flagged": True},  # flagged, but nobody works on it yet: stops no one
        {"item_id": "F3", "flagged": True, "sprint_id": "now"},  # flagged in the current sprint
        {"item_id": "X2", "level": "impediment", "status_category": "done"},
    )
    e = edges(
        edge("B1", "D1", dependent_category="in_progress", timing="on_track"),
        edge("B1", "D4", dependent_sprint="now", timing="on_track"),
        edge("B1", "D5", dependent_sprint="next", timing="on_track"),
        edge("B1", "D6", dependent_sprint="next", timing="conflict"),
        edge("B2", "D2", blocker_category="done", dependent_category="in_progress"),
        edge(None, "D3", unresolved=True, dependent_category="in_progress"),
        edge("D7", "D7", dependent_category="in_progress", blocker_category="in_progress"),
    )
    out = backlog(items, e)
    assert sorted(out.select("item_id", "reason").rows()) == [
        ("D1", "blocked_by_dependency"),
        ("D4", "blocked_by_dependency"),
        ("D6", "blocked_by_dependency"),
        ("F1", "flagged"),
        ("F3", "flagged"),
        ("I1", "type"),
        ("S1", "blocked_status"),
    ]  # X3: flagged, but neither in progress nor in the current sprint
    # every red-line state counts, whatever the dependent's plan
    for state in RED_LINES:
        red = edges(edge("B1", "D5", dependent_sprint="next", timing=state))
        assert backlog(items, red).filter(reason="blocked_by_dependency")["item_id"].to_list() == [
            "D5"
        ]
    # the blocking-now test itself, per edge
    now = blocking_dependencies(e, SPRINTS, AS_OF).sort("dependent_id")
    assert now.select("dependent_id", "in_progress", "in_sprint", "red_line").rows() == [
        ("D1", True, False, False),
        ("D4", False, True, False),
        ("D6", False, False, True),
    ]


def test_blocked_statuses_are_per_source_case_insensitive():
    items = work_items(
        {"item_id": "a", "source": "jira", "raw_status": "waiting for vendor"},
        {"item_id": "b", "source": "jira", "raw_status": "Blocked"},  # not in jira's own list
        {"item_id": "c", "source": "ado", "raw_status": "blocked"},  # default list
        {"item_id": "d", "source": "nl", "raw_status": "Geblokkeerd"},
    )
    out = backlog(items, blocked={"jira": ["Waiting for Vendor"], "nl": ["geblokkeerd"]})
    assert sorted(out["item_id"].to_list()) == ["a", "c", "d"]


def test_age_counts_from_the_flag_and_the_blocked_status_never_from_created():
    # every item was created 30 days before as_of (T0); none of that counts
    items = work_items(
        {
            "item_id": "F1",
            "flagged": True,
            "status_category": "in_progress",
            "updated": AS_OF - DAY,
        },
        {
            "item_id": "F2",
            "flagged": True,
            "status_category": "in_progress",
            "updated": AS_OF - 3 * DAY,
        },  # no history: updated
        {"item_id": "S1", "raw_status": "Blocked", "updated": AS_OF - DAY},
        {"item_id": "S2", "raw_status": "On Hold", "updated": AS_OF - DAY},
        {"item_id": "S3", "raw_status": "Blocked", "updated": AS_OF - DAY},  # no history: updated
        {"item_id": "I1", "level": "impediment", "created": AS_OF - 2 * DAY},
    )
    changes = frame(
        "status_changes",
        flag("F1", 1, 9, "Impediment"),
        flag("F1", 2, 8, ""),  # flag cleared
        flag("F1", 3, 6, "Impediment"),  # flagged again: counts from here
        status("S1", 1, 10, "Blocked", "In Progress"),  # an earlier blocked spell, ended
        status("S1", 2, 4, "In Progress", "Blocked"),
        status("S2", 1, 7, "In Progress", "Blocked"),  # blocked from here ...
        status("S2", 2, 2, "Blocked", "On Hold"),  # ... still blocked: the spell goes on
    )
    out = backlog(items, changes=changes).sort("item_id")
    assert out.select("item_id", "reason", "since", "age_days").rows() == [
        ("F1", "flagged", AS_OF - 6 * DAY, 6.0),
        ("F2", "flagged", AS_OF - 3 * DAY, 3.0),
        ("I1", "type", AS_OF - 2 * DAY, 2.0),  # an impediment record is raised when made
        ("S1", "blocked_status", AS_OF - 4 * DAY, 4.0),
        ("S2", "blocked_status", AS_OF - 7 * DAY, 7.0),
        ("S3", "blocked_status", AS_OF - DAY, 1.0),
    ]


def test_a_dependency_ages_from_when_the_dependent_started_or_its_sprint_began():
    ip = {"status_category": "in_progress", "raw_status": "In Progress"}
    items = work_items(
        {"item_id": "B1"},
        {"item_id": "D1", **ip},  # started, stopped, started again 6 days ago
        {"item_id": "D2", "sprint_id": "now"},  # not started, in the sprint that began 3 days ago
        {"item_id": "D3", **ip, "sprint_id": "now"},  # started 8 days ago, carried over
        {"item_id": "D4", **ip, "updated": AS_OF - 2 * DAY},  # in progress, no history
        {"item_id": "D5", "sprint_id": "next"},  # red line, its sprint not begun: age 0
        {"item_id": "D6", "sprint_id": "old"},  # red line left in a sprint begun 20 days ago
    )
    todo_ip, ip_ip, ip_todo = ("todo", "in_progress"), ("in_progress",) * 2, ("in_progress", "todo")
    changes = frame(
        "status_changes",
        status("D1", 1, 12, "To Do", "In Progress", todo_ip),
        status("D1", 2, 10, "In Progress", "To Do", ip_todo),
        status("D1", 3, 6, "To Do", "In Progress", todo_ip),  # the current spell starts here
        status("D1", 4, 3, "In Progress", "In Review", ip_ip),  # still in progress
        status("D3", 1, 8, "To Do", "In Progress", todo_ip),
    )
    e = edges(
        edge("B1", "D1", dependent_category="in_progress"),
        edge("B1", "D2", dependent_sprint="now"),
        edge("B1", "D3", dependent_category="in_progress", dependent_sprint="now"),
        edge("B1", "D4", dependent_category="in_progress"),
        edge("B1", "D5", dependent_sprint="next", timing="at_risk"),
        edge("B1", "D6", dependent_sprint="old", timing="conflict"),
    )
    out = backlog(items, e, changes, thresholds={"sos_weight": 100, "eat_weight": 100})
    assert out.sort("item_id").select("item_id", "since", "age_days", "level").rows() == [
        ("D1", AS_OF - 6 * DAY, 6.0, "sos"),
        ("D2", AS_OF - 3 * DAY, 3.0, "team"),
        ("D3", AS_OF - 8 * DAY, 8.0, "sos"),
        ("D4", AS_OF - 2 * DAY, 2.0, "team"),
        ("D5", AS_OF, 0.0, "team"),
        ("D6", AS_OF - 20 * DAY, 20.0, "eat"),
    ]


def test_what_it_holds_up_gives_the_weight_and_the_order_never_itself():
    ip = {"status_category": "in_progress", "raw_status": "In Progress"}
    items = work_items(
        {"item_id": "B1", "flagged": True, "status_category": "in_progress", "estimate": 2.0, "business_value": 10.0,
         "updated": AS_OF},
        {"item_id": "D1", **ip, "estimate": 3.0, "business_value": 50.0, "updated": AS_OF - DAY},
        {"item_id": "D2", "estimate": 5.0, "status_category": "done"},
        {"item_id": "I1", "level": "impediment", "created": AS_OF},
        {"item_id": "D3", **ip, "estimate": 1.0, "updated": AS_OF - 2 * DAY},
    )  # fmt: skip
    e = edges(
        edge("B1", "D1", dependent_estimate=3.0, dependent_business_value=50.0,
             dependent_category="in_progress"),
        edge("B1", "D2", dependent_estimate=5.0, dependent_category="done"),  # done: not held up
        edge("B1", "B1", dependent_estimate=2.0),  # linked to itself: never held up by itself
        edge("I1", "D3", dependent_estimate=1.0, dependent_category="in_progress"),
    )  # fmt: skip
    out = backlog(items, e)
    rows = out.select(
        "item_id", "held_up_items", "held_up_keys", "held_up_estimate", "held_up_value", "weight"
    ).rows()
    # B1 holds up D1 only: 1*1 + 1*3 + 0.1*50 = 9. I1 holds up D3: 1 + 1 = 2.
    # D1 and D3 (in progress, blocker open) are impediments too, holding up nothing: weight 0,
    # then the older first (D3 2 days, D1 1 day).
    assert rows == [
        ("B1", 1, ["D1"], 3.0, 50.0, 9.0),
        ("I1", 1, ["D3"], 1.0, 0.0, 2.0),
        ("D3", 0, [], 0.0, 0.0, 0.0),
        ("D1", 0, [], 0.0, 0.0, 0.0),
    ]


def test_escalation_levels_at_the_threshold_edges():
    params = {"sos_age_days": 5, "eat_age_days": 15, "sos_weight": 10, "eat_weight": 40}
    items = work_items(
        {
            "item_id": "young",
            "flagged": True,
            "status_category": "in_progress",
            "updated": AS_OF - 4 * DAY,
        },
        {
            "item_id": "sos_age",
            "flagged": True,
            "status_category": "in_progress",
            "updated": AS_OF - 5 * DAY,
        },
        {
            "item_id": "eat_age",
            "flagged": True,
            "status_category": "in_progress",
            "updated": AS_OF - 15 * DAY,
        },
        {
            "item_id": "sos_weight",
            "flagged": True,
            "status_category": "in_progress",
            "updated": AS_OF,
        },
        {
            "item_id": "eat_weight",
            "flagged": True,
            "status_category": "in_progress",
            "updated": AS_OF,
        },
        {"item_id": "almost", "flagged": True, "status_category": "in_progress", "updated": AS_OF},
        # what the last three hold up: future work, on track, so no impediments themselves
        {"item_id": "w9", "sprint_id": "next"},
        {"item_id": "w39", "sprint_id": "next"},
        {"item_id": "w8", "sprint_id": "next"},
    )
    e = edges(
        edge("sos_weight", "w9", dependent_estimate=9.0, dependent_sprint="next"),
        edge("eat_weight", "w39", dependent_estimate=39.0, dependent_sprint="next"),
        edge("almost", "w8", dependent_estimate=8.0, dependent_sprint="next"),
    )
    out = backlog(items, e, thresholds=params)
    assert dict(out.select("item_id", "level").rows()) == {
        "young": "team",
        "sos_age": "sos",
        "eat_age": "eat",
        "sos_weight": "sos",  # weight 1 + 9 = 10
        "eat_weight": "eat",  # weight 1 + 39 = 40
        "almost": "team",  # weight 1 + 8 = 9
    }
    higher = backlog(items, e, thresholds={**params, "sos_age_days": 6})
    assert higher.filter(item_id="sos_age")["level"].to_list() == ["team"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"sos_age": 3}, "analytics.impediments.sos_age: unknown key (known: sos_age_days, "),
        ({"sos_weight": "10"}, "analytics.impediments.sos_weight: must be a number >= 0"),
        ({"sos_age_days": 20}, "must not exceed the Executive Action Team ones"),
    ],
)
def test_bad_escalation_thresholds_are_config_errors_at_load(values, message):
    with pytest.raises(ConfigError) as err:
        settings_from_dict({"analytics": {"impediments": values}}, source_name="pmolens.toml")
    assert message in str(err.value)
    assert ImpedimentParams.from_mapping(None) == ImpedimentParams()


def test_snapshot_has_every_level():
    items = work_items(
        {
            "item_id": "a",
            "flagged": True,
            "status_category": "in_progress",
            "updated": AS_OF - 2 * DAY,
        }
    )
    snap = impediment_snapshot(backlog(items), AS_OF)
    assert snap.select("level", "open", "mean_age_days").rows() == [
        ("team", 1, 2.0),
        ("sos", 0, None),
        ("eat", 0, None),
    ]
