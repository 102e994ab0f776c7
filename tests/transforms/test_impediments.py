"""The impediment backlog: what counts, since when, what it holds up, and who must solve it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl
import pytest

from pmolens.warehouse.config import ConfigError, settings_from_dict
from pmolens.warehouse.transforms.dependencies import EDGES_SCHEMA
from pmolens.warehouse.transforms.impediments import (
    BACKLOG_SCHEMA,
    ImpedimentParams,
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


def backlog(items, e=NO_EDGES, changes=NO_CHANGES, thresholds=None, blocked=None):
    out = impediment_backlog(items, e, changes, AS_OF, thresholds, blocked)
    assert out.schema == pl.Schema(BACKLOG_SCHEMA)
    return out


def test_what_counts_as_an_impediment_and_why():
    items = work_items(
        {"item_id": "I1", "level": "impediment", "raw_type": "Impediment"},
        {"item_id": "F1", "flagged": True},
        {"item_id": "S1", "raw_status": "On Hold", "status_category": "in_progress"},
        {"item_id": "D1"},  # blocked by an open dependency
        {"item_id": "B1"},  # D1's blocker: itself not blocked
        {"item_id": "D2"},  # blocked by a done blocker: not an impediment
        {"item_id": "B2", "status_category": "done"},
        {"item_id": "D3"},  # unresolved link: not counted
        {"item_id": "X1", "flagged": True, "status_category": "done"},  # done: not open
        {"item_id": "X2", "level": "impediment", "status_category": "done"},
    )
    e = edges(
        edge("B1", "D1"),
        edge("B2", "D2", blocker_category="done"),
        edge(None, "D3", unresolved=True),
    )
    out = backlog(items, e)
    assert sorted(out.select("item_id", "reason").rows()) == [
        ("D1", "blocked_by_dependency"),
        ("F1", "flagged"),
        ("I1", "type"),
        ("S1", "blocked_status"),
    ]


def test_blocked_statuses_are_per_source_case_insensitive():
    items = work_items(
        {"item_id": "a", "source": "jira", "raw_status": "waiting for vendor"},
        {"item_id": "b", "source": "jira", "raw_status": "Blocked"},  # not in jira's own list
        {"item_id": "c", "source": "ado", "raw_status": "blocked"},  # default list
    )
    out = backlog(items, blocked={"jira": ["Waiting for Vendor"]})
    assert sorted(out["item_id"].to_list()) == ["a", "c"]


def test_since_and_age_per_reason():
    items = work_items(
        {"item_id": "F1", "flagged": True, "updated": AS_OF - DAY},
        {"item_id": "S1", "raw_status": "Blocked", "updated": AS_OF - DAY},
        {"item_id": "I1", "level": "impediment", "created": AS_OF - 2 * DAY},
        {"item_id": "F2", "flagged": True, "updated": AS_OF - 3 * DAY},  # no history: updated
    )
    changes = frame(
        "status_changes",
        {"item_id": "F1", "change_id": "1", "at": AS_OF - 9 * DAY, "field": "flagged",
         "to_status": "Impediment"},
        {"item_id": "F1", "change_id": "2", "at": AS_OF - 8 * DAY, "field": "flagged",
         "to_status": ""},
        {"item_id": "F1", "change_id": "3", "at": AS_OF - 6 * DAY, "field": "flagged",
         "to_status": "Impediment"},  # flagged again: counts from here
        {"item_id": "S1", "change_id": "1", "at": AS_OF - 4 * DAY, "field": "status",
         "to_status": "Blocked"},
    )  # fmt: skip
    out = backlog(items, changes=changes).sort("item_id")
    assert out.select("item_id", "since", "age_days").rows() == [
        ("F1", AS_OF - 6 * DAY, 6.0),
        ("F2", AS_OF - 3 * DAY, 3.0),
        ("I1", AS_OF - 2 * DAY, 2.0),
        ("S1", AS_OF - 4 * DAY, 4.0),
    ]


def test_what_it_holds_up_gives_the_weight_and_the_order():
    items = work_items(
        {"item_id": "B1", "flagged": True, "estimate": 2.0, "business_value": 10.0,
         "updated": AS_OF},
        {"item_id": "D1", "estimate": 3.0, "business_value": 50.0},
        {"item_id": "D2", "estimate": 5.0, "status_category": "done"},
        {"item_id": "I1", "level": "impediment", "created": AS_OF},
        {"item_id": "D3", "estimate": 1.0},
    )  # fmt: skip
    e = edges(
        edge("B1", "D1", dependent_estimate=3.0, dependent_business_value=50.0),
        edge("B1", "D2", dependent_estimate=5.0, dependent_category="done"),  # done: not held up
        edge("I1", "D3", dependent_estimate=1.0, blocker_category="todo"),
    )
    out = backlog(items, e)
    rows = out.select(
        "item_id", "held_up_items", "held_up_keys", "held_up_estimate", "held_up_value", "weight"
    ).rows()
    # B1: itself + D1 -> 2 items, estimate 5, value 60 -> 1*2 + 1*5 + 0.1*60 = 13.
    # D1 is blocked by B1 (open), so an impediment too: it holds up itself (3 + 0.1*50 + 1).
    # I1, an impediment record, holds up only D3 (not itself); D3 is blocked by I1.
    # Equal weights: the older first, then by key.
    assert rows == [
        ("B1", 2, ["B1", "D1"], 5.0, 60.0, 13.0),
        ("D1", 1, ["D1"], 3.0, 50.0, 9.0),
        ("D3", 1, ["D3"], 1.0, 0.0, 2.0),
        ("I1", 1, ["D3"], 1.0, 0.0, 2.0),
    ]
    assert out["weight"].to_list() == sorted(out["weight"].to_list(), reverse=True)


def test_escalation_levels_at_the_threshold_edges():
    params = {"sos_age_days": 5, "eat_age_days": 15, "sos_weight": 10, "eat_weight": 40}
    items = work_items(
        {"item_id": "young", "flagged": True, "updated": AS_OF - 4 * DAY},
        {"item_id": "sos_age", "flagged": True, "updated": AS_OF - 5 * DAY},
        {"item_id": "eat_age", "flagged": True, "updated": AS_OF - 15 * DAY},
        {"item_id": "sos_weight", "flagged": True, "updated": AS_OF, "estimate": 9.0},
        {"item_id": "eat_weight", "flagged": True, "updated": AS_OF, "estimate": 39.0},
        {"item_id": "almost", "flagged": True, "updated": AS_OF, "estimate": 8.0},
    )
    out = backlog(items, thresholds=params)
    assert dict(out.select("item_id", "level").rows()) == {
        "young": "team",
        "sos_age": "sos",
        "eat_age": "eat",
        "sos_weight": "sos",  # weight 1 + 9 = 10
        "eat_weight": "eat",  # weight 1 + 39 = 40
        "almost": "team",  # weight 9
    }
    higher = backlog(items, thresholds={**params, "sos_age_days": 6})
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
    items = work_items({"item_id": "a", "flagged": True, "updated": AS_OF - 2 * DAY})
    snap = impediment_snapshot(backlog(items), AS_OF)
    assert snap.select("level", "open", "mean_age_days").rows() == [
        ("team", 1, 2.0),
        ("sos", 0, None),
        ("eat", 0, None),
    ]
