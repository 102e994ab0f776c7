"""Flow metrics from status history: the per-team summary (GET /flow) and its tables: cycle time,
throughput, WIP, cumulative flow, aging WIP, flow efficiency, distribution, Little's Law.
Definitions: docs/flow.md."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import polars as pl
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from pmolens.api.deps import (
    Day,
    FormatDep,
    Limit,
    Offset,
    Page,
    ResultsDep,
    RuntimeDep,
    paged,
    records,
    require_viewer,
    table,
    where_equal,
)

router = APIRouter(tags=["flow"], dependencies=[Depends(require_viewer)])

WorkType = Literal["feature", "defect", "risk", "debt"]
Percentiles = dict[str, float | None]  # "p50" -> days, one key per configured percentile
#: Why flow efficiency is null (docs/flow.md): no waiting states configured, or none in the history.
EfficiencyNote = Literal["no_waiting_states_configured", "no_waiting_status_seen"]


class FlowSummary(BaseModel):
    """One team's headline flow figures over the look-back window ([analytics.flow])."""

    team: str
    organisation: str | None
    items_done: int
    cycle_time_days: Percentiles
    lead_time_days: Percentiles
    cycle_mean_days: float | None
    throughput_per_week: float
    wip: int
    avg_wip: float | None
    aging_over_p85: int
    flow_efficiency: float | None
    efficiency_note: EfficiencyNote | None
    littles_ratio: float | None
    littles_consistent: bool | None


class CycleTime(BaseModel):
    item_id: str
    key: str | None
    url: str | None
    title: str | None
    source: str | None
    team: str | None
    organisation: str | None
    level: str | None
    raw_type: str | None
    work_type: WorkType
    estimate: float | None
    created: datetime | None
    started: datetime | None
    done_at: datetime
    done_date: date
    cycle_days: int | None  # whole days (Vacanti), dates in the organisation's zone
    cycle_time_days: float | None  # exact, fractional days
    cycle_working_days: int | None
    lead_days: int | None
    lead_time_days: float | None


class ThroughputWeek(BaseModel):
    team: str
    organisation: str | None
    week: date
    items: int
    estimate: float


class WipDay(BaseModel):
    team: str
    organisation: str | None
    date: date
    wip: int


class CfdDay(BaseModel):
    team: str
    organisation: str | None
    date: date
    todo: int
    in_progress: int
    done: int


class AgingItem(BaseModel):
    item_id: str
    key: str | None
    url: str | None
    title: str | None
    team: str
    organisation: str | None
    raw_status: str | None
    assignee: str | None
    started: datetime | None
    started_known: bool
    wip_age_days: int | None  # whole days (Vacanti), compared with the percentiles
    age_days: float | None  # exact, fractional days
    team_percentiles: Percentiles
    age_band: str
    over_p85: bool | None


class Efficiency(BaseModel):
    team: str
    organisation: str | None
    items: int
    active_days: float
    waiting_days: float
    flow_efficiency: float | None
    median_item_efficiency: float | None
    efficiency_note: EfficiencyNote | None


class Distribution(BaseModel):
    team: str
    organisation: str | None
    work_type: WorkType
    items: int
    estimate: float | None
    share: float


class LittlesLaw(BaseModel):
    team: str
    organisation: str | None
    window_start: date
    window_end: date
    avg_wip: float
    throughput_per_day: float
    avg_cycle_time_days: float | None
    predicted_wip: float | None
    ratio: float | None
    consistent: bool | None


OrgQuery = Annotated[str | None, Query(description="teams of this organisation")]
TeamQuery = Annotated[str | None, Query(description="this team")]
FromQuery = Annotated[Day | None, Query(alias="from", description="first day (inclusive)")]
ToQuery = Annotated[Day | None, Query(alias="to", description="last day (inclusive)")]


def _between(
    frame: pl.DataFrame, column: str, start: date | None, end: date | None
) -> pl.DataFrame:
    if start is not None:
        frame = frame.filter(pl.col(column) >= start)
    if end is not None:
        frame = frame.filter(pl.col(column) <= end)
    return frame


def _nest(rows: list[dict[str, Any]], prefix: str, into: str) -> list[dict[str, Any]]:
    """Moves the ``<prefix><p>`` percentile columns of each row into ``into: {"p<p>": value}``."""
    for row in rows:
        row[into] = {
            f"p{k.removeprefix(prefix)}": row.pop(k) for k in list(row) if k.startswith(prefix)
        }
    return rows


