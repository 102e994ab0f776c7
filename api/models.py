"""Response models: the OpenAPI contract of every route."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SourceHealth(BaseModel):
    source: str
    last_outcome: str | None
    last_finished: datetime | None
    last_error: str | None = Field(
        None, description="The last run's error, redacted; only for a caller with a viewer token."
    )


class ReportHealth(BaseModel):
    report: str
    last_outcome: Literal["running", "success", "failed"] | None = Field(
        description="The last delivery's outcome; null when the report was never delivered."
    )
    last_finished: datetime | None
    as_of: datetime | None = Field(None, description="The data moment of the delivered report.")
    last_error: str | None = Field(
        None,
        description="Why the last delivery failed, one redacted line; only for a caller with a "
        "viewer token.",
    )


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    warehouse: bool
    schema_version: int
    generation: int
    syncing: list[str]
    sources: list[SourceHealth]
    instance: str = Field(
        description="This server process's random id; the single-writer claim file names it."
    )
    results_stale: bool = Field(
        False, description="The last results refresh failed: analyses show an older sync."
    )
    results_error: str | None = Field(
        None, description="Why the last refresh failed (viewers only; anonymous callers get null)."
    )
    reports: list[ReportHealth] = Field(
        [], description="The last delivery of each scheduled report ([[reports]] in the config)."
    )


class Source(BaseModel):
    source: str
    kind: str
    organisation: str
    base_url: str
    schedule: str | None
    items: int
    cursor: datetime | None


class Organisation(BaseModel):
    organisation: str
    description: str | None
    sources: int
    teams: int
    items: int


class Team(BaseModel):
    team: str
    organisation: str | None
    source: str | None
    items: int
    open_items: int


class SyncRun(BaseModel):
    run_id: int
    source: str
    mode: str | None
    started: datetime | None
    finished: datetime | None
    outcome: str
    items: int | None
    links: int | None
    sprints: int | None
    status_changes: int | None
    deleted: int | None
    problems: int | None
    problem_text: str | None
    error: str | None


class SyncRequest(BaseModel):
    """Strict: ``"full": "yes"`` or an unknown key is a 422, never a guess."""

    model_config = ConfigDict(strict=True, extra="forbid")

    sources: list[str] | None = Field(None, description="Source names; all sources when omitted.")
    full: bool = Field(False, description="Ignore cursors and read everything.")
    allow_mass_delete: bool = Field(
        False, description="Lift the sources' max_delete_share guard for this run."
    )


class SyncStarted(BaseModel):
    runs: list[SyncRun]


class WorkItem(BaseModel):
    item_id: str
    source: str
    native_id: str
    key: str | None
    url: str | None
    organisation: str | None
    project: str | None
    raw_type: str | None
    level: str | None
    title: str | None
    raw_status: str | None
    status_category: str | None
    team: str | None
    assignee: str | None
    priority: str | None
    rank: str | None
    estimate: float | None
    created: datetime | None
    updated: datetime | None
    resolved: datetime | None
    due_date: date | None
    sprint_id: str | None
    parent_id: str | None
    labels: list[str] | None
    business_value: float | None
    cost: float | None
    flagged: bool | None


class PortfolioNode(BaseModel):
    item_id: str
    key: str | None
    url: str | None
    title: str | None
    level: str | None
    team: str | None
    organisation: str | None
    parent_id: str | None
    status_category: str | None
    assignee: str | None
    due_date: date | None
    depth: int | None
    items_total: int
    items_done: int
    estimate_total: float
    estimate_done: float
    progress_count: float | None
    progress_estimate: float | None


class PortfolioRollup(BaseModel):
    name: str | None
    epics: int
    epics_done: int
    items_total: int
    items_done: int
    estimate_total: float
    estimate_done: float
    progress_count: float | None
    progress_estimate: float | None


class Portfolio(BaseModel):
    generation: int
    nodes: list[PortfolioNode]
    by_team: list[PortfolioRollup]
    by_organisation: list[PortfolioRollup]


class Problem(BaseModel):
    """The body of a 400/401/403/404/409/413 answer."""

    detail: str


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str
    input: object | None = Field(None, description="At most a short prefix of what was sent.")
    ctx: dict[str, object] | None = None


class ValidationProblem(BaseModel):
    """The body of a 422: the issues per parameter, or one sentence for a semantic refusal."""

    detail: list[ValidationIssue] | str


class BoardLane(BaseModel):
    organisation: str | None
    team: str | None
    n_cards: int
    outside_filter: bool = Field(
        description="Only shown for a card at the far end of a kept arrow, outside the filter."
    )


class BoardSprint(BaseModel):
    team: str
    organisation: str | None
    sprint_id: str
    name: str | None
    start: date
    end: date
    state: str | None


class BoardCard(BaseModel):
    card_id: str = Field(description="item_id of the feature or epic")
    key: str | None
    title: str | None
    url: str | None
    level: Literal["feature", "epic"]
    organisation: str | None
    team: str | None
    epic_id: str | None = Field(description="A feature's epic; an epic itself.")
    epic_key: str | None
    planned_end: date | None = Field(
        description="End of the latest sprint among the card's open items; null: not planned."
    )
    planned_sprint_id: str | None
    p85: date | None = Field(description="Forecast P85 (epics only).")
    ghost: bool = Field(description="The P85 falls after the planned end (or nothing is planned).")
    open_items: int
    done_items: int
    status_category: str | None
    outside_filter: bool


class BoardArrow(BaseModel):
    from_card: str = Field(description="The blocker's card.")
    to_card: str = Field(description="The dependent's card.")
    timing: Literal["conflict", "unscheduled_blocker", "at_risk", "unplanned", "on_track"] = Field(
        description="The worst timing among the dependencies the arrow stands for."
    )
    kind: Literal["conflict", "unscheduled", "same_sprint", "unplanned", "on_track"]
    cross_org: bool
    links: int = Field(description="Item-level dependencies drawn as this arrow.")


class ProgramBoard(BaseModel):
    """The program board (docs/board.md): lanes per team, their sprints, cards and arrows."""

    generation: int
    lanes: list[BoardLane]
    sprints: list[BoardSprint]
    cards: list[BoardCard]
    arrows: list[BoardArrow]
