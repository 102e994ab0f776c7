"""Backlog health for team, organisation and programme (Chief PO) backlogs, with a graded verdict.

A *team* or *organisation* backlog is the open delivery items (stories, bugs, tasks that are not
sub-tasks; see flow.with_delivery_flag) of that team or organisation. The *programme* backlog is the
Chief PO's backlog of the whole chain: the open epics and features of every organisation (ranks
only compare within a tracker, so ordering and "top N" are judged per source). Velocity, ready
depth and net flow always count delivery items, because velocity is measured in their points;
for an organisation or the programme they add up the teams.

Every signal that feeds the A-E grade is a column, and ``grade_reasons`` says in words which
thresholds were missed, so a grade can be argued with. Definitions: docs/backlog-health.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Self

import polars as pl

from warehouse.transforms.flow import (
    NO_GROUP,
    QUANTILE,
    WORK_LEVELS,
    FlowData,
    checked_params,
    days_between,
    item_frame,
    prepare,
)

By = Literal["team", "organisation", "programme"]
PROGRAMME = "programme"


@dataclass(frozen=True)
class BacklogParams:
    """Thresholds and knobs; ``from_mapping`` reads ``[analytics.backlog]``."""

    work_levels: tuple[str, ...] = WORK_LEVELS  # delivery items (sub-tasks excluded)
    programme_levels: tuple[str, ...] = ("epic", "feature")  # the Chief PO's backlog
    stale_days: int = 90  # not updated for this long = stale
    velocity_sprints: int = 3  # closed sprints averaged for velocity and net flow
    top_n: int = 10  # "top of the backlog" size, per source
    #: Raw status names (case-insensitive) meaning "ready". A workflow *has* a ready state when any
    #: item of the same source and type currently sits in one; only then is it required.
    ready_statuses: tuple[str, ...] = (
        "ready",
        "ready for development",
        "ready for dev",
        "ready for sprint",
        "approved",
    )
    min_estimated: float = 0.8
    min_ranked: float = 0.95
    min_top_ready: float = 0.8
    ready_depth_min: float = 2.0  # sprints; below = starving
    ready_depth_max: float = 4.0  # sprints; above = refined too far ahead (waste risk)
    max_stale_share: float = 0.2
    max_age_p85_days: float = 180.0
    max_intake_ratio: float = 1.2  # intake / throughput per sprint above this = backlog grows
    min_epics_with_stories: float = 0.8
    min_initiatives_with_epics: float = 0.8

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> Self:
        return cls(**checked_params(cls, values, "backlog"))


# --------------------------------------------------------------------------- helpers


def _items(
    work_items: pl.DataFrame, p: BacklogParams, data: FlowData | None = None
) -> pl.DataFrame:
    """Live items with delivery flag, epic_id and initiative_id (from ``data`` when given)."""
    return data.items if data is not None else item_frame(work_items, p.work_levels)


def _scope_expr(by: By, team: str = "team", organisation: str = "organisation") -> pl.Expr:
    if by == "team":
        return pl.col(team).fill_null(NO_GROUP).alias("scope")
    if by == "organisation":
        return pl.col(organisation).fill_null(NO_GROUP).alias("scope")
    if by == PROGRAMME:
        return pl.lit(PROGRAMME).alias("scope")
    raise ValueError(f"by must be 'team', 'organisation' or 'programme', not {by!r}")


def sprint_windows(sprints: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """Sprints with a team, started by ``as_of``; ``closed`` = closed state (or ended, no state)."""
    return (
        sprints.filter(
            pl.col("team").is_not_null()
            & pl.col("start").is_not_null()
            & pl.col("end").is_not_null()
            & (pl.col("start") <= as_of)
        )
        .unique("sprint_id", keep="first")
        .with_columns(
            ((pl.col("state") == "closed") | (pl.col("state").is_null() & (pl.col("end") <= as_of)))
            .fill_null(False)
            .alias("closed")
        )
    )


def team_organisation(work_items: pl.DataFrame) -> pl.DataFrame:
    """(team, organisation): the organisation most of a team's items belong to."""
    return (
        work_items.filter(pl.col("team").is_not_null())
        .group_by("team", "organisation")
        .len()
        .sort(["team", "len", "organisation"], descending=[False, True, False], nulls_last=True)
        .unique("team", keep="first")
        .select("team", "organisation")
    )


