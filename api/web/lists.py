"""The filtered lists behind every counter: which analysis, which columns, which filters.

A list is one analysis (the same table the API serves), filtered by the view's organisation,
team and epic, paged, and exportable as CSV or Parquet from the page. Counters and chart points
link here, so "+ 11 more" always leads somewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from pmolens.warehouse.transforms.dependencies.timing import RED_LINES


@dataclass(frozen=True)
class ListSpec:
    analysis: str
    columns: tuple[str, ...]
    org: str | None = "organisation"  # column the organisation filter applies to
    team: str | None = "team"
    epic: str | None = None
    either_side: bool = False  # dependencies: a team or organisation on either end
    keep: pl.Expr | None = None  # rows this list is (e.g. red lines among all edges)
    sort: tuple[str, ...] = ()
    links: dict[str, str] = field(default_factory=dict)  # column -> id column of its item page


_EDGE_COLUMNS = (
    "timing",
    "blocker_key",
    "blocker_title",
    "blocker_team",
    "blocker_org",
    "blocker_planned_end",
    "dependent_key",
    "dependent_title",
    "dependent_team",
    "dependent_org",
    "dependent_planned_end",
    "slip_days",
)
_EDGE_LINKS = {"blocker_key": "blocker_id", "dependent_key": "dependent_id"}

LISTS: dict[str, ListSpec] = {
    "red-lines": ListSpec(
        "dependency_edges",
        _EDGE_COLUMNS,
        org="blocker_org",
        team="blocker_team",
        epic="dependent_epic",
        either_side=True,
        keep=pl.col("open") & pl.col("timing").is_in(list(RED_LINES)),
        sort=("slip_days",),
        links=_EDGE_LINKS,
    ),
    "dependencies": ListSpec(
        "dependency_edges",
        _EDGE_COLUMNS,
        org="blocker_org",
        team="blocker_team",
        epic="dependent_epic",
        either_side=True,
        keep=pl.col("open"),
        links=_EDGE_LINKS,
    ),
    "impediments": ListSpec(
        "impediments",
        (
            "level",
            "key",
            "title",
            "team",
            "organisation",
            "reason",
            "since",
            "age_days",
            "held_up_items",
        ),
        sort=("weight",),
        links={"key": "item_id"},
    ),
    "findings": ListSpec(
        "findings",
        ("severity", "rule", "key", "team", "organisation", "owner_role", "message", "since"),
        keep=pl.col("status") != "resolved",
        links={"key": "item_id"},
    ),
    "decisions": ListSpec(
        "decisions",
        ("kind", "sentence", "key", "team", "organisation", "owner_role", "since"),
        epic="epic_id",
        either_side=True,
        sort=(),
        links={"key": "item_id"},
    ),
    "cards": ListSpec(
        "board_cards",
        ("key", "title", "level", "team", "organisation", "planned_end", "p85", "open_items"),
        epic="epic_id",
        links={"key": "card_id"},
    ),
    "epics": ListSpec(
        "forecast_epics",
        (
            "key",
            "title",
            "team",
            "organisation",
            "remaining_items",
            "p50",
            "p85",
            "target_date",
            "p_on_time",
            "driven_by_key",
        ),
        epic="epic_id",
        links={"key": "epic_id"},
    ),
}


def rows(
    frame: pl.DataFrame,
    spec: ListSpec,
    organisation: str | None,
    team: str | None,
    epic: str | None,
) -> pl.DataFrame:
    """The list's rows for these filters (a filter not set is not applied)."""
    if spec.keep is not None:
        frame = frame.filter(spec.keep)
    for value, column in ((organisation, spec.org), (team, spec.team)):
        if value is None or column is None:
            continue
        if spec.either_side:
            other = (
                column.replace("blocker_", "dependent_")
                if column.startswith("blocker_")
                else "other_" + column
            )
            frame = frame.filter((pl.col(column) == value) | (pl.col(other) == value))
        else:
            frame = frame.filter(pl.col(column) == value)
    if epic is not None and spec.epic is not None:
        frame = frame.filter(pl.col(spec.epic) == epic)
    if spec.sort:
        frame = frame.sort(list(spec.sort), descending=True, nulls_last=True)
    elif "rank" in frame.columns:
        frame = frame.sort("rank")
    return frame
