"""Scrum@Scale KPIs per team sprint, portfolio value (WSJF, effort, investment), metric snapshots.

Sprint KPIs follow the Scrum@Scale metric families: productivity (throughput, done estimate),
value delivery (business value done), quality (defect share, escaped defects), predictability
(done vs committed) and sustainability (WIP age, carry-over). Portfolio figures compare value and
effort per epic and initiative and show where the effort goes per team and theme.

The model keeps each item's *current* sprint only (no sprint membership history), so
"committed" is approximated; see ``sprint_kpis`` and docs/kpis.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from pmolens.warehouse.settings_analytics import KpiParams
from pmolens.warehouse.transforms.backlog import assign_to_sprint, delivery_progress, sprint_windows
from pmolens.warehouse.transforms.flow import (
    NO_GROUP,
    FlowData,
    FlowParams,
    work_type_expr,
)


def _escaped_expr(p: KpiParams) -> pl.Expr:
    labels = [name.lower() for name in p.escaped_labels]
    return pl.col("raw_type").str.to_lowercase().is_in(
        [t.lower() for t in p.escaped_types]
    ).fill_null(False) | (
        pl.col("labels")
        .list.eval(pl.element().str.to_lowercase().is_in(labels))
        .list.any()
        .fill_null(False)
    )


# --------------------------------------------------------------------------- sprint KPIs


def sprint_kpis(
    data: FlowData,
    sprints: pl.DataFrame,
    params: KpiParams | None = None,
    flow: FlowParams | None = None,
) -> pl.DataFrame:
    """Scrum@Scale KPIs per team sprint (closed and active sprints that started by ``as_of``).

    Done = delivery item of the team with status category done and ``resolved`` in the sprint.
    Columns: team, sprint_id, sprint, start, end, closed,
    throughput_items, done_estimate (productivity);
    business_value_done (value of any item of the team resolved in the sprint; null when the team
    keeps no business value at all);
    defects_done, defect_share (defects among done items), escaped_defects (defects created in the
    sprint typed or labelled as escaped; null when nothing in the data is typed that way);
    committed_items, committed_estimate (what the sprint held at its start, see ``_committed``),
    committed_done_items, committed_done_estimate, predictability, predictability_estimate
    (done / committed); carried_in_items (items of this sprint started before it began),
    carried_out_items (committed, not done by the end), wip_at_end, wip_age_days_at_end (mean
    age of the team's in-progress delivery items at the sprint end).
    """
    p = params or KpiParams()
    as_of = data.as_of
    sprints_ = sprint_windows(sprints, as_of)
    all_items = data.items
    items = all_items.filter(pl.col("delivery")).with_columns(work_type_expr(flow))
    done_items = items.filter(pl.col("status_category") == "done")
    done = (
        assign_to_sprint(done_items, sprints_, "resolved", as_of)
        .group_by("team", "sprint_id")
        .agg(
            pl.len().cast(pl.Int64).alias("throughput_items"),
            pl.col("estimate").sum().alias("done_estimate"),
            (pl.col("work_type") == "defect").sum().cast(pl.Int64).alias("defects_done"),
        )
    )
    teams_with_value = (
        all_items.filter(pl.col("business_value").is_not_null())
        .select("team")
        .unique()
        .with_columns(pl.lit(True).alias("_has_value"))
    )
    value = (
        assign_to_sprint(
            all_items.filter(
                (pl.col("status_category") == "done") & pl.col("business_value").is_not_null()
            ),
            sprints_,
            "resolved",
            as_of,
        )
        .group_by("team", "sprint_id")
        .agg(pl.col("business_value").sum().alias("business_value_done"))
    )
    typed = items.select(_escaped_expr(p).any()).item() if items.height else False
    escaped = (
        assign_to_sprint(
            items.filter((pl.col("work_type") == "defect") & _escaped_expr(p)),
            sprints_,
            "created",
            as_of,
        )
        .group_by("team", "sprint_id")
        .agg(pl.len().cast(pl.Int64).alias("escaped_defects"))
    )
    committed = _committed(items, sprints_)
    timeline = items.select(
        "item_id",
        "started",
        pl.when(pl.col("status_category") == "done")
        .then(pl.coalesce("last_done", "resolved"))
        .alias("done_at"),
    )
    carried = (
        items.select("item_id", "team", "sprint_id")
        .join(timeline, on="item_id", how="inner")
        .join(sprints_.select("team", "sprint_id", "start"), on=["team", "sprint_id"], how="inner")
        .filter(pl.col("started") < pl.col("start"))
        .group_by("team", "sprint_id")
        .agg(pl.len().cast(pl.Int64).alias("carried_in_items"))
    )
    wip_age = _wip_age_at(items.select("item_id", "team").join(timeline, on="item_id"), sprints_)
    return (
        sprints_.select(
            "team", "sprint_id", pl.col("name").alias("sprint"), "start", "end", "closed"
        )
        .join(done, on=["team", "sprint_id"], how="left")
        .join(value, on=["team", "sprint_id"], how="left")
        .join(teams_with_value, on="team", how="left")
        .join(escaped, on=["team", "sprint_id"], how="left")
        .join(committed, on=["team", "sprint_id"], how="left")
        .join(carried, on=["team", "sprint_id"], how="left")
        .join(wip_age, on=["team", "sprint_id"], how="left")
        .with_columns(
            pl.col("throughput_items").fill_null(0),
            pl.col("done_estimate").fill_null(0.0),
            pl.col("defects_done").fill_null(0),
            pl.when(pl.col("_has_value"))
            .then(pl.col("business_value_done").fill_null(0.0))
            .alias("business_value_done"),
            (pl.col("escaped_defects").fill_null(0) if typed else pl.lit(None, pl.Int64)).alias(
                "escaped_defects"
            ),
            pl.col("committed_items").fill_null(0),
            pl.col("committed_estimate").fill_null(0.0),
            pl.col("committed_done_items").fill_null(0),
            pl.col("committed_done_estimate").fill_null(0.0),
            pl.col("carried_in_items").fill_null(0),
            pl.col("carried_out_items").fill_null(0),
            pl.col("wip_at_end").fill_null(0),
        )
        .with_columns(
            _ratio("defects_done", "throughput_items").alias("defect_share"),
            _ratio("committed_done_items", "committed_items").alias("predictability"),
            _ratio("committed_done_estimate", "committed_estimate").alias(
                "predictability_estimate"
            ),
        )
        .select(
            "team",
            "sprint_id",
            "sprint",
            "start",
            "end",
            "closed",
            "throughput_items",
            "done_estimate",
            "business_value_done",
            "defects_done",
            "defect_share",
            "escaped_defects",
            "committed_items",
            "committed_estimate",
            "committed_done_items",
            "committed_done_estimate",
            "predictability",
            "predictability_estimate",
            "carried_in_items",
            "carried_out_items",
            "wip_at_end",
            "wip_age_days_at_end",
        )
        .sort("team", "start", "sprint_id")
    )


def _committed(items: pl.DataFrame, sprints: pl.DataFrame) -> pl.DataFrame:
    """What each team sprint held at its start, rebuilt from the current sprint and status history.

    Only the team's own items count: a sprint shared by several teams is one commitment per team.
    The warehouse keeps an item's current (last) sprint only, so two parts are added up:
    (a) *planned*: items whose current sprint is this one, created before it started and not
    resolved before it started; (b) *rolled over*: items whose current sprint is a later sprint
    of the same team, created before this sprint started, started (first in progress) by its
    end and not done by its end - they were worked on in this sprint and moved on. Done =
    status done and resolved by the sprint end, so (b) is never done in this sprint.
    Columns: team, sprint_id, committed_items, committed_estimate, committed_done_items,
    committed_done_estimate, carried_out_items.
    """
    windows = sprints.select("sprint_id", "team", "start", "end")
    current = items.filter(pl.col("sprint_id").is_not_null()).join(
        windows.select("sprint_id", "team", pl.col("start").alias("_cur_start")),
        on=["sprint_id", "team"],
        how="inner",
    )
    done_by_end = (
        (pl.col("status_category") == "done") & (pl.col("resolved") <= pl.col("end"))
    ).fill_null(False)
    planned = (
        current.join(windows, on=["sprint_id", "team"], how="inner")
        .filter(
            (pl.col("created") < pl.col("start"))
            & ~(pl.col("resolved") < pl.col("start")).fill_null(False)
        )
        .select("team", "sprint_id", "estimate", done_by_end.alias("_done"))
    )
    rolled = (
        current.filter(pl.col("started").is_not_null())
        .select(
            "created",
            "started",
            "resolved",
            "status_category",
            "estimate",
            "team",
            "_cur_start",
        )
        .join(windows, on="team", how="inner")
        .filter(
            (pl.col("start") < pl.col("_cur_start"))
            & (pl.col("created") < pl.col("start"))
            & (pl.col("started") <= pl.col("end"))
            & ~done_by_end
        )
        .select("team", "sprint_id", "estimate", pl.lit(False).alias("_done"))
    )
    return (
        pl.concat([planned, rolled])
        .group_by("team", "sprint_id")
        .agg(
            pl.len().cast(pl.Int64).alias("committed_items"),
            pl.col("estimate").sum().alias("committed_estimate"),
            pl.col("_done").sum().cast(pl.Int64).alias("committed_done_items"),
            pl.col("estimate").filter(pl.col("_done")).sum().alias("committed_done_estimate"),
            (~pl.col("_done")).sum().cast(pl.Int64).alias("carried_out_items"),
        )
    )


def _wip_age_at(timeline: pl.DataFrame, sprints: pl.DataFrame) -> pl.DataFrame:
    """(team, sprint_id, wip_at_end, wip_age_days_at_end) without a cross join.

    Per team, +1 / +started at each start and -1 / -started at each finish, cumulated in time;
    at a sprint end (as-of join) mean age = end - (sum of starts / count).
    """
    started = timeline.filter(pl.col("started").is_not_null() & pl.col("team").is_not_null())
    secs = pl.col("started").dt.epoch("s")
    events = pl.concat(
        [
            started.select(
                "team",
                pl.col("started").alias("t"),
                pl.lit(1, pl.Int64).alias("n"),
                secs.alias("s"),
            ),
            started.filter(pl.col("done_at").is_not_null()).select(
                "team",
                pl.col("done_at").alias("t"),
                pl.lit(-1, pl.Int64).alias("n"),
                (-secs).alias("s"),
            ),
        ]
    )
    # one sort by time; the as-of join takes the last event at or before the end, which holds
    # every event up to it (ties included), so no group-by per timestamp is needed
    running = events.sort("t").with_columns(
        pl.col("n").cum_sum().over("team").alias("wip"),
        pl.col("s").cum_sum().over("team").alias("sum_s"),
    )
    ends = sprints.select("sprint_id", "team", "end").sort("end")
    return (
        ends.join_asof(
            running.select("team", "t", "wip", "sum_s"),
            left_on="end",
            right_on="t",
            by="team",
            strategy="backward",
            check_sortedness=False,
        )
        .with_columns(pl.col("wip").fill_null(0).alias("wip_at_end"))
        .with_columns(
            pl.when(pl.col("wip_at_end") > 0)
            .then((pl.col("end").dt.epoch("s") - pl.col("sum_s") / pl.col("wip_at_end")) / 86_400)
            .alias("wip_age_days_at_end")
        )
        .select("team", "sprint_id", "wip_at_end", "wip_age_days_at_end")
    )


# --------------------------------------------------------------------------- portfolio


def portfolio_value(items: pl.DataFrame, params: KpiParams | None = None) -> pl.DataFrame:
    """Value, effort and WSJF per epic and initiative.

    Columns: item_id, key, url, title, level, team, organisation, status_category, initiative_id
    (for epics), business_value, time_criticality, risk_reduction, cost, effort_items,
    effort_estimate, effort_done_estimate, progress_estimate, job_size, cost_of_delay
    (business_value + time_criticality + risk_reduction, missing parts as 0, null when all three
    are missing), wsjf (cost_of_delay / job_size), wsjf_rank (1 = do first, among open items of
    the same level with a WSJF).
    """
    p = params or KpiParams()
    effort = pl.concat(
        [
            delivery_progress(items, owner).select(
                pl.col(owner).alias("owner_id"),
                pl.col("items_total").alias("effort_items"),
                pl.col("estimate_total").alias("effort_estimate"),
                pl.col("estimate_done").alias("effort_done_estimate"),
            )
            for owner in ("epic_id", "initiative_id")
        ]
    )
    cod_parts = ["business_value", "time_criticality", "risk_reduction"]
    positive = lambda c: pl.when(pl.col(c) > 0).then(pl.col(c))  # noqa: E731
    if p.job_size == "cost":
        job = pl.coalesce(positive("cost"), positive("effort_estimate"), positive("estimate"))
    else:
        job = pl.coalesce(positive("effort_estimate"), positive("estimate"), positive("cost"))
    out = (
        items.filter(pl.col("level").is_in(["epic", "initiative"]))
        .join(effort, left_on="item_id", right_on="owner_id", how="left")
        .with_columns(
            pl.when(pl.col("item_id") != pl.col("initiative_id"))
            .then(pl.col("initiative_id"))
            .alias("initiative_id"),
            pl.col("effort_items").fill_null(0),
            pl.col("effort_estimate").fill_null(0.0),
            pl.col("effort_done_estimate").fill_null(0.0),
            job.alias("job_size"),
            pl.when(pl.any_horizontal(pl.col(c).is_not_null() for c in cod_parts))
            .then(pl.sum_horizontal(pl.col(c).fill_null(0.0) for c in cod_parts))
            .alias("cost_of_delay"),
        )
        .with_columns(
            _ratio("effort_done_estimate", "effort_estimate").alias("progress_estimate"),
            (pl.col("cost_of_delay") / pl.col("job_size")).alias("wsjf"),
        )
    )
    ranked = (
        out.filter(pl.col("wsjf").is_not_null() & (pl.col("status_category") != "done"))
        .with_columns(
            pl.col("wsjf")
            .rank("ordinal", descending=True)
            .over("level")
            .cast(pl.Int64)
            .alias("wsjf_rank")
        )
        .select("item_id", "wsjf_rank")
    )
    return (
        out.join(ranked, on="item_id", how="left")
        .select(
            "item_id",
            "key",
            "url",
            "title",
            "level",
            "team",
            "organisation",
            "status_category",
            "initiative_id",
            "business_value",
            "time_criticality",
            "risk_reduction",
            "cost",
            "effort_items",
            "effort_estimate",
            "effort_done_estimate",
            "progress_estimate",
            "job_size",
            "cost_of_delay",
            "wsjf",
            "wsjf_rank",
        )
        .sort(["level", "wsjf_rank", "key"], nulls_last=True)
    )


def effort_by_team(items: pl.DataFrame) -> pl.DataFrame:
    """Resource view: how much of each epic's work sits with each team.

    Columns: epic_id, epic_key, epic_title, epic_team, team, items, items_done, estimate,
    estimate_done, share_of_epic (the team's share of the epic's estimate; by item count when the
    epic has no estimates).
    """
    epics = items.filter(pl.col("level") == "epic").select(
        pl.col("item_id").alias("epic_id"),
        pl.col("key").alias("epic_key"),
        pl.col("title").alias("epic_title"),
        pl.col("team").alias("epic_team"),
    )
    return (
        delivery_progress(items.with_columns(pl.col("team").fill_null(NO_GROUP)), "epic_id", "team")
        .rename({"items_total": "items", "estimate_total": "estimate"})
        .with_columns(
            pl.when(pl.col("estimate").sum().over("epic_id") > 0)
            .then(pl.col("estimate") / pl.col("estimate").sum().over("epic_id"))
            .otherwise(pl.col("items") / pl.col("items").sum().over("epic_id"))
            .alias("share_of_epic")
        )
        .join(epics, on="epic_id", how="inner")
        .select(
            "epic_id",
            "epic_key",
            "epic_title",
            "epic_team",
            "team",
            "items",
            "items_done",
            "estimate",
            "estimate_done",
            "share_of_epic",
        )
        .sort("epic_key", "team")
    )


def investment_by_theme(items: pl.DataFrame, by: str | None = None) -> pl.DataFrame:
    """Where the effort goes: delivery work per initiative (theme), optionally per ``by``.

    Work with no initiative above it is the row with theme_id null ("not aligned"). Columns:
    [<by>], theme_id, theme_key, theme_title, items, items_open, estimate, estimate_open,
    estimate_done, epics, cost (sum of the epics' cost under the theme), business_value (sum of
    the epics' business value), share_estimate (of the total estimate within the ``by`` group).
    """
    keys = [by] if by else []
    items = items.with_columns(pl.col("initiative_id").alias("theme_id"))
    work = (
        items.filter(pl.col("delivery"))
        .group_by(*keys, "theme_id")
        .agg(
            pl.len().cast(pl.Int64).alias("items"),
            (pl.col("status_category") != "done").sum().cast(pl.Int64).alias("items_open"),
            pl.col("estimate").fill_null(0.0).sum().alias("estimate"),
            pl.col("estimate")
            .fill_null(0.0)
            .filter(pl.col("status_category") != "done")
            .sum()
            .alias("estimate_open"),
            pl.col("estimate")
            .fill_null(0.0)
            .filter(pl.col("status_category") == "done")
            .sum()
            .alias("estimate_done"),
        )
    )
    epic_money = (
        items.filter(pl.col("level") == "epic")
        .group_by(*keys, "theme_id")
        .agg(
            pl.len().cast(pl.Int64).alias("epics"),
            _sum_or_null("cost"),
            _sum_or_null("business_value"),
        )
    )
    meta = items.filter(pl.col("level") == "initiative").select(
        pl.col("item_id").alias("theme_id"),
        pl.col("key").alias("theme_key"),
        pl.col("title").alias("theme_title"),
    )
    total = pl.col("estimate").sum().over(by) if by else pl.col("estimate").sum()
    return (
        work.join(epic_money, on=[*keys, "theme_id"], how="full", coalesce=True, nulls_equal=True)
        .join(meta, on="theme_id", how="left")
        .with_columns(
            pl.col("items").fill_null(0),
            pl.col("items_open").fill_null(0),
            pl.col("estimate").fill_null(0.0),
            pl.col("estimate_open").fill_null(0.0),
            pl.col("estimate_done").fill_null(0.0),
            pl.col("epics").fill_null(0),
        )
        .with_columns(pl.when(total > 0).then(pl.col("estimate") / total).alias("share_estimate"))
        .select(
            *keys,
            "theme_id",
            "theme_key",
            "theme_title",
            "items",
            "items_open",
            "estimate",
            "estimate_open",
            "estimate_done",
            "epics",
            "cost",
            "business_value",
            "share_estimate",
        )
        .sort(  # theme last: equal estimates keep one order every time
            [*keys, "estimate", "theme_id"],
            descending=[*[False] * len(keys), True, False],
            nulls_last=True,
        )
    )


# --------------------------------------------------------------------------- snapshots


SNAPSHOT_SCHEMA: dict[str, Any] = {
    "family": pl.String,
    "metric": pl.String,
    "scope": pl.String,
    "value": pl.Float64,
}


def snapshot_rows(
    frame: pl.DataFrame, family: str, scope: pl.Expr, metrics: Sequence[str]
) -> pl.DataFrame:
    """Headline figures in long form (family, metric, scope, value) for metric_snapshots.

    ``scope`` is an expression such as ``pl.format("team:{}", "team")``; null and NaN values are
    left out (a missing figure is not a zero in a trend line).
    """
    if frame.height == 0 or not metrics:
        return pl.DataFrame(schema=SNAPSHOT_SCHEMA)
    return (
        frame.select(scope.alias("scope"), *[pl.col(m).cast(pl.Float64) for m in metrics])
        .unpivot(index="scope", variable_name="metric", value_name="value")
        .with_columns(pl.lit(family).alias("family"))
        .filter(pl.col("value").is_not_null() & pl.col("value").is_not_nan())
        .select(*SNAPSHOT_SCHEMA)
        .sort("metric", "scope")
    )


#: The per-team headline KPIs of ``recent_sprint_kpis``: snapshotted per sync, so each has a trend.
TEAM_METRICS = (
    "velocity",
    "throughput_per_sprint",
    "predictability",
    "defect_share",
    "carried_out_per_sprint",
    "business_value_per_sprint",
)


def recent_sprint_kpis(
    sprint_kpi: pl.DataFrame, params: KpiParams | None = None, by: str | None = "team"
) -> pl.DataFrame:
    """The KPIs over each team's last ``trend_sprints`` closed sprints (the headline figures),
    per ``by`` ("team", "organisation" when the frame has it, or None for one row "all").

    Columns: <by> (or scope = "all"), sprints, velocity (mean done estimate per team sprint),
    throughput_per_sprint (mean items), predictability (sum committed done / sum committed),
    defect_share (sum defects / sum done), carried_out_per_sprint (mean carry-over),
    business_value_per_sprint (mean over sprints of teams that keep business value; null when
    none does).
    """
    p = params or KpiParams()
    recent = (
        sprint_kpi.filter(pl.col("closed"))
        .sort(["team", "end"], descending=[False, True])
        .group_by("team", maintain_order=True)
        .head(p.trend_sprints)
    )
    key = by or "scope"
    if by is None:
        recent = recent.with_columns(pl.lit("all").alias("scope"))
    return (
        recent.group_by(key)
        .agg(
            pl.len().cast(pl.Int64).alias("sprints"),
            pl.col("done_estimate").mean().alias("velocity"),
            pl.col("throughput_items").mean().alias("throughput_per_sprint"),
            pl.when(pl.col("committed_items").sum() > 0)
            .then(pl.col("committed_done_items").sum() / pl.col("committed_items").sum())
            .alias("predictability"),
            pl.when(pl.col("throughput_items").sum() > 0)
            .then(pl.col("defects_done").sum() / pl.col("throughput_items").sum())
            .alias("defect_share"),
            pl.col("carried_out_items").mean().cast(pl.Float64).alias("carried_out_per_sprint"),
            pl.col("business_value_done").mean().alias("business_value_per_sprint"),
        )
        .sort(key)
    )


def _ratio(done: str, total: str) -> pl.Expr:
    return pl.when(pl.col(total) > 0).then(pl.col(done) / pl.col(total))


def _sum_or_null(col: str) -> pl.Expr:
    """Sum, but null (not 0) when nobody keeps the field."""
    return pl.when(pl.col(col).is_not_null().any()).then(pl.col(col).sum()).alias(col)
