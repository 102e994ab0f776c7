"""Backlog health for team, organisation and programme (Chief PO) backlogs, with a graded verdict.

A *team* or *organisation* backlog is the open delivery items (stories, bugs, tasks that are not
sub-tasks; see flow.with_delivery_flag) of that team or organisation. A *programme* is what a Chief
PO owns: the initiative an item sits under (its key names the programme) or, for items under no
initiative, their organisation's product (named after the organisation). The programme backlog is
the open epics and features of that programme (ranks only compare within a tracker, so ordering and
"top N" are judged per source). Velocity, ready depth and net flow always count delivery items,
because velocity is measured in their points: a scope's velocity is the sum over teams of that
team's average done estimate *on the scope's items* over its last N closed sprints.

Every signal that feeds the A-E grade is a column, and ``grade_reasons`` says in words which
thresholds were missed, so a grade can be argued with. Definitions: docs/backlog-health.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import polars as pl

from pmolens.warehouse.settings_analytics import BacklogParams
from pmolens.warehouse.transforms.flow import (
    NO_GROUP,
    QUANTILE,
    FlowData,
    days_between,
    item_frame,
    prepare,
)

By = Literal["team", "organisation", "programme"]
PROGRAMME = "programme"


# --------------------------------------------------------------------------- helpers


def _items(
    work_items: pl.DataFrame, p: BacklogParams, data: FlowData | None = None
) -> pl.DataFrame:
    """Live items with delivery flag, epic_id and initiative_id (from ``data`` when given, or as
    handed in when ``work_items`` already is an item frame)."""
    if data is not None:
        return data.items
    if {"delivery", "epic_id", "initiative_id"} <= set(work_items.columns):
        return work_items
    return item_frame(work_items, p.work_levels)


def _scope_expr(by: By) -> pl.Expr:
    """The backlog an item belongs to; ``programme`` needs ``with_programme`` first."""
    if by == "team":
        return pl.col("team").fill_null(NO_GROUP).alias("scope")
    if by == "organisation":
        return pl.col("organisation").fill_null(NO_GROUP).alias("scope")
    if by == PROGRAMME:
        return pl.col(PROGRAMME).fill_null(NO_GROUP).alias("scope")
    raise ValueError(f"by must be 'team', 'organisation' or 'programme', not {by!r}")


def with_programme(items: pl.DataFrame) -> pl.DataFrame:
    """Adds ``programme`` (the initiative's key, else the organisation) and ``programme_title``.

    ``items`` needs ``initiative_id`` (flow.item_frame); a no-op when the columns exist.
    """
    if PROGRAMME in items.columns:
        return items
    initiatives = items.filter(pl.col("level") == "initiative").select(
        pl.col("item_id").alias("initiative_id"),
        pl.col("key").alias("_ikey"),
        pl.col("title").alias("programme_title"),
    )
    return (
        items.join(initiatives, on="initiative_id", how="left")
        .with_columns(pl.coalesce("_ikey", "organisation").alias(PROGRAMME))
        .drop("_ikey")
    )


def sprint_windows(sprints: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """Team sprints (one row per sprint and team it serves) with a team, started by ``as_of``;
    ``closed`` = closed state (or ended, no state). Every per-sprint figure is keyed by
    (team, sprint_id): a sprint shared by several teams is one window per team."""
    return (
        sprints.filter(
            pl.col("team").is_not_null()
            & pl.col("start").is_not_null()
            & pl.col("end").is_not_null()
            & (pl.col("start") <= as_of)
        )
        .unique(["team", "sprint_id"], keep="first", maintain_order=True)
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
        .group_by("team", "sprint_id")
        .agg(
            pl.len().cast(pl.Int64).alias("intake_items"),
            pl.col("estimate").sum().alias("intake_estimate"),
        )
    )
    done = (
        assign_to_sprint(
            items.filter(pl.col("status_category") == "done"), team_sprints, "resolved", as_of
        )
        .group_by("team", "sprint_id")
        .agg(
            pl.len().cast(pl.Int64).alias("done_items"),
            pl.col("estimate").sum().alias("done_estimate"),
        )
    )
    return (
        team_sprints.select(
            "team", "sprint_id", pl.col("name").alias("sprint"), "start", "end", "closed"
        )
        .join(intake, on=["team", "sprint_id"], how="left")
        .join(done, on=["team", "sprint_id"], how="left")
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


def scope_velocity(
    delivery: pl.DataFrame, sprints: pl.DataFrame, as_of: datetime, params: BacklogParams
) -> pl.DataFrame:
    """Per ``scope`` of ``delivery`` (delivery items with a ``scope`` column): the sum over teams
    of the team's average done estimate, done items and intake on the scope's items over its last
    ``velocity_sprints`` closed sprints (a closed sprint with nothing done counts as zero).

    Columns: scope, velocity, throughput_per_sprint, intake_per_sprint, net_flow_per_sprint.
    For a team scope this equals ``team_velocity``; for an organisation or a programme it splits
    each team's velocity over the backlogs its done items came from.
    """
    rows, per_team = _sprint_rows(delivery, sprints, as_of, params, "scope")
    return _velocity_per_scope(rows, per_team)


def _sprint_rows(
    delivery: pl.DataFrame, sprints: pl.DataFrame, as_of: datetime, params: BacklogParams, key: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The done and created delivery items that fall in their team's last ``velocity_sprints``
    closed sprints (key, team, est, done, intake), and the sprints counted per team (team, _n).

    Independent of the scope, so ``backlog_health_all`` assigns once (``key`` = ``ix``) and only
    attaches each kind of scope afterwards.
    """
    last = (
        sprint_windows(sprints, as_of)
        .filter(pl.col("closed"))
        .sort("team", "end", descending=[False, True])
        .group_by("team", maintain_order=True)
        .head(params.velocity_sprints)
    )
    per_team = last.group_by("team").agg(pl.len().alias("_n"))
    cols = ["item_id", "team", key, "created", "resolved", "estimate"]
    done = assign_to_sprint(
        delivery.filter(pl.col("status_category") == "done").select(cols), last, "resolved", as_of
    ).select(
        "team",
        key,
        pl.col("estimate").fill_null(0.0).alias("est"),
        pl.lit(1).alias("done"),
        pl.lit(0).alias("intake"),
    )
    intake = assign_to_sprint(delivery.select(cols), last, "created", as_of).select(
        "team",
        key,
        pl.lit(0.0).alias("est"),
        pl.lit(0).alias("done"),
        pl.lit(1).alias("intake"),
    )
    return pl.concat([done, intake]), per_team


def _velocity_per_scope(rows: pl.DataFrame, per_team: pl.DataFrame) -> pl.DataFrame:
    """``scope_velocity`` from ``_sprint_rows`` with a ``scope`` column.

    Sum over teams of total / sprints counted, taken as sum over each sprint count n of
    (total of the teams with n sprints) / n: usually one division, so the figure does not depend
    on hash-partition order between runs and lands exactly on a threshold (4.0, not 4.000...01).
    """
    return (
        rows.join(per_team, on="team", how="inner")
        .group_by("scope", "_n")
        .agg(pl.col("est").sum(), pl.col("done").sum(), pl.col("intake").sum())
        .sort("scope", "_n")
        .group_by("scope", maintain_order=True)
        .agg(
            (pl.col("est") / pl.col("_n")).sum().alias("velocity"),
            (pl.col("done") / pl.col("_n")).sum().alias("throughput_per_sprint"),
            (pl.col("intake") / pl.col("_n")).sum().alias("intake_per_sprint"),
        )
        .with_columns(
            (pl.col("intake_per_sprint") - pl.col("throughput_per_sprint")).alias(
                "net_flow_per_sprint"
            )
        )
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
    delivery = delivery_progress(items, "epic_id")
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


def delivery_progress(items: pl.DataFrame, owner: str, *by: str) -> pl.DataFrame:
    """The delivery items under each ``owner`` (``epic_id`` or ``initiative_id`` of
    flow.item_frame's items), also per ``by`` columns: the one count behind epic progress here
    and the portfolio's effort (kpis.portfolio_value, kpis.effort_by_team).

    Columns: owner, *by, items_total, items_done, estimate_total, estimate_done (a missing
    estimate counts as 0). Owners without delivery items have no row.
    """
    done = pl.col("status_category") == "done"
    return (
        items.filter(pl.col("delivery") & pl.col(owner).is_not_null())
        .group_by(owner, *by)
        .agg(
            pl.len().cast(pl.Int64).alias("items_total"),
            done.sum().cast(pl.Int64).alias("items_done"),
            pl.col("estimate").fill_null(0.0).sum().alias("estimate_total"),
            pl.col("estimate").fill_null(0.0).filter(done).sum().alias("estimate_done"),
        )
    )


def scope_change(
    work_items: pl.DataFrame,
    status_changes: pl.DataFrame,
    as_of: datetime,
    params: BacklogParams | None = None,
    *,
    data: FlowData | None = None,
) -> pl.DataFrame:
    """Scope added to each epic in the last ``scope_window_days`` against its scope at the start.

    ``window_start`` = ``as_of`` − ``scope_window_days``. The epic's scope at the window start is
    its delivery items created at or before then (done and removed ones included: they were in
    scope); added = its delivery items created after it, up to ``as_of``. Removed items are not
    netted off (the figure counts growth). The model keeps no parent history, so items moved into
    the epic later are not seen, and items deleted from the tracker are gone from both counts.
    Columns: epic_id, key, title, team, organisation, window_start, items_at_window_start,
    items_added_in_window, estimate_at_window_start, estimate_added_in_window,
    scope_change_share (added / items at the window start; null when the epic held nothing
    then: it is new, there is no scope to compare with).
    """
    p = params or BacklogParams()
    d = data if data is not None else prepare(work_items, status_changes, as_of, p.work_levels)
    window_start = as_of - timedelta(days=p.scope_window_days)
    items = d.items
    epics = items.filter(pl.col("level") == "epic")
    before = pl.col("created") <= window_start
    added = (pl.col("created") > window_start) & (pl.col("created") <= as_of)
    estimate = pl.col("estimate").fill_null(0.0)
    counted = (
        items.filter(pl.col("delivery") & pl.col("epic_id").is_not_null())
        .group_by("epic_id")
        .agg(
            before.sum().cast(pl.Int64).alias("items_at_window_start"),
            added.sum().cast(pl.Int64).alias("items_added_in_window"),
            estimate.filter(before).sum().alias("estimate_at_window_start"),
            estimate.filter(added).sum().alias("estimate_added_in_window"),
        )
    )
    return (
        epics.select(pl.col("item_id").alias("epic_id"), "key", "title", "team", "organisation")
        .join(counted, on="epic_id", how="left")
        .with_columns(
            pl.lit(window_start).alias("window_start"),
            pl.col("items_at_window_start").fill_null(0),
            pl.col("items_added_in_window").fill_null(0),
            pl.col("estimate_at_window_start").fill_null(0.0),
            pl.col("estimate_added_in_window").fill_null(0.0),
        )
        .with_columns(
            _ratio("items_added_in_window", "items_at_window_start").alias("scope_change_share")
        )
        .select(
            "epic_id",
            "key",
            "title",
            "team",
            "organisation",
            "window_start",
            "items_at_window_start",
            "items_added_in_window",
            "estimate_at_window_start",
            "estimate_added_in_window",
            "scope_change_share",
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
    items = with_programme(_items(work_items, p, data))
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
    items = work_items.select(  # only the columns read: filtering a wide frame copies them all
        "item_id",
        "is_deleted",
        "status_category",
        "raw_status",
        "source",
        "raw_type",
        "estimate",
        "has_description",
    ).filter(~pl.col("is_deleted").fill_null(False))
    ready_names = [s.lower() for s in p.ready_statuses]
    in_ready = pl.col("raw_status").str.to_lowercase().is_in(ready_names).fill_null(False)
    done_ids = items.filter(pl.col("status_category") == "done")["item_id"].implode()
    blocked_ids = (
        edges.select("blocker_id", "dependent_id")
        .filter(
            pl.col("dependent_id").is_not_null()
            & ~pl.col("blocker_id").is_in(done_ids).fill_null(False)
        )["dependent_id"]
        .unique()
        .implode()
    )  # set membership, no join: this runs over millions of edges
    return (
        items.with_columns(
            in_ready.alias("_in_ready"),
            in_ready.any().over("source", "raw_type").alias("_has_ready_state"),
            pl.col("item_id").is_in(blocked_ids).alias("_blocked"),
        )
        .select(
            "item_id",
            pl.col("estimate").is_not_null().alias("estimated"),
            pl.col("has_description").fill_null(False).alias("described"),
            (~pl.col("_blocked")).alias("unblocked"),
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


#: The item columns backlog health reads (a slim copy keeps the joins cheap at 1M items).
_HEALTH_COLUMNS = (
    "ix",
    "item_id",
    "key",
    "title",
    "source",
    "team",
    "organisation",
    "level",
    "status_category",
    "estimate",
    "created",
    "updated",
    "resolved",
    "rank",
    "priority_rank",
    "delivery",
    "epic_id",
    "initiative_id",
)


@dataclass(frozen=True)
class _Shared:
    """What every kind of backlog reads, computed once for all three (``backlog_health_all``)."""

    items: pl.DataFrame  # slim items with ``programme``, readiness and ``_order``
    open_epics: pl.DataFrame  # epic_progress of open epics + their scope change counts
    sprint_rows: pl.DataFrame  # _sprint_rows keyed by ``ix`` (the velocity of every scope)
    per_team: pl.DataFrame  # closed sprints counted per team


#: Backlog order for "top N": rank, then priority, then age, then key.
_TOP_ORDER = ["rank", "priority_rank", "created", "key"]


def _shared(
    d: FlowData,
    status_changes: pl.DataFrame,
    edges: pl.DataFrame,
    as_of: datetime,
    p: BacklogParams,
    sprints: pl.DataFrame,
) -> _Shared:
    readiness = ready_items(d.items, edges, p)
    slim = d.items.select(_HEALTH_COLUMNS)
    if readiness["item_id"].equals(slim["item_id"]):  # same rows in the same order: no join
        slim = slim.with_columns(readiness.drop("item_id"))
    else:
        slim = slim.join(readiness, on="item_id", how="left")
    # the position of each to-do item in backlog order, sorted once for every kind of backlog
    todo = slim.filter(pl.col("status_category") == "todo").select("ix", *_TOP_ORDER)
    order = todo.select(
        pl.col("ix").gather(pl.arg_sort_by(_TOP_ORDER, nulls_last=True)),
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_order"),
    )
    items = with_programme(slim.join(order, on="ix", how="left"))
    delivery = slim.filter(pl.col("delivery"))
    sprint_rows, per_team = _sprint_rows(delivery, sprints, as_of, p, "ix")
    open_epics = (
        epic_progress(d.items, p, data=d)
        .filter(pl.col("status_category") != "done")
        .join(
            scope_change(d.items, status_changes, as_of, p, data=d).select(
                "epic_id", "items_at_window_start", "items_added_in_window"
            ),
            on="epic_id",
            how="left",
        )
        .select(
            "epic_id",
            "items_done",
            "items_total",
            "estimate_done",
            "estimate_total",
            "items_at_window_start",
            "items_added_in_window",
        )
    )
    return _Shared(items, open_epics, sprint_rows, per_team)


def backlog_health_all(
    work_items: pl.DataFrame,
    sprints: pl.DataFrame,
    status_changes: pl.DataFrame,
    edges: pl.DataFrame,
    as_of: datetime,
    params: BacklogParams | None = None,
    *,
    data: FlowData | None = None,
    bys: tuple[By, ...] = ("team", "organisation", "programme"),
) -> pl.DataFrame:
    """``backlog_health`` for each kind of backlog in ``bys``, stacked (readiness, epic progress
    and scope change computed once)."""
    p = params or BacklogParams()
    for by in bys:
        _scope_expr(by)
    d = data if data is not None else prepare(work_items, status_changes, as_of, p.work_levels)
    shared = _shared(d, status_changes, edges, as_of, p, sprints)
    return pl.concat([_health(shared, as_of, by, p) for by in bys])


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
    """One row per backlog (team, organisation or programme) with every signal and a grade.

    See the module doc for what each backlog holds and docs/backlog-health.md for each signal and
    the grading table. Columns: by, scope, organisation (the scope's, by most items),
    scope_title (the initiative's title for a programme), items, estimate_total, pct_estimated,
    age_median_days, age_p85_days, stale_share, ranked_share, duplicate_ranks, ordering_present,
    ready_items, ready_estimate, velocity, ready_depth_sprints, top_n_items, top_n_ready_share,
    intake_per_sprint, throughput_per_sprint, net_flow_per_sprint, epics_open,
    epic_progress_count, epic_progress_estimate, scope_change_share, initiatives_open,
    initiatives_with_epics_share, epics_with_stories_share, points, grade, grade_reasons (in
    English), grade_reason_keys and grade_reason_params (the same reasons as catalogue keys and
    JSON parameters, for the reader's language).
    """
    return backlog_health_all(
        work_items, sprints, status_changes, edges, as_of, params, data=data, bys=(by,)
    )


def _health(shared: _Shared, as_of: datetime, by: By, p: BacklogParams) -> pl.DataFrame:
    scoped = shared.items.with_columns(_scope_expr(by))
    open_items = scoped.filter(pl.col("status_category") != "done")
    if by == PROGRAMME:
        backlog = open_items.filter(pl.col("level").is_in(list(p.programme_levels)))
    else:
        backlog = open_items.filter(pl.col("delivery"))

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
        .sort("_order")
        .with_columns(pl.int_range(pl.len()).over("scope", "source").alias("_pos"))
        .filter(pl.col("_pos") < p.top_n)
        .group_by("scope")
        .agg(
            pl.len().cast(pl.Int64).alias("top_n_items"),
            pl.col("ready").mean().alias("top_n_ready_share"),
        )
    )

    # ready depth and net flow on delivery items, velocity of the teams in the scope
    delivery_todo = open_items.filter(pl.col("delivery") & (pl.col("status_category") == "todo"))
    ready = delivery_todo.group_by("scope").agg(
        pl.col("ready").sum().cast(pl.Int64).alias("ready_items"),
        pl.col("estimate").filter(pl.col("ready")).sum().alias("ready_estimate"),
    )
    velocity = _velocity_per_scope(
        shared.sprint_rows.join(
            scoped.select("ix", "scope"), on="ix", how="left", maintain_order="left"
        ),
        shared.per_team,
    )

    # epics: progress and scope change over the scope's open epics, decomposition coverage
    epics = (
        shared.open_epics.join(
            scoped.select(pl.col("item_id").alias("epic_id"), "scope"), on="epic_id"
        )
        .group_by("scope")
        .agg(
            pl.len().cast(pl.Int64).alias("epics_open"),
            _sum_ratio("items_done", "items_total").alias("epic_progress_count"),
            _sum_ratio("estimate_done", "estimate_total").alias("epic_progress_estimate"),
            _scope_added_share().alias("scope_change_share"),
        )
    )
    decomposed = decomposition(scoped, by, p).select(
        "scope", "initiatives_open", "initiatives_with_epics_share", "epics_with_stories_share"
    )

    scopes = pl.concat(
        [f.select("scope") for f in (size, ready, velocity, epics, decomposed)]
    ).unique()
    labels = (
        scoped.group_by("scope", "organisation")
        .agg(pl.len().alias("_n"), pl.col("programme_title").drop_nulls().first())
        .sort(["scope", "_n", "organisation"], descending=[False, True, False], nulls_last=True)
        .unique("scope", keep="first")
        .select(
            "scope",
            "organisation",
            pl.col("programme_title").alias("scope_title")
            if by == PROGRAMME
            else pl.lit(None, pl.String).alias("scope_title"),
        )
    )
    out = (
        scopes.join(labels, on="scope", how="left")
        .join(size, on="scope", how="left")
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
            "organisation",
            "scope_title",
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
            "grade_reason_keys",
            "grade_reason_params",
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
    # the same reasons as catalogue keys and JSON parameters, in the order of ``checks``: the
    # report says them in the reader's language (reports/sections/backlog.py)
    keyed: list[tuple[str, dict[str, pl.Expr]]] = [
        ("grade_empty", {}),
        ("grade_estimated", {"pct": _pct("pct_estimated"), "target": pl.lit(round(p.min_estimated * 100))}),
        ("grade_not_ordered", {"pct": _pct("ranked_share"), "duplicates": pl.col("duplicate_ranks")}),
        ("grade_depth_unknown", {"sprints": pl.lit(p.velocity_sprints)}),
        (
            "grade_depth_low",
            {"depth": _num("ready_depth_sprints"), "low": pl.lit(p.ready_depth_min), "high": pl.lit(p.ready_depth_max)},
        ),
        (
            "grade_depth_high",
            {"depth": _num("ready_depth_sprints"), "low": pl.lit(p.ready_depth_min), "high": pl.lit(p.ready_depth_max)},
        ),
        (
            "grade_top_ready",
            {"pct": _pct("top_n_ready_share"), "n": pl.lit(p.top_n), "target": pl.lit(round(p.min_top_ready * 100))},
        ),
        ("grade_stale", {"pct": _pct("stale_share"), "days": pl.lit(p.stale_days)}),
        ("grade_age", {"days": _num("age_p85_days"), "limit": pl.lit(p.max_age_p85_days)}),
        ("grade_grows", {"intake": _num("intake_per_sprint"), "done": _num("throughput_per_sprint")}),
        ("grade_epics_broken_down", {"pct": _pct("epics_with_stories_share")}),
        ("grade_initiatives_broken_down", {"pct": _pct("initiatives_with_epics_share")}),
    ]  # fmt: skip
    assert len(keyed) == len(checks)
    hit = [cond.fill_null(False) for cond, _, _ in checks]
    reason_keys = pl.concat_list(
        [pl.when(h).then(pl.lit(k)).otherwise(None) for h, (k, _) in zip(hit, keyed, strict=True)]
    ).list.drop_nulls()
    reason_params = pl.concat_list(
        [
            pl.when(h)
            .then(
                pl.struct(*[e.alias(n) for n, e in fields.items()]).struct.json_encode()
                if fields
                else pl.lit("{}")
            )
            .otherwise(None)
            for h, (_, fields) in zip(hit, keyed, strict=True)
        ]
    ).list.drop_nulls()
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
    return frame.with_columns(
        points.alias("points"),
        reasons.alias("grade_reasons"),
        reason_keys.alias("grade_reason_keys"),
        reason_params.alias("grade_reason_params"),
    ).with_columns(grade.alias("grade"))


def _ratio(done: str, total: str) -> pl.Expr:
    return pl.when(pl.col(total) > 0).then(pl.col(done) / pl.col(total)).otherwise(None)


def _scope_added_share() -> pl.Expr:
    """Σ items added in the window / Σ items at the window start, over the epics that held
    something at the window start (an epic opened inside the window is new work, not growth)."""
    base = pl.col("items_at_window_start")
    added = pl.col("items_added_in_window").filter(base > 0).sum()
    return pl.when(base.sum() > 0).then(added / base.sum())


def _sum_ratio(done: str, total: str) -> pl.Expr:
    return pl.when(pl.col(total).sum() > 0).then(pl.col(done).sum() / pl.col(total).sum())