def assign_to_sprint(
    items: pl.DataFrame, sprints: pl.DataFrame, at: str, as_of: datetime
) -> pl.DataFrame:
    """Items whose ``at`` falls in a sprint window of their team, with that window's sprint_id
    (replacing the item's own current sprint_id).

    join_asof on the sprint start per team (no cross product): the sprint that started last before
    ``at``, kept when ``at`` <= its end (and <= as_of). Overlapping sprints of one team: the later
    one wins.
    """
    windows = sprints.select(
        "team", "sprint_id", pl.col("start").alias("_start"), pl.col("end").alias("_end")
    ).sort("_start")
    timed = (
        items.drop("sprint_id", strict=False)
        .filter(pl.col(at).is_not_null() & pl.col("team").is_not_null() & (pl.col(at) <= as_of))
        .sort(at)
    )
    return timed.join_asof(
        windows,
        left_on=at,
        right_on="_start",
        by="team",
        strategy="backward",
        check_sortedness=False,  # both sides sorted above; the check cannot run with ``by``
    ).filter(pl.col("sprint_id").is_not_null() & (pl.col(at) <= pl.col("_end")))


# --------------------------------------------------------------------------- per sprint


def net_flow(
    work_items: pl.DataFrame,
    sprints: pl.DataFrame,
    as_of: datetime,
    params: BacklogParams | None = None,
    *,
    data: FlowData | None = None,
) -> pl.DataFrame:
    """Intake vs throughput of delivery items per team sprint (closed and active).

    Intake = items of the team created in [start, end]; done = items of the team with status
    category done and ``resolved`` in [start, end] (their estimate sum is the sprint's velocity).
    Columns: team, sprint_id, sprint, start, end, closed, intake_items, intake_estimate,
    done_items, done_estimate, net_items (intake - done), net_estimate. Sorted by team, start.
    """
    p = params or BacklogParams()
    team_sprints = sprint_windows(sprints, as_of)
    items = (
        _items(work_items, p, data)
        .filter(pl.col("delivery"))
        .select("item_id", "team", "created", "resolved", "status_category", "estimate")
    )
    intake = (
        assign_to_sprint(items, team_sprints, "created", as_of)
        .group_by("sprint_id")
        .agg(
            pl.len().cast(pl.Int64).alias("intake_items"),
            pl.col("estimate").sum().alias("intake_estimate"),
        )
    )
    done = (
        assign_to_sprint(
            items.filter(pl.col("status_category") == "done"), team_sprints, "resolved", as_of
        )
        .group_by("sprint_id")
        .agg(
            pl.len().cast(pl.Int64).alias("done_items"),
            pl.col("estimate").sum().alias("done_estimate"),
        )
    )
    return (
        team_sprints.select(
            "team", "sprint_id", pl.col("name").alias("sprint"), "start", "end", "closed"
        )
        .join(intake, on="sprint_id", how="left")
        .join(done, on="sprint_id", how="left")
        .with_columns(
            pl.col("intake_items").fill_null(0),
            pl.col("intake_estimate").fill_null(0.0),
            pl.col("done_items").fill_null(0),
            pl.col("done_estimate").fill_null(0.0),
        )
        .with_columns(
            (pl.col("intake_items") - pl.col("done_items")).alias("net_items"),
            (pl.col("intake_estimate") - pl.col("done_estimate")).alias("net_estimate"),
        )
        .sort("team", "start", "sprint_id")
    )


def team_velocity(
    flow_per_sprint: pl.DataFrame, params: BacklogParams | None = None
) -> pl.DataFrame:
    """Averages over each team's last ``velocity_sprints`` closed sprints (from ``net_flow``).

    Columns: team, sprints, velocity (done estimate per sprint), throughput_per_sprint (items),
    intake_per_sprint (items), net_flow_per_sprint (items).
    """
    p = params or BacklogParams()
    return (
        flow_per_sprint.filter(pl.col("closed"))
        .sort("team", "end", descending=[False, True])
        .group_by("team", maintain_order=True)
        .head(p.velocity_sprints)
        .group_by("team")
        .agg(
            pl.len().alias("sprints"),
            pl.col("done_estimate").mean().alias("velocity"),
            pl.col("done_items").mean().alias("throughput_per_sprint"),
            pl.col("intake_items").mean().alias("intake_per_sprint"),
            pl.col("net_items").mean().alias("net_flow_per_sprint"),
        )
        .sort("team")
    )


# --------------------------------------------------------------------------- per epic


