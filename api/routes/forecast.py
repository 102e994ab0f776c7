"""Monte Carlo forecasts: when open epics and initiatives land (P50/P85/P95, dependency-aware,
with the driving dependency) and how many items each team finishes by a date.
Definitions: docs/forecast.md."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import polars as pl
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field, StringConstraints

from pmolens.api.deps import (
    AS_OF_DESCRIPTION,
    AsOfMoment,
    Day,
    FormatDep,
    ResultsDep,
    RuntimeDep,
    records,
    require_viewer,
    table,
)
from pmolens.warehouse.analyses.forecast import find_epic, parse_change, what_if
from pmolens.warehouse.transforms.forecast import WhatIfError, forecast_how_many

router = APIRouter(tags=["forecast"], dependencies=[Depends(require_viewer)])


class EpicForecast(BaseModel):
    epic_id: str
    key: str | None
    title: str | None
    url: str | None
    team: str | None
    organisation: str | None
    teams: list[str]
    backlog_position: int
    remaining_items: int
    p50: date | None  # None: not within the horizon in that share of trials
    p85: date | None
    p95: date | None
    own_p85: date | None  # without waiting for blockers
    target_date: date | None
    p_on_time: float | None
    driven_by: str | None  # the blocker node that set the date most often
    driven_by_key: str | None
    driven_share: float | None  # share of trials in which it did
    dependency_delay_days_p85: int | None
    blockers: list[str]
    unforecast_blockers: int
    cycle_broken: bool
    note: str | None


class InitiativeForecast(BaseModel):
    initiative_id: str
    key: str | None
    title: str | None
    url: str | None
    organisation: str | None
    epics: int
    remaining_items: int
    p50: date | None
    p85: date | None
    p95: date | None
    target_date: date | None
    p_on_time: float | None
    driven_by: str | None
    driven_by_key: str | None
    driven_share: float | None


class TeamHowMany(BaseModel):
    team: str
    organisation: str | None
    target_date: date
    days: int
    items_p50: int
    items_p85: int  # at least this many with 85 % confidence
    items_p95: int
    items_mean: float
    window_days: int
    zero_day_share: float | None


OrgQuery = Annotated[str | None, Query(description="only this organisation")]
TeamQuery = Annotated[str | None, Query(description="only work of this team")]


@router.get("/forecast/epics", response_model=list[EpicForecast])
def epics(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: OrgQuery = None,
    team: Annotated[
        str | None, Query(description="epics with remaining work in this team (or owned by it)")
    ] = None,
    epic: Annotated[str | None, Query(description="one epic, by item id or key")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
):
    """When each forecast open epic lands, latest P85 last; ``driven_by`` names the blocker that
    set the date most often."""
    frame = results.get("forecast_epics")
    if organisation is not None:
        frame = frame.filter(pl.col("organisation") == organisation)
    if team is not None:
        frame = frame.filter((pl.col("team") == team) | pl.col("teams").list.contains(team))
    if epic is not None:
        frame = frame.filter((pl.col("epic_id") == epic) | (pl.col("key") == epic))
    frame = frame.head(limit)
    return table(frame, fmt, "forecast-epics") or records(frame)


@router.get("/forecast/initiatives", response_model=list[InitiativeForecast])
def initiatives(
    runtime: RuntimeDep, results: ResultsDep, fmt: FormatDep, organisation: OrgQuery = None
):
    """When each initiative (release) lands: per trial the latest of its forecast epics."""
    frame = results.get("forecast_initiatives")
    if organisation is not None:
        frame = frame.filter(pl.col("organisation") == organisation)
    return table(frame, fmt, "forecast-initiatives") or records(frame)


@router.get("/forecast/teams", response_model=list[TeamHowMany])
def teams(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    date_: Annotated[
        Day | None,
        Query(
            alias="date",
            description="count items finished up to and including this day "
            "(default: default_weeks after the sync, 6 weeks unless configured)",
        ),
    ] = None,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
):
    """How many items each team finishes by ``date`` (Monte Carlo over its daily throughput)."""
    params = runtime.settings.analytics.forecast
    daily = results.get("forecast_daily_throughput")
    if organisation is not None:
        daily = daily.filter(pl.col("organisation") == organisation)
    if team is not None:
        daily = daily.filter(pl.col("team") == team)
    if daily.height == 0:
        return table(daily.clear(), fmt, "forecast-teams") or []
    last = daily["date"].max()
    assert isinstance(last, date), last  # a Date column with rows
    day0 = last + timedelta(days=1)
    target = date_ or day0 + timedelta(weeks=params.default_weeks)
    if target < day0 or target > day0 + timedelta(days=params.max_horizon_days):
        raise HTTPException(
            422,
            f"date: must be between {day0} (the sync day) and "
            f"{day0 + timedelta(days=params.max_horizon_days)} (max_horizon_days), got {target}",
        )
    as_of = datetime(day0.year, day0.month, day0.day, tzinfo=UTC)
    frame = forecast_how_many(daily, as_of, [target], params.trials, params.seed).join(
        daily.select("team", "organisation").unique("team"), on="team", how="left"
    )
    frame = frame.select(
        "team", "organisation", *[c for c in frame.columns if c not in ("team", "organisation")]
    )
    return table(frame, fmt, "forecast-teams") or records(frame)


class WhatIfPin(BaseModel):
    id: str = Field(description="The pinned item or node, by id.")
    key: str | None
    date: date


class WhatIfDrop(BaseModel):
    blocker: str
    blocker_key: str | None
    dependent: str
    dependent_key: str | None


class WhatIfChange(BaseModel):
    pins: list[WhatIfPin]
    drop: list[WhatIfDrop]
    team: str | None


class WhatIfRun(BaseModel):
    """One epic's forecast in one run (the same figures as ``GET /forecast/epics``)."""

    team: str | None
    teams: list[str]
    remaining_items: int
    p50: date | None
    p85: date | None
    p95: date | None
    own_p85: date | None
    p_on_time: float | None
    driven_by: str | None
    driven_by_key: str | None
    driven_share: float | None
    dependency_delay_days_p85: int | None
    blockers: list[str]
    unforecast_blockers: int
    cycle_broken: bool
    note: str | None


