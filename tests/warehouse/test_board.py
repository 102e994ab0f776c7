"""The program board model (warehouse/transforms/board.py, docs/board.md) on a small chain.

Northwind (Jira, two-week sprints per team board; epics hold stories, no features):
- Web sprints W1 5-19 Jan, W2 19 Jan-2 Feb, W3 2-16 Feb; App sprints A1 5-19 Jan, A2 19 Jan-2 Feb.
- NW-E1 (Web): NW-11 (W2), NW-12 (W3), NW-13 (done, W1) -> planned 16 Feb, P85 1 Mar: ghost.
- NW-E2 (App): NW-21 (A1), NW-23 (no sprint) -> planned 19 Jan, P85 15 Jan: no ghost.

Contoso (Azure DevOps, three-week iterations shared by teams Pay and Risk):
- I1 1-22 Jan, I2 22 Jan-12 Feb, I3 12 Feb-5 Mar, each serving Pay and Risk.
- CO-E3 (Pay) holds features CO-F1 (Pay: CO-31 in I2, CO-32 done, CO-33 in I2) and CO-F2 (Risk:
  CO-41 in I3, CO-42 in I2): shown through its features, not as a card.
- CO-E4 (Risk): an epic without features or items, unplanned: a card itself.

Dependencies (blocker -> dependent):
- CO-41 -> NW-11 (5 Mar after 2 Feb) and CO-41 -> NW-12 (after 16 Feb): two conflicts, one
  cross-organisation red arrow CO-F2 -> NW-E1 (links 2).
- CO-31 -> NW-12 (12 Feb before 16 Feb): on track, arrow CO-F1 -> NW-E1.
- NW-21 -> NW-11 on track and NW-23 -> NW-12 unscheduled blocker: arrow NW-E2 -> NW-E1 is
  unscheduled (worst wins, links 2).
- CO-33 -> CO-42 both in I2 (the shared iteration): at risk, arrow CO-F1 -> CO-F2 same_sprint.
- NW-11 -> NW-12 (within one card) and NW-21 -> NW-13 (dependent done): no arrow.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest

from pmolens.warehouse.analyses import Inputs
from pmolens.warehouse.analyses.board import board
from pmolens.warehouse.config import Settings
from pmolens.warehouse.results import compute
from pmolens.warehouse.transforms.backlog import team_organisation
from pmolens.warehouse.transforms.board import (
    ARROW_SCHEMA,
    CARD_SCHEMA,
    LANE_SCHEMA,
    SPRINT_SCHEMA,
    Board,
    build_board,
)
from pmolens.warehouse.transforms.dependencies import dependency_edges
from tests.factories import frame, work_items

AS_OF = datetime(2026, 1, 10, tzinfo=UTC)


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC)


def _sprint(source: str, sid: str, team: str, start: datetime, end: datetime) -> dict[str, Any]:
    state = "active" if start <= AS_OF < end else ("closed" if end <= AS_OF else "future")
    return {"sprint_id": f"{source}:{sid}", "source": source, "native_id": sid, "name": sid,
            "team": team, "board": team, "state": state, "start": start, "end": end}  # fmt: skip


SPRINTS = frame(
    "sprints",
    _sprint("nw", "W1", "Web", at(1, 5), at(1, 19)),
    _sprint("nw", "W2", "Web", at(1, 19), at(2, 2)),
    _sprint("nw", "W3", "Web", at(2, 2), at(2, 16)),
    _sprint("nw", "A1", "App", at(1, 5), at(1, 19)),
    _sprint("nw", "A2", "App", at(1, 19), at(2, 2)),
    *[
        _sprint("co", sid, team, start, end)
        for sid, start, end in (
            ("I1", at(1, 1), at(1, 22)),
            ("I2", at(1, 22), at(2, 12)),
            ("I3", at(2, 12), at(3, 5)),
        )
        for team in ("Pay", "Risk")
    ],
)


def _nw(n: str, team: str, sprint: str | None = None, **kw: Any) -> dict[str, Any]:
    return {"item_id": f"nw:{n}", "source": "nw", "key": f"NW-{n}", "team": team,
            "organisation": "Northwind", "sprint_id": f"nw:{sprint}" if sprint else None,
            **kw}  # fmt: skip


def _co(n: str, team: str, sprint: str | None = None, **kw: Any) -> dict[str, Any]:
    return {"item_id": f"co:{n}", "source": "co", "key": f"CO-{n}", "team": team,
            "organisation": "Contoso", "sprint_id": f"co:{sprint}" if sprint else None,
            **kw}  # fmt: skip


ITEMS = work_items(
    _nw("E1", "Web", level="epic"),
    _nw("11", "Web", "W2", parent_id="nw:E1"),
    _nw("12", "Web", "W3", parent_id="nw:E1"),
    _nw("13", "Web", "W1", parent_id="nw:E1", status_category="done"),
    _nw("E2", "App", level="epic"),
    _nw("21", "App", "A1", parent_id="nw:E2"),
    _nw("23", "App", parent_id="nw:E2"),
    _co("E3", "Pay", level="epic"),
    _co("F1", "Pay", level="feature", parent_id="co:E3"),
    _co("31", "Pay", "I2", parent_id="co:F1"),
    _co("32", "Pay", "I1", parent_id="co:F1", status_category="done"),
    _co("33", "Pay", "I2", parent_id="co:F1"),
    _co("F2", "Risk", level="feature", parent_id="co:E3"),
    _co("41", "Risk", "I3", parent_id="co:F2"),
    _co("42", "Risk", "I2", parent_id="co:F2"),
    _co("E4", "Risk", level="epic"),
)


def _link(n: int, blocker: str, dependent: str) -> dict[str, Any]:
    return {"source": blocker.split(":")[0], "link_id": f"L{n}", "from_item": blocker,
            "to_item": dependent, "kind": "blocks", "raw_type": "Blocks"}  # fmt: skip


LINKS = frame(
    "links",
    _link(1, "co:41", "nw:11"),
    _link(2, "co:41", "nw:12"),
    _link(3, "co:31", "nw:12"),
    _link(4, "nw:21", "nw:11"),
    _link(5, "nw:23", "nw:12"),
    _link(6, "co:33", "co:42"),
    _link(7, "nw:11", "nw:12"),
    _link(8, "nw:21", "nw:13"),
)
SOURCES = frame(
    "sources",
    {"source": "nw", "kind": "jira_cloud", "organisation": "Northwind", "base_url": "https://nw"},
    {"source": "co", "kind": "azure_devops", "organisation": "Contoso", "base_url": "https://co"},
)
FORECAST = pl.DataFrame(
    {
        "epic_id": ["nw:E1", "nw:E2", "co:E3"],
        "p85": [date(2026, 3, 1), date(2026, 1, 15), date(2026, 3, 20)],
    }
)


def _frames(items: pl.DataFrame = ITEMS, links: pl.DataFrame = LINKS) -> dict[str, pl.DataFrame]:
    return {"work_items": items, "links": links, "sprints": SPRINTS, "sources": SOURCES}


def _board(items: pl.DataFrame = ITEMS, links: pl.DataFrame = LINKS, **filters: Any) -> Board:
    frames = _frames(items, links)
    return build_board(
        items,
        SPRINTS,
        SOURCES,
        team_organisation(items),
        dependency_edges(frames, AS_OF),
        FORECAST,
        **filters,
    )


def _by_id(cards: pl.DataFrame) -> dict[str, dict[str, Any]]:
    return {row["card_id"]: row for row in cards.to_dicts()}


def test_lanes_one_per_team_grouped_by_organisation():
    b = _board()
    assert b.lanes.schema == pl.Schema(LANE_SCHEMA)
    assert b.lanes.rows() == [
        ("Contoso", "Pay", 1, False),
        ("Contoso", "Risk", 2, False),
        ("Northwind", "App", 1, False),
        ("Northwind", "Web", 1, False),
    ]


def test_each_team_has_its_own_cadence_and_a_shared_iteration_shows_in_every_lane():
    s = _board().sprints
    assert s.schema == pl.Schema(SPRINT_SCHEMA)
    web = s.filter(pl.col("team") == "Web")
    assert web["sprint_id"].to_list() == ["nw:W1", "nw:W2", "nw:W3"]
    assert web["end"].to_list() == [date(2026, 1, 19), date(2026, 2, 2), date(2026, 2, 16)]
    for team in ("Pay", "Risk"):
        lane = s.filter(pl.col("team") == team)
        assert lane["sprint_id"].to_list() == ["co:I1", "co:I2", "co:I3"]
        assert lane["organisation"].unique().to_list() == ["Contoso"]
        assert lane["start"].to_list() == [date(2026, 1, 1), date(2026, 1, 22), date(2026, 2, 12)]
    assert s.filter(pl.col("sprint_id") == "co:I1")["state"].to_list() == ["active", "active"]


def test_cards_are_features_and_epics_without_features():
    cards = _board().cards
    assert cards.schema == pl.Schema({**CARD_SCHEMA, "outside_filter": pl.Boolean})
    got = _by_id(cards)
    # CO-E3's work all sits in its features: shown through them
    assert set(got) == {"nw:E1", "nw:E2", "co:F1", "co:F2", "co:E4"}
    f1 = got["co:F1"]
    assert (f1["level"], f1["epic_id"], f1["epic_key"]) == ("feature", "co:E3", "CO-E3")
    assert (f1["planned_end"], f1["planned_sprint_id"]) == (date(2026, 2, 12), "co:I2")
    assert (f1["open_items"], f1["done_items"], f1["p85"], f1["ghost"]) == (2, 1, None, False)
    assert (got["co:F2"]["planned_end"], got["co:F2"]["planned_sprint_id"]) == (
        date(2026, 3, 5),
        "co:I3",
    )
    e1 = got["nw:E1"]
    assert (e1["level"], e1["epic_id"], e1["epic_key"]) == ("epic", "nw:E1", "NW-E1")
    # the latest sprint of its open items (NW-13 is done, its W1 does not count)
    assert (e1["planned_end"], e1["planned_sprint_id"]) == (date(2026, 2, 16), "nw:W3")
    assert (e1["open_items"], e1["done_items"]) == (2, 1)
    e4 = got["co:E4"]
    assert (e4["planned_end"], e4["open_items"], e4["done_items"]) == (None, 1, 0)
    assert not any(cards["outside_filter"])


def test_ghost_card_when_the_p85_falls_after_the_planned_sprint():
    got = _by_id(_board().cards)
    assert (got["nw:E1"]["p85"], got["nw:E1"]["ghost"]) == (date(2026, 3, 1), True)
    # forecast before the plan: no ghost; no forecast: no ghost
    assert (got["nw:E2"]["p85"], got["nw:E2"]["ghost"]) == (date(2026, 1, 15), False)
    assert (got["co:E4"]["p85"], got["co:E4"]["ghost"]) == (None, False)
    # forecast but nothing planned: the ghost is the only place the card can be drawn
    items = ITEMS.with_columns(
        pl.when(pl.col("item_id").is_in(["nw:11", "nw:12"]))
        .then(None)
        .otherwise(pl.col("sprint_id"))
        .alias("sprint_id")
    )
    e1 = _by_id(_board(items).cards)["nw:E1"]
    assert (e1["planned_end"], e1["ghost"]) == (None, True)


def test_arrows_lift_item_dependencies_to_cards_worst_timing_wins():
    arrows = _board().arrows
    assert arrows.schema == pl.Schema(ARROW_SCHEMA)
    assert arrows.rows() == [
        ("co:F2", "nw:E1", "conflict", "conflict", True, 2),
        ("nw:E2", "nw:E1", "unscheduled_blocker", "unscheduled", False, 2),
        ("co:F1", "co:F2", "at_risk", "same_sprint", False, 1),
        ("co:F1", "nw:E1", "on_track", "on_track", True, 1),
    ]


def test_filter_to_one_organisation_keeps_the_cross_organisation_red_arrow():
    b = _board(organisation="Northwind")
    cards = _by_id(b.cards)
    assert {k: v["outside_filter"] for k, v in cards.items()} == {
        "nw:E1": False,
        "nw:E2": False,
        "co:F1": True,
        "co:F2": True,
    }
    assert ("co:F2", "nw:E1", "conflict") in b.arrows.select(
        "from_card", "to_card", "timing"
    ).rows()
    # CO-F1 -> CO-F2 touches no Northwind card
    assert ("co:F1", "co:F2") not in b.arrows.select("from_card", "to_card").rows()
    assert b.lanes.rows() == [
        ("Contoso", "Pay", 1, True),
        ("Contoso", "Risk", 1, True),
        ("Northwind", "App", 1, False),
        ("Northwind", "Web", 1, False),
    ]
    # the outside cards' lanes keep their sprints, so the cards can be placed
    assert set(b.sprints["team"].unique().to_list()) == {"Pay", "Risk", "App", "Web"}


def test_filter_by_team_epic_and_dates():
    risk = _board(team="Risk")
    assert sorted(risk.cards.filter(~pl.col("outside_filter"))["card_id"]) == ["co:E4", "co:F2"]
    assert sorted(risk.cards.filter(pl.col("outside_filter"))["card_id"]) == ["co:F1", "nw:E1"]

    by_key = _board(epic="CO-E3")
    assert by_key.cards.equals(_board(epic="co:E3").cards)
    inside = by_key.cards.filter(~pl.col("outside_filter"))["card_id"].to_list()
    assert sorted(inside) == ["co:F1", "co:F2"]
    # an epic filter shows only the lanes that hold its cards (and the outside ones)
    assert by_key.lanes.select("team", "outside_filter").rows() == [
        ("Pay", False),
        ("Risk", False),
        ("Web", True),
    ]

    feb = _board(date_from=date(2026, 2, 13), date_to=date(2026, 2, 28))
    # NW-E1 is planned 16 Feb; nothing else ends or lands in the range
    assert feb.cards.filter(~pl.col("outside_filter"))["card_id"].to_list() == ["nw:E1"]
    # sprints overlapping the range only
    assert sorted(feb.sprints.filter(pl.col("team") == "Web")["sprint_id"]) == ["nw:W3"]
    assert feb.sprints.filter(pl.col("team") == "Pay")["sprint_id"].to_list() == ["co:I3"]
    march = _board(date_from=date(2026, 3, 1), date_to=date(2026, 3, 1))
    # P85 in range counts as well as the planned end
    assert "nw:E1" in march.cards.filter(~pl.col("outside_filter"))["card_id"].to_list()


def test_an_epic_with_features_is_a_card_when_work_or_a_link_sits_on_it_directly():
    items = pl.concat([ITEMS, work_items(_co("34", "Pay", "I3", parent_id="co:E3"))])
    e3 = _by_id(_board(items).cards)["co:E3"]
    # holds only its direct work (CO-34), not its features' items; P85 from the forecast
    assert (e3["open_items"], e3["planned_end"], e3["p85"], e3["ghost"]) == (
        1,
        date(2026, 3, 5),
        date(2026, 3, 20),
        True,
    )
    linked = pl.concat([LINKS, frame("links", _link(9, "co:E3", "nw:11"))])
    b = _board(links=linked)
    assert "co:E3" in _by_id(b.cards)
    assert ("co:E3", "nw:E1", "conflict") not in b.arrows.select(
        "from_card", "to_card", "timing"
    ).rows()  # E3 is unplanned: blocker not scheduled
    assert ("co:E3", "nw:E1", "unscheduled_blocker") in b.arrows.select(
        "from_card", "to_card", "timing"
    ).rows()


def test_done_cards_and_work_outside_any_feature_or_epic_are_not_on_the_board():
    items = pl.concat(
        [
            ITEMS.with_columns(
                pl.when(pl.col("item_id") == "co:E4")
                .then(pl.lit("done"))
                .otherwise(pl.col("status_category"))
                .alias("status_category")
            ),
            work_items(_nw("99", "Web", "W1")),
        ]
    )
    links = pl.concat([LINKS, frame("links", _link(10, "nw:99", "nw:11"))])
    b = _board(items, links)
    assert "co:E4" not in _by_id(b.cards)
    assert "nw:99" not in b.arrows["from_card"].to_list()


@pytest.fixture(scope="module")
def results() -> dict[str, pl.DataFrame]:
    frames = {
        **_frames(),
        "status_changes": frame("status_changes"),
        "teams": frame("teams"),
        "organisations": frame("organisations"),
    }
    return compute(
        Inputs(frames, Settings(), AS_OF), ["board_cards", "board_arrows", "board_sprints"]
    )


def test_the_kept_analyses_are_unfiltered_and_board_cuts_a_view(results):
    assert results["board_cards"].schema == pl.Schema(CARD_SCHEMA)
    assert results["board_arrows"].schema == pl.Schema(ARROW_SCHEMA)
    assert results["board_sprints"].schema == pl.Schema(SPRINT_SCHEMA)
    whole = board(results.__getitem__)
    assert whole.arrows.height == 4
    assert set(whole.cards["card_id"]) == {"nw:E1", "nw:E2", "co:F1", "co:F2", "co:E4"}
    north = board(results.__getitem__, organisation="Northwind")
    assert north.cards.filter(pl.col("outside_filter"))["card_id"].sort().to_list() == [
        "co:F1",
        "co:F2",
    ]
