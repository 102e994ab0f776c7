"""Scrum@Scale KPIs per team sprint with their trend, and portfolio value: WSJF, value vs cost,
effort per team per epic, investment by theme. Definitions: docs/kpis.md.

``/portfolio`` itself (the hierarchy overview) lives in api/routes/portfolio.py; the
``/portfolio/value``, ``/portfolio/effort`` and ``/portfolio/investment`` views live here."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import polars as pl
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from pmolens.api.deps import (
    Day,
    FormatDep,
    ResultsDep,
    RuntimeDep,
    records,
    require_viewer,
    table,
    where_equal,
)
from pmolens.warehouse.transforms.kpis import TEAM_METRICS

router = APIRouter(tags=["kpis"], dependencies=[Depends(require_viewer)])


class SprintKpi(BaseModel):
    organisation: str | None
    team: str
    sprint_id: str
    sprint: str | None
    start: datetime
    end: datetime
    closed: bool
    throughput_items: int
    done_estimate: float
    business_value_done: float | None
    defects_done: int
    defect_share: float | None
    escaped_defects: int | None
    committed_items: int
    committed_estimate: float
    committed_done_items: int
    committed_done_estimate: float
    predictability: float | None
    predictability_estimate: float | None
    carried_in_items: int
    carried_out_items: int
    wip_at_end: int
    wip_age_days_at_end: float | None


class TeamKpi(BaseModel):
    organisation: str | None
    team: str
    sprints: int
    velocity: float | None
    throughput_per_sprint: float | None
    predictability: float | None
    defect_share: float | None
    carried_out_per_sprint: float | None
    business_value_per_sprint: float | None


class KpiTrendPoint(BaseModel):
    generation: int
    as_of: datetime
    velocity: float | None = None
    throughput_per_sprint: float | None = None
    predictability: float | None = None
    defect_share: float | None = None
    carried_out_per_sprint: float | None = None
    business_value_per_sprint: float | None = None


class ValueRow(BaseModel):
    item_id: str
    key: str | None
    url: str | None
    title: str | None
    level: Literal["epic", "initiative"]
    team: str | None
    organisation: str | None
    status_category: str | None
    initiative_id: str | None
    business_value: float | None
    time_criticality: float | None
    risk_reduction: float | None
    cost: float | None
    effort_items: int
    effort_estimate: float
    effort_done_estimate: float
    progress_estimate: float | None
    job_size: float | None
    cost_of_delay: float | None
    wsjf: float | None
    wsjf_rank: int | None


class EffortRow(BaseModel):
    epic_id: str
    epic_key: str | None
    epic_title: str | None
    epic_team: str | None
    team: str
    items: int
    items_done: int
    estimate: float
    estimate_done: float
    share_of_epic: float | None
    organisation: str | None


class InvestmentRow(BaseModel):
    organisation: str | None = None
    theme_id: str | None
    theme_key: str | None
    theme_title: str | None
    items: int
    items_open: int
    estimate: float
    estimate_open: float
    estimate_done: float
    epics: int
    cost: float | None
    business_value: float | None
    share_estimate: float | None


OrgQuery = Annotated[str | None, Query(description="only this organisation")]
TeamQuery = Annotated[str | None, Query(description="only this team")]


@router.get("/kpis", response_model=list[SprintKpi])
def kpis(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
    sprint: Annotated[str | None, Query(description="sprint id or name")] = None,
    closed: Annotated[bool | None, Query(description="only closed (true) or open sprints")] = None,
    since: Annotated[
        Day | None, Query(description="sprints that ended on or after this day")
    ] = None,
):
    """Productivity, value, quality, predictability and sustainability per team sprint."""
    frame = where_equal(results.get("kpi_sprints"), organisation=organisation, team=team)
    if sprint is not None:
        frame = frame.filter((pl.col("sprint_id") == sprint) | (pl.col("sprint") == sprint))
    if closed is not None:
        frame = frame.filter(pl.col("closed") == closed)
    if since is not None:
        frame = frame.filter(pl.col("end").dt.date() >= since)
    return table(frame, fmt, "kpis") or records(frame)


@router.get("/kpis/teams", response_model=list[TeamKpi])
def kpi_teams(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
):
    """Per team the KPIs over its last ``trend_sprints`` closed sprints (the headline)."""
    frame = where_equal(results.get("kpi_teams"), organisation=organisation, team=team)
    return table(frame, fmt, "kpi-teams") or records(frame)


@router.get("/kpis/trend", response_model=list[KpiTrendPoint])
def trend(
    runtime: RuntimeDep,
    fmt: FormatDep,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
):
    """The headline KPIs per sync (metric_snapshots), for a team, an organisation or all."""
    scope = f"team:{team}" if team else f"organisation:{organisation}" if organisation else "all"
    long = runtime.warehouse.query(
        "SELECT generation, as_of, metric, value FROM metric_snapshots "
        "WHERE family = 'kpis' AND scope = ? ORDER BY generation",
        [scope],
    )
    if long.height:
        wide = long.pivot(on="metric", index=["generation", "as_of"], values="value")
    else:
        wide = pl.DataFrame(schema={"generation": pl.Int64, "as_of": pl.Datetime("us", "UTC")})
    wide = (
        wide.with_columns(
            [pl.lit(None, pl.Float64).alias(m) for m in TEAM_METRICS if m not in wide.columns]
        )
        .select("generation", "as_of", *TEAM_METRICS)
        .sort("generation")
    )
    return table(wide, fmt, "kpi-trend") or records(wide)


@router.get("/portfolio/value", response_model=list[ValueRow])
def value(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
    level: Annotated[Literal["epic", "initiative"] | None, Query()] = None,
    open_only: Annotated[bool, Query(alias="open", description="only items not done")] = False,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
):
    """Value, cost, effort and WSJF per epic and initiative, best WSJF first per level."""
    frame = where_equal(results.get("portfolio_value"), organisation=organisation, team=team)
    frame = where_equal(frame, level=level)
    if open_only:
        frame = frame.filter(pl.col("status_category") != "done")
    frame = frame.head(limit)
    return table(frame, fmt, "portfolio-value") or records(frame)


@router.get("/portfolio/effort", response_model=list[EffortRow])
def effort(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: Annotated[str | None, Query(description="teams of this organisation")] = None,
    team: TeamQuery = None,
    epic: Annotated[str | None, Query(description="one epic, by item id or key")] = None,
):
    """Resource view: each epic's work per team (items, estimate, share of the epic)."""
    frame = where_equal(results.get("portfolio_effort"), organisation=organisation, team=team)
    if epic is not None:
        frame = frame.filter((pl.col("epic_id") == epic) | (pl.col("epic_key") == epic))
    return table(frame, fmt, "portfolio-effort") or records(frame)


@router.get("/portfolio/investment", response_model=list[InvestmentRow])
def investment(
    runtime: RuntimeDep, results: ResultsDep, fmt: FormatDep, organisation: OrgQuery = None
):
    """Where the effort goes: delivery work per initiative (theme); theme_id null = work with
    no initiative above it. With ``organisation``: that organisation's work and shares."""
    if organisation is None:
        frame = results.get("portfolio_investment")
    else:
        frame = results.get("portfolio_investment_org").filter(
            pl.col("organisation") == organisation
        )
    return table(frame, fmt, "portfolio-investment") or records(frame)