def epic_progress(
    work_items: pl.DataFrame,
    params: BacklogParams | None = None,
    *,
    data: FlowData | None = None,
) -> pl.DataFrame:
    """Progress of each epic by count and by estimate over its delivery items.

    Columns: epic_id, key, url, title, team, organisation, status_category, rank, due_date,
    items_total, items_done, estimate_total, estimate_done, progress_count, progress_estimate
    (null when there is nothing to count: the epic is not decomposed).
    """
    p = params or BacklogParams()
    items = _items(work_items, p, data)
    delivery = (
        items.filter(pl.col("delivery") & pl.col("epic_id").is_not_null())
        .group_by("epic_id")
        .agg(
            pl.len().cast(pl.Int64).alias("items_total"),
            (pl.col("status_category") == "done").sum().cast(pl.Int64).alias("items_done"),
            pl.col("estimate").fill_null(0.0).sum().alias("estimate_total"),
            pl.col("estimate")
            .fill_null(0.0)
            .filter(pl.col("status_category") == "done")
            .sum()
            .alias("estimate_done"),
        )
    )
    return (
        items.filter(pl.col("level") == "epic")
        .select(
            pl.col("item_id").alias("epic_id"),
            "key",
            "url",
            "title",
            "team",
            "organisation",
            "status_category",
            "rank",
            "due_date",
        )
        .join(delivery, on="epic_id", how="left")
        .with_columns(
            pl.col("items_total").fill_null(0),
            pl.col("items_done").fill_null(0),
            pl.col("estimate_total").fill_null(0.0),
            pl.col("estimate_done").fill_null(0.0),
        )
        .with_columns(
            _ratio("items_done", "items_total").alias("progress_count"),
            _ratio("estimate_done", "estimate_total").alias("progress_estimate"),
        )
        .sort("organisation", "team", "rank", "key", nulls_last=True)
    )


def scope_change(
    work_items: pl.DataFrame,
    status_changes: pl.DataFrame,
    as_of: datetime,
    params: BacklogParams | None = None,
    *,
    data: FlowData | None = None,
) -> pl.DataFrame:
    """Items added to each epic after it started.

    The epic started at the earliest of: its own first in-progress status, the first start of any
    of its delivery items. An item counts as added after the start when it was *created* after it
    (the model keeps no parent history, so items moved into the epic later are not seen).
    Columns: epic_id, key, title, team, organisation, epic_started, items_total,
    items_added_after_start, estimate_total, estimate_added_after_start, scope_change_share
    (added / total items; null when the epic has no items or has not started).
    """
    p = params or BacklogParams()
    d = data if data is not None else prepare(work_items, status_changes, as_of, p.work_levels)
    items = d.items
    epics = items.filter(pl.col("level") == "epic")
    delivery = items.filter(pl.col("delivery") & pl.col("epic_id").is_not_null())
    starts = (
        pl.concat(
            [
                epics.select(pl.col("item_id").alias("epic_id"), "started"),
                delivery.select("epic_id", "started"),
            ]
        )
        .group_by("epic_id")
        .agg(pl.col("started").min().alias("epic_started"))
    )
    counted = (
        delivery.select("epic_id", "created", "estimate")
        .join(starts, on="epic_id", how="left")
        .with_columns(
            (
                pl.col("epic_started").is_not_null() & (pl.col("created") > pl.col("epic_started"))
            ).alias("added")
        )
        .group_by("epic_id")
        .agg(
            pl.len().cast(pl.Int64).alias("items_total"),
            pl.col("added").sum().cast(pl.Int64).alias("items_added_after_start"),
            pl.col("estimate").fill_null(0.0).sum().alias("estimate_total"),
            pl.col("estimate")
            .fill_null(0.0)
            .filter(pl.col("added"))
            .sum()
            .alias("estimate_added_after_start"),
        )
    )
    return (
        epics.select(pl.col("item_id").alias("epic_id"), "key", "title", "team", "organisation")
        .join(starts, on="epic_id", how="left")
        .join(counted, on="epic_id", how="left")
        .with_columns(
            pl.col("items_total").fill_null(0),
            pl.col("items_added_after_start").fill_null(0),
            pl.col("estimate_total").fill_null(0.0),
            pl.col("estimate_added_after_start").fill_null(0.0),
        )
        .with_columns(
            pl.when(pl.col("epic_started").is_not_null())
            .then(_ratio("items_added_after_start", "items_total"))
            .alias("scope_change_share")
        )
        .sort("organisation", "team", "key", nulls_last=True)
    )


