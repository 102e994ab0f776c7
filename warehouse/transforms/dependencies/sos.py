"""The Scrum of Scrums view: per team, its three questions in figures (does my team hinder
others, what impediments does it have, how interdependent are we), and the per-team drill-downs
(``team_hindering``, ``team_impediments``) with red lines first.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pmolens.warehouse.transforms.dependencies.contract import _team, _with_extras
from pmolens.warehouse.transforms.dependencies.timing import RED_LINES
from pmolens.warehouse.transforms.flow import live

SOS_SCHEMA: dict[str, Any] = {
    "organisation": pl.String,
    "team": pl.String,
    "open_items": pl.Int64,
    # (1) does my team hinder others?
    "hindering": pl.Int64,  # waiting edges where the team is the blocker and the dependent is
    "hindering_red_lines": pl.Int64,  # of which conflict / unscheduled blocker / at risk
    # (2) what impediments does my team have?
    "impeded_items": pl.Int64,  # the team's open items waiting on another team / organisation
    "impeded_cross_org": pl.Int64,
    # (3) how interdependent are we?
    "items_with_external": pl.Int64,
    "interdependence": pl.Float64,  # items_with_external / open_items
    "in_degree": pl.Int64,  # distinct other teams the team waits on
    "out_degree": pl.Int64,  # distinct other teams waiting on the team
    "partners": pl.List(pl.String),  # "team (organisation)" in either direction
}


def _external() -> pl.Expr:
    """Waiting on / for another team; an unresolved end counts as external (it usually is)."""
    return pl.col("cross_team").fill_null(True)


def _open_by_team(edges: pl.DataFrame) -> pl.DataFrame:
    """Open edges that involve another team, with the team-side columns both ways."""
    return edges.filter(
        pl.col("open").fill_null(False)
        & (pl.col("blocker_category") != "done").fill_null(True)
        & (pl.col("dependent_category") != "done").fill_null(True)
        & _external()
    )


def scrum_of_scrums(work_items: pl.DataFrame, edges: pl.DataFrame) -> pl.DataFrame:
    """One row per team with the Scrum of Scrums' three questions in figures (``SOS_SCHEMA``)."""
    sides = [
        f"{p}_{c}" for p in ("blocker", "dependent") for c in ("id", "team", "org", "category")
    ]
    edges = _open_by_team(
        _with_extras(edges).select(*sides, "open", "cross_team", "cross_org", "timing")
    )
    items = live(work_items).filter(pl.col("team").is_not_null())
    open_items = (
        items.filter((pl.col("status_category") != "done").fill_null(True))
        .group_by("organisation", "team")
        .agg(pl.len().cast(pl.Int64).alias("open_items"))
    )
    red = pl.col("timing").is_in(list(RED_LINES))
    out_side = edges.filter(pl.col("blocker_team").is_not_null()).select(
        pl.col("blocker_org").alias("organisation"),
        pl.col("blocker_team").alias("team"),
        pl.col("blocker_id").alias("_item"),
        pl.format("{} ({})", _team("dependent"), pl.col("dependent_org").fill_null("?")).alias(
            "_partner"
        ),
        pl.lit("out").alias("_dir"),
        red.alias("_red"),
        pl.col("cross_org").fill_null(True).alias("_xorg"),
        pl.col("dependent_team").is_not_null().alias("_known"),
    )
    in_side = edges.filter(pl.col("dependent_team").is_not_null()).select(
        pl.col("dependent_org").alias("organisation"),
        pl.col("dependent_team").alias("team"),
        pl.col("dependent_id").alias("_item"),
        pl.format("{} ({})", _team("blocker"), pl.col("blocker_org").fill_null("?")).alias(
            "_partner"
        ),
        pl.lit("in").alias("_dir"),
        red.alias("_red"),
        pl.col("cross_org").fill_null(True).alias("_xorg"),
        pl.col("blocker_team").is_not_null().alias("_known"),
    )
    both = pl.concat([out_side, in_side])
    out = pl.col("_dir") == "out"
    inn = pl.col("_dir") == "in"
    stats = both.group_by("organisation", "team").agg(
        out.sum().cast(pl.Int64).alias("hindering"),
        (out & pl.col("_red")).sum().cast(pl.Int64).alias("hindering_red_lines"),
        pl.col("_item").filter(inn).n_unique().cast(pl.Int64).alias("impeded_items"),
        pl.col("_item")
        .filter(inn & pl.col("_xorg"))
        .n_unique()
        .cast(pl.Int64)
        .alias("impeded_cross_org"),
        pl.col("_item").n_unique().cast(pl.Int64).alias("items_with_external"),
        pl.col("_partner")
        .filter(inn & pl.col("_known"))
        .n_unique()
        .cast(pl.Int64)
        .alias("in_degree"),
        pl.col("_partner")
        .filter(out & pl.col("_known"))
        .n_unique()
        .cast(pl.Int64)
        .alias("out_degree"),
        pl.col("_partner").filter(pl.col("_known")).unique().sort().alias("partners"),
    )
    zero = ["hindering", "hindering_red_lines", "impeded_items", "impeded_cross_org"]
    zero += ["items_with_external", "in_degree", "out_degree"]
    return (
        open_items.join(
            stats, on=["organisation", "team"], how="full", coalesce=True, nulls_equal=True
        )
        .with_columns(
            pl.col("open_items").fill_null(0),
            *[pl.col(c).fill_null(0) for c in zero],
            pl.col("partners").fill_null([]),
        )
        .with_columns(
            pl.when(pl.col("open_items") > 0)
            .then((pl.col("items_with_external") / pl.col("open_items")).round(4))
            .alias("interdependence")
        )
        .select([pl.col(c).cast(t) for c, t in SOS_SCHEMA.items()])
        .sort("organisation", "team", nulls_last=True)
    )


def team_hindering(edges: pl.DataFrame, team: str, organisation: str | None = None) -> pl.DataFrame:
    """SoS question 1 for one team: its open external dependencies as blocker, red lines first."""
    rows = _open_by_team(_with_extras(edges)).filter(pl.col("blocker_team") == team)
    if organisation is not None:
        rows = rows.filter(pl.col("blocker_org") == organisation)
    return _red_first(rows)


def team_impediments(
    edges: pl.DataFrame, team: str, organisation: str | None = None
) -> pl.DataFrame:
    """SoS question 2 for one team: its open items waiting on other teams / organisations."""
    rows = _open_by_team(_with_extras(edges)).filter(pl.col("dependent_team") == team)
    if organisation is not None:
        rows = rows.filter(pl.col("dependent_org") == organisation)
    return _red_first(rows)


def _red_first(rows: pl.DataFrame) -> pl.DataFrame:
    order = pl.col("timing").replace_strict(
        {t: i for i, t in enumerate(RED_LINES)}, default=len(RED_LINES), return_dtype=pl.Int8
    )
    return (
        rows.with_columns(order.alias("_o"))
        .sort(
            ["_o", "slip_days", "dependent_planned_end", "dependent_key", "blocker_key"],
            descending=[False, True, False, False, False],
            nulls_last=True,
        )
        .drop("_o")
    )
