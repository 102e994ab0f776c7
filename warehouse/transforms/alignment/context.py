"""The rule context: the frames of one evaluation and the intermediates several rules share
(live items, the parent walk, nearest epics, team sprints, status changes), each computed once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cached_property

import numpy as np
import polars as pl

from pmolens.warehouse.model import SCHEMAS, UTC_TS
from pmolens.warehouse.transforms.dependencies import EDGES_SCHEMA
from pmolens.warehouse.transforms.hierarchy import parent_rows

MAX_DEPTH = 6  # parent walk depth (the contract's limit; deeper trees are cut)
DAY_US = 86_400_000_000
_CHANGE_STATES = ("from_status", "to_status", "to_category")  # the ones rules read


def utc(as_of: datetime) -> datetime:
    """``as_of`` in UTC; a naive datetime is refused (its zone would be a guess)."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    return as_of.astimezone(UTC)


def days_between(start: pl.Expr | str, end: pl.Expr | str) -> pl.Expr:
    """Fractional days from start to end (both datetimes)."""
    s = pl.col(start) if isinstance(start, str) else start
    e = pl.col(end) if isinstance(end, str) else end
    return (e - s).dt.total_microseconds() / DAY_US


def lit_ts(value: datetime) -> pl.Expr:
    """A datetime literal of the warehouse's timestamp type (UTC, microseconds)."""
    return pl.lit(value, dtype=UTC_TS)


class RuleContext:
    """The frames of one evaluation plus intermediates that several rules share (computed once)."""

    def __init__(
        self, frames: Mapping[str, pl.DataFrame], edges: pl.DataFrame | None, as_of: datetime
    ) -> None:
        self.frames = frames
        self.as_of = utc(as_of)
        self.edges = edges if edges is not None else pl.DataFrame(schema=EDGES_SCHEMA)

    def frame(self, name: str) -> pl.DataFrame:
        got = self.frames.get(name)
        return got if got is not None else pl.DataFrame(schema=SCHEMAS[name])

    @cached_property
    def items(self) -> pl.DataFrame:
        """Live work items plus ``_open`` (not done) and ``_type`` (a readable type name)."""
        items = self.frame("work_items")
        if "is_deleted" in items.columns:
            items = items.filter(~pl.col("is_deleted").fill_null(False))
        return items.with_columns(
            (pl.col("status_category") != "done").fill_null(True).alias("_open"),
            pl.coalesce("raw_type", pl.col("level").str.to_titlecase(), pl.lit("Item")).alias(
                "_type"
            ),
        )

    @cached_property
    def ancestors(self) -> pl.DataFrame:
        """(item_id, anc_id, anc_level, distance>=1): every ancestor found by walking parent_id.

        One numpy gather per level over parent row numbers (at most MAX_DEPTH), never a loop per
        row; a parent that is not a live item ends the walk, a cycle ends at the depth limit.
        """
        items = self.items
        ids = items["item_id"]
        parent = parent_rows(items)  # -1: no parent, or the parent is not a live item
        rows = np.arange(items.height, dtype=np.int64)
        anc = parent
        found = []
        for distance in range(1, MAX_DEPTH + 1):
            keep = anc >= 0
            rows, anc = rows[keep], anc[keep]
            if rows.size == 0:
                break
            found.append((rows, anc, distance))
            anc = parent[anc]
        schema = {
            "item_id": pl.String,
            "anc_id": pl.String,
            "anc_level": pl.String,
            "distance": pl.Int32,
        }
        if not found:
            return pl.DataFrame(schema=schema)
        level = items["level"]
        return pl.concat(
            [
                pl.DataFrame(
                    {
                        "item_id": ids.gather(r),
                        "anc_id": ids.gather(a),
                        "anc_level": level.gather(a),
                        "distance": pl.Series(np.full(len(r), d, dtype=np.int32)),
                    },
                    schema=schema,
                )
                for r, a, d in found
            ]
        )

    @cached_property
    def epic_of(self) -> pl.DataFrame:
        """(item_id, epic_id): the nearest epic above each item (the item itself excluded)."""
        return (
            self.ancestors.filter(pl.col("anc_level") == "epic")
            .unique("item_id", keep="first", maintain_order=True)  # nearest: distance order
            .select("item_id", pl.col("anc_id").alias("epic_id"))
        )

    @cached_property
    def sprints(self) -> pl.DataFrame:
        """Team sprints (one row per sprint and team it serves) with ``_state`` (tracker state,
        else derived from dates) and ``organisation`` (the team's)."""
        as_of = lit_ts(self.as_of)
        derived = (
            pl.when(pl.col("start").is_null() | pl.col("end").is_null())
            .then(pl.lit(None, pl.String))
            .when(pl.col("start") > as_of)
            .then(pl.lit("future"))
            .when(pl.col("end") > as_of)
            .then(pl.lit("active"))
            .otherwise(pl.lit("closed"))
        )
        sprints = self.frame("sprints").with_columns(
            pl.coalesce(pl.col("state").str.to_lowercase(), derived).alias("_state")
        )
        teams = self.frame("teams").select("team", "source", pl.col("organisation").alias("_t_org"))
        return (
            sprints.join(teams.unique(["team", "source"]), on=["team", "source"], how="left")
            .join(self.source_org, on="source", how="left")
            .with_columns(pl.coalesce("_t_org", "_s_org").alias("organisation"))
            .drop("_t_org", "_s_org")
        )

    @cached_property
    def source_org(self) -> pl.DataFrame:
        """(source, _s_org): the organisation of each source (sources, else teams, else items)."""
        parts = [
            self.frame(name).select("source", pl.col("organisation").alias("_s_org"))
            for name in ("sources", "teams")
        ]
        parts.append(self.items.select("source", pl.col("organisation").alias("_s_org")))
        return (
            pl.concat(parts)
            .filter(pl.col("source").is_not_null() & pl.col("_s_org").is_not_null())
            .unique("source", keep="first", maintain_order=True)
        )

    @cached_property
    def status_changes(self) -> pl.DataFrame:
        """Status changes (field "status") up to as_of, of live items: the columns the rules
        read (5M rows at scale: every column kept costs memory), plus ``_row``, the item's row
        in ``items``, so later steps group and look up by integer instead of by id string."""
        return (  # lazy: one pass, no filtered copy before the join (less peak memory)
            self.frame("status_changes")
            .lazy()
            .select("item_id", "change_id", "at", "field", *_CHANGE_STATES)
            .filter(
                (pl.col("field").fill_null("status") == "status")
                & pl.col("at").is_not_null()
                & (pl.col("at") <= lit_ts(self.as_of))
            )
            .drop("field")
            .join(
                self.items.lazy().select("item_id").with_row_index("_row"),
                on="item_id",
                how="inner",
                maintain_order="left",
            )
            .collect()
        )

    @cached_property
    def last_change(self) -> pl.DataFrame:
        """(item_id, last_change_at): the latest status change of each item."""
        latest = self.status_changes.group_by("_row").agg(
            pl.col("at").max().alias("last_change_at")
        )
        return latest.select(self.items["item_id"].gather(latest["_row"]), "last_change_at")
