"""The edges contract: the columns every dependency signal reads (``EDGES_SCHEMA``, shared
with alignment, impediments, forecast and backlog, plus ``EDGE_EXTRA_SCHEMA``) and the helpers
that let a contract-only frame (hand-built, or from another producer) stand in for a full one.

Kept apart from the code that builds the edges so every other module here (and other domains)
can depend on the shape without depending on how the edges are made.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl

_END_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("key", pl.String),
    ("url", pl.String),
    ("title", pl.String),
    ("team", pl.String),
    ("org", pl.String),
    ("epic", pl.String),  # item_id of the nearest epic (the item itself when it is an epic)
    ("category", pl.String),
    ("sprint", pl.String),  # sprint_id
    ("planned_end", pl.Date),
    ("estimate", pl.Float64),
    ("priority_rank", pl.Int32),
)

#: Columns of ``dependency_edges``: the shared contract (alignment, impediments, forecast, backlog).
EDGES_SCHEMA: dict[str, Any] = {
    "blocker_id": pl.String,
    "dependent_id": pl.String,
    "link_id": pl.String,
    "source": pl.String,
    "raw_type": pl.String,
    **{f"blocker_{c}": t for c, t in _END_COLUMNS},
    **{f"dependent_{c}": t for c, t in _END_COLUMNS},
    "dependent_business_value": pl.Float64,
    "cross_team": pl.Boolean,
    "cross_org": pl.Boolean,
    "open": pl.Boolean,
    "unresolved": pl.Boolean,
    "timing": pl.String,
    "slip_days": pl.Int64,
}
#: Added after the contract columns (consumers may ignore them).
EDGE_EXTRA_SCHEMA: dict[str, Any] = {
    "blocker_epic_key": pl.String,
    "dependent_epic_key": pl.String,
    "waiting": pl.Boolean,  # resolved, blocker not done and dependent not done
    "age_days": pl.Float64,  # as_of - the later creation of the two known ends
}
FULL_EDGES_SCHEMA: dict[str, Any] = {**EDGES_SCHEMA, **EDGE_EXTRA_SCHEMA}

DAY_US = 86_400_000_000
NO_TEAM = "(no team)"


def _utc(as_of: datetime) -> datetime:
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    return as_of.astimezone(UTC)


def empty_edges() -> pl.DataFrame:
    return pl.DataFrame(schema=FULL_EDGES_SCHEMA)


def _with_extras(edges: pl.DataFrame) -> pl.DataFrame:
    """Contract-only edges (hand-built, or from another producer) get the extra columns."""
    missing = [c for c in EDGE_EXTRA_SCHEMA if c not in edges.columns]
    if not missing:
        return edges
    add = {
        "blocker_epic_key": pl.lit(None, pl.String),
        "dependent_epic_key": pl.lit(None, pl.String),
        "waiting": (
            ~pl.col("unresolved").fill_null(False)
            & (pl.col("blocker_category") != "done").fill_null(True)
            & (pl.col("dependent_category") != "done").fill_null(True)
        ),
        "age_days": pl.lit(None, pl.Float64),
    }
    return edges.with_columns([add[c].alias(c) for c in missing])


def _team(prefix: str) -> pl.Expr:
    return pl.col(f"{prefix}_team").fill_null(NO_TEAM)
