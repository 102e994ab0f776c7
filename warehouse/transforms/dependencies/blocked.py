"""Age and blocked time: per item, the time flagged or in a blocked status (from the status
history, overlaps counted once), joined onto the edges as the dependent's blocked days. Reads
work items and status changes, not only the edges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from pmolens.warehouse.model import UTC_TS
from pmolens.warehouse.transforms.dependencies.contract import _utc
from pmolens.warehouse.transforms.dependencies.graph import _distinct
from pmolens.warehouse.transforms.flow import days_between, live

BLOCKED_SCHEMA: dict[str, Any] = {
    "item_id": pl.String,
    "blocked_days": pl.Float64,  # flagged or in a blocked status, up to as_of (overlaps once)
    "blocked_now": pl.Boolean,
    "blocked_since": UTC_TS,  # start of the current blocked period
}
#: Blocked statuses of a source that has none configured (``sources.blocked_statuses``' default).
DEFAULT_BLOCKED = ("Blocked", "Impeded", "On Hold")


def flag_on(col: str) -> pl.Expr:
    """A flagged change turns the flag on (Jira "Impediment", ADO "Yes"), not off."""
    return pl.col(col).is_not_null() & ~pl.col(col).str.strip_chars().str.to_lowercase().is_in(
        ["", "false", "no", "0", "none"]
    )


def blocked_status_table(blocked_statuses: Mapping[str, Sequence[str]] | None) -> pl.DataFrame:
    """(source, ``_bs``): each configured source's blocked status names, lower case, to join on
    ``source`` before ``is_blocked``."""
    blocked = blocked_statuses or {}
    return pl.DataFrame(
        {
            "source": list(blocked),
            "_bs": [[s.strip().lower() for s in v] for v in blocked.values()],
        },
        schema={"source": pl.String, "_bs": pl.List(pl.String)},
    )


def is_blocked(col: str) -> pl.Expr:
    """``col`` is one of the row's source's blocked statuses (``_bs``, else ``DEFAULT_BLOCKED``),
    case-insensitive."""
    status = pl.col(col).str.strip_chars().str.to_lowercase()
    return (
        pl.when(pl.col("_bs").is_not_null())
        .then(pl.col("_bs").list.contains(status))
        .otherwise(status.is_in([s.lower() for s in DEFAULT_BLOCKED]))
        .fill_null(False)
    )


def blocked_time(
    work_items: pl.DataFrame,
    status_changes: pl.DataFrame,
    item_ids: pl.Series | None,
    as_of: datetime,
    blocked_statuses: Mapping[str, Sequence[str]] | None = None,
) -> pl.DataFrame:
    """Per item (``item_ids``, default all): time flagged or in a blocked status, from history.

    Intervals: a "flagged" change turning the flag on until the next flagged change; a status
    change into a blocked status (per source, else ``DEFAULT_BLOCKED``) until the next status
    change. Open intervals end at ``as_of``. Overlapping intervals count once. Items whose
    current state is flagged / blocked with no history for it count from ``updated``.
    """
    now = _utc(as_of)
    nowl = pl.lit(now, dtype=UTC_TS)
    items = live(work_items)
    if item_ids is not None:
        items = items.filter(pl.col("item_id").is_in(item_ids.implode()))
    items = items.select(
        "item_id", "source", "flagged", "raw_status", "updated", "created"
    ).with_row_index("ix")
    per_source = blocked_status_table(blocked_statuses)

    changes = (
        status_changes.select("item_id", "source", "at", "change_id", "field", "to_status")
        .filter(pl.col("at").is_not_null() & (pl.col("at") <= nowl))
        .join(items.select("item_id", "ix"), on="item_id", how="inner")
    )
    # the few distinct (source, status) values decide blocked / flag-on once, joined back
    kinds = (
        changes.select("source", "to_status")
        .unique()
        .join(per_source, on="source", how="left")
        .with_columns(is_blocked("to_status").alias("_blk"), flag_on("to_status").alias("_fon"))
        .drop("_bs")
    )
    flag = (pl.col("field") == "flagged").fill_null(False)
    same = (pl.col("ix").shift(-1) == pl.col("ix")) & (pl.col("_f").shift(-1) == pl.col("_f"))
    changes = (
        changes.join(kinds, on=["source", "to_status"], how="left", nulls_equal=True)
        .select(
            "ix",
            flag.cast(pl.Int8).alias("_f"),
            "at",
            pl.when(flag)
            .then(pl.col("_fon"))
            .otherwise(pl.col("_blk"))
            .fill_null(False)
            .alias("_on"),
            "change_id",
        )
        .sort("ix", "_f", "at", "change_id")  # changes at one moment: the tracker's order
        .with_columns(pl.when(same).then(pl.col("at").shift(-1)).alias("_next"))
    )
    on = changes.filter(pl.col("_on"))
    # current state without history behind it: from updated (else created)
    current = (
        items.join(per_source, on="source", how="left")
        .filter(pl.col("flagged").fill_null(False) | is_blocked("raw_status"))
        .join(on.select("ix").unique(), on="ix", how="anti")
        .select(
            "ix",
            pl.coalesce("updated", "created").alias("at"),
            pl.lit(None, UTC_TS).alias("_next"),
        )
    )
    intervals = (
        pl.concat([on.select("ix", "at", "_next"), current])
        .with_columns(
            pl.coalesce("_next", nowl).alias("_end"), pl.col("_next").is_null().alias("_open")
        )
        .filter(pl.col("_end") >= pl.col("at"))
        .sort("ix", "at", "_end")
    )
    intervals = (
        intervals.with_columns(pl.Series("_run", _merged_runs(intervals)))
        .group_by("ix", "_run")
        .agg(
            pl.col("at").min().alias("_s"),
            pl.col("_end").max().alias("_e"),
            pl.col("_open").any().alias("_open"),
        )
    )
    per_item = intervals.group_by("ix").agg(
        days_between("_s", "_e").sum().alias("blocked_days"),
        pl.col("_open").any().alias("blocked_now"),
        pl.col("_s").filter(pl.col("_open")).max().alias("blocked_since"),
    )
    return (
        items.select("ix", "item_id")
        .join(per_item, on="ix", how="left")
        .with_columns(
            pl.col("blocked_days").fill_null(0.0).round(6),
            pl.col("blocked_now").fill_null(False),
        )
        .select([pl.col(c).cast(t) for c, t in BLOCKED_SCHEMA.items()])
        .sort("item_id")
    )


def _merged_runs(intervals: pl.DataFrame) -> np.ndarray:
    """Run number of each interval (sorted by ix, at, _end): a new merged period starts when an
    interval begins after every earlier interval of its item has ended. The running latest end
    per item is one cumulative max over (item, rank of the end), so no window per item."""
    ix = intervals["ix"].to_numpy()
    at = intervals["at"].to_physical().to_numpy()
    end = intervals["_end"].to_physical().to_numpy()
    if len(ix) == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.ones(len(ix), dtype=bool)
    first[1:] = ix[1:] != ix[:-1]
    ends = _distinct(end)
    seg = np.cumsum(first) - 1
    key = seg * len(ends) + np.searchsorted(ends, end)
    reach = ends[np.maximum.accumulate(key) - seg * len(ends)]
    prev = np.empty_like(reach)
    prev[1:] = reach[:-1]
    return np.cumsum(first | (at > prev))


def with_blocked_time(edges: pl.DataFrame, blocked: pl.DataFrame) -> pl.DataFrame:
    """Edges plus the dependent's ``dependent_blocked_days`` / ``_blocked_now`` / ``_blocked_since``."""
    return edges.join(
        blocked.rename({c: f"dependent_{c}" for c in blocked.columns if c != "item_id"}).rename(
            {"item_id": "dependent_id"}
        ),
        on="dependent_id",
        how="left",
        maintain_order="left",
    )
