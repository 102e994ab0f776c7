"""``/``: what needs a decision today, then what changed since an earlier sync or day.

The lines are the ``decisions`` analysis (warehouse/transforms/decisions.py, docs/decisions.md),
the same rows ``GET /decisions`` and the report's first section show; the sentences come from
``reports.decision_text`` so all three read the same in Dutch and English.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from pmolens.api.deps import Day
from pmolens.api.web.page import Page, PageDep
from pmolens.reports.decision_text import change_sentence, decision_sentence
from pmolens.warehouse.transforms.decisions import KINDS, changes_since

router = APIRouter(include_in_schema=False)

SHOWN = 60  # lines on the page; the rest is one click away in the full list


@router.get("/", response_class=HTMLResponse)
def decisions_page(
    page: PageDep,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    since: Annotated[Day | None, Query()] = None,
) -> Response:
    body = page.fragment(
        "decisions_body.html.j2", ("decisions", kind, since), lambda: values(page, kind, since)
    )
    return page.render("decisions.html.j2", body=body)


def values(page: Page, kind: str | None, since: Any) -> dict[str, Any]:
    """The page's content: the same for every viewer, kept per generation and view."""
    lines = scoped_decisions(page)
    counts = {k: lines.filter(pl.col("kind") == k).height for k in KINDS}
    if kind in KINDS:
        lines = lines.filter(pl.col("kind") == kind)
    shown = lines.sort("rank").head(SHOWN)
    rows = [{**row, "sentence": decision_sentence(row, page.t)} for row in shown.to_dicts()]
    changes, since_moment = what_changed(page, since)
    return {
        "counts": counts,
        "kinds": KINDS,
        "kind": kind,
        "rows": rows,
        "total": lines.height,
        "changes": changes,
        "since": since,
        "since_moment": since_moment,
        "syncs": earlier_syncs(page),
    }


def scoped_decisions(page: Page) -> pl.DataFrame:
    """The decision lines of the view: its organisation and team on either side of a line."""
    lines = page.get("decisions")
    f = page.filters
    for value, mine, other in (
        (f.organisation, "organisation", "other_organisation"),
        (f.team, "team", "other_team"),
    ):
        if value:
            lines = lines.filter((pl.col(mine) == value) | (pl.col(other) == value))
    if f.epic:
        lines = lines.filter(pl.col("epic_id") == f.epic)
    return lines


def default_since(page: Page) -> datetime:
    """Without a choice: a week before the view's moment (the usual steering rhythm)."""
    moment = page.filters.as_of or page.runtime.results.kept_as_of() or datetime.now(UTC)
    return moment - timedelta(days=7)


def what_changed(page: Page, since: Any) -> tuple[list[dict[str, Any]], datetime]:
    """Changes between the view's moment and ``since`` (a day: its end), as sentences."""
    moment = (
        datetime.combine(since, time(23, 59, 59), UTC) if since is not None else default_since(page)
    )
    names = ("findings", "forecast_epics", "dependency_edges")

    def build() -> pl.DataFrame:
        now = {name: page.get(name) for name in names}
        then = {name: page.runtime.results.get(name, as_of=moment) for name in names}
        return changes_since(now, then, moment)

    frame = page.cached(("changes", moment), build)
    f = page.filters
    if f.organisation and "organisation" in frame.columns:
        frame = frame.filter(
            (pl.col("organisation") == f.organisation)
            | (pl.col("other_organisation") == f.organisation)
        )
    if f.team and "team" in frame.columns:
        frame = frame.filter((pl.col("team") == f.team) | (pl.col("other_team") == f.team))
    rows = [{**row, "sentence": change_sentence(row, page.t)} for row in frame.head(100).to_dicts()]
    return rows, moment


def earlier_syncs(page: Page) -> list[datetime]:
    """Days with a completed sync, newest first: the moments "since" can name."""
    rows = page.runtime.warehouse.query(
        "SELECT DISTINCT CAST(finished AS DATE) AS day FROM sync_runs "
        "WHERE outcome IN ('success', 'partial') AND finished IS NOT NULL ORDER BY day DESC LIMIT 30"
    )
    return rows["day"].to_list()
