"""Cross-team and cross-organisation dependencies: edges, matrices, red lines, cycles, chains,
bottlenecks, the Scrum of Scrums view per team and the trend. Definitions: docs/dependencies.md."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import polars as pl
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel

from pmolens.api.deps import (
    FormatDep,
    Limit,
    Offset,
    Page,
    ResultsDep,
    RuntimeDep,
    paged,
    records,
    require_viewer,
    short,
    table,
)
from pmolens.warehouse.transforms.dependencies import (
    RED_LINES,
    TREND_METRICS,
    team_hindering,
    team_impediments,
)
from pmolens.warehouse.transforms.dependencies.timing import red_line_headline

router = APIRouter(tags=["dependencies"], dependencies=[Depends(require_viewer)])

Timing = Literal["conflict", "at_risk", "unscheduled_blocker", "on_track", "unplanned", "done"]
Flag = Literal[
    "cross_team",
    "cross_org",
    "unresolved",
    "red_line",
    "conflict",
    "at_risk",
    "unscheduled_blocker",
    "on_track",
    "unplanned",
]
EdgeStatus = Literal["open", "waiting", "closed"]


class DependencyEdge(BaseModel):
    blocker_id: str | None
    dependent_id: str | None
    link_id: str | None
    source: str | None
    raw_type: str | None
    blocker_key: str | None
    blocker_url: str | None
    blocker_title: str | None
    blocker_team: str | None
    blocker_org: str | None
    blocker_epic: str | None
    blocker_category: str | None
    blocker_sprint: str | None
    blocker_planned_end: date | None
    blocker_estimate: float | None
    blocker_priority_rank: int | None
    dependent_key: str | None
    dependent_url: str | None
    dependent_title: str | None
    dependent_team: str | None
    dependent_org: str | None
    dependent_epic: str | None
    dependent_category: str | None
    dependent_sprint: str | None
    dependent_planned_end: date | None
    dependent_estimate: float | None
    dependent_priority_rank: int | None
    dependent_business_value: float | None
    cross_team: bool | None
    cross_org: bool | None
    open: bool
    unresolved: bool
    timing: Timing
    slip_days: int | None
    blocker_epic_key: str | None
    dependent_epic_key: str | None
    waiting: bool
    age_days: float | None
    dependent_blocked_days: float | None = None
    dependent_blocked_now: bool | None = None
    dependent_blocked_since: datetime | None = None


class MatrixCell(BaseModel):
    blocker_org: str | None
    blocker_team: str | None = None
    dependent_org: str | None
    dependent_team: str | None = None
    open: int
    waiting: int
    conflicts: int
    at_risk: int
    unscheduled_blockers: int
    max_slip_days: int | None
    link_ids: list[str]


class Matrix(BaseModel):
    generation: int
    by: Literal["team", "organisation"]
    cells: list[MatrixCell]


class RedLinesByTiming(BaseModel):
    """How many red lines are in each timing state (they add up to ``red_lines``)."""

    conflict: int
    unscheduled_blocker: int
    at_risk: int


class RedLines(BaseModel):
    """The red-line headline (docs/dependencies.md, "Timing and red lines"): the same figures
    as the CLI, the steering report and the ``dependency_timing_conflict`` rule."""

    generation: int
    red_lines: int  # open edges whose timing is conflict, unscheduled_blocker or at_risk
    by_timing: RedLinesByTiming
    waiting_items: int  # distinct dependents with a red line = the rule's findings


class Cycle(BaseModel):
    level: Literal["item", "team"]
    cycle: int
    size: int
    members: list[str | None]
    member_ids: list[str]
    teams: list[str]
    organisations: list[str]
    edges: int | None
    cross_org: bool


class Chain(BaseModel):
    scope: Literal["all", "epic"]
    epic_id: str | None
    epic_key: str | None
    chain_items: int
    planned_days: int | None
    chain_end: date | None
    unplanned_items: int
    head_id: str
    head_key: str | None
    head_team: str | None
    head_org: str | None
    tail_id: str
    tail_key: str | None
    tail_team: str | None
    teams: int
    path: list[str]
    path_truncated: bool


class ItemBottleneck(BaseModel):
    item_id: str
    key: str | None
    url: str | None
    title: str | None
    team: str | None
    organisation: str | None
    epic_id: str | None
    epic_key: str | None
    direct_dependents: int | None
    dependents: int
    dependents_estimate: float
    dependents_value: float
    other_teams: int | None
    exact: bool
    weight: float


class TeamBottleneck(BaseModel):
    organisation: str | None
    team: str | None
    blocking_items: int
    direct_dependents: int | None
    dependents: int
    dependents_estimate: float
    dependents_value: float
    exact: bool
    weight: float


class Bottlenecks(BaseModel):
    generation: int
    by: Literal["item", "team"]
    items: list[ItemBottleneck] = []
    teams: list[TeamBottleneck] = []


class SosSummary(BaseModel):
    organisation: str | None
    team: str
    open_items: int
    hindering: int
    hindering_red_lines: int
    impeded_items: int
    impeded_cross_org: int
    items_with_external: int
    interdependence: float | None
    in_degree: int
    out_degree: int
    partners: list[str]


class ScrumOfScrums(BaseModel):
    """The Scrum of Scrums' three questions for one team."""

    generation: int
    summary: SosSummary  # (3) how interdependent are we?
    hindering: list[DependencyEdge]  # (1) does my team hinder others? red lines first
    impediments: list[DependencyEdge]  # (2) what impediments does my team have?


