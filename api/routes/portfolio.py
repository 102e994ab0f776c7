"""The portfolio overview: hierarchy with progress per node, team and organisation."""

from __future__ import annotations

from typing import Annotated, Literal

import polars as pl
from fastapi import APIRouter, Depends, Query

from api.deps import FormatDep, RuntimeDep, records, require_viewer, table
from api.models import Portfolio

router = APIRouter(tags=["portfolio"], dependencies=[Depends(require_viewer)])


@router.get("/portfolio", response_model=Portfolio)
def portfolio(
    runtime: RuntimeDep,
    fmt: FormatDep,
    organisation: Annotated[str | None, Query()] = None,
    team: Annotated[str | None, Query()] = None,
    level: Annotated[
        Literal["initiative", "epic", "feature", "story"] | None,
        Query(description="Only nodes of this level (default: initiatives, epics and features)."),
    ] = None,
):  # type: ignore[no-untyped-def]
    nodes = runtime.results.get("portfolio")
    if organisation:
        nodes = nodes.filter(pl.col("organisation") == organisation)
    if team:
        nodes = nodes.filter(pl.col("team") == team)
    levels = [level] if level else ["initiative", "epic", "feature"]
    nodes = nodes.filter(pl.col("level").is_in(levels))
    exported = table(nodes, fmt, "portfolio")
    if exported is not None:
        return exported
    by_team = runtime.results.get("portfolio_by_team").rename({"team": "name"})
    by_org = runtime.results.get("portfolio_by_organisation").rename({"organisation": "name"})
    if organisation:
        by_org = by_org.filter(pl.col("name") == organisation)
        teams = nodes.get_column("team").unique().to_list()
        by_team = by_team.filter(pl.col("name").is_in(teams))
    if team:
        by_team = by_team.filter(pl.col("name") == team)
    return {
        "generation": runtime.warehouse.generation(),
        "nodes": records(nodes),
        "by_team": records(by_team),
        "by_organisation": records(by_org),
    }
