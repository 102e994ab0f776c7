"""Backlog health per team, organisation and programme (Chief PO) backlog with the A-E grade and
the signals behind it; net flow per sprint, scope change and progress per epic.
Definitions: docs/backlog-health.md."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import polars as pl
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from pmolens.api.deps import (
    FormatDep,
    ResultsDep,
    RuntimeDep,
    records,
    require_viewer,
    table,
    where_equal,
)

router = APIRouter(tags=["backlog"], dependencies=[Depends(require_viewer)])

By = Literal["team", "organisation", "programme"]
Grade = Literal["A", "B", "C", "D", "E"]


class BacklogHealth(BaseModel):
    by: By
    scope: str
    organisation: str | None
    scope_title: str | None
    items: int
    estimate_total: float | None
    pct_estimated: float | None
    age_median_days: float | None
    age_p85_days: float | None
    stale_share: float | None
    ranked_share: float | None
    duplicate_ranks: int
    ordering_present: bool | None
    ready_items: int
    ready_estimate: float
    velocity: float | None
    ready_depth_sprints: float | None
    top_n_items: int
    top_n_ready_share: float | None
    intake_per_sprint: float | None
    throughput_per_sprint: float | None
    net_flow_per_sprint: float | None
    epics_open: int
    epic_progress_count: float | None
    epic_progress_estimate: float | None
    scope_change_share: float | None
    initiatives_open: int
    initiatives_with_epics_share: float | None
    epics_with_stories_share: float | None
    points: int
    grade: Grade
    grade_reasons: list[str]


class SprintFlow(BaseModel):
    team: str
    organisation: str | None
    sprint_id: str
    sprint: str | None
    start: datetime
    end: datetime
    closed: bool
    intake_items: int
    intake_estimate: float
    done_items: int
    done_estimate: float
    net_items: int
    net_estimate: float


class ScopeChange(BaseModel):
    epic_id: str
    key: str | None
    title: str | None
    team: str | None
    organisation: str | None
    programme: str | None
    window_start: datetime
    items_at_window_start: int
    items_added_in_window: int
    estimate_at_window_start: float
    estimate_added_in_window: float
    scope_change_share: float | None


class EpicProgress(BaseModel):
    epic_id: str
    key: str | None
    url: str | None
    title: str | None
    team: str | None
    organisation: str | None
    programme: str | None
    status_category: str | None
    rank: str | None
    due_date: date | None
    items_total: int
    items_done: int
    estimate_total: float
    estimate_done: float
    progress_count: float | None
    progress_estimate: float | None


OrgQuery = Annotated[str | None, Query(description="backlogs of this organisation")]
TeamQuery = Annotated[str | None, Query(description="this team's backlog")]
ProgrammeQuery = Annotated[
    str | None,
    Query(description="a programme: the initiative's key, or the organisation for work under no "
          "initiative"),
]  # fmt: skip


@router.get("/backlog-health", response_model=list[BacklogHealth])
def backlog_health(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    by: Annotated[By | None, Query(description="kind of backlog (default: all three)")] = None,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
    programme: ProgrammeQuery = None,
    grade: Annotated[Grade | None, Query()] = None,
):
    """One row per backlog with every signal, the grade and, in words, why it is not an A.
    ``team`` / ``programme`` select that one team / programme backlog."""
    frame = results.get("backlog_health")
    if by is not None:
        frame = frame.filter(pl.col("by") == by)
    if organisation is not None:
        frame = frame.filter(pl.col("organisation") == organisation)
    if team is not None:
        frame = frame.filter((pl.col("by") == "team") & (pl.col("scope") == team))
    if programme is not None:
        frame = frame.filter((pl.col("by") == "programme") & (pl.col("scope") == programme))
    if grade is not None:
        frame = frame.filter(pl.col("grade") == grade)
    return table(frame, fmt, "backlog-health") or records(frame)


@router.get("/backlog-health/net-flow", response_model=list[SprintFlow])
def net_flow(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
    closed: Annotated[bool | None, Query(description="only closed (or only open) sprints")] = None,
):
    """Intake vs throughput of delivery items per team sprint (net flow > 0: backlog grows)."""
    frame = results.get("backlog_net_flow")
    frame = where_equal(frame, organisation=organisation, team=team, closed=closed)
    return table(frame, fmt, "backlog-net-flow") or records(frame)


@router.get("/backlog-health/scope-change", response_model=list[ScopeChange])
def scope_change(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
    programme: ProgrammeQuery = None,
    min_share: Annotated[
        float | None, Query(ge=0, le=1, description="only epics with at least this share added")
    ] = None,
):
    """Per epic: delivery items added in the last ``scope_window_days`` / items it held at the
    window start (scope added; null for an epic that held nothing then)."""
    frame = where_equal(
        results.get("backlog_scope_change"),
        organisation=organisation,
        team=team,
        programme=programme,
    )
    if min_share is not None:
        frame = frame.filter(pl.col("scope_change_share") >= min_share)
    return table(frame, fmt, "backlog-scope-change") or records(frame)


@router.get("/backlog-health/epics", response_model=list[EpicProgress])
def epics(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
    programme: ProgrammeQuery = None,
    status: Annotated[Literal["todo", "in_progress", "done"] | None, Query()] = None,
):
    """Epic progress by count and by estimate of the delivery items under each epic."""
    frame = where_equal(
        results.get("backlog_epic_progress"),
        organisation=organisation,
        team=team,
        programme=programme,
    )
    if status is not None:
        frame = frame.filter(pl.col("status_category") == status)
    return table(frame, fmt, "backlog-epics") or records(frame)
