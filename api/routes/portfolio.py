"""The portfolio overview: hierarchy with progress per node, team and organisation.

Nodes come a page at a time (``limit``/``offset``, in the prepared result's order); the team and
organisation roll-ups always come whole. At 100,000 items the initiatives, epics and features
alone are some 6,000 nodes (2.4 MB of JSON): a client that wants them all pages through them.
Answers are encoded once per warehouse generation and query, then sent as they are.
"""

from __future__ import annotations

from typing import Annotated, Literal

import polars as pl
from fastapi import APIRouter, Depends, Query, Response

from pmolens.api.deps import (
    FormatDep,
    Limit,
    Offset,
    ResultsDep,
    RuntimeDep,
    generation_cache,
    json_response,
    records,
    require_viewer,
    table,
)
from pmolens.api.models import Portfolio

router = APIRouter(tags=["portfolio"], dependencies=[Depends(require_viewer)])

DEFAULT_LIMIT = 200


class PortfolioPage(Portfolio):
    total: int  # nodes matching the filters, over all pages
    limit: int
    offset: int


@router.get("/portfolio", response_model=PortfolioPage)
async def portfolio(
    runtime: RuntimeDep,
    results: ResultsDep,
    fmt: FormatDep,
    organisation: Annotated[str | None, Query()] = None,
    team: Annotated[str | None, Query()] = None,
    level: Annotated[
        Literal["initiative", "epic", "feature", "story"] | None,
        Query(description="Only nodes of this level (default: initiatives, epics and features)."),
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
):
    generation = runtime.warehouse.generation()
    cache = generation_cache(runtime)
    levels = (level,) if level else ("initiative", "epic", "feature")
    key = ("portfolio", results.key, organisation, team, levels)

    def nodes() -> pl.DataFrame:
        frame = results.get("portfolio")
        if organisation:
            frame = frame.filter(pl.col("organisation") == organisation)
        if team:
            frame = frame.filter(pl.col("team") == team)
        return frame.filter(pl.col("level").is_in(levels))

    if fmt.value != "json":  # exports take every matching node
        return table(await cache.aget(generation, key, nodes), fmt, "portfolio")

    def encoded() -> bytes:
        chosen: pl.DataFrame = cache.get(generation, key, nodes)
        by_team = results.get("portfolio_by_team").rename({"team": "name"})
        by_org = results.get("portfolio_by_organisation").rename({"organisation": "name"})
        if organisation:
            by_org = by_org.filter(pl.col("name") == organisation)
            teams = chosen.get_column("team").unique().to_list()
            by_team = by_team.filter(pl.col("name").is_in(teams))
        if team:
            by_team = by_team.filter(pl.col("name") == team)
        body = {
            "generation": generation,
            "total": chosen.height,
            "limit": limit,
            "offset": offset,
            "nodes": records(chosen.slice(offset, limit)),
            "by_team": records(by_team),
            "by_organisation": records(by_org),
        }
        return bytes(json_response(PortfolioPage, body).body)

    page = await cache.aget(generation, (*key, limit, offset), encoded)
    return Response(page, media_type="application/json")