def decomposition(
    work_items: pl.DataFrame,
    by: By = "team",
    params: BacklogParams | None = None,
    *,
    data: FlowData | None = None,
) -> pl.DataFrame:
    """Decomposition coverage of open initiatives and epics, per scope (owner's team/org).

    Columns: scope, initiatives_open, initiatives_with_epics, initiatives_with_epics_share,
    epics_open, epics_with_stories, epics_with_stories_share, epics_without_stories (keys).
    An initiative is covered when some epic sits under it; an epic when a delivery item does.
    """
    p = params or BacklogParams()
    items = _items(work_items, p, data)
    epics_with_work = (
        items.filter(pl.col("delivery") & pl.col("epic_id").is_not_null())
        .select("epic_id")
        .unique()
    )
    epics = items.filter(pl.col("level") == "epic")
    initiatives_with_epics = (
        epics.filter(pl.col("initiative_id").is_not_null()).select("initiative_id").unique()
    )
    open_epics = (
        epics.filter(pl.col("status_category") != "done")
        .with_columns(_scope_expr(by))
        .join(
            epics_with_work.with_columns(pl.lit(True).alias("has")),
            left_on="item_id",
            right_on="epic_id",
            how="left",
        )
        .with_columns(pl.col("has").fill_null(False))
        .group_by("scope")
        .agg(
            pl.len().cast(pl.Int64).alias("epics_open"),
            pl.col("has").sum().cast(pl.Int64).alias("epics_with_stories"),
            pl.col("key").filter(~pl.col("has")).sort().alias("epics_without_stories"),
        )
    )
    open_initiatives = (
        items.filter((pl.col("level") == "initiative") & (pl.col("status_category") != "done"))
        .with_columns(_scope_expr(by))
        .join(
            initiatives_with_epics.with_columns(pl.lit(True).alias("has")),
            left_on="item_id",
            right_on="initiative_id",
            how="left",
        )
        .with_columns(pl.col("has").fill_null(False))
        .group_by("scope")
        .agg(
            pl.len().cast(pl.Int64).alias("initiatives_open"),
            pl.col("has").sum().cast(pl.Int64).alias("initiatives_with_epics"),
        )
    )
    return (
        open_initiatives.join(open_epics, on="scope", how="full", coalesce=True)
        .with_columns(
            pl.col("initiatives_open").fill_null(0),
            pl.col("initiatives_with_epics").fill_null(0),
            pl.col("epics_open").fill_null(0),
            pl.col("epics_with_stories").fill_null(0),
            pl.col("epics_without_stories").fill_null([]),
        )
        .with_columns(
            _ratio("initiatives_with_epics", "initiatives_open").alias(
                "initiatives_with_epics_share"
            ),
            _ratio("epics_with_stories", "epics_open").alias("epics_with_stories_share"),
        )
        .select(
            "scope",
            "initiatives_open",
            "initiatives_with_epics",
            "initiatives_with_epics_share",
            "epics_open",
            "epics_with_stories",
            "epics_with_stories_share",
            "epics_without_stories",
        )
        .sort("scope")
    )


# --------------------------------------------------------------------------- readiness


def ready_items(
    work_items: pl.DataFrame,
    edges: pl.DataFrame,
    params: BacklogParams | None = None,
) -> pl.DataFrame:
    """Every live item with the four readiness checks and the verdict.

    Columns: item_id, estimated, described, unblocked, ready_state (True when the workflow has
    no ready state), ready (all four). A blocker is open when it is not done or not in the
    warehouse (an unresolved remote blocker cannot be shown to be finished).
    """
    p = params or BacklogParams()
    items = work_items.filter(~pl.col("is_deleted").fill_null(False))
    ready_names = [s.lower() for s in p.ready_statuses]
    in_ready = pl.col("raw_status").str.to_lowercase().is_in(ready_names).fill_null(False)
    blocked = (
        edges.filter(pl.col("dependent_id").is_not_null())
        .select("blocker_id", "dependent_id")
        .join(
            items.select(pl.col("item_id").alias("blocker_id"), "status_category"),
            on="blocker_id",
            how="left",
        )
        .filter((pl.col("status_category") != "done").fill_null(True))
        .select(pl.col("dependent_id").alias("item_id"))
        .unique()
        .with_columns(pl.lit(True).alias("_blocked"))
    )
    return (
        items.with_columns(
            in_ready.alias("_in_ready"),
            in_ready.any().over("source", "raw_type").alias("_has_ready_state"),
        )
        .join(blocked, on="item_id", how="left")
        .select(
            "item_id",
            pl.col("estimate").is_not_null().alias("estimated"),
            pl.col("has_description").fill_null(False).alias("described"),
            pl.col("_blocked").is_null().alias("unblocked"),
            (~pl.col("_has_ready_state") | pl.col("_in_ready")).alias("ready_state"),
        )
        .with_columns(
            (
                pl.col("estimated")
                & pl.col("described")
                & pl.col("unblocked")
                & pl.col("ready_state")
            ).alias("ready")
        )
    )