class TrendPoint(BaseModel):
    generation: int
    as_of: datetime
    open: float | None = None
    waiting: float | None = None
    cross_team_open: float | None = None
    cross_org_open: float | None = None
    cross_org_share: float | None = None
    conflicts: float | None = None
    at_risk: float | None = None
    unscheduled_blockers: float | None = None
    unresolved_open: float | None = None
    item_cycles: float | None = None
    team_cycles: float | None = None


def _either(frame: pl.DataFrame, column: str, value: str | None) -> pl.DataFrame:
    """Rows where the blocker's or the dependent's ``column`` equals ``value``."""
    if value is None:
        return frame
    return frame.filter(
        (pl.col(f"blocker_{column}") == value).fill_null(False)
        | (pl.col(f"dependent_{column}") == value).fill_null(False)
    )


def _flag(frame: pl.DataFrame, flag: Flag | None) -> pl.DataFrame:
    if flag is None:
        return frame
    if flag in ("cross_team", "cross_org", "unresolved"):
        return frame.filter(pl.col(flag).fill_null(False))
    if flag == "red_line":
        return frame.filter(pl.col("timing").is_in(list(RED_LINES)))
    return frame.filter(pl.col("timing") == flag)


def _status(frame: pl.DataFrame, status: EdgeStatus | None) -> pl.DataFrame:
    if status == "open":
        return frame.filter(pl.col("open"))
    if status == "waiting":
        return frame.filter(pl.col("waiting"))
    if status == "closed":
        return frame.filter(~pl.col("open"))
    return frame


OrgQuery = Annotated[str | None, Query(description="blocker or dependent in this organisation")]
TeamQuery = Annotated[str | None, Query(description="blocker or dependent in this team")]


