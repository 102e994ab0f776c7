"""The Scrum@Scale impediment backlog: what blocks work, what it holds up, and who must solve it.

An impediment is an open live item that is of level "impediment", is flagged, sits in a blocked
status, or is blocked by an open dependency. Each gets an age, a weight (what it holds up) and an
escalation level on the Scrum@Scale ladder: the team, then the Scrum of Scrums ("sos"), then the
Executive Action Team ("eat"). The backlog is ordered by weight. Definitions: docs/impediments.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import polars as pl

from pmolens.warehouse.model import SCHEMAS, UTC_TS
from pmolens.warehouse.settings_analytics import ImpedimentParams

LEVELS = ("team", "sos", "eat")
#: Blocked statuses of a source that has none configured (``sources.blocked_statuses``' default).
DEFAULT_BLOCKED = ("Blocked", "Impeded", "On Hold")
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
    "created",
    "updated",
    "estimate",
    "business_value",
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


def _flag_on(col: str) -> pl.Expr:
    """A flagged change turns the flag on (Jira "Impediment", ADO "Yes"), not off."""
    return pl.col(col).is_not_null() & ~pl.col(col).str.strip_chars().str.to_lowercase().is_in(
        ["", "false", "no", "0", "none"]
    )


def impediment_backlog(
    work_items: pl.DataFrame,
    edges: pl.DataFrame,
    status_changes: pl.DataFrame,
    as_of: datetime,
    thresholds: ImpedimentParams | Mapping[str, Any] | None = None,
    blocked_statuses: Mapping[str, Sequence[str]] | None = None,
) -> pl.DataFrame:
    """The ordered impediment backlog, one row per impediment (``BACKLOG_SCHEMA``).

    reason: the first that applies of type / flagged / blocked_status / blocked_by_dependency.
    since: the earliest start among the reasons that apply (type: created; flagged: the last time
    the flag went on, else updated; blocked_status: the last change into the current status,
    else updated; blocked_by_dependency: the later creation of the item and its blocker, the
    earliest over its open blockers). held_up_*: the item itself (unless it is an impediment
    record) plus the open items it directly blocks. Order: weight, then age, descending.
    ``blocked_statuses``: source -> its blocked status names (case-insensitive); a source not
    listed uses ``DEFAULT_BLOCKED``.
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
        .select("item_id", "field", "to_status", "at")
        .filter(pl.col("at").is_not_null() & (pl.col("at") <= now))
    )

    edges = (
        edges.lazy()  # lazy: only the columns used below are filtered
        .filter(pl.col("dependent_id").is_not_null() & ~pl.col("unresolved").fill_null(False))
        .select(
            "blocker_id",
            "dependent_id",
            "blocker_category",
            "dependent_category",
            "dependent_key",
            "dependent_estimate",
            "dependent_business_value",
        )
        .collect()
    )
    created = work_items.lazy().select("item_id", "created")
    # earliest over open blockers of max(dependent created, blocker created) =
    # max(dependent created, earliest blocker created), so one join per edge, one per dependent
    # (a null created: max ignores it, so a null blocker created makes the dependent's count)
    per_dependent = (
        edges.lazy()
        .filter(pl.col("blocker_category").is_not_null() & (pl.col("blocker_category") != "done"))
        .select("dependent_id", "blocker_id")
        .join(created.rename({"item_id": "blocker_id", "created": "_bc"}), on="blocker_id")
        .group_by("dependent_id")
        .agg(pl.col("_bc").min(), pl.col("_bc").is_null().any().alias("_bc_null"))
        .join(created.rename({"item_id": "dependent_id", "created": "_dc"}), on="dependent_id")
    )
    blockers_open = per_dependent.select(
        pl.col("dependent_id").alias("item_id"),
        pl.when(pl.col("_dc").is_null())
        .then(pl.col("_bc"))
        .when(pl.col("_bc_null"))
        .then(pl.col("_dc"))
        .otherwise(pl.max_horizontal("_dc", "_bc"))
        .alias("_dep_since"),
    )
    blocked = blocked_statuses or {}
    per_source = pl.DataFrame(
        {
            "source": list(blocked),
            "_bs": [[s.strip().lower() for s in v] for v in blocked.values()],
        },
        schema={"source": pl.String, "_bs": pl.List(pl.String)},
    )
    status = pl.col("raw_status").str.strip_chars().str.to_lowercase()
    flagged_expr = pl.col("flagged").fill_null(False)
    status_expr = (
        pl.when(pl.col("_bs").is_not_null())
        .then(pl.col("_bs").list.contains(status))
        .otherwise(status.is_in([s.lower() for s in DEFAULT_BLOCKED]))
    )
    cand = (
        items.join(per_source.lazy(), on="source", how="left")
        .join(blockers_open, on="item_id", how="left")
        .with_columns(
            (pl.col("level") == "impediment").fill_null(False).alias("_type"),
            flagged_expr.alias("_flagged"),
            status_expr.fill_null(False).alias("_blocked"),
            pl.col("_dep_since").is_not_null().alias("_dep"),
        )
        .filter(pl.col("_type") | pl.col("_flagged") | pl.col("_blocked") | pl.col("_dep"))
        .collect()
    )
    # the history matters only for flagged / blocked candidates: look only at theirs
    flagged_ids = cand.lazy().filter(pl.col("_flagged")).select("item_id")
    flag_since = (
        changes.filter(pl.col("field") == "flagged")
        .join(flagged_ids, on="item_id", how="semi")
        .filter(_flag_on("to_status"))
        .group_by("item_id")
        .agg(pl.col("at").max().alias("_flag_at"))
        .collect()
    )
    status_since = (
        changes.filter(pl.col("field").fill_null("status") == "status")
        .join(cand.lazy().filter(pl.col("_blocked")).select("item_id", "raw_status"), on="item_id")
        .filter(
            pl.col("to_status").str.strip_chars().str.to_lowercase()
            == pl.col("raw_status").str.strip_chars().str.to_lowercase()
        )
        .group_by("item_id")
        .agg(pl.col("at").max().alias("_status_at"))
        .collect()
    )
    cand = cand.join(flag_since, on="item_id", how="left").join(
        status_since, on="item_id", how="left"
    )
    since = pl.min_horizontal(
        pl.when(pl.col("_type")).then(pl.col("created")),
        pl.when(pl.col("_flagged")).then(pl.coalesce("_flag_at", "updated", "created")),
        pl.when(pl.col("_blocked")).then(pl.coalesce("_status_at", "updated", "created")),
        pl.when(pl.col("_dep")).then(pl.col("_dep_since")),
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
    cand = cand.with_columns(reason.alias("reason"), since.alias("since"))

    held_self = (
        cand.lazy()
        .filter(~pl.col("_type"))
        .select(
            pl.col("item_id").alias("_imp"),
            pl.col("item_id").alias("_held"),
            pl.col("key").alias("_key"),
            pl.col("estimate").alias("_est"),
            pl.col("business_value").alias("_bv"),
        )
    )
    held_deps = (
        edges.lazy()
        .filter((pl.col("dependent_category") != "done").fill_null(True))
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
    )
    held = (
        pl.concat([held_self, held_deps])
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