# --------------------------------------------------------------------------- health


def backlog_health(
    work_items: pl.DataFrame,
    sprints: pl.DataFrame,
    status_changes: pl.DataFrame,
    edges: pl.DataFrame,
    as_of: datetime,
    by: By = "team",
    params: BacklogParams | None = None,
    *,
    data: FlowData | None = None,
) -> pl.DataFrame:
    """One row per backlog (team, organisation or the programme) with every signal and a grade.

    See the module doc for what each backlog holds and docs/backlog-health.md for each signal and
    the grading table. Columns: by, scope, items, estimate_total, pct_estimated, age_median_days,
    age_p85_days, stale_share, ranked_share, duplicate_ranks, ordering_present, ready_items,
    ready_estimate, velocity, ready_depth_sprints, top_n_items, top_n_ready_share,
    intake_per_sprint, throughput_per_sprint, net_flow_per_sprint, epics_open,
    epic_progress_count, epic_progress_estimate, scope_change_share, initiatives_open,
    initiatives_with_epics_share, epics_with_stories_share, points, grade, grade_reasons.
    """
    p = params or BacklogParams()
    _scope_expr(by)  # validates ``by``
    d = data if data is not None else prepare(work_items, status_changes, as_of, p.work_levels)
    items = d.items
    readiness = ready_items(items, edges, p)
    open_items = items.filter(pl.col("status_category") != "done").join(
        readiness, on="item_id", how="left"
    )
    if by == PROGRAMME:
        backlog = open_items.filter(pl.col("level").is_in(list(p.programme_levels)))
    else:
        backlog = open_items.filter(pl.col("delivery"))
    backlog = backlog.with_columns(_scope_expr(by))

    # size, estimation, age, staleness
    stale_before = as_of - timedelta(days=p.stale_days)
    size = backlog.group_by("scope").agg(
        pl.len().cast(pl.Int64).alias("items"),
        pl.col("estimate").sum().alias("estimate_total"),
        pl.col("estimated").mean().alias("pct_estimated"),
        days_between("created", pl.lit(as_of)).median().alias("age_median_days"),
        days_between("created", pl.lit(as_of)).quantile(0.85, QUANTILE).alias("age_p85_days"),
        (pl.col("updated") < stale_before).fill_null(True).mean().alias("stale_share"),
        pl.col("rank").is_not_null().mean().alias("ranked_share"),
    )
    duplicates = (
        backlog.filter(pl.col("rank").is_not_null())
        .group_by("scope", "source")
        .agg((pl.len() - pl.col("rank").n_unique()).alias("dups"))
        .group_by("scope")
        .agg(pl.col("dups").sum().cast(pl.Int64).alias("duplicate_ranks"))
    )

    # top N of the not-started part, per source (ranks compare only within one tracker)
    top = (
        backlog.filter(pl.col("status_category") == "todo")
        .sort(["rank", "priority_rank", "created", "key"], nulls_last=True)
        .with_columns(pl.int_range(pl.len()).over("scope", "source").alias("_pos"))
        .filter(pl.col("_pos") < p.top_n)
        .group_by("scope")
        .agg(
            pl.len().cast(pl.Int64).alias("top_n_items"),
            pl.col("ready").mean().alias("top_n_ready_share"),
        )
    )

    # ready depth and net flow on delivery items, velocity of the teams in the scope
    delivery_todo = open_items.filter(
        pl.col("delivery") & (pl.col("status_category") == "todo")
    ).with_columns(_scope_expr(by))
    ready = delivery_todo.group_by("scope").agg(
        pl.col("ready").sum().cast(pl.Int64).alias("ready_items"),
        pl.col("estimate").filter(pl.col("ready")).sum().alias("ready_estimate"),
    )
    velocity = (
        team_velocity(net_flow(items, sprints, as_of, p, data=d), p)
        .join(team_organisation(items), on="team", how="left")
        .with_columns(_scope_expr(by))
        .group_by("scope")
        .agg(
            pl.col("velocity").sum(),
            pl.col("intake_per_sprint").sum(),
            pl.col("throughput_per_sprint").sum(),
            pl.col("net_flow_per_sprint").sum(),
        )
    )

    # epics: progress and scope change over the scope's open epics, decomposition coverage
    epics = (
        epic_progress(items, p, data=d)
        .filter(pl.col("status_category") != "done")
        .join(
            scope_change(items, status_changes, as_of, p, data=d).select(
                "epic_id", "items_added_after_start"
            ),
            on="epic_id",
            how="left",
        )
        .with_columns(_scope_expr(by))
        .group_by("scope")
        .agg(
            pl.len().cast(pl.Int64).alias("epics_open"),
            _sum_ratio("items_done", "items_total").alias("epic_progress_count"),
            _sum_ratio("estimate_done", "estimate_total").alias("epic_progress_estimate"),
            _sum_ratio("items_added_after_start", "items_total").alias("scope_change_share"),
        )
    )
    decomposed = decomposition(items, by, p, data=d).select(
        "scope", "initiatives_open", "initiatives_with_epics_share", "epics_with_stories_share"
    )

    scopes = pl.concat(
        [f.select("scope") for f in (size, ready, velocity, epics, decomposed)]
    ).unique()
    out = (
        scopes.join(size, on="scope", how="left")
        .join(duplicates, on="scope", how="left")
        .join(ready, on="scope", how="left")
        .join(velocity, on="scope", how="left")
        .join(top, on="scope", how="left")
        .join(epics, on="scope", how="left")
        .join(decomposed, on="scope", how="left")
        .with_columns(
            pl.lit(by).alias("by"),
            pl.col("items").fill_null(0),
            pl.col("estimate_total").fill_null(0.0),
            pl.col("duplicate_ranks").fill_null(0),
            pl.col("ready_items").fill_null(0),
            pl.col("ready_estimate").fill_null(0.0),
            pl.col("top_n_items").fill_null(0),
            pl.col("epics_open").fill_null(0),
            pl.col("initiatives_open").fill_null(0),
        )
        .with_columns(
            ((pl.col("ranked_share") >= p.min_ranked) & (pl.col("duplicate_ranks") == 0)).alias(
                "ordering_present"
            ),
            pl.when(pl.col("velocity") > 0)
            .then(pl.col("ready_estimate") / pl.col("velocity"))
            .alias("ready_depth_sprints"),
        )
    )
    return (
        _grade(out, p)
        .select(
            "by",
            "scope",
            "items",
            "estimate_total",
            "pct_estimated",
            "age_median_days",
            "age_p85_days",
            "stale_share",
            "ranked_share",
            "duplicate_ranks",
            "ordering_present",
            "ready_items",
            "ready_estimate",
            "velocity",
            "ready_depth_sprints",
            "top_n_items",
            "top_n_ready_share",
            "intake_per_sprint",
            "throughput_per_sprint",
            "net_flow_per_sprint",
            "epics_open",
            "epic_progress_count",
            "epic_progress_estimate",
            "scope_change_share",
            "initiatives_open",
            "initiatives_with_epics_share",
            "epics_with_stories_share",
            "points",
            "grade",
            "grade_reasons",
        )
        .sort("scope")
    )


