"""Cycles: strongly connected components of the waiting graph with two or more members, at item
level and at team level (a team cycle: each team waits, through some chain of items, on the
next). Work in a cycle cannot finish without someone breaking it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from pmolens.warehouse.transforms.dependencies.contract import _team, _with_extras
from pmolens.warehouse.transforms.dependencies.graph import (
    _ABOUT,
    Condensed,
    _node_attrs,
    _scc,
    condense,
    waiting_graph,
)

CYCLES_SCHEMA: dict[str, Any] = {
    "level": pl.String,  # item / team
    "cycle": pl.Int64,  # 1.. per level, largest first
    "size": pl.Int64,
    "members": pl.List(pl.String),  # item keys, or team names
    "member_ids": pl.List(pl.String),  # item ids, or "organisation/team"
    "teams": pl.List(pl.String),
    "organisations": pl.List(pl.String),
    "edges": pl.Int64,  # waiting edges inside the cycle
    "cross_org": pl.Boolean,
}


def _cycle_rows(
    level: str, nodes: pl.DataFrame, labels: np.ndarray, src: np.ndarray, dst: np.ndarray
) -> pl.DataFrame:
    """Components of >= 2 nodes as cycle rows; ``nodes`` has member, member_id, team, org."""
    inside = labels[src] == labels[dst]
    internal = pl.DataFrame({"_c": labels[src[inside]]}).group_by("_c").len("edges")
    rows = (
        nodes.with_columns(pl.Series("_c", labels))
        .with_columns(pl.len().over("_c").alias("size"))
        .filter(pl.col("size") >= 2)
        .sort("member", "member_id")
        .group_by("_c")
        .agg(
            pl.len().cast(pl.Int64).alias("size"),
            pl.col("member"),
            pl.col("member_id"),
            pl.col("team").drop_nulls().unique().sort().alias("teams"),
            pl.col("org").drop_nulls().unique().sort().alias("organisations"),
        )
        .join(internal, on="_c", how="left")
        .sort(["size", "member"], descending=[True, False])
        .with_columns(
            pl.lit(level).alias("level"),
            pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("cycle"),
            (pl.col("organisations").list.len() > 1).alias("cross_org"),
        )
        .rename({"member": "members", "member_id": "member_ids"})
    )
    return rows.select([pl.col(c).cast(t) for c, t in CYCLES_SCHEMA.items()])


def dependency_cycles(edges: pl.DataFrame, condensed: Condensed | None = None) -> pl.DataFrame:
    """Strongly connected components of the waiting graph with >= 2 members, at item level and
    at team level (a team cycle: each team waits, through some chain of items, on the next)."""
    edges = _with_extras(edges)
    cond = condensed if condensed is not None else condense(waiting_graph(edges))
    g = cond.graph
    nodes = _node_attrs(edges, g, _ABOUT, "blocker").select(
        pl.col("item_id").alias("member_id"), pl.col("key").alias("member"), "team", "org"
    )
    items = _cycle_rows("item", nodes, cond.comp, g.src, g.dst)

    team_pairs = (
        edges.lazy()
        .filter(pl.col("waiting").fill_null(False) & pl.col("cross_team").fill_null(False))
        .select(
            pl.format("{}/{}", pl.col("blocker_org").fill_null(""), _team("blocker")).alias("b"),
            pl.format("{}/{}", pl.col("dependent_org").fill_null(""), _team("dependent")).alias(
                "d"
            ),
            pl.col("blocker_org").alias("bo"),
            _team("blocker").alias("bt"),
            pl.col("dependent_org").alias("do"),
            _team("dependent").alias("dt"),
        )
        .unique(["b", "d"])
        .collect()
    )
    team_nodes = (
        pl.concat(
            [
                team_pairs.select(
                    pl.col("b").alias("member_id"),
                    pl.col("bt").alias("team"),
                    pl.col("bo").alias("org"),
                ),
                team_pairs.select(
                    pl.col("d").alias("member_id"),
                    pl.col("dt").alias("team"),
                    pl.col("do").alias("org"),
                ),
            ]
        )
        .unique("member_id")
        .sort("member_id")
        .with_columns(
            pl.col("team").alias("member"), pl.int_range(pl.len(), dtype=pl.Int64).alias("_ix")
        )
    )
    coded = team_pairs.join(
        team_nodes.select(pl.col("member_id").alias("b"), pl.col("_ix").alias("s")), on="b"
    ).join(team_nodes.select(pl.col("member_id").alias("d"), pl.col("_ix").alias("t")), on="d")
    tsrc, tdst = coded["s"].to_numpy(), coded["t"].to_numpy()
    teams = _cycle_rows(
        "team",
        team_nodes.select("member", "member_id", "team", "org"),
        _scc(team_nodes.height, tsrc, tdst),
        tsrc,
        tdst,
    )
    return pl.concat([items, teams])
