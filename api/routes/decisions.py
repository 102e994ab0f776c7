"""What needs a decision today (``GET /decisions``) and what changed since an earlier sync or
moment (``GET /decisions/changes``). The lines carry a catalogue key and parameters, not prose;
``reports.decision_text.decision_sentence`` says them in Dutch or English. Definitions:
docs/decisions.md."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

import polars as pl
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from pmolens.api.deps import (
    AsOfMoment,
    FormatDep,
    Limit,
    Offset,
    ResultsDep,
    RuntimeDep,
    require_viewer,
    table,
)
from pmolens.warehouse.store import utcnow
from pmolens.warehouse.transforms.decisions import CHANGE_KINDS, KINDS, changes_since

router = APIRouter(tags=["decisions"], dependencies=[Depends(require_viewer)])

Kind = Literal[
    "red_line",
    "epic_overdue",
    "epic_below_target_chance",
    "impediment_eat",
    "impediment_escalating",
    "cross_org_at_risk",
    "critical_finding",
]
ChangeKind = Literal[
    "red_line_new", "epic_p85_moved", "finding_new", "finding_resolved", "red_line_gone"
]
Role = Literal["Team PO", "Chief PO", "SoS Master", "EAT", "PMO"]
assert set(Kind.__args__) == set(KINDS) and set(ChangeKind.__args__) == set(CHANGE_KINDS)  # type: ignore[attr-defined]

#: Without ``since``: a week back, the usual steering rhythm (the web app's default too).
DEFAULT_SINCE_DAYS = 7
#: The analyses "what changed since" compares (now and as of the earlier moment).
COMPARED = ("findings", "forecast_epics", "dependency_conflicts")


class Decision(BaseModel):
    kind: Kind
    rank: int = Field(description="1 = first on the list: kind order, then impact in the kind.")
    item_id: str | None = Field(description="What the line is about (red line: the waiting item).")
    key: str | None
    url: str | None
    title: str | None
    epic_id: str | None = Field(description="The epic whose date is at stake.")
    epic_key: str | None
    team: str | None = Field(description="The acting side (red line: the waiting team).")
    organisation: str | None
    other_item_id: str | None = Field(
        description="The other side: a red line's blocker, the dependency driving an epic's date."
    )
    other_key: str | None
    other_url: str | None
    other_team: str | None
    other_organisation: str | None
    owner_role: Role = Field(description="Who acts (docs/decisions.md, 'Who acts').")
    since: datetime | None
    due: date | None
    p_on_time: float | None
    p85: date | None
    target_date: date | None
    slip_days: int | None
    detail_key: str = Field(description="Catalogue key of the sentence (reports/decision_text.py).")
    detail_params: dict[str, Any] = Field(description="The sentence's parameters.")


class Decisions(BaseModel):
    as_of: datetime | None = Field(description="The moment the analyses describe.")
    total: int
    limit: int
    offset: int
    by_kind: dict[str, int] = Field(description="Lines per kind among the filtered ones.")
    items: list[Decision]


class Change(BaseModel):
    kind: ChangeKind
    rank: int
    since: datetime = Field(description="The earlier moment compared with.")
    at: datetime | None = Field(description="When it happened, when known.")
    item_id: str | None
    key: str | None
    url: str | None
    title: str | None
    epic_id: str | None
    epic_key: str | None
    team: str | None
    organisation: str | None
    other_item_id: str | None
    other_key: str | None
    other_url: str | None
    other_team: str | None
    other_organisation: str | None
    owner_role: Role
    severity: str | None
    old_p85: date | None
    new_p85: date | None
    delta_days: int | None
    detail_key: str
    detail_params: dict[str, Any]


class Changes(BaseModel):
    since: datetime
    as_of: datetime | None
    total: int
    limit: int
    offset: int
    by_kind: dict[str, int]
    items: list[Change]


OrgQuery = Annotated[
    str | None,
    Query(description="lines this organisation takes part in (either side of a dependency)"),
]
TeamQuery = Annotated[
    str | None, Query(description="lines this team takes part in (either side of a dependency)")
]


def _involving(frame: pl.DataFrame, column: str, other: str, value: str | None) -> pl.DataFrame:
    if value is None:
        return frame
    return frame.filter(
        (pl.col(column) == value).fill_null(False) | (pl.col(other) == value).fill_null(False)
    )


def _filtered(
    frame: pl.DataFrame,
    organisation: str | None,
    team: str | None,
    kind: str | None,
    owner_role: str | None,
) -> pl.DataFrame:
    frame = _involving(frame, "organisation", "other_organisation", organisation)
    frame = _involving(frame, "team", "other_team", team)
    if kind is not None:
        frame = frame.filter(pl.col("kind") == kind)
    if owner_role is not None:
        frame = frame.filter(pl.col("owner_role") == owner_role)
    return frame


def _page(frame: pl.DataFrame, kinds: tuple[str, ...], limit: int, offset: int) -> dict[str, Any]:
    counts = dict(frame.group_by("kind").len().iter_rows())
    items = frame.slice(offset, limit).to_dicts()
    for item in items:
        item["detail_params"] = json.loads(item["detail_params"] or "{}")
    return {
        "total": frame.height,
        "limit": limit,
        "offset": offset,
        "by_kind": {k: int(counts.get(k, 0)) for k in kinds},
        "items": items,
    }


@router.get("/decisions", response_model=Decisions)
def decisions(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
    kind: Annotated[Kind | None, Query(description="only this kind of line")] = None,
    owner_role: Annotated[Role | None, Query(description="only lines this role acts on")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
):
    """What needs a decision today, most urgent first: red lines that move a date, overdue epics,
    epics below 50 % chance of their target, impediments at (or about to reach) the Executive
    Action Team, cross-organisation dependencies at risk, new critical findings."""
    frame = _filtered(results.get("decisions"), organisation, team, kind, owner_role)
    exported = table(frame, fmt, "decisions")
    if exported is not None:
        return exported
    return {
        "as_of": results.as_of or runtime.results.kept_as_of(),
        **_page(frame, KINDS, limit, offset),
    }


@router.get("/decisions/changes", response_model=Changes)
def changes(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    since: Annotated[
        AsOfMoment | None,
        Query(
            description="The earlier moment: a day (its end, 23:59:59 UTC, as as_of) or a time; "
            "for 'since the sync of ...' pass that run's finished time (GET /sync-runs). "
            f"Omitted: {DEFAULT_SINCE_DAYS} days before the moment compared with."
        ),
    ] = None,
    organisation: OrgQuery = None,
    team: TeamQuery = None,
    kind: Annotated[ChangeKind | None, Query(description="only this kind of change")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
):
    """What changed between ``since`` (default: a week earlier) and now (or ``as_of``): new and
    solved findings, epics whose P85 moved more than a week, new red lines and red lines gone.
    A ``since`` at or after the moment compared with changes nothing."""
    now_moment = results.as_of or runtime.results.kept_as_of() or utcnow()
    if since is None:
        since = now_moment - timedelta(days=DEFAULT_SINCE_DAYS)
    if since >= now_moment:
        now: dict[str, pl.DataFrame] = {}
        then: dict[str, pl.DataFrame] = {}
    else:
        now = {name: results.get(name) for name in COMPARED}
        then = {name: runtime.results.get(name, as_of=since) for name in COMPARED}
    frame = _filtered(changes_since(now, then, since), organisation, team, kind, None)
    exported = table(frame, fmt, "decision-changes")
    if exported is not None:
        return exported
    return {
        "since": since,
        "as_of": now_moment,
        **_page(frame, CHANGE_KINDS, limit, offset),
    }
