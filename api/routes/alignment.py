"""Agile PMO alignment: the rule catalogue, findings with their lifecycle, alignment scores with
their trend, and the Scrum@Scale impediment backlog. Definitions: docs/alignment.md,
docs/impediments.md."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any, Literal

import polars as pl
from fastapi import APIRouter, Depends, Query
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
    table,
    where_equal,
)
from pmolens.warehouse.store import utcnow
from pmolens.warehouse.transforms.alignment import daily_trend, score_scope

router = APIRouter(tags=["alignment"], dependencies=[Depends(require_viewer)])

Severity = Literal["info", "warning", "critical"]
OwnerRole = Literal["Team PO", "Chief PO", "SoS Master", "PMO", "Executive Action Team"]
Status = Literal["new", "open", "resolved"]
EscalationLevel = Literal["team", "sos", "eat"]


class AlignmentRule(BaseModel):
    id: str
    title: str
    rationale: str
    severity: Severity
    owner_role: OwnerRole
    custom: bool
    enabled: bool
    thresholds: dict[str, Any]
    organisations: dict[str, dict[str, Any]]  # per organisation: the settings that differ
    sql: str | None


class Finding(BaseModel):
    rule: str
    severity: Severity
    item_id: str | None
    key: str | None
    url: str | None
    team: str | None
    organisation: str | None
    owner_role: OwnerRole
    message: str  # the English rendering of message_key + message_params
    since: datetime | None
    message_key: str | None = None  # catalogue key (reports/finding_text.py); null: custom rule
    message_params: str | None = None  # its parameters, a JSON object
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    status: Status
    open_days: float | None


class TrendPoint(BaseModel):
    day: date
    score: float | None


class AlignmentScore(BaseModel):
    organisation: str | None
    team: str | None = None
    items: int
    items_with_findings: int
    weighted_penalty: float
    score: float | None
    findings: int
    trend: list[TrendPoint]  # last score per day, oldest first


class AlignmentScores(BaseModel):
    generation: int
    by: Literal["team", "organisation"]
    scores: list[AlignmentScore]


class Impediment(BaseModel):
    item_id: str
    key: str | None
    url: str | None
    title: str | None
    team: str | None
    organisation: str | None
    reason: str
    since: datetime | None
    age_days: float | None
    held_up_items: int
    held_up_keys: list[str]
    held_up_estimate: float
    held_up_value: float
    weight: float
    level: EscalationLevel


@router.get("/alignment/rules", response_model=list[AlignmentRule])
def rules(runtime: RuntimeDep, results: ResultsDep, fmt: FormatDep):
    """Every rule with the thresholds in force (and per-organisation differences)."""
    catalogue = results.get("alignment_rules")
    exported = table(catalogue, fmt, "alignment-rules")
    if exported is not None:
        return exported
    return [
        {**row, "thresholds": json.loads(row["thresholds"]), "organisations": json.loads(row["organisations"])}
        for row in records(catalogue)
    ]  # fmt: skip


@router.get("/alignment/findings", response_model=Page[Finding])
def findings(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    rule: Annotated[str | None, Query()] = None,
    severity: Annotated[Severity | None, Query()] = None,
    team: Annotated[str | None, Query()] = None,
    organisation: Annotated[str | None, Query()] = None,
    owner_role: Annotated[OwnerRole | None, Query()] = None,
    status: Annotated[
        Status | None,
        Query(
            description="new: first seen at the last sync; open: not resolved (new included); "
            "resolved: no longer found (kept 90 days)"
        ),
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
):
    frame = where_equal(
        results.get("findings"),
        rule=rule,
        severity=severity,
        team=team,
        organisation=organisation,
        owner_role=owner_role,
    )
    if status == "open":
        frame = frame.filter(pl.col("status") != "resolved")
    elif status is not None:
        frame = frame.filter(pl.col("status") == status)
    return paged(frame, fmt, "alignment-findings", limit, offset)


@router.get("/alignment/scores", response_model=AlignmentScores)
def scores(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    by: Annotated[Literal["team", "organisation"], Query()] = "team",
    organisation: Annotated[str | None, Query()] = None,
    team: Annotated[str | None, Query(description="only with by=team")] = None,
    days: Annotated[int, Query(ge=1, le=730, description="trend window in days")] = 90,
):
    """Alignment score (100 = no findings) per team or organisation, with its daily trend."""
    name = "alignment_scores_team" if by == "team" else "alignment_scores_org"
    frame = where_equal(results.get(name), organisation=organisation)
    if by == "team":
        frame = where_equal(frame, team=team)
    exported = table(frame, fmt, f"alignment-scores-{by}")
    if exported is not None:
        return exported
    snapshots = runtime.warehouse.query(
        "SELECT * FROM metric_snapshots WHERE family = 'alignment' AND metric = 'score'"
    )
    trend = (
        daily_trend(snapshots, utcnow(), days)
        .group_by("scope", maintain_order=True)
        .agg(pl.struct("day", pl.col("value").alias("score")).alias("trend"))
    )
    joined = (
        frame.with_columns(score_scope(by).alias("scope"))
        .join(trend, on="scope", how="left")
        .with_columns(pl.col("trend").fill_null([]))
        .drop("scope")
    )
    return {"generation": runtime.warehouse.generation(), "by": by, "scores": records(joined)}


@router.get("/impediments", response_model=Page[Impediment])
def impediments(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    team: Annotated[str | None, Query()] = None,
    organisation: Annotated[str | None, Query()] = None,
    level: Annotated[
        EscalationLevel | None,
        Query(description="team, sos (Scrum of Scrums) or eat (Executive Action Team)"),
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
):
    """The impediment backlog, heaviest first."""
    frame = where_equal(
        results.get("impediments"), team=team, organisation=organisation, level=level
    )
    return paged(frame, fmt, "impediments", limit, offset)
