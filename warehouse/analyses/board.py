"""The program board (docs/board.md): its cards, arrows and team sprints kept unfiltered per
sync (``board_cards``, ``board_arrows``, ``board_sprints``), and ``board`` to cut one view
(organisation, team, epic, date range) from them. Transform: warehouse/transforms/board.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import polars as pl

from pmolens.warehouse.analyses import forecast
from pmolens.warehouse.analyses.base import Inputs, analysis, once
from pmolens.warehouse.transforms.board import (
    Board,
    board_arrows,
    board_cards,
    board_sprints,
    filter_board,
    holder_links,
    holders,
)


@once
def held(inputs: Inputs) -> pl.DataFrame:
    """Each live item's holder (its feature, else its epic) and epic."""
    return holders(inputs.work_items)


@once
def links(inputs: Inputs) -> pl.DataFrame:
    """The drawable dependency edges lifted to holder pairs."""
    return holder_links(inputs.dependency_edges, held(inputs))


@once
def cards(inputs: Inputs) -> pl.DataFrame:
    return board_cards(
        inputs.work_items,
        inputs.frames["sprints"],
        forecast.result(inputs).epics,
        held(inputs),
        links(inputs),
    )


@analysis("board_cards")
def _cards(inputs: Inputs) -> pl.DataFrame:
    return cards(inputs)


@analysis("board_arrows")
def _arrows(inputs: Inputs) -> pl.DataFrame:
    return board_arrows(links(inputs), cards(inputs))


@analysis("board_sprints")
def _sprints(inputs: Inputs) -> pl.DataFrame:
    return board_sprints(
        inputs.frames["sprints"], inputs.team_organisation, inputs.frames["sources"]
    )


def board(
    results_get: Callable[[str], pl.DataFrame],
    *,
    organisation: str | None = None,
    team: str | None = None,
    epic: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> Board:
    """One view of the board from the kept results (``results_get(name)``: e.g.
    ``ResultCache.get`` or the API's ``Results.get``); filters as ``filter_board``."""
    return filter_board(
        results_get("board_cards"),
        results_get("board_arrows"),
        results_get("board_sprints"),
        organisation=organisation,
        team=team,
        epic=epic,
        date_from=date_from,
        date_to=date_to,
    )