def _pct(col: str) -> pl.Expr:
    return (pl.col(col) * 100).round(0).cast(pl.Int64)


def _num(col: str) -> pl.Expr:
    return pl.col(col).round(1)


def _grade(frame: pl.DataFrame, p: BacklogParams) -> pl.DataFrame:
    """Points per missed threshold -> A (0) B (1) C (2-3) D (4-5) E (6+), with reasons."""
    has_items = pl.col("items") > 0
    depth = pl.col("ready_depth_sprints")
    checks: list[tuple[pl.Expr, pl.Expr, pl.Expr]] = [
        (
            ~has_items,
            pl.lit(3),
            pl.lit("empty backlog: nothing to pull"),
        ),
        (
            has_items & (pl.col("pct_estimated") < p.min_estimated),
            pl.when(pl.col("pct_estimated") < p.min_estimated / 2).then(2).otherwise(1),
            pl.format(
                "only {}% of items estimated (target {}%)",
                _pct("pct_estimated"),
                pl.lit(round(p.min_estimated * 100)),
            ),
        ),
        (
            has_items & ~pl.col("ordering_present").fill_null(False),
            pl.lit(1),
            pl.format(
                "not ordered: {}% ranked, {} duplicate ranks",
                _pct("ranked_share"),
                pl.col("duplicate_ranks"),
            ),
        ),
        (
            has_items & depth.is_null(),
            pl.lit(1),
            pl.lit(
                f"ready depth unknown: no velocity in the last {p.velocity_sprints} closed sprints"
            ),
        ),
        (
            depth < p.ready_depth_min,
            pl.when(depth < p.ready_depth_min / 2).then(2).otherwise(1),
            pl.format(
                "ready depth {} sprints (healthy {}-{})",
                _num("ready_depth_sprints"),
                pl.lit(p.ready_depth_min),
                pl.lit(p.ready_depth_max),
            ),
        ),
        (
            depth > p.ready_depth_max,
            pl.lit(1),
            pl.format(
                "ready depth {} sprints: refined too far ahead (healthy {}-{})",
                _num("ready_depth_sprints"),
                pl.lit(p.ready_depth_min),
                pl.lit(p.ready_depth_max),
            ),
        ),
        (
            pl.col("top_n_ready_share") < p.min_top_ready,
            pl.when(pl.col("top_n_ready_share") < p.min_top_ready / 2).then(2).otherwise(1),
            pl.format(
                "only {}% of the top {} items ready (target {}%)",
                _pct("top_n_ready_share"),
                pl.lit(p.top_n),
                pl.lit(round(p.min_top_ready * 100)),
            ),
        ),
        (
            pl.col("stale_share") > p.max_stale_share,
            pl.lit(1),
            pl.format(
                "{}% of items not updated in {} days",
                _pct("stale_share"),
                pl.lit(p.stale_days),
            ),
        ),
        (
            pl.col("age_p85_days") > p.max_age_p85_days,
            pl.lit(1),
            pl.format(
                "85th percentile age {} days (limit {})",
                _num("age_p85_days"),
                pl.lit(p.max_age_p85_days),
            ),
        ),
        (
            (pl.col("intake_per_sprint") > 0)
            & (pl.col("intake_per_sprint") > pl.col("throughput_per_sprint") * p.max_intake_ratio),
            pl.lit(1),
            pl.format(
                "backlog grows: {} items in vs {} done per sprint",
                _num("intake_per_sprint"),
                _num("throughput_per_sprint"),
            ),
        ),
        (
            pl.col("epics_with_stories_share") < p.min_epics_with_stories,
            pl.lit(1),
            pl.format(
                "only {}% of open epics broken down into stories",
                _pct("epics_with_stories_share"),
            ),
        ),
        (
            pl.col("initiatives_with_epics_share") < p.min_initiatives_with_epics,
            pl.lit(1),
            pl.format(
                "only {}% of open initiatives broken down into epics",
                _pct("initiatives_with_epics_share"),
            ),
        ),
    ]
    hit = [cond.fill_null(False) for cond, _, _ in checks]
    points = pl.sum_horizontal(
        [pl.when(h).then(pts).otherwise(0) for h, (_, pts, _) in zip(hit, checks, strict=True)]
    ).cast(pl.Int64)
    reasons = pl.concat_list(
        [pl.when(h).then(msg).otherwise(None) for h, (_, _, msg) in zip(hit, checks, strict=True)]
    ).list.drop_nulls()
    grade = (
        pl.when(pl.col("points") == 0)
        .then(pl.lit("A"))
        .when(pl.col("points") == 1)
        .then(pl.lit("B"))
        .when(pl.col("points") <= 3)
        .then(pl.lit("C"))
        .when(pl.col("points") <= 5)
        .then(pl.lit("D"))
        .otherwise(pl.lit("E"))
    )
    return frame.with_columns(points.alias("points"), reasons.alias("grade_reasons")).with_columns(
        grade.alias("grade")
    )


def _ratio(done: str, total: str) -> pl.Expr:
    return pl.when(pl.col(total) > 0).then(pl.col(done) / pl.col(total)).otherwise(None)


def _sum_ratio(done: str, total: str) -> pl.Expr:
    return pl.when(pl.col(total).sum() > 0).then(pl.col(done).sum() / pl.col(total).sum())