class WhatIfForecast(BaseModel):
    """An epic's forecast now and under a change; nothing in the warehouse changed."""

    epic_id: str
    key: str | None
    title: str | None
    url: str | None
    target_date: date | None
    as_of: date = Field(description="Day 0 of the simulation (the sync day).")
    change: WhatIfChange
    query: str = Field(description="The change as a URL query, by id: a shareable what-if.")
    current: WhatIfRun
    scenario: WhatIfRun
    p50_shift_days: int | None = Field(description="Scenario P50 minus current P50, in days.")
    p85_shift_days: int | None = Field(description="Scenario P85 minus current P85, in days.")


MAX_CHANGES = 50
"""Most pins and most dropped links in one what-if (each is a pass over the dependency links)."""
PinText = Annotated[str, StringConstraints(pattern=r"^[^=]+=\d{4}-\d{2}-\d{2}$", max_length=300)]
DropText = Annotated[str, StringConstraints(pattern=r"^[^=]+=[^=]+$", max_length=600)]


@router.get("/forecast/epics/{epic_id}/what-if", response_model=WhatIfForecast)
def epic_what_if(
    runtime: RuntimeDep,
    epic_id: Annotated[str, Path(max_length=300, description="the epic, by item id or key")],
    pin: Annotated[
        list[PinText] | None,
        Query(
            max_length=MAX_CHANGES,
            description="ITEM=YYYY-MM-DD (repeatable): this blocker of the epic (item or epic, "
            "id or key) finishes on that day in every trial",
        ),
    ] = None,
    drop: Annotated[
        list[DropText] | None,
        Query(
            max_length=MAX_CHANGES,
            description="BLOCKER=DEPENDENT (repeatable, ids or keys; two epics = every link "
            "between them): ignore this dependency on the epic's chain of blockers",
        ),
    ] = None,
    team: Annotated[
        str | None,
        Query(max_length=300, description="move the epic's remaining work to this team's queue"),
    ] = None,
    as_of: Annotated[AsOfMoment | None, Query(description=AS_OF_DESCRIPTION)] = None,
):
    """The epic's forecast now and under a change (pin a blocker's finish day, drop a
    dependency, move the epic to another team), same seed, nothing stored: the URL is the
    shareable what-if. 404: no such open epic; 422: a malformed or impossible change (unknown
    team, a pin on something that does not block the epic, a link not on its chain)."""
    inputs = runtime.results.inputs(as_of)
    try:
        epic = find_epic(inputs, epic_id)
    except WhatIfError as error:
        raise HTTPException(404 if error.code == "unknown_epic" else 422, str(error)) from None
    try:
        return what_if(inputs, epic, parse_change(pin or (), drop or (), team))
    except WhatIfError as error:
        raise HTTPException(422, str(error)) from None
