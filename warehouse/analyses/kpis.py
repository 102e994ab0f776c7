"""Scrum@Scale KPIs per team sprint and portfolio value (WSJF, effort per team per epic,
investment by theme), with per-sync snapshots for the trends. Transforms:
warehouse/transforms/kpis.py; definitions: docs/kpis.md."""

from __future__ import annotations

from typing import Any

import polars as pl

from pmolens.warehouse.analyses.base import Inputs, analysis, once, snapshot
from pmolens.warehouse.analyses.flow import flow_params
from pmolens.warehouse.transforms.kpis import (
    TEAM_METRICS,
    KpiParams,
    effort_by_team,
    investment_by_theme,
    portfolio_value,
    recent_sprint_kpis,
    snapshot_rows,
    sprint_kpis,
)


def kpi_params(inputs: Inputs) -> KpiParams:
    return inputs.settings.analytics.kpis


@once
def sprints(inputs: Inputs) -> pl.DataFrame:
    """KPIs per team sprint with the team's organisation, once per generation."""
    frame = sprint_kpis(
        inputs.flow_data, inputs.frames["sprints"], kpi_params(inputs), flow_params(inputs)
    )
    return frame.join(inputs.team_organisation, on="team", how="left").select(
        "organisation", *[c for c in frame.columns]
    )


@once
def value(inputs: Inputs) -> pl.DataFrame:
    return portfolio_value(inputs.flow_data.items, kpi_params(inputs))


@analysis("kpi_sprints")
def _kpi_sprints(inputs: Inputs) -> pl.DataFrame:
    return sprints(inputs)


@analysis("kpi_teams")
def _kpi_teams(inputs: Inputs) -> pl.DataFrame:
    """Per team the KPIs over its last ``trend_sprints`` closed sprints."""
    frame = recent_sprint_kpis(sprints(inputs), kpi_params(inputs), "team")
    return frame.join(inputs.team_organisation, on="team", how="left").select(
        "organisation", *frame.columns
    )


@analysis("portfolio_value")
def _value(inputs: Inputs) -> pl.DataFrame:
    return value(inputs)


@analysis("portfolio_effort")
def _effort(inputs: Inputs) -> pl.DataFrame:
    frame = effort_by_team(inputs.flow_data.items)
    return frame.join(inputs.team_organisation, on="team", how="left").select(
        *frame.columns, "organisation"
    )


@analysis("portfolio_investment")
def _investment(inputs: Inputs) -> pl.DataFrame:
    return investment_by_theme(inputs.flow_data.items)


@analysis("portfolio_investment_org")
def _investment_org(inputs: Inputs) -> pl.DataFrame:
    return investment_by_theme(inputs.flow_data.items, "organisation")


@snapshot
def _kpi_snapshot(inputs: Inputs) -> list[dict[str, Any]]:
    """family "kpis": the headline KPIs per team, per organisation and overall; family
    "portfolio_value": value, cost and effort totals per organisation and overall."""
    p = kpi_params(inputs)
    frame = sprints(inputs)
    parts = [
        snapshot_rows(
            recent_sprint_kpis(frame, p, "team"), "kpis", pl.format("team:{}", "team"), TEAM_METRICS
        ),
        snapshot_rows(
            recent_sprint_kpis(
                frame.filter(pl.col("organisation").is_not_null()), p, "organisation"
            ),
            "kpis",
            pl.format("organisation:{}", "organisation"),
            TEAM_METRICS,
        ),
        snapshot_rows(recent_sprint_kpis(frame, p, None), "kpis", pl.col("scope"), TEAM_METRICS),
    ]
    epics = value(inputs).filter(pl.col("level") == "epic")
    money = ["business_value", "cost", "effort_estimate", "effort_done_estimate"]
    totals = [  # null, not 0, when nobody keeps the field
        pl.when(pl.col(c).is_not_null().any()).then(pl.col(c).sum()).cast(pl.Float64).alias(c)
        for c in money
    ] + [pl.col("wsjf").is_not_null().sum().cast(pl.Float64).alias("epics_with_wsjf")]
    parts.append(
        snapshot_rows(
            epics.select(pl.lit("all").alias("scope"), *totals),
            "portfolio_value",
            pl.col("scope"),
            [*money, "epics_with_wsjf"],
        )
    )
    parts.append(
        snapshot_rows(
            epics.filter(pl.col("organisation").is_not_null())
            .group_by("organisation")
            .agg(*totals),
            "portfolio_value",
            pl.format("organisation:{}", "organisation"),
            [*money, "epics_with_wsjf"],
        )
    )
    return pl.concat(parts).to_dicts()