@router.get("/dependencies", response_model=Page[DependencyEdge])
def dependencies(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
    epic: Annotated[
        str | None, Query(description="blocker or dependent under this epic (item id or key)")
    ] = None,
    status: Annotated[
        EdgeStatus | None,
        Query(
            description="open: either end not done; waiting: resolved and both ends not done; "
            "closed: both ends done"
        ),
    ] = None,
    flag: Annotated[
        Flag | None,
        Query(description="cross_team, cross_org, unresolved, red_line, or one timing value"),
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
):
    """Every blocks link as blocker -> dependent, with both ends described and flagged."""
    frame = _either(results.get("dependency_edges"), "org", organisation)
    frame = _either(frame, "team", team)
    if epic is not None:
        frame = frame.filter(
            pl.any_horizontal(
                (pl.col(c) == epic).fill_null(False)
                for c in (
                    "blocker_epic",
                    "dependent_epic",
                    "blocker_epic_key",
                    "dependent_epic_key",
                )
            )
        )
    frame = _flag(_status(frame, status), flag)
    return paged(frame, fmt, "dependencies", limit, offset)


@router.get("/dependencies/matrix", response_model=Matrix)
def matrix(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    by: Annotated[Literal["team", "organisation"], Query()] = "team",
    organisation: OrgQuery = None,
):
    """Open cross-team dependencies per (blocker, dependent) team or organisation pair;
    ``link_ids`` drills down to the edges (GET /dependencies)."""
    name = "dependency_matrix_team" if by == "team" else "dependency_matrix_org"
    frame = _either(results.get(name), "org", organisation)
    exported = table(frame, fmt, f"dependency-matrix-{by}")
    if exported is not None:
        return exported
    return {"generation": runtime.warehouse.generation(), "by": by, "cells": records(frame)}


@router.get("/dependencies/conflicts", response_model=list[DependencyEdge])
def conflicts(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
    timing: Annotated[Literal["conflict", "at_risk", "unscheduled_blocker"] | None, Query()] = None,
):
    """The red lines, worst first: conflicts by slip, unscheduled blockers, then at-risk pairs."""
    frame = _either(results.get("dependency_conflicts"), "org", organisation)
    frame = _either(frame, "team", team)
    if timing is not None:
        frame = frame.filter(pl.col("timing") == timing)
    return table(frame, fmt, "dependency-conflicts") or records(frame)


@router.get("/dependencies/red-lines", response_model=RedLines)
def red_lines(
    runtime: RuntimeDep,
    results: ResultsDep,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
):
    """How many red lines, by timing state, and how many waiting items they hold up; the rows
    are GET /dependencies/conflicts with the same filters."""
    frame = _either(results.get("dependency_conflicts"), "org", organisation)
    headline = red_line_headline(_either(frame, "team", team))
    return {
        "generation": runtime.warehouse.generation(),
        "red_lines": headline["red_lines"],
        "by_timing": {state: headline[state] for state in RED_LINES},
        "waiting_items": headline["waiting_items"],
    }


@router.get("/dependencies/cycles", response_model=list[Cycle])
def cycles(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    level: Annotated[Literal["item", "team"] | None, Query()] = None,
    organisation: Annotated[str | None, Query(description="cycles touching it")] = None,
):
    """Strongly connected components of the waiting graph (item and team level)."""
    frame = results.get("dependency_cycles")
    if level is not None:
        frame = frame.filter(pl.col("level") == level)
    if organisation is not None:
        frame = frame.filter(pl.col("organisations").list.contains(organisation))
    return table(frame, fmt, "dependency-cycles") or records(frame)


@router.get("/dependencies/chains", response_model=list[Chain])
def chains(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    scope: Annotated[Literal["all", "epic"] | None, Query()] = None,
    epic: Annotated[str | None, Query(description="epic item id or key")] = None,
    min_items: Annotated[int, Query(ge=2)] = 2,
):
    """The longest waiting chain overall and per epic (critical path), with its head item."""
    frame = results.get("dependency_chains").filter(pl.col("chain_items") >= min_items)
    if scope is not None:
        frame = frame.filter(pl.col("scope") == scope)
    if epic is not None:
        frame = frame.filter((pl.col("epic_id") == epic) | (pl.col("epic_key") == epic))
    return table(frame, fmt, "dependency-chains") or records(frame)


@router.get("/dependencies/bottlenecks", response_model=Bottlenecks)
def bottlenecks(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    by: Annotated[Literal["item", "team"], Query()] = "item",
    organisation: Annotated[str | None, Query()] = None,
    team: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
):
    """Items or teams that most waiting work depends on (transitively), heaviest first."""
    name = "dependency_bottlenecks" if by == "item" else "dependency_bottlenecks_team"
    frame = results.get(name)
    if organisation is not None:
        frame = frame.filter(pl.col("organisation") == organisation)
    if team is not None:
        frame = frame.filter(pl.col("team") == team)
    exported = table(frame, fmt, f"dependency-bottlenecks-{by}")
    if exported is not None:
        return exported
    key = "items" if by == "item" else "teams"
    return {
        "generation": runtime.warehouse.generation(),
        "by": by,
        key: records(frame.head(limit)),
    }


@router.get("/teams/{team}/scrum-of-scrums", response_model=ScrumOfScrums)
def scrum_of_scrums(
    runtime: RuntimeDep,
    results: ResultsDep,
    team: Annotated[str, Path()],
    organisation: Annotated[
        str | None, Query(description="needed when two organisations have a team of this name")
    ] = None,
):
    """The three Scrum of Scrums questions for one team: does it hinder others, what impedes
    it, how interdependent is it."""
    sos = results.get("dependency_sos").filter(pl.col("team") == team)
    if organisation is not None:
        sos = sos.filter(pl.col("organisation") == organisation)
    if sos.height == 0:
        raise HTTPException(
            404,
            f"unknown team {short(team)!r}"
            + (f" in {short(organisation)!r}" if organisation else ""),
        )
    if sos.height > 1:
        orgs = sorted(o for o in sos["organisation"].to_list() if o is not None)
        raise HTTPException(422, f"team {team!r} exists in {orgs}: add ?organisation=")
    org = sos["organisation"][0]
    edges = results.get("dependency_edges")
    return {
        "generation": runtime.warehouse.generation(),
        "summary": records(sos)[0],
        "hindering": records(team_hindering(edges, team, org)),
        "impediments": records(team_impediments(edges, team, org)),
    }


@router.get("/dependencies/trend", response_model=list[TrendPoint])
def trend(
    runtime: RuntimeDep,
    fmt: FormatDep,
    organisation: Annotated[
        str | None, Query(description="edges touching this organisation (default: all)")
    ] = None,
):
    """Dependency counts, red lines, cycles and the cross-organisation share per sync."""
    scope = f"organisation:{organisation}" if organisation else "all"
    long = runtime.warehouse.query(
        "SELECT generation, as_of, metric, value FROM metric_snapshots "
        "WHERE family = 'dependencies' AND scope = ? ORDER BY generation",
        [scope],
    )
    if long.height:
        wide = long.pivot(on="metric", index=["generation", "as_of"], values="value").sort(
            "generation"
        )
    else:
        wide = pl.DataFrame(schema={"generation": pl.Int64, "as_of": pl.Datetime("us", "UTC")})
    wide = wide.with_columns(
        [pl.lit(None, pl.Float64).alias(m) for m in TREND_METRICS if m not in wide.columns]
    ).select("generation", "as_of", *TREND_METRICS)
    return table(wide, fmt, "dependency-trend") or records(wide)
