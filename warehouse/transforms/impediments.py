"""The Scrum@Scale impediment backlog: what stops a team *now*, what it holds up, and who must
solve it.

An impediment is an open live item that is of level "impediment", is flagged while the team works
on it (in progress, or in its current sprint: a flag on work nobody has started stops no one yet),
sits in a blocked status, or is the dependent of a dependency that blocks work now (the dependent is in progress
or in the current sprint while its blocker is not done, or the pair is a red line). A planned,
on-track dependency is not one. Each gets an age (from when the blocking began, never from
``created`` of a blocked item), a weight (what it holds up, never itself) and an escalation level
on the Scrum@Scale ladder: the team, then the Scrum of Scrums ("sos"), then the Executive Action
Team ("eat"). The backlog is ordered by weight. Definitions: docs/impediments.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import polars as pl

from pmolens.warehouse.model import SCHEMAS, UTC_TS
from pmolens.warehouse.settings_analytics import ImpedimentParams
from pmolens.warehouse.transforms.dependencies import RED_LINES
from pmolens.warehouse.transforms.dependencies.blocked import (
    blocked_status_table,
    flag_on,
    is_blocked,
)

LEVELS = ("team", "sos", "eat")
REASONS = ("type", "flagged", "blocked_status", "blocked_by_dependency")
DAY_US = 86_400_000_000
#: The work item columns the backlog reads (the rest are never copied).
_ITEM_COLUMNS = (
    "item_id",
    "key",
    "url",
    "title",
    "team",
    "organisation",
    "source",
    "level",
    "flagged",
    "raw_status",
    "status_category",
    "sprint_id",
    "created",
    "updated",
    "estimate",
    "business_value",
)
_EDGE_COLUMNS = (
    "blocker_id",
    "dependent_id",
    "blocker_category",
    "dependent_category",
    "dependent_key",
    "dependent_sprint",
    "dependent_estimate",
    "dependent_business_value",
    "timing",
)

BACKLOG_SCHEMA: dict[str, Any] = {
    "item_id": pl.String,
    "key": pl.String,
    "url": pl.String,
    "title": pl.String,
    "team": pl.String,
    "organisation": pl.String,
    "reason": pl.String,
    "since": UTC_TS,
    "age_days": pl.Float64,
    "held_up_items": pl.Int64,
    "held_up_keys": pl.List(pl.String),  # the open items it holds up (first 10 by key)
    "held_up_estimate": pl.Float64,
    "held_up_value": pl.Float64,
    "weight": pl.Float64,
    "level": pl.String,
}
SNAPSHOT_SCHEMA: dict[str, Any] = {
    "as_of": UTC_TS,
    "level": pl.String,
    "open": pl.Int64,
    "mean_age_days": pl.Float64,
}


def _params(thresholds: ImpedimentParams | Mapping[str, Any] | None) -> ImpedimentParams:
    if isinstance(thresholds, ImpedimentParams):
        return thresholds
    return ImpedimentParams.from_mapping(thresholds)


def _days(start: str | pl.Expr, end: pl.Expr) -> pl.Expr:
    s = pl.col(start) if isinstance(start, str) else start
    return (end - s).dt.total_microseconds() / DAY_US


def _not(category: str, value: str) -> pl.Expr:
    """``category`` is known and is not ``value`` (an unknown category is not "not done")."""
    return pl.col(category).is_not_null() & (pl.col(category) != value)


def blocking_dependencies(
    edges: pl.DataFrame, sprints: pl.DataFrame | None, as_of: datetime
) -> pl.DataFrame:
    """The dependency edges that block work now, one row per edge, with why.

    An edge blocks now when it is resolved, not a self-link, its blocker is not done, its
    dependent is not done, and the dependent is in progress (``in_progress``), or committed to
    its team's current sprint (``in_sprint``: the dependent's sprint is active and has started),
    or the pair is a red line (``red_line``: its timing is one of ``RED_LINES``). A planned,
    on-track dependency is none of these. ``sprint_start``: the start of the dependent's sprint
    when it has begun (null for a future sprint or none).
    """
    now = pl.lit(as_of.astimezone(UTC), dtype=UTC_TS)
    if sprints is None or sprints.width == 0:
        sprints = pl.DataFrame(schema=SCHEMAS["sprints"])
    started = (
        sprints.lazy()
        .filter(pl.col("start").is_not_null() & (pl.col("start") <= now))
        .group_by("sprint_id")
        .agg(
            pl.col("start").min().alias("sprint_start"),
            (pl.col("state") == "active").fill_null(False).any().alias("_active"),
        )
        .rename({"sprint_id": "dependent_sprint"})
    )
    return (
        edges.lazy()
        .filter(
            pl.col("dependent_id").is_not_null()
            & pl.col("blocker_id").is_not_null()
            & ~pl.col("unresolved").fill_null(False)
            & (pl.col("blocker_id") != pl.col("dependent_id"))
            & _not("blocker_category", "done")
            & (pl.col("dependent_category") != "done").fill_null(True)
        )
        .select(_EDGE_COLUMNS)
        .join(started, on="dependent_sprint", how="left")
        .with_columns(
            (pl.col("dependent_category") == "in_progress").fill_null(False).alias("in_progress"),
            pl.col("_active").fill_null(False).alias("in_sprint"),
            pl.col("timing").is_in(list(RED_LINES)).fill_null(False).alias("red_line"),
        )
        .filter(pl.col("in_progress") | pl.col("in_sprint") | pl.col("red_line"))
        .drop("_active")
        .collect()
    )


def impediment_backlog(
    work_items: pl.DataFrame,
    edges: pl.DataFrame,
    status_changes: pl.DataFrame,
    as_of: datetime,
    thresholds: ImpedimentParams | Mapping[str, Any] | None = None,
    blocked_statuses: Mapping[str, Sequence[str]] | None = None,
    sprints: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The ordered impediment backlog, one row per impediment (``BACKLOG_SCHEMA``).

    reason: the first that applies of type / flagged / blocked_status / blocked_by_dependency
    (the item is the dependent of an edge in ``blocking_dependencies``).
    since: the earliest start among the reasons that apply - type: ``created`` (the record is
    raised when it is made); flagged: the last time the flag went on, else ``updated``;
    blocked_status: the last change into a blocked status from one that is not, else
    ``updated``; blocked_by_dependency: the earlier of when the dependent's current spell in
    progress began (its last move into ``in_progress`` from another category, else ``updated``)
    and when its sprint began; as_of when none is known (a red line in a future sprint).
    held_up_*: the open items it directly blocks, never itself. Order: weight, then age,
    descending. ``blocked_statuses``: source -> its blocked status names (case-insensitive); a
    source not listed uses ``DEFAULT_BLOCKED``. ``sprints``: the canonical sprints (the
    current-sprint test and sprint starts; none given: no sprint is current).
    """
    p = _params(thresholds)
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    now = pl.lit(as_of.astimezone(UTC), dtype=UTC_TS)
    # lazy and narrow: only the columns used below are read, so no wide copies of the inputs
    items = work_items.lazy()
    if "is_deleted" in work_items.columns:
        items = items.filter(~pl.col("is_deleted").fill_null(False))
    items = items.filter((pl.col("status_category") != "done").fill_null(True)).select(
        *_ITEM_COLUMNS
    )
    if status_changes is None or status_changes.width == 0:
        status_changes = pl.DataFrame(schema=SCHEMAS["status_changes"])
    changes = (
        status_changes.lazy()
        .select(
            "item_id", "field", "from_status", "to_status", "from_category", "to_category", "at"
        )
        .filter(pl.col("at").is_not_null() & (pl.col("at") <= now))
    )
    status_moves = changes.filter(pl.col("field").fill_null("status") == "status")

    blocking = blocking_dependencies(edges, sprints, as_of)
    per_dependent = (
        blocking.lazy()
        .group_by("dependent_id")
        .agg(
            pl.col("in_progress").any().alias("_dep_ip"),
            pl.col("sprint_start").min().alias("_sprint_start"),
        )
        .rename({"dependent_id": "item_id"})
        .with_columns(pl.lit(True).alias("_dep"))
    )
    per_source = blocked_status_table(blocked_statuses)
    # a flag stops the team now only on work it is doing: in progress or in its current sprint
    if sprints is None or sprints.width == 0:
        current = pl.DataFrame(schema={"sprint_id": pl.String})
    else:
        current = sprints.filter(
            (pl.col("state") == "active").fill_null(False)
            & pl.col("start").is_not_null()
            & (pl.col("start") <= as_of.astimezone(UTC))
        ).select("sprint_id")
    current_ids = current["sprint_id"].unique().to_list()
    cand = (
        items.join(per_source.lazy(), on="source", how="left")
        .join(per_dependent, on="item_id", how="left")
        .with_columns(
            (pl.col("level") == "impediment").fill_null(False).alias("_type"),
            (
                pl.col("flagged").fill_null(False)
                & (
                    (pl.col("status_category") == "in_progress").fill_null(False)
                    | pl.col("sprint_id").is_in(current_ids).fill_null(False)
                )
            ).alias("_flagged"),
            is_blocked("raw_status").alias("_blocked"),
            pl.col("_dep").fill_null(False),
        )
        .filter(pl.col("_type") | pl.col("_flagged") | pl.col("_blocked") | pl.col("_dep"))
        .collect()
    )
    # the history matters only for the candidates: look only at theirs
    flag_since = (
        changes.filter(pl.col("field") == "flagged")
        .join(cand.lazy().filter(pl.col("_flagged")).select("item_id"), on="item_id", how="semi")
        .filter(flag_on("to_status"))
        .group_by("item_id")
        .agg(pl.col("at").max().alias("_flag_at"))
    )
    status_since = (
        status_moves.join(
            cand.lazy().filter(pl.col("_blocked")).select("item_id", "_bs"), on="item_id"
        )
        .filter(is_blocked("to_status") & ~is_blocked("from_status"))
        .group_by("item_id")
        .agg(pl.col("at").max().alias("_status_at"))
    )
    started_since = (
        status_moves.join(
            cand.lazy().filter(pl.col("_dep")).select("item_id"), on="item_id", how="semi"
        )
        .filter(
            (pl.col("to_category") == "in_progress")
            & (pl.col("from_category") != "in_progress").fill_null(True)
        )
        .group_by("item_id")
        .agg(pl.col("at").max().alias("_start_at"))
    )
    joined = (
        cand.lazy()
        .join(flag_since, on="item_id", how="left")
        .join(status_since, on="item_id", how="left")
        .join(started_since, on="item_id", how="left")
    )
    # blocking hits the team when it starts the dependent; not started: when its sprint began
    dep_since = pl.coalesce(
        pl.when(pl.col("_dep_ip")).then(pl.coalesce("_start_at", "updated")),
        pl.col("_sprint_start"),
    )
    since = pl.min_horizontal(
        pl.when(pl.col("_type")).then(pl.col("created")),
        pl.when(pl.col("_flagged")).then(pl.coalesce("_flag_at", "updated")),
        pl.when(pl.col("_blocked")).then(pl.coalesce("_status_at", "updated")),
        pl.when(pl.col("_dep")).then(dep_since),
    )
    reason = (
        pl.when(pl.col("_type"))
        .then(pl.lit("type"))
        .when(pl.col("_flagged"))
        .then(pl.lit("flagged"))
        .when(pl.col("_blocked"))
        .then(pl.lit("blocked_status"))
        .otherwise(pl.lit("blocked_by_dependency"))
    )
    cand = joined.with_columns(
        reason.alias("reason"), pl.min_horizontal(pl.coalesce(since, now), now).alias("since")
    ).collect()

    # what it holds up: the open items it directly blocks, never itself
    held = (
        edges.lazy()
        .filter(
            pl.col("dependent_id").is_not_null()
            & ~pl.col("unresolved").fill_null(False)
            & (pl.col("blocker_id") != pl.col("dependent_id"))
            & (pl.col("dependent_category") != "done").fill_null(True)
        )
        .join(
            cand.lazy().select(pl.col("item_id").alias("blocker_id")), on="blocker_id", how="semi"
        )
        .select(
            pl.col("blocker_id").alias("_imp"),
            pl.col("dependent_id").alias("_held"),
            pl.col("dependent_key").alias("_key"),
            pl.col("dependent_estimate").alias("_est"),
            pl.col("dependent_business_value").alias("_bv"),
        )
        .unique(["_imp", "_held"], keep="first", maintain_order=True)
        .group_by("_imp")
        .agg(
            pl.len().cast(pl.Int64).alias("held_up_items"),
            pl.col("_key").drop_nulls().sort().head(10).alias("held_up_keys"),
            pl.col("_est").fill_null(0.0).sum().alias("held_up_estimate"),
            pl.col("_bv").fill_null(0.0).sum().alias("held_up_value"),
        )
        .rename({"_imp": "item_id"})
    )
    out = (
        cand.lazy()
        .join(held, on="item_id", how="left")
        .with_columns(
            pl.col("held_up_items").fill_null(0),
            pl.col("held_up_keys").fill_null([]),
            pl.col("held_up_estimate").fill_null(0.0),
            pl.col("held_up_value").fill_null(0.0),
            _days("since", now).clip(0.0, None).alias("age_days"),
        )
        .with_columns(
            (
                p.item_weight * pl.col("held_up_items")
                + p.estimate_weight * pl.col("held_up_estimate")
                + p.value_weight * pl.col("held_up_value")
            ).alias("weight")
        )
    )
    age = pl.col("age_days").fill_null(0.0)
    level = (
        pl.when((age >= p.eat_age_days) | (pl.col("weight") >= p.eat_weight))
        .then(pl.lit("eat"))
        .when((age >= p.sos_age_days) | (pl.col("weight") >= p.sos_weight))
        .then(pl.lit("sos"))
        .otherwise(pl.lit("team"))
    )
    return (
        out.with_columns(level.alias("level"))
        .select([pl.col(c).cast(t) for c, t in BACKLOG_SCHEMA.items()])
        .sort(
            ["weight", "age_days", "key"],
            descending=[True, True, False],
            nulls_last=True,
        )
        .collect()
    )


def impediment_snapshot(backlog: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """[as_of, level, open, mean_age_days]: one row per escalation level, for the trend.

    Every level is present (open = 0 and mean_age_days null when it has none), so snapshots of
    successive syncs line up.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    counts = backlog.group_by("level").agg(
        pl.len().cast(pl.Int64).alias("open"), pl.col("age_days").mean().alias("mean_age_days")
    )
    return (
        pl.DataFrame({"level": list(LEVELS)}, schema={"level": pl.String})
        .join(counts, on="level", how="left")
        .select(
            pl.lit(as_of.astimezone(UTC), dtype=UTC_TS).alias("as_of"),
            "level",
            pl.col("open").fill_null(0),
            pl.col("mean_age_days").cast(pl.Float64),
        )
    )
