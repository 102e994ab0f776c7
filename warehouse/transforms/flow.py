"""Flow metrics from status history: cycle time, lead time, throughput, WIP, age, efficiency.

Everything is computed on *delivery items*: items at a work level (story, bug, task) whose parent
is not itself at a work level, so a Jira sub-task or an Azure DevOps task under a backlog item is
not counted next to its story (the story is the unit that flows). Status history is
``status_changes`` rows with ``field == "status"``; "flagged" rows mark blocked periods.

All functions are pure and vectorised (joins, group-bys, cumulative sums; no loop per item), because
they run on millions of status changes. Days and ISO weeks are cut in the time zone of the item's
organisation (``Calendar``, transforms/calendar.py; UTC when not configured). Cycle and lead time
are given twice: in whole days (Vacanti: end date - start date + 1, the default for percentiles)
and exact (fractional days). Definitions, formulas and who acts on them: docs/flow.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import numpy as np
import polars as pl

from pmolens.warehouse.settings_analytics import WORK_LEVELS, FlowParams
from pmolens.warehouse.transforms.calendar import (
    UTC_CALENDAR,
    Calendar,
    local_date,
    monday,
    monday_expr,
    today,
    whole_days,
    working_days,
)
from pmolens.warehouse.transforms.hierarchy import first_ancestor_where, parent_rows

DAY_US = 86_400_000_000
CATEGORIES = ("todo", "in_progress", "done")
#: Percentile method: the smallest value with at least p % of observations at or below it
#: ("85 % of items finished within N days"); numpy's "inverted_cdf" is the same rule.
QUANTILE: Final = "equiprobable"
NO_GROUP = "(none)"


# --------------------------------------------------------------------------- shared helpers


def live(work_items: pl.DataFrame) -> pl.DataFrame:
    """Live items only (the warehouse already hands these over; cheap insurance)."""
    if "is_deleted" not in work_items.columns:
        return work_items
    deleted = work_items["is_deleted"].fill_null(False)
    if not deleted.any():  # the usual case: skip copying every column of a wide frame
        return work_items
    return work_items.filter(~deleted)


def _delivery_expr(work_items: pl.DataFrame, work_levels: Sequence[str]) -> pl.Expr:
    levels = list(work_levels)
    work_ids = work_items.filter(pl.col("level").is_in(levels))["item_id"].implode()
    return (
        pl.col("level").is_in(levels) & ~pl.col("parent_id").is_in(work_ids).fill_null(False)
    ).alias("delivery")


def with_delivery_flag(
    work_items: pl.DataFrame, work_levels: Sequence[str] = WORK_LEVELS
) -> pl.DataFrame:
    """Adds ``delivery`` (bool): at a work level and the parent is not at a work level."""
    return work_items.with_columns(_delivery_expr(work_items, work_levels))


def _gather_ids(ids: pl.Series, rows: np.ndarray, name: str) -> pl.Series:
    """ids[rows] with null where rows == -1."""
    picked = ids.gather(np.where(rows >= 0, rows, 0))
    return pl.select(
        pl.when(pl.lit(pl.Series(rows >= 0))).then(pl.lit(picked)).alias(name)
    ).to_series()


def ancestor_at_level(
    work_items: pl.DataFrame, level: str, alias: str, max_depth: int = 6
) -> pl.DataFrame:
    """(item_id, ``alias``): the first ancestor of each item (itself included) at ``level``.

    At most ``max_depth`` parents up (parent cycles in bad data end there); items with no such
    ancestor are absent.
    """
    found = first_ancestor_where(
        parent_rows(work_items),
        (work_items["level"] == level).fill_null(False).to_numpy(),
        max_depth,
    )
    return pl.DataFrame(
        [work_items["item_id"], _gather_ids(work_items["item_id"], found, alias)]
    ).filter(pl.col(alias).is_not_null())


def work_type_expr(params: FlowParams | None = None) -> pl.Expr:
    """feature / defect / risk / debt from level, raw type and labels (first match wins)."""
    p = params or FlowParams()
    raw = pl.col("raw_type").str.to_lowercase()

    def labelled(names: Sequence[str]) -> pl.Expr:
        wanted = [n.lower() for n in names]
        return (
            pl.col("labels")
            .list.eval(pl.element().str.to_lowercase().is_in(wanted))
            .list.any()
            .fill_null(False)
        )

    return (
        pl.when((pl.col("level") == "bug") | raw.is_in(list(p.defect_types)).fill_null(False))
        .then(pl.lit("defect"))
        .when(
            (pl.col("level") == "impediment")
            | raw.is_in(list(p.risk_types)).fill_null(False)
            | labelled(p.risk_labels)
        )
        .then(pl.lit("risk"))
        .when(raw.is_in(list(p.debt_types)).fill_null(False) | labelled(p.debt_labels))
        .then(pl.lit("debt"))
        .otherwise(pl.lit("feature"))
        .alias("work_type")
    )


def days_between(start: str | pl.Expr, end: str | pl.Expr) -> pl.Expr:
    """Fractional days from ``start`` to ``end`` (Datetime expressions)."""
    s = pl.col(start) if isinstance(start, str) else start
    e = pl.col(end) if isinstance(end, str) else end
    return (e - s).dt.total_microseconds() / DAY_US


def as_of_date(as_of: datetime) -> date:
    """The UTC calendar day of ``as_of``."""
    return as_of.date() if as_of.tzinfo is None else as_of.astimezone(UTC).date()


def _zones(calendar: Calendar, *frames: pl.DataFrame) -> list[str]:
    """The zones of the organisations in these frames (their ``organisation`` column)."""
    if calendar.is_utc():
        return ["UTC"]
    orgs: set[str | None] = set()
    for f in frames:
        if "organisation" in f.columns:
            orgs |= set(f["organisation"].unique().to_list())
    return calendar.zones_of(orgs) if orgs else [calendar.default_zone]


def _local(column: str | pl.Expr, calendar: Calendar, zones: Sequence[str]) -> pl.Expr:
    return local_date(column, calendar, zones)


def _in_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (naive = UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


TODO, IN_PROGRESS, DONE = 0, 1, 2
_CODES = {"todo": TODO, "in_progress": IN_PROGRESS, "done": DONE}


def _code(column: str) -> pl.Expr:
    """Category name -> code (null for anything else); when/then beats a string replace here."""
    expr: Any = pl
    for name, code in _CODES.items():
        expr = expr.when(pl.col(column) == name).then(pl.lit(code, pl.Int8))
    return expr.otherwise(pl.lit(None, pl.Int8))


def started_expr() -> pl.Expr:
    """Start of work from the timeline columns: created when the item was created in progress
    (it left an in-progress status before it ever entered one), else the first entry into one.
    """
    created_in_progress = pl.col("first_from_ip").is_not_null() & (
        pl.col("first_to_ip").is_null() | (pl.col("first_from_ip") <= pl.col("first_to_ip"))
    )
    return (
        pl.when(created_in_progress)
        .then(pl.col("created"))
        .otherwise(pl.col("first_to_ip"))
        .alias("started")
    )


# --------------------------------------------------------------------------- prepared inputs


@dataclass(frozen=True)
class FlowData:
    """The canonical frames joined once, so every metric runs on integer keys.

    ``items``: live work items with ``ix`` (row number, the join key everywhere below), ``delivery``,
    ``epic_id`` and ``initiative_id`` (first ancestor at that level, itself included), and the
    status timeline columns ``first_to_ip``, ``first_from_ip``, ``last_done`` plus ``started``.
    ``events``: status transitions at or before ``as_of`` of live items, as ``ix``, ``row`` (row in
    ``status_changes``, to fetch status names for a few items), ``at``, ``from_cat``/``to_cat``
    (0 todo, 1 in progress, 2 done). ``calendar``: the organisations' time zones, which cut days
    and weeks. Pure data: build it with ``prepare`` and pass it to the metric functions
    (``data=``) to skip the joins when several metrics run on one snapshot.
    """

    as_of: datetime
    work_levels: tuple[str, ...]
    items: pl.DataFrame
    events: pl.DataFrame
    status_changes: pl.DataFrame
    calendar: Calendar = field(default=UTC_CALENDAR)


def item_frame(
    work_items: pl.DataFrame, work_levels: Sequence[str] = WORK_LEVELS, max_depth: int = 6
) -> pl.DataFrame:
    """Live items with ``ix`` (row number), ``delivery``, ``epic_id`` and ``initiative_id``.

    The hierarchy walk is one parent join, then one numpy gather per level (``max_depth`` up).
    """
    items = live(work_items).with_row_index("ix")
    parent = parent_rows(items)
    level = items["level"]
    # delivery: at a work level and the parent is not (the parent row from the join above, so
    # no second string lookup over the ids)
    at_work = level.is_in(list(work_levels)).fill_null(False).to_numpy()
    parent_at_work = (parent >= 0) & at_work[np.where(parent >= 0, parent, 0)]
    items = items.with_columns(
        (pl.col("level").is_in(list(work_levels)) & ~pl.lit(pl.Series(parent_at_work))).alias(
            "delivery"
        )
    )
    for name, lvl in (("epic_id", "epic"), ("initiative_id", "initiative")):
        rows = first_ancestor_where(parent, (level == lvl).fill_null(False).to_numpy(), max_depth)
        items = items.with_columns(_gather_ids(items["item_id"], rows, name))
    return items


def prepare(
    work_items: pl.DataFrame,
    status_changes: pl.DataFrame,
    as_of: datetime,
    work_levels: Sequence[str] = WORK_LEVELS,
    max_depth: int = 6,
    calendar: Calendar | None = None,
) -> FlowData:
    """Join items and history once (one string join over the status changes, run as one lazy
    query so the filter, the category codes and the join fuse). ``calendar``: the organisations'
    time zones (UTC when None)."""
    items = item_frame(work_items, work_levels, max_depth)
    events = (
        status_changes.lazy()
        .select("item_id", "at", "field", "from_category", "to_category")
        .with_row_index("row")
        .filter(
            (pl.col("field") == "status") & pl.col("at").is_not_null() & (pl.col("at") <= as_of)
        )
        .select(
            "row",
            "item_id",
            "at",
            _code("from_category").alias("from_cat"),
            _code("to_category").alias("to_cat"),
        )
        .join(
            items.lazy().select("item_id", "ix"), on="item_id", how="inner", maintain_order="left"
        )
        .drop("item_id")
        .collect()
    )

    def when(cat: str, code: int) -> pl.Expr:
        return pl.when(pl.col(cat) == code).then(pl.col("at"))

    timeline = (
        events.lazy()
        .group_by("ix")
        .agg(
            when("to_cat", IN_PROGRESS).min().alias("first_to_ip"),
            when("from_cat", IN_PROGRESS).min().alias("first_from_ip"),
            when("to_cat", DONE).max().alias("last_done"),
        )
        .collect()
    )
    # joined on the narrow ix column and stacked beside the (ix-ordered) items: no wide copy
    aligned = items.select("ix").join(timeline, on="ix", how="left", maintain_order="left")
    items = items.with_columns(aligned.drop("ix")).with_columns(started_expr())
    return FlowData(
        as_of, tuple(work_levels), items, events, status_changes, calendar or UTC_CALENDAR
    )


def _data(
    data: FlowData | None,
    work_items: pl.DataFrame,
    status_changes: pl.DataFrame,
    as_of: datetime,
    work_levels: Sequence[str],
) -> FlowData:
    if data is not None:
        return data
    return prepare(work_items, status_changes, as_of, work_levels)


def _grid(groups: pl.DataFrame, start: date, end: date, interval: str = "1d") -> pl.DataFrame:
    """Every group x every date from start to end (inclusive), column ``date``."""
    if end < start:
        return groups.with_columns(pl.lit(None, pl.Date).alias("date")).clear()
    dates = pl.DataFrame({"date": pl.date_range(start, end, interval, eager=True)})
    return groups.join(dates, how="cross")


# --------------------------------------------------------------------------- cycle and lead time


#: The item columns ``cycle_times`` reads.
_CYCLE_READS = (
    "item_id",
    "key",
    "url",
    "title",
    "source",
    "team",
    "organisation",
    "level",
    "raw_type",
    "labels",
    "estimate",
    "business_value",
    "created",
    "started",
    "resolved",
    "last_done",
    "delivery",
    "status_category",
)


def cycle_times(
    work_items: pl.DataFrame,
    status_changes: pl.DataFrame,
    as_of: datetime,
    params: FlowParams | None = None,
    *,
    data: FlowData | None = None,
) -> pl.DataFrame:
    """One row per *done* delivery item with its start, finish, cycle and lead time.

    Columns: item_id, key, url, title, source, team, organisation, level, raw_type, work_type,
    estimate, business_value, created, started (first entry into an in-progress status; created
    when the item was created in progress; null when it went straight to done), done_at (last
    entry into done, else ``resolved``), done_date (Date in the organisation's zone),
    cycle_days (whole days, Vacanti: done date - start date + 1, dates in the organisation's
    zone), cycle_time_days (exact: done_at - started in fractional days), cycle_working_days (the
    organisation's working days from the start date to the done date, both included), lead_days
    (whole: done date - created date + 1), lead_time_days (exact: done_at - created).
    """
    p = params or FlowParams()
    d = _data(data, work_items, status_changes, as_of, p.work_levels)
    zones = _zones(d.calendar, d.items)
    out = (
        d.items.select(_CYCLE_READS)  # narrow first: filtering the wide item frame copies all
        .filter(pl.col("delivery") & (pl.col("status_category") == "done"))
        .with_columns(pl.coalesce("last_done", "resolved").alias("done_at"), work_type_expr(p))
        .filter(pl.col("done_at").is_not_null() & (pl.col("done_at") <= as_of))
        .with_columns(
            pl.when(pl.col("started") <= pl.col("done_at")).then(pl.col("started")).alias("started")
        )
        .with_columns(
            _local("done_at", d.calendar, zones).alias("done_date"),
            _local("started", d.calendar, zones).alias("_start_date"),
            _local("created", d.calendar, zones).alias("_created_date"),
            days_between("started", "done_at").alias("cycle_time_days"),
            pl.when(pl.col("created") <= pl.col("done_at"))
            .then(days_between("created", "done_at"))
            .alias("lead_time_days"),
        )
        .with_columns(
            whole_days("_start_date", "done_date").alias("cycle_days"),
            pl.when(pl.col("lead_time_days").is_not_null())
            .then(whole_days("_created_date", "done_date"))
            .alias("lead_days"),
        )
    )
    return (
        out.with_columns(
            working_days(out, "_start_date", "done_date", d.calendar).alias("cycle_working_days")
        )
        .select(
            "item_id",
            "key",
            "url",
            "title",
            "source",
            "team",
            "organisation",
            "level",
            "raw_type",
            "work_type",
            "estimate",
            "business_value",
            "created",
            "started",
            "done_at",
            "done_date",
            "cycle_days",
            "cycle_time_days",
            "cycle_working_days",
            "lead_days",
            "lead_time_days",
        )
        .sort("done_at", "item_id")
    )


def cycle_time_percentiles(
    cycles: pl.DataFrame,
    as_of: datetime,
    params: FlowParams | None = None,
    by: str = "team",
    *,
    exact: bool = False,
) -> pl.DataFrame:
    """Cycle and lead time percentiles of items done in the window, per ``by``.

    On whole days (``cycle_days`` / ``lead_days``, Vacanti) by default; ``exact=True`` uses the
    fractional ``cycle_time_days`` / ``lead_time_days``. Columns: <by>, items, cycle_p<p> and
    lead_p<p> for each configured percentile, cycle_mean_days (mean of the same values).
    """
    p = params or FlowParams()
    cycle, lead = ("cycle_time_days", "lead_time_days") if exact else ("cycle_days", "lead_days")
    start = as_of - timedelta(days=p.window_days)
    recent = cycles.filter((pl.col("done_at") > start) & (pl.col("done_at") <= as_of))
    aggs: list[pl.Expr] = [pl.len().alias("items")]
    for q in p.percentiles:
        aggs.append(pl.col(cycle).cast(pl.Float64).quantile(q / 100, QUANTILE).alias(f"cycle_p{q}"))
    for q in p.percentiles:
        aggs.append(pl.col(lead).cast(pl.Float64).quantile(q / 100, QUANTILE).alias(f"lead_p{q}"))
    aggs.append(pl.col(cycle).cast(pl.Float64).mean().alias("cycle_mean_days"))
    return recent.with_columns(pl.col(by).fill_null(NO_GROUP)).group_by(by).agg(aggs).sort(by)


# --------------------------------------------------------------------------- throughput


def throughput(
    cycles: pl.DataFrame,
    as_of: datetime,
    by: str = "team",
    start: date | None = None,
    params: FlowParams | None = None,
    *,
    calendar: Calendar | None = None,
) -> pl.DataFrame:
    """Items (and estimate) done per ISO week per ``by``, empty weeks included as zero.

    A week is the ISO week (Monday to Sunday) of ``done_date``, the finish date in the
    organisation's zone (``calendar``, the one ``cycles`` was built with). Columns: <by>, week
    (Date, Monday), items (Int64), estimate (Float64), complete (False for the current, partial
    week, which weekly averages leave out). Today is ``as_of``'s date in the zone furthest ahead.
    Default start: the week holding today - window_days.
    """
    p = params or FlowParams()
    end_day = today(as_of, _zones(calendar or UTC_CALENDAR, cycles))
    first = start or end_day - timedelta(days=p.window_days)
    first_week = monday(first)
    last_week = monday(end_day)
    done = cycles.filter(pl.col("done_at") <= as_of).with_columns(
        pl.col(by).fill_null(NO_GROUP), monday_expr("done_date").alias("week")
    )
    counts = (
        done.filter(pl.col("week") >= first_week)
        .group_by(by, "week")
        .agg(pl.len().cast(pl.Int64).alias("items"), pl.col("estimate").sum().alias("estimate"))
    )
    groups = done.select(by).unique()
    return (
        _grid(groups, first_week, last_week, "1w")
        .rename({"date": "week"})
        .join(counts, on=[by, "week"], how="left")
        .with_columns(
            pl.col("items").fill_null(0),
            pl.col("estimate").fill_null(0.0),
            (pl.col("week") < last_week).alias("complete"),
        )
        .sort(by, "week")
    )


def daily_throughput(
    cycles: pl.DataFrame,
    as_of: datetime,
    window_days: int,
    by: str = "team",
    groups: Sequence[str] | None = None,
    *,
    calendar: Calendar | None = None,
) -> pl.DataFrame:
    """Items done per day over the ``window_days`` full days before today.

    Days are ``done_date`` (the organisation's zone); today is ``as_of``'s date in the zone furthest
    ahead (``calendar``, UTC when None). Zero days are rows with items = 0 (they matter for Monte
    Carlo sampling). Columns: <by>, date, items (Int64). ``groups`` adds groups that had no
    throughput at all.
    """
    day0 = today(as_of, _zones(calendar or UTC_CALENDAR, cycles))
    end = day0 - timedelta(days=1)
    start = day0 - timedelta(days=window_days)
    counts = (
        cycles.filter((pl.col("done_date") >= start) & (pl.col("done_date") <= end))
        .with_columns(pl.col(by).fill_null(NO_GROUP))
        .group_by(by, "done_date")
        .agg(pl.len().cast(pl.Int64).alias("items"))
        .rename({"done_date": "date"})
    )
    names = set(counts[by].to_list()) | set(groups or [])
    group_frame = pl.DataFrame({by: sorted(names)}, schema={by: pl.String})
    return (
        _grid(group_frame, start, end)
        .join(counts, on=[by, "date"], how="left")
        .with_columns(pl.col("items").fill_null(0))
        .sort(by, "date")
    )


# --------------------------------------------------------------------------- WIP and CFD


def _category_counts(
    d: FlowData, as_of: datetime, start: date, by: str, categories: Sequence[str]
) -> pl.DataFrame:
    """(group, date, <category>...): delivery items per category at the end of each day.

    Days are cut in the zone of each item's organisation (``d.calendar``); the grid runs to
    ``as_of``'s date in the zone furthest ahead.

    +1/-1 per transition, summed per day and cumulated. The state before an item's first recorded
    transition is reconstructed so today's count equals the current status category
    (initial = current - sum of the item's deltas), placed at ``created``; dates before ``start``
    count on ``start``. Groups and days are small dense integers, so the sums are numpy bincounts
    on (group, day) cells of the output grid instead of group-bys over millions of events.
    """
    cats = list(categories)
    items = d.items
    zones = _zones(d.calendar, items)
    end = today(as_of, zones)
    group = items[by].fill_null(NO_GROUP)
    keep = (items["delivery"] & (items["created"] <= as_of)).fill_null(False).to_numpy()
    names = group.unique().sort()
    gid = group.cast(pl.Enum(names)).to_physical().to_numpy().astype(np.int64)
    present = np.unique(gid[keep])
    schema = {"group": pl.String, "date": pl.Date, **{c: pl.Int64 for c in cats}}
    if end < start or len(present) == 0:
        return pl.DataFrame(schema=schema)
    n_days = (end - start).days + 1
    cells = len(names) * n_days
    first_day = (start - date(1970, 1, 1)).days

    def day(dates: pl.Series) -> np.ndarray:
        """Day index in the grid (Date = days since 1970), earlier dates on ``start``."""
        return np.maximum(dates.to_physical().to_numpy().astype(np.int64) - first_day, 0)

    ix = d.events["ix"].to_numpy()
    ev_keep = keep[ix]
    ev_ix = ix[ev_keep]
    if zones == ["UTC"]:
        event_day = d.events["at"].dt.date()
        created_day = items["created"].dt.date()
    else:
        org = items["organisation"].gather(ix)
        event_day = (
            pl.DataFrame({"at": d.events["at"], "organisation": org})
            .select(_local("at", d.calendar, zones))
            .to_series()
        )
        created_day = items.select(_local("created", d.calendar, zones)).to_series()
    ev_cell = gid[ev_ix] * n_days + day(event_day.filter(pl.Series(ev_keep)))
    kept_rows = np.flatnonzero(keep)
    item_cell = gid[kept_rows] * n_days + day(created_day.gather(kept_rows))
    counts: dict[str, Any] = {}
    for c in cats:
        code = _CODES[c]
        to_c = (d.events["to_cat"] == code).fill_null(False).to_numpy()[ev_keep]
        from_c = (d.events["from_cat"] == code).fill_null(False).to_numpy()[ev_keep]
        delta = to_c.astype(np.int64) - from_c.astype(np.int64)
        per_item = np.bincount(ev_ix, weights=delta, minlength=len(keep))[kept_rows]
        now = (items["status_category"] == c).fill_null(False).to_numpy()[kept_rows]
        grid = np.bincount(ev_cell, weights=delta, minlength=cells) + np.bincount(
            item_cell, weights=now - per_item, minlength=cells
        )
        counts[c] = np.rint(grid.reshape(len(names), n_days)[present].cumsum(axis=1)).astype(
            np.int64
        )
    dates = pl.date_range(start, end, "1d", eager=True)
    return pl.DataFrame(
        {
            "group": names.gather(np.repeat(present, n_days)),
            "date": pl.concat([dates] * len(present)),
            **{c: counts[c].ravel() for c in cats},
        },
        schema=schema,
    )


def wip_daily(cfd: pl.DataFrame, by: str = "team") -> pl.DataFrame:
    """WIP per day = the in-progress band of the cumulative flow (one computation, two views).

    Columns: <by>, date, wip (Int64): delivery items in an in-progress status at the end of the day.
    """
    return cfd.select(by, "date", pl.col("in_progress").alias("wip"))


def cumulative_flow(
    work_items: pl.DataFrame,
    status_changes: pl.DataFrame,
    as_of: datetime,
    by: str = "team",
    start: date | None = None,
    params: FlowParams | None = None,
    *,
    data: FlowData | None = None,
) -> pl.DataFrame:
    """Cumulative flow: delivery items per status category at the end of each day (cut in the
    zone of the item's organisation; the last day is ``as_of``'s date in the zone furthest ahead).

    Columns: <by>, date, todo, in_progress, done (Int64). ``done`` includes everything finished
    before ``start`` (the bands of a CFD stack up from the total ever finished).
    """
    p = params or FlowParams()
    d = _data(data, work_items, status_changes, as_of, p.work_levels)
    first = start or today(as_of, _zones(d.calendar, d.items)) - timedelta(days=p.window_days)
    return _category_counts(d, as_of, first, by, CATEGORIES).rename({"group": by})


# --------------------------------------------------------------------------- ageing WIP


def aging_wip(
    work_items: pl.DataFrame,
    status_changes: pl.DataFrame,
    cycles: pl.DataFrame,
    as_of: datetime,
    params: FlowParams | None = None,
    *,
    data: FlowData | None = None,
    exact: bool = False,
) -> pl.DataFrame:
    """Open in-progress delivery items, their age, and the team's cycle-time percentiles.

    Columns: item_id, key, url, title, team, organisation, raw_status, assignee, started,
    started_known (False: no history, ``created`` used), wip_age_days (whole days, Vacanti:
    today - start date + 1, dates in the organisation's zone), age_days (exact: as_of - started),
    team_p<p> per configured percentile, age_band ("within_p<lowest>", "above_p<p>" for the
    highest percentile exceeded, "no_history" when the team finished nothing in the window),
    over_p85. The bands compare ``wip_age_days`` with the whole-day cycle-time percentiles
    (``exact=True``: ``age_days`` with the exact ones). Sorted oldest first.
    """
    p = params or FlowParams()
    d = _data(data, work_items, status_changes, as_of, p.work_levels)
    zones = _zones(d.calendar, d.items)
    age = "age_days" if exact else "wip_age_days"
    pct = cycle_time_percentiles(cycles, as_of, p, "team", exact=exact).select(
        "team", *[pl.col(f"cycle_p{q}").alias(f"team_p{q}") for q in p.percentiles]
    )
    qs = sorted(p.percentiles)
    band: Any = pl.when(pl.col(f"team_p{qs[0]}").is_null()).then(pl.lit("no_history"))
    for q in reversed(qs):
        band = band.when(pl.col(age) > pl.col(f"team_p{q}")).then(pl.lit(f"above_p{q}"))
    band = band.otherwise(pl.lit(f"within_p{qs[0]}")).alias("age_band")
    over85 = (
        (pl.col(age) > pl.col("team_p85")).fill_null(False)
        if 85 in qs
        else pl.lit(None, pl.Boolean)
    )
    return (
        d.items.filter(pl.col("delivery") & (pl.col("status_category") == "in_progress"))
        .with_columns(
            pl.col("started").is_not_null().alias("started_known"),
            pl.coalesce("started", "created").alias("started"),
        )
        .with_columns(
            days_between("started", pl.lit(as_of)).alias("age_days"),
            whole_days(
                _local("started", d.calendar, zones),
                _local(pl.lit(_in_utc(as_of)), d.calendar, zones),
            ).alias("wip_age_days"),
        )
        .with_columns(pl.col("team").fill_null(NO_GROUP))
        .join(pct, on="team", how="left")
        .with_columns(band, over85.alias("over_p85"))
        .select(
            "item_id",
            "key",
            "url",
            "title",
            "team",
            "organisation",
            "raw_status",
            "assignee",
            "started",
            "started_known",
            "wip_age_days",
            "age_days",
            *[f"team_p{q}" for q in p.percentiles],
            "age_band",
            "over_p85",
        )
        .sort("age_days", "item_id", descending=[True, False])
    )


# --------------------------------------------------------------------------- flow efficiency


def flow_efficiency_items(
    work_items: pl.DataFrame,
    status_changes: pl.DataFrame,
    cycles: pl.DataFrame,
    as_of: datetime,
    params: FlowParams | None = None,
    *,
    data: FlowData | None = None,
) -> pl.DataFrame:
    """Active vs waiting time inside each cycle (started -> done) of items done in the window.

    Active = time in an in-progress status that is active (see FlowParams) while not flagged.
    Waiting = the rest of the cycle: waiting statuses, to-do or done statuses after a move back,
    and flagged (blocked) time. Columns: item_id, team, organisation, work_type, cycle_time_days,
    active_days, waiting_days, flow_efficiency (active / cycle).
    """
    p = params or FlowParams()
    d = _data(data, work_items, status_changes, as_of, p.work_levels)
    window_start = as_of - timedelta(days=p.window_days)
    done = (
        cycles.filter(
            (pl.col("done_at") > window_start)
            & pl.col("started").is_not_null()
            & (pl.col("cycle_time_days") > 0)
        )
        .select(
            "item_id", "team", "organisation", "work_type", "started", "done_at", "cycle_time_days"
        )
        .join(d.items.select("item_id", "ix", "created"), on="item_id", how="inner")
    )
    ids = done["ix"].implode()
    ev = d.events.filter(pl.col("ix").is_in(ids)).sort("ix", "at", "row")
    rows = ev["row"]
    ev = ev.with_columns(
        d.status_changes["from_status"].gather(rows).alias("from_status"),
        d.status_changes["to_status"].gather(rows).alias("to_status"),
    )
    first = (
        ev.group_by("ix")
        .agg(
            pl.col("at").first().alias("next_at"),
            pl.col("from_status").first().alias("status"),
            pl.col("from_cat").first().alias("cat"),
        )
        .join(done.select("ix", pl.col("created").alias("at")), on="ix", how="inner")
    )
    intervals = pl.concat(
        [
            first.select("ix", "at", "next_at", "status", "cat"),
            ev.select(
                "ix",
                "at",
                pl.col("at").shift(-1).over("ix").alias("next_at"),
                pl.col("to_status").alias("status"),
                pl.col("to_cat").alias("cat"),
            ),
        ]
    )
    active_names = [s.lower() for s in p.active_statuses]
    waiting_names = [s.lower() for s in p.waiting_statuses]
    status = pl.col("status").str.to_lowercase()
    is_active = (pl.col("cat") == IN_PROGRESS) & ~status.is_in(waiting_names).fill_null(False)
    if active_names:
        is_active = is_active & status.is_in(active_names).fill_null(False)
    active = (
        intervals.filter(is_active)
        .join(done.select("ix", "started", "done_at"), on="ix", how="inner")
        .with_columns(
            pl.max_horizontal("at", "started").alias("s"),
            pl.min_horizontal(pl.coalesce("next_at", "done_at"), "done_at").alias("e"),
        )
        .filter(pl.col("e") > pl.col("s"))
        .select("ix", "s", "e")
    )
    flags = (
        d.status_changes.select("item_id", "at", "change_id", "field", "to_status")  # narrow first
        .filter(
            (pl.col("field") == "flagged") & (pl.col("at") <= as_of) & pl.col("at").is_not_null()
        )
        .select("item_id", "at", "change_id", "to_status")
        .join(done.select("item_id", "ix"), on="item_id", how="inner")
        .sort("ix", "at", "change_id")  # flag on and off at one moment: the tracker's order
        .with_columns(
            pl.col("at").shift(-1).over("ix").alias("next_at"),
            (
                pl.col("to_status").is_not_null()
                & ~pl.col("to_status").str.to_lowercase().is_in(["", "false", "no", "0", "none"])
            ).alias("on"),
        )
        .filter(pl.col("on"))
        .select("ix", pl.col("at").alias("fs"), pl.col("next_at").alias("fe"))
    )
    blocked = (
        active.join(flags, on="ix", how="inner")
        .with_columns(
            pl.max_horizontal("s", "fs").alias("os"),
            pl.min_horizontal("e", pl.coalesce("fe", "e")).alias("oe"),
        )
        .filter(pl.col("oe") > pl.col("os"))
        .group_by("ix")
        .agg(days_between("os", "oe").sum().alias("flagged_active"))
    )
    active_sum = active.group_by("ix").agg(days_between("s", "e").sum().alias("active_raw"))
    return (
        done.join(active_sum, on="ix", how="left")
        .join(blocked, on="ix", how="left")
        .with_columns(
            (pl.col("active_raw").fill_null(0.0) - pl.col("flagged_active").fill_null(0.0))
            .clip(0.0, None)
            .alias("active_days")
        )
        .with_columns(
            (pl.col("cycle_time_days") - pl.col("active_days"))
            .clip(0.0, None)
            .alias("waiting_days"),
            (pl.col("active_days") / pl.col("cycle_time_days")).alias("flow_efficiency"),
        )
        .select(
            "item_id",
            "team",
            "organisation",
            "work_type",
            "cycle_time_days",
            "active_days",
            "waiting_days",
            "flow_efficiency",
        )
        .sort("item_id")
    )


#: Why a group's flow efficiency is not measurable (``efficiency_note``; null = measurable).
NO_WAITING_CONFIGURED: Final = "no_waiting_states_configured"
NO_WAITING_SEEN: Final = "no_waiting_status_seen"


def _is_waiting_status(p: FlowParams) -> pl.Expr:
    """An in-progress ``status`` (lower-cased name) that counts as waiting, not active."""
    waiting = pl.col("status").is_in([s.lower() for s in p.waiting_statuses]).fill_null(False)
    if p.active_statuses:
        active = pl.col("status").is_in([s.lower() for s in p.active_statuses]).fill_null(False)
        waiting = waiting | ~active
    return waiting


def waiting_states_seen(
    work_items: pl.DataFrame,
    status_changes: pl.DataFrame,
    as_of: datetime,
    params: FlowParams | None = None,
    by: str = "team",
    *,
    data: FlowData | None = None,
) -> pl.DataFrame:
    """Per ``by``: did any delivery item ever (at or before ``as_of``) sit in a waiting state?

    A waiting state is an in-progress status that counts as waiting in flow efficiency: one of
    ``waiting_statuses``, or (when ``active_statuses`` is set) any in-progress status not in it.
    Columns: <by>, waiting_seen (groups with no status history at all are absent).
    """
    p = params or FlowParams()
    d = _data(data, work_items, status_changes, as_of, p.work_levels)
    delivery = d.items.filter(pl.col("delivery")).select(
        "ix", pl.col(by).fill_null(NO_GROUP).alias(by)
    )
    ev = d.events.join(delivery, on="ix", how="inner")
    names = d.status_changes.select(
        pl.col("from_status").str.to_lowercase(), pl.col("to_status").str.to_lowercase()
    )
    states = []
    for cat, column in (("from_cat", "from_status"), ("to_cat", "to_status")):
        inside = ev.filter(pl.col(cat) == IN_PROGRESS)
        states.append(inside.select(by, names[column].gather(inside["row"]).alias("status")))
    seen = pl.concat(states).group_by(by).agg(_is_waiting_status(p).any().alias("waiting_seen"))
    return (
        ev.select(by)
        .unique()
        .join(seen, on=by, how="left")
        .with_columns(pl.col("waiting_seen").fill_null(False))
        .sort(by)
    )


def flow_efficiency(
    work_items: pl.DataFrame,
    status_changes: pl.DataFrame,
    cycles: pl.DataFrame,
    as_of: datetime,
    params: FlowParams | None = None,
    by: str = "team",
    *,
    data: FlowData | None = None,
) -> pl.DataFrame:
    """Flow efficiency per ``by``: total active time / total cycle time of items done in window.

    Measurable only where waiting can be seen: with no waiting states configured
    (``waiting_statuses`` and ``active_statuses`` both empty) every group gets
    ``efficiency_note`` = NO_WAITING_CONFIGURED, and a group whose delivery items never sat in a
    waiting state (``waiting_states_seen``) gets NO_WAITING_SEEN; there ``flow_efficiency`` and
    ``median_item_efficiency`` are null (the workflow makes every in-progress day look active).
    Columns: <by>, items, active_days, waiting_days, flow_efficiency, median_item_efficiency,
    efficiency_note.
    """
    p = params or FlowParams()
    d = _data(data, work_items, status_changes, as_of, p.work_levels)
    per_item = flow_efficiency_items(work_items, status_changes, cycles, as_of, p, data=d)
    if not p.waiting_statuses and not p.active_statuses:
        note = pl.lit(NO_WAITING_CONFIGURED)
    else:
        seen = waiting_states_seen(work_items, status_changes, as_of, p, by, data=d)
        waiting_groups = seen.filter(pl.col("waiting_seen"))[by].implode()
        note = (
            pl.when(pl.col(by).is_in(waiting_groups))
            .then(pl.lit(None, pl.String))
            .otherwise(pl.lit(NO_WAITING_SEEN))
        )
    measurable = pl.col("efficiency_note").is_null()
    return (
        per_item.with_columns(pl.col(by).fill_null(NO_GROUP))
        .group_by(by)
        .agg(
            pl.len().alias("items"),
            pl.col("active_days").sum(),
            pl.col("waiting_days").sum(),
            pl.col("flow_efficiency").median().alias("median_item_efficiency"),
        )
        .with_columns(
            (pl.col("active_days") / (pl.col("active_days") + pl.col("waiting_days"))).alias(
                "flow_efficiency"
            ),
            note.cast(pl.String).alias("efficiency_note"),
        )
        .with_columns(
            pl.when(measurable).then(pl.col("flow_efficiency")).alias("flow_efficiency"),
            pl.when(measurable)
            .then(pl.col("median_item_efficiency"))
            .alias("median_item_efficiency"),
        )
        .select(
            by,
            "items",
            "active_days",
            "waiting_days",
            "flow_efficiency",
            "median_item_efficiency",
            "efficiency_note",
        )
        .sort(by)
    )


# --------------------------------------------------------------------------- distribution


def flow_distribution(
    cycles: pl.DataFrame,
    as_of: datetime,
    params: FlowParams | None = None,
    by: str = "team",
) -> pl.DataFrame:
    """Share of finished work by type (feature / defect / risk / debt) in the window, per ``by``.

    Columns: <by>, work_type, items, estimate, share (of the group's items). Types with no items
    are absent.
    """
    p = params or FlowParams()
    start = as_of - timedelta(days=p.window_days)
    return (
        cycles.filter((pl.col("done_at") > start) & (pl.col("done_at") <= as_of))
        .with_columns(pl.col(by).fill_null(NO_GROUP))
        .group_by(by, "work_type")
        .agg(pl.len().cast(pl.Int64).alias("items"), pl.col("estimate").sum().alias("estimate"))
        .with_columns((pl.col("items") / pl.col("items").sum().over(by)).alias("share"))
        .sort(by, "work_type")
    )


# --------------------------------------------------------------------------- Little's Law


def littles_law(
    wip: pl.DataFrame,
    cycles: pl.DataFrame,
    as_of: datetime,
    params: FlowParams | None = None,
    by: str = "team",
    *,
    calendar: Calendar | None = None,
) -> pl.DataFrame:
    """Sanity check: average WIP against throughput x average cycle time over the window.

    The window is the ``window_days`` full days before today (``as_of``'s date in the zone furthest
    ahead, ``calendar``). ``wip`` is the ``wip_daily`` frame (it must cover the window); the
    cycle time is the exact one (fractional days), in the same unit as WIP per day. Columns:
    <by>, window_start, window_end, avg_wip, throughput_per_day, avg_cycle_time_days,
    predicted_wip, ratio (avg_wip / predicted_wip), consistent (|ratio - 1| <=
    littles_tolerance). Large gaps mean the window is not stable (WIP growing or shrinking) or
    the history is incomplete.
    """
    p = params or FlowParams()
    day0 = today(as_of, _zones(calendar or UTC_CALENDAR, cycles))
    end = day0 - timedelta(days=1)
    start = day0 - timedelta(days=p.window_days)
    avg_wip = (
        wip.filter(pl.col("date").is_between(start, end))
        .group_by(by)
        .agg(pl.col("wip").mean().alias("avg_wip"))
    )
    done = (
        cycles.filter(pl.col("done_date").is_between(start, end))
        .with_columns(pl.col(by).fill_null(NO_GROUP))
        .group_by(by)
        .agg(
            (pl.len() / p.window_days).alias("throughput_per_day"),
            pl.col("cycle_time_days").mean().alias("avg_cycle_time_days"),
        )
    )
    return (
        avg_wip.join(done, on=by, how="full", coalesce=True)
        .with_columns(
            pl.col("avg_wip").fill_null(0.0),
            pl.col("throughput_per_day").fill_null(0.0),
            pl.lit(start).alias("window_start"),
            pl.lit(end).alias("window_end"),
        )
        .with_columns(
            (pl.col("throughput_per_day") * pl.col("avg_cycle_time_days")).alias("predicted_wip")
        )
        .with_columns(
            pl.when(pl.col("predicted_wip") > 0)
            .then(pl.col("avg_wip") / pl.col("predicted_wip"))
            .alias("ratio")
        )
        .with_columns(((pl.col("ratio") - 1).abs() <= p.littles_tolerance).alias("consistent"))
        .select(
            by,
            "window_start",
            "window_end",
            "avg_wip",
            "throughput_per_day",
            "avg_cycle_time_days",
            "predicted_wip",
            "ratio",
            "consistent",
        )
        .sort(by)
    )


# --------------------------------------------------------------------------- summary


def flow_summary(
    cycles: pl.DataFrame,
    wip: pl.DataFrame,
    aging: pl.DataFrame,
    efficiency: pl.DataFrame | None,
    littles: pl.DataFrame | None,
    as_of: datetime,
    params: FlowParams | None = None,
    by: str = "team",
    *,
    calendar: Calendar | None = None,
) -> pl.DataFrame:
    """One row per ``by`` with the headline flow figures (the outputs of the functions above).

    Columns: <by>, items_done (in the window), cycle_p<p> and lead_p<p> per configured percentile
    (whole days), cycle_mean_days, throughput_per_week (items done in the window_days // 7 complete
    ISO weeks before the current one, divided by that number of weeks: the current, partial week
    is left out), wip (delivery items in progress at the end of today, ``as_of``'s date in the zone
    furthest ahead of ``calendar``; ``wip`` rows of one date are summed, so relabelling
    ``by`` to one value gives the total), avg_wip (over the window), aging_over_p85 (open
    in-progress items older than their team's P85), flow_efficiency, efficiency_note (why it is
    null: see ``flow_efficiency``), littles_ratio, littles_consistent (null when ``efficiency`` /
    ``littles`` is None).
    """
    p = params or FlowParams()
    pct = cycle_time_percentiles(cycles, as_of, p, by).rename({"items": "items_done"})
    pct = pct.with_columns(pl.col("items_done").cast(pl.Int64))
    day0 = today(as_of, _zones(calendar or UTC_CALENDAR, cycles, aging))
    start = day0 - timedelta(days=p.window_days)
    weeks = max(1, p.window_days // 7)
    this_week = monday(day0)
    weekly = (
        cycles.filter(
            monday_expr("done_date").is_between(this_week - timedelta(weeks=weeks), this_week)
            & (monday_expr("done_date") < this_week)
            & (pl.col("done_at") <= as_of)
        )
        .with_columns(pl.col(by).fill_null(NO_GROUP))
        .group_by(by)
        .agg((pl.len() / weeks).alias("throughput_per_week"))
    )
    pct = pct.join(weekly, on=by, how="full", coalesce=True)
    per_day = (
        wip.with_columns(pl.col(by).fill_null(NO_GROUP))
        .group_by(by, "date")
        .agg(pl.col("wip").sum())
    )
    wip_now = per_day.filter(pl.col("date") == day0).select(by, pl.col("wip").cast(pl.Int64))
    avg_wip = (
        per_day.filter(pl.col("date").is_between(start, day0 - timedelta(days=1)))
        .group_by(by)
        .agg(pl.col("wip").mean().alias("avg_wip"))
    )
    old = (
        aging.with_columns(pl.col(by).fill_null(NO_GROUP))
        .group_by(by)
        .agg(pl.col("over_p85").fill_null(False).sum().cast(pl.Int64).alias("aging_over_p85"))
    )
    out = pct
    for part in (wip_now, avg_wip, old):
        out = out.join(part, on=by, how="full", coalesce=True)
    if efficiency is not None:
        out = out.join(
            efficiency.select(by, "flow_efficiency", "efficiency_note"), on=by, how="left"
        )
    else:
        out = out.with_columns(
            pl.lit(None, pl.Float64).alias("flow_efficiency"),
            pl.lit(None, pl.String).alias("efficiency_note"),
        )
    if littles is not None:
        out = out.join(
            littles.select(
                by,
                pl.col("ratio").alias("littles_ratio"),
                pl.col("consistent").alias("littles_consistent"),
            ),
            on=by,
            how="left",
        )
    else:
        out = out.with_columns(
            pl.lit(None, pl.Float64).alias("littles_ratio"),
            pl.lit(None, pl.Boolean).alias("littles_consistent"),
        )
    return (
        out.with_columns(
            pl.col("items_done").fill_null(0),
            pl.col("throughput_per_week").fill_null(0.0),
            pl.col("wip").fill_null(0),
            pl.col("aging_over_p85").fill_null(0),
        )
        .select(
            by,
            "items_done",
            *[f"cycle_p{q}" for q in p.percentiles],
            *[f"lead_p{q}" for q in p.percentiles],
            "cycle_mean_days",
            "throughput_per_week",
            "wip",
            "avg_wip",
            "aging_over_p85",
            "flow_efficiency",
            "efficiency_note",
            "littles_ratio",
            "littles_consistent",
        )
        .sort(by)
    )
