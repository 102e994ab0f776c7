"""Findings across evaluations (new / open / resolved, ``update_findings``) and the 0-100
alignment scores per team or organisation, with their daily trend."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

import polars as pl

from pmolens.warehouse.model import UTC_TS
from pmolens.warehouse.transforms.alignment.context import days_between, lit_ts, utc
from pmolens.warehouse.transforms.alignment.contract import (
    FINDINGS_SCHEMA,
    SEVERITY_WEIGHTS,
    key_expr,
    severity_rank,
)
from pmolens.warehouse.transforms.alignment.text import txt

STATUSES = ("new", "open", "resolved")
#: The stored findings table (result ``findings``): findings plus their lifecycle.
FINDINGS_STATE_SCHEMA: dict[str, Any] = {
    **FINDINGS_SCHEMA,
    "first_seen": UTC_TS,  # the first evaluation that found it (since it was last resolved)
    "last_seen": UTC_TS,
    "resolved_at": UTC_TS,  # the first evaluation that no longer found it
    "status": pl.String,  # new (first seen in this evaluation) / open / resolved
    "open_days": pl.Float64,  # from since (or first_seen) to resolved_at (or as_of)
}
_STATE_KEPT = ("first_seen", "last_seen", "resolved_at")


def _conform(frame: pl.DataFrame | None, schema: Mapping[str, Any]) -> pl.DataFrame:
    if frame is None or frame.width == 0:
        return pl.DataFrame(schema=dict(schema))
    return frame.select(
        [
            pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c)
            for c, t in schema.items()
        ]
    )


def update_findings(
    previous: pl.DataFrame | None,
    current: pl.DataFrame,
    as_of: datetime,
    keep_resolved_days: float = 90.0,
) -> pl.DataFrame:
    """The findings table after one evaluation (``FINDINGS_STATE_SCHEMA``), keyed by (rule,
    item_id), or (rule, organisation, team) for team-level findings.

    New findings get first_seen = last_seen = as_of; still-present ones keep first_seen and move
    last_seen to as_of (their text is refreshed); open ones that are gone get resolved_at = as_of;
    resolved ones stay (unchanged) for ``keep_resolved_days`` after resolved_at, then drop; a
    resolved one that reappears starts again as new. Applying the same evaluation twice changes
    nothing but last_seen.
    """
    now = utc(as_of)
    ts = lit_ts(now)
    prev = _conform(previous, {**FINDINGS_SCHEMA, **{c: UTC_TS for c in _STATE_KEPT}})
    prev = prev.with_columns(key_expr().alias("_k"))
    cur = _conform(current, FINDINGS_SCHEMA).with_columns(key_expr().alias("_k"))
    cur = cur.unique(["rule", "_k"], keep="first", maintain_order=True)
    open_prev = prev.filter(pl.col("resolved_at").is_null())
    keys = ["rule", "_k"]
    seen = cur.join(open_prev.select(*keys, "first_seen"), on=keys, how="left").with_columns(
        pl.coalesce("first_seen", ts).alias("first_seen"),
        ts.alias("last_seen"),
        pl.lit(None, UTC_TS).alias("resolved_at"),
    )
    gone = open_prev.join(cur, on=keys, how="anti").with_columns(ts.alias("resolved_at"))
    kept = (
        prev.filter(pl.col("resolved_at").is_not_null())
        .join(cur, on=keys, how="anti")
        .filter(pl.col("resolved_at") >= lit_ts(now - timedelta(days=keep_resolved_days)))
    )
    cols = [*FINDINGS_SCHEMA, *_STATE_KEPT]
    state = pl.concat([frame.select(cols) for frame in (seen, gone, kept)])
    status = (
        pl.when(pl.col("resolved_at").is_not_null())
        .then(pl.lit("resolved"))
        .when(pl.col("first_seen") == ts)
        .then(pl.lit("new"))
        .otherwise(pl.lit("open"))
    )
    start = pl.min_horizontal("since", "first_seen")
    return (
        state.with_columns(
            status.alias("status"),
            days_between(start, pl.coalesce("resolved_at", ts)).clip(0.0, None).alias("open_days"),
            severity_rank().alias("_rank"),
            pl.col("resolved_at").is_not_null().alias("_resolved"),
        )
        .sort(
            ["_resolved", "_rank", "rule", "organisation", "team", "key", "item_id"],
            descending=[False, True, False, False, False, False, False],
            nulls_last=True,
        )
        .select(list(FINDINGS_STATE_SCHEMA))
    )


SCORE_KEYS: dict[str, list[str]] = {
    "team": ["organisation", "team"],
    "organisation": ["organisation"],
}


def alignment_scores(
    work_items: pl.DataFrame,
    findings: pl.DataFrame,
    by: Literal["team", "organisation"] = "team",
) -> pl.DataFrame:
    """[organisation, (team,) items, items_with_findings, weighted_penalty, score, findings].

    items: live items of the group that are open or carry an open finding; each item's penalty is
    the weight of its most severe open finding (info 0.25, warning 0.5, critical 1.0, none 0);
    weighted_penalty = sum of the penalties; score = 100 * (1 - weighted_penalty / items), so
    100 = no findings. An item counts for the group it belongs to in work_items. findings: the
    open findings whose team / organisation is the group, team-level ones (no item) included -
    those do not move the score, which is about items.
    """
    if by not in SCORE_KEYS:
        raise ValueError(f"by must be 'team' or 'organisation', got {by!r}")
    keys = SCORE_KEYS[by]
    items = work_items
    if "is_deleted" in items.columns:
        items = items.filter(~pl.col("is_deleted").fill_null(False))
    found = findings
    if "resolved_at" in found.columns:
        found = found.filter(pl.col("resolved_at").is_null())
    penalty = (
        found.filter(pl.col("item_id").is_not_null())
        .group_by("item_id")
        .agg(
            pl.col("severity")
            .replace_strict(SEVERITY_WEIGHTS, default=0.0, return_dtype=pl.Float64)
            .max()
            .alias("_w")
        )
    )
    counted = found.group_by(keys).agg(pl.len().cast(pl.Int64).alias("findings"))
    return (
        items.select("item_id", *keys, "status_category")
        .join(penalty, on="item_id", how="left")
        .filter((pl.col("status_category") != "done").fill_null(True) | pl.col("_w").is_not_null())
        .with_columns(pl.col("_w").fill_null(0.0))
        .group_by(keys)
        .agg(
            pl.len().cast(pl.Int64).alias("items"),
            (pl.col("_w") > 0).sum().cast(pl.Int64).alias("items_with_findings"),
            pl.col("_w").sum().alias("weighted_penalty"),
        )
        .with_columns((100.0 * (1.0 - pl.col("weighted_penalty") / pl.col("items"))).alias("score"))
        .join(counted, on=keys, how="left", nulls_equal=True)
        .with_columns(pl.col("findings").fill_null(0))
        .sort(keys, nulls_last=True)
    )


def score_scope(by: Literal["team", "organisation"]) -> pl.Expr:
    """The ``scope`` under which a score row's trend is kept in metric_snapshots."""
    if by == "team":
        return pl.format("team:{}/{}", txt("organisation", ""), txt("team", ""))
    return pl.format("organisation:{}", txt("organisation", ""))


def daily_trend(snapshots: pl.DataFrame, as_of: datetime, days: int) -> pl.DataFrame:
    """[scope, metric, day, value]: the last snapshot value per scope, metric and UTC day, over
    the ``days`` days up to as_of (syncs may run every few minutes; a trend is per day)."""
    start = lit_ts(utc(as_of) - timedelta(days=days))
    return (
        snapshots.filter((pl.col("as_of") >= start) & (pl.col("as_of") <= lit_ts(utc(as_of))))
        .with_columns(pl.col("as_of").dt.convert_time_zone("UTC").dt.date().alias("day"))
        .sort("as_of", "generation")
        .group_by("scope", "metric", "day", maintain_order=True)
        .agg(pl.col("value").last())
        .sort("scope", "metric", "day")
    )
