"""Building the edges: every ``blocks`` link (stored blocker -> dependent, see
warehouse/model.py) as one row with both ends' team, organisation, epic, status, sprint and
planned end, the cross-team / cross-organisation / open / unresolved flags and the timing verdict.
Everything else in this package is computed from that frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np
import polars as pl

from pmolens.warehouse.model import SCHEMAS, UTC_TS
from pmolens.warehouse.transforms.dependencies.contract import FULL_EDGES_SCHEMA, _utc
from pmolens.warehouse.transforms.dependencies.timing import _timing
from pmolens.warehouse.transforms.flow import days_between, live
from pmolens.warehouse.transforms.hierarchy import first_ancestor_where, parent_rows


def _frame(frames: Mapping[str, pl.DataFrame], name: str) -> pl.DataFrame:
    got = frames.get(name)
    return got if got is not None else pl.DataFrame(schema=SCHEMAS[name])


def _ends(frames: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """One row per live item with the columns an edge end carries (unprefixed)."""
    items = live(_frame(frames, "work_items"))
    sprints = (
        _frame(frames, "sprints")
        .select("sprint_id", pl.col("end").dt.date().alias("_sprint_end"))
        .unique("sprint_id", keep="first")
    )
    epic = _epic_rows(items)
    has_epic = pl.Series(epic >= 0)
    at = pl.Series(np.maximum(epic, 0))
    return (
        items.select(
            "item_id",
            "key",
            "url",
            "title",
            "team",
            pl.col("organisation").alias("org"),
            pl.col("status_category").alias("category"),
            pl.col("sprint_id").alias("sprint"),
            "due_date",
            "estimate",
            "priority_rank",
            "business_value",
            "created",
            pl.when(has_epic).then(pl.col("item_id").gather(at)).alias("epic"),
            pl.when(has_epic).then(pl.col("key").gather(at)).alias("epic_key"),
        )
        .join(sprints, left_on="sprint", right_on="sprint_id", how="left", maintain_order="left")
        .with_columns(
            pl.coalesce("due_date", "_sprint_end").alias("planned_end"),
            pl.lit(True).alias("found"),
        )
        .drop("due_date", "_sprint_end")
    )


def _epic_rows(items: pl.DataFrame, max_depth: int = 6) -> np.ndarray:
    """Row of each item's nearest epic, itself included, at most ``max_depth`` parents up (a
    parent that is not a live item ends the walk); -1: none."""
    is_epic = (items["level"] == "epic").fill_null(False).to_numpy()
    return first_ancestor_where(parent_rows(items), is_epic, max_depth)


def dependency_edges(frames: Mapping[str, pl.DataFrame], as_of: datetime) -> pl.DataFrame:
    """Every ``blocks`` link as blocker -> dependent with both ends described and flagged.

    Columns: ``EDGES_SCHEMA`` (the shared contract) then ``EDGE_EXTRA_SCHEMA``. An end that is
    null or not a live item leaves its columns null and makes the edge ``unresolved``; its id is
    kept as read. Ordered by source and link id.
    """
    now = pl.lit(_utc(as_of), dtype=UTC_TS)
    ends = _ends(frames)
    # sort the slim links first, then look each end up by row number once and gather its
    # columns (a gather, not a join that hashes and copies the wide columns twice)
    links = (
        _frame(frames, "links")
        .filter(pl.col("kind") == "blocks")
        .select(
            pl.col("from_item").alias("blocker_id"),
            pl.col("to_item").alias("dependent_id"),
            "link_id",
            "source",
            "raw_type",
        )
        .sort("source", "link_id", "blocker_id", "dependent_id", nulls_last=True)
    )
    index = ends.select("item_id").with_row_index("_ix")
    attrs = ends.drop("item_id")

    def side(prefix: str, id_col: str) -> pl.DataFrame:
        rows = links.select(pl.col(id_col).alias("item_id")).join(
            index, on="item_id", how="left", maintain_order="left"
        )["_ix"]
        return attrs.gather(rows).rename({c: f"{prefix}_{c}" for c in attrs.columns})

    edges = pl.concat(
        [links, side("blocker", "blocker_id"), side("dependent", "dependent_id")],
        how="horizontal",
    )
    both = pl.col("blocker_found").fill_null(False) & pl.col("dependent_found").fill_null(False)
    other_org = pl.col("blocker_org").ne_missing(pl.col("dependent_org"))
    other_team = pl.col("blocker_team").ne_missing(pl.col("dependent_team"))
    bp, dp = pl.col("blocker_planned_end"), pl.col("dependent_planned_end")
    not_done = (
        (pl.col("blocker_category") != "done").fill_null(True),
        (pl.col("dependent_category") != "done").fill_null(True),
    )
    edges = edges.with_columns(
        pl.when(both).then(other_org | other_team).alias("cross_team"),
        pl.when(both).then(other_org).alias("cross_org"),
        (not_done[0] | not_done[1]).alias("open"),
        (~both).alias("unresolved"),
        _timing(dp, bp).alias("timing"),
        (both & not_done[0] & not_done[1]).alias("waiting"),
        days_between(pl.max_horizontal("blocker_created", "dependent_created"), now).alias(
            "age_days"
        ),
    ).with_columns(
        pl.when(pl.col("timing") == "conflict")
        .then((bp - dp).dt.total_days())
        .cast(pl.Int64)
        .alias("slip_days")
    )
    return edges.select([pl.col(c).cast(t) for c, t in FULL_EDGES_SCHEMA.items()])
