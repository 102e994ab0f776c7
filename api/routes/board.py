"""The program board: lanes per team (grouped by organisation), each team's sprints, features
and epics as cards where they are planned to finish, dependency arrows between them.
Definitions: docs/board.md."""

from __future__ import annotations

from typing import Annotated

import polars as pl
from fastapi import APIRouter, Depends, HTTPException, Query

from pmolens.api.deps import (
    Day,
    Results,
    ResultsDep,
    RuntimeDep,
    records,
    require_viewer,
    short,
)
from pmolens.api.models import ProgramBoard
from pmolens.warehouse.analyses.board import board as board_view

router = APIRouter(tags=["board"], dependencies=[Depends(require_viewer)])


def _known(results: Results, column: str, organisation: str | None = None) -> list[str]:
    """The values of ``column`` among the board's cards and team sprints (in ``organisation``)."""
    frames = [results.get("board_cards"), results.get("board_sprints")]
    columns = list(dict.fromkeys(["organisation", column]))
    values = pl.concat([f.select(columns) for f in frames])
    if organisation is not None:
        values = values.filter(pl.col("organisation") == organisation)
    return sorted(values[column].drop_nulls().unique().to_list())


@router.get("/program-board", response_model=ProgramBoard)
def board(
    runtime: RuntimeDep,
    results: ResultsDep,
    organisation: Annotated[str | None, Query(description="cards of this organisation")] = None,
    team: Annotated[str | None, Query(description="cards of this team")] = None,
    epic: Annotated[
        str | None, Query(description="cards of this epic (item id or key), the epic included")
    ] = None,
    date_from: Annotated[
        Day | None, Query(description="cards planned to end, or forecast (P85), on or after")
    ] = None,
    date_to: Annotated[
        Day | None, Query(description="cards planned to end, or forecast (P85), on or before")
    ] = None,
):
    """One view of the program board. Arrows with one end in the filter are kept, and the
    card at the other end is shown with ``outside_filter`` (a cross-organisation red arrow
    stays visible on one organisation's board). Sprints: the shown lanes' sprints that overlap
    [date_from, date_to]."""
    if organisation is not None:
        known = _known(results, "organisation")
        if organisation not in known:
            raise HTTPException(
                422, f"unknown organisation {short(organisation)!r}; known: {short(known, 400)}"
            )
    if team is not None:
        known = _known(results, "team", organisation)
        if team not in known:
            where = f" in {organisation!r}" if organisation else ""
            raise HTTPException(
                422, f"unknown team {short(team)!r}{where}; known: {short(known, 400)}"
            )
    if date_from is not None and date_to is not None and date_from > date_to:
        raise HTTPException(422, f"date_from {date_from} is after date_to {date_to}")
    view = board_view(
        results.get,
        organisation=organisation,
        team=team,
        epic=epic,
        date_from=date_from,
        date_to=date_to,
    )
    return {
        "generation": runtime.warehouse.generation(),
        "lanes": records(view.lanes),
        "sprints": records(view.sprints),
        "cards": records(view.cards),
        "arrows": records(view.arrows),
    }