@router.get("/flow", response_model=list[FlowSummary])
def summary(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
):
    """Per team: cycle and lead time percentiles, throughput per week, WIP now and on average,
    items aging past the team's P85, flow efficiency and the Little's Law check."""
    frame = where_equal(results.get("flow_summary"), organisation=organisation, team=team)
    exported = table(frame, fmt, "flow")
    if exported is not None:
        return exported
    return _nest(_nest(records(frame), "cycle_p", "cycle_time_days"), "lead_p", "lead_time_days")


@router.get("/flow/cycle-time", response_model=Page[CycleTime])
def cycle_time(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
    work_type: Annotated[WorkType | None, Query()] = None,
    start: FromQuery = None,
    end: ToQuery = None,
    limit: Limit = 100,
    offset: Offset = 0,
):
    """Every finished delivery item with its cycle time (first in progress -> done) and lead
    time (created -> done), by finish date; ``from``/``to`` filter on the finish date."""
    frame = where_equal(
        results.get("flow_cycle_times"),
        organisation=organisation,
        team=team,
        work_type=work_type,
    )
    frame = _between(frame, "done_date", start, end)
    return paged(frame, fmt, "flow-cycle-time", limit, offset)


@router.get("/flow/throughput", response_model=list[ThroughputWeek])
def throughput(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
    start: FromQuery = None,
    end: ToQuery = None,
):
    """Items and estimate finished per ISO week (Monday) per team, empty weeks as zero."""
    frame = where_equal(results.get("flow_throughput"), organisation=organisation, team=team)
    frame = _between(frame, "week", start, end)
    return table(frame, fmt, "flow-throughput") or records(frame)


@router.get("/flow/wip", response_model=list[WipDay])
def wip(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
    start: FromQuery = None,
    end: ToQuery = None,
):
    """Delivery items in an in-progress status at the end of each day, per team."""
    frame = _between(
        where_equal(results.get("flow_wip"), organisation=organisation, team=team),
        "date",
        start,
        end,
    )
    return table(frame, fmt, "flow-wip") or records(frame)


@router.get("/flow/cfd", response_model=list[CfdDay])
def cfd(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
    start: FromQuery = None,
    end: ToQuery = None,
):
    """Cumulative flow: delivery items per status category at the end of each day, per team."""
    frame = _between(
        where_equal(results.get("flow_cfd"), organisation=organisation, team=team),
        "date",
        start,
        end,
    )
    return table(frame, fmt, "flow-cfd") or records(frame)


@router.get("/flow/aging", response_model=list[AgingItem])
def aging(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
    over_p85: Annotated[
        bool | None, Query(description="only items older than their team's P85 cycle time")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
):
    """Open in-progress items, oldest first, with their team's cycle-time percentiles."""
    frame = where_equal(
        results.get("flow_aging"), organisation=organisation, team=team, over_p85=over_p85
    )
    exported = table(frame, fmt, "flow-aging")
    if exported is not None:
        return exported
    return _nest(records(frame.head(limit)), "team_p", "team_percentiles")


@router.get("/flow/efficiency", response_model=list[Efficiency])
def efficiency(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
):
    """Active time / cycle time of items finished in the window (blocked counts as waiting);
    null with ``efficiency_note`` where the team's workflow shows no waiting to measure."""
    frame = where_equal(results.get("flow_efficiency"), organisation=organisation, team=team)
    return table(frame, fmt, "flow-efficiency") or records(frame)


@router.get("/flow/distribution", response_model=list[Distribution])
def distribution(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
    work_type: Annotated[WorkType | None, Query()] = None,
):
    """Share of finished items per work type (feature / defect / risk / debt) in the window."""
    frame = where_equal(
        results.get("flow_distribution"),
        organisation=organisation,
        team=team,
        work_type=work_type,
    )
    return table(frame, fmt, "flow-distribution") or records(frame)


@router.get("/flow/littles-law", response_model=list[LittlesLaw])
def littles_law(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
):
    """Average WIP against throughput x average cycle time over the window (a sanity check)."""
    frame = where_equal(results.get("flow_littles_law"), organisation=organisation, team=team)
    return table(frame, fmt, "flow-littles-law") or records(frame)
