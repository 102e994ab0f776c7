"""``/board``: the program board laid out on the server — lanes, sprints, cards and arrows as
positioned HTML with one SVG layer for the arrows, so it needs no script, prints on A3/A4
landscape and reads with a keyboard (every card is a link).

The model (which cards, which arrows, which sprints) is ``warehouse.analyses.board``
(docs/board.md); this module only decides where each thing goes on the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Annotated, Any, Literal

import polars as pl
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from pmolens.api.web.page import Page, PageDep
from pmolens.warehouse.analyses.board import board as board_view
from pmolens.warehouse.transforms.dependencies.timing import RED_LINES
from pmolens.warehouse.transforms.flow import as_of_date

router = APIRouter(include_in_schema=False)

LABEL_W = 160  # the lane names
CARD_W, CARD_H, ROW_H = 118, 30, 34
LANE_TOP = 16  # sprint names above the cards
ORG_H, AXIS_H = 22, 28
UNPLANNED_W = 140  # the column at the right for cards without a planned sprint
CELL_CARDS = 6  # cards drawn per team and sprint; the rest is one "+ n" link to the list
DEFAULT_WEEKS = 26  # about 12 two-week sprints
TICK_PX = 80  # room for one date label on the axis


@dataclass
class Layout:
    width: int
    height: int
    ticks: list[dict[str, Any]] = field(default_factory=list)
    orgs: list[dict[str, Any]] = field(default_factory=list)
    lanes: list[dict[str, Any]] = field(default_factory=list)
    sprints: list[dict[str, Any]] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)
    arrows: list[dict[str, Any]] = field(default_factory=list)
    more: list[dict[str, Any]] = field(default_factory=list)  # "+ n" per crowded sprint
    unplanned_x: int = 0
    start: date | None = None
    end: date | None = None


@router.get("/board", response_class=HTMLResponse)
def board_page(
    page: PageDep,
    arrows: Annotated[Literal["red", "all"], Query()] = "red",
) -> Response:
    """Plain ``def``: laying out and rendering run in the thread pool, not on the event loop."""
    f = page.filters
    key = ("board", f.organisation, f.team, f.epic, f.date_from, f.date_to, arrows)
    canvas = page.fragment("board_canvas.html.j2", key, lambda: canvas_values(page, arrows))
    return page.render("board.html.j2", canvas=canvas, arrows=arrows, epics=epic_choices(page))


def canvas_values(page: Page, arrows: str) -> dict[str, Any]:
    f = page.filters
    view = board_view(
        page.get,
        organisation=f.organisation,
        team=f.team,
        epic=f.epic,
        date_from=f.date_from,
        date_to=f.date_to,
    )
    counts = dict(view.arrows.group_by("timing").len().iter_rows()) if view.arrows.height else {}
    drawn = view.arrows
    if arrows == "red":  # the red lines; on-track and unplanned pairs on request
        drawn = drawn.filter(pl.col("timing").is_in(list(RED_LINES)))
    today = as_of_date(f.as_of or page.runtime.results.kept_as_of() or _now())
    layout = lay_out(view.lanes, view.sprints, view.cards, drawn, today, f.date_from, f.date_to)
    return {"layout": layout, "arrow_counts": counts}


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def epic_choices(page: Page) -> list[tuple[str, str]]:
    """(epic id, "KEY title") of the open epics on the board, for the epic filter."""
    cards = page.get("board_cards").filter(pl.col("level") == "epic")
    cards = page.scoped(cards)
    return [
        (r[0], f"{r[1]} {r[2] or ''}"[:60])
        for r in cards.sort("key").select("card_id", "key", "title").iter_rows()
    ]


def lay_out(
    lanes: pl.DataFrame,
    sprints: pl.DataFrame,
    cards: pl.DataFrame,
    arrows: pl.DataFrame,
    today: date,
    date_from: date | None,
    date_to: date | None,
) -> Layout:
    """Positions for everything on the board (pixels from the top-left corner)."""
    start = date_from or today - timedelta(days=14)
    planned = [d for d in cards["planned_end"].to_list() if d and d >= start]
    latest = max(planned, default=start + timedelta(weeks=DEFAULT_WEEKS))
    end = date_to or min(latest + timedelta(days=14), start + timedelta(weeks=DEFAULT_WEEKS))
    days = max((end - start).days, 14)
    per_day = max(4.0, min(14.0, 1300 / days))

    def x(day: date) -> int:
        return LABEL_W + round((day - start).days * per_day)

    axis_end = x(end)
    layout = Layout(
        width=axis_end + UNPLANNED_W + 20, height=0, unplanned_x=axis_end + 10, start=start, end=end
    )
    # Mondays, far enough apart for their labels (at least TICK_PX)
    weeks = next((w for w in (1, 2, 4, 8, 13, 26) if w * 7 * per_day >= TICK_PX), 52)
    tick = start - timedelta(days=start.weekday())
    year = None
    while tick <= end:
        if tick >= start:
            if x(tick) < layout.unplanned_x - TICK_PX:  # leave room for the right column's label
                layout.ticks.append({"x": x(tick), "day": tick, "year": tick.year != year})
            year = tick.year
        tick += timedelta(weeks=weeks)

    team_sprints: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in sprints.filter(
        pl.col("end").is_not_null() & (pl.col("end") >= start) & (pl.col("start") <= end)
    ).to_dicts():
        team_sprints.setdefault((s["organisation"], s["team"]), []).append(s)
    team_cards: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in cards.sort("planned_end", "key", nulls_last=True).to_dicts():
        team_cards.setdefault((c["organisation"], c["team"]), []).append(c)

    y = AXIS_H
    positions: dict[str, tuple[int, int]] = {}  # card -> (x, y) of its top-left
    current_org = None
    for lane in lanes.to_dicts():
        org, team = lane["organisation"], lane["team"]
        if org != current_org:
            layout.orgs.append({"name": org, "y": y})
            y += ORG_H
            current_org = org
        rows_end: list[int] = []  # per stacking row: the x where it is free again
        placed = []
        in_cell: dict[int, int] = {}  # cards drawn per column (sprint) of this lane
        hidden: dict[int, int] = {}
        for c in team_cards.get((org, team), []):
            sprint = _sprint_of(team_sprints.get((org, team), []), c["planned_end"])
            if c["planned_end"] is None or c["planned_end"] > end:
                left = layout.unplanned_x  # not planned, or planned after the axis ends
            elif c["planned_end"] < start:
                left = LABEL_W + 2
            elif sprint is not None:
                left = max(LABEL_W + 2, x(max(sprint["start"], start)) + 2)
            else:
                left = max(LABEL_W + 2, x(c["planned_end"]) - CARD_W // 2)
            if in_cell.get(left, 0) >= CELL_CARDS:
                hidden[left] = hidden.get(left, 0) + 1
                continue
            in_cell[left] = in_cell.get(left, 0) + 1
            row = next((i for i, free in enumerate(rows_end) if free <= left), len(rows_end))
            if row == len(rows_end):
                rows_end.append(0)
            rows_end[row] = left + CARD_W + 4
            placed.append((c, left, row))
            if c["ghost"] and c["p85"] is not None and start <= c["p85"] <= end:
                ghost_left = max(LABEL_W + 2, x(c["p85"]) - CARD_W // 2)
                g_row = next(
                    (i for i, free in enumerate(rows_end) if free <= ghost_left), len(rows_end)
                )
                if g_row == len(rows_end):
                    rows_end.append(0)
                rows_end[g_row] = ghost_left + CARD_W + 4
                placed.append(({**c, "_ghost": True}, ghost_left, g_row))
        more = []
        for left, n in hidden.items():
            row = next((i for i, free in enumerate(rows_end) if free <= left), len(rows_end))
            if row == len(rows_end):
                rows_end.append(0)
            rows_end[row] = left + CARD_W + 4
            more.append((left, row, n))
        height = LANE_TOP + max(len(rows_end), 1) * ROW_H + 6
        layout.lanes.append(
            {
                "organisation": org,
                "team": team,
                "y": y,
                "height": height,
                "outside": bool(lane.get("outside_filter")),
            }
        )
        for s in team_sprints.get((org, team), []):
            left = x(max(s["start"], start)) if s["start"] else x(start)
            layout.sprints.append(
                {
                    "name": s["name"],
                    "x": left,
                    "y": y,
                    "height": height,
                    "width": max(x(min(s["end"], end)) - left, 2),
                    "start": s["start"],
                    "end": s["end"],
                }
            )
        for left, row, n in more:
            layout.more.append(
                {
                    "x": left,
                    "y": y + LANE_TOP + row * ROW_H,
                    "n": n,
                    "organisation": org,
                    "team": team,
                }
            )
        for c, left, row in placed:
            top = y + LANE_TOP + row * ROW_H
            ghost = bool(c.get("_ghost"))
            layout.cards.append(
                {
                    **c,
                    "x": left,
                    "y": top,
                    "ghost_card": ghost,
                    "unplanned": c["planned_end"] is None,
                }
            )
            if not ghost:
                positions[c["card_id"]] = (left, top)
        y += height
    layout.height = y + 10

    conflicted = set()
    for a in arrows.to_dicts():
        if a["from_card"] not in positions or a["to_card"] not in positions:
            continue
        (x1, y1), (x2, y2) = positions[a["from_card"]], positions[a["to_card"]]
        sx, sy = x1 + CARD_W, y1 + CARD_H // 2
        ex, ey = x2, y2 + CARD_H // 2
        bend = max(40, abs(ex - sx) // 3)
        layout.arrows.append({**a, "d": f"M{sx},{sy} C{sx + bend},{sy} {ex - bend},{ey} {ex},{ey}"})
        if a["timing"] == "conflict":
            conflicted.add(a["to_card"])
    for c in layout.cards:
        c["conflict"] = c["card_id"] in conflicted and not c["ghost_card"]
    return layout


def _sprint_of(sprints: list[dict[str, Any]], day: date | None) -> dict[str, Any] | None:
    """The team's sprint that contains ``day`` (its planned end)."""
    if day is None:
        return None
    return next((s for s in sprints if s["start"] and s["start"] <= day <= s["end"]), None)
