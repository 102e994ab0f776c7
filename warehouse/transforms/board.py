"""The program board: one lane per team (grouped by organisation) on a shared date axis, each
team's own sprints in its lane, features and epics as cards in the sprint in which they are
planned to finish (the forecast P85 as a ghost where it falls later), and arrows from blocker
card to dependent card coloured by the dependency timing. Across trackers and cadences no
tracker draws this, so the model is built here once and every view (API, web app) reads it.

Definitions: docs/board.md. Every open item belongs to one *holder*: its nearest feature, else
its nearest epic (itself included). Cards are the holders worth drawing (``board_cards``); the
item-level dependency edges (``dependency_edges``) are lifted to holder pairs and aggregated,
worst timing first, into arrows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from pmolens.warehouse.transforms.dependencies.timing import RED_LINES
from pmolens.warehouse.transforms.flow import live
from pmolens.warehouse.transforms.hierarchy import first_ancestor_where, parent_rows

#: Parents walked up to find an item's feature or epic (as ``dependency_edges`` finds its epic).
MAX_DEPTH = 6
CARD_LEVELS = ("feature", "epic")
#: Arrow timings, worst first: the red lines as ``RED_LINES`` orders them, then an arrow between
#: two unplanned ends, then one that is on track. The worst item-level edge sets a pair's arrow.
ARROW_TIMINGS = (*RED_LINES, "unplanned", "on_track")
#: How an arrow is drawn, per timing: red, orange (same sprint or end date), grey dashed.
KINDS = {
    "conflict": "conflict",
    "at_risk": "same_sprint",
    "unscheduled_blocker": "unscheduled",
    "unplanned": "unplanned",
    "on_track": "on_track",
}

CARD_SCHEMA = pl.Schema(
    {
        "card_id": pl.String,  # item_id of the feature or epic
        "key": pl.String,
        "title": pl.String,
        "url": pl.String,
        "level": pl.String,  # feature | epic
        "organisation": pl.String,
        "team": pl.String,  # the card's own team, else the team most of its items belong to
        "epic_id": pl.String,  # a feature's epic; an epic itself
        "epic_key": pl.String,
        "planned_end": pl.Date,  # end of the latest sprint among its open items; null: not planned
        "planned_sprint_id": pl.String,
        "p85": pl.Date,  # forecast_epics P85 (epics only)
        "ghost": pl.Boolean,  # p85 falls after planned_end (or nothing is planned)
        "open_items": pl.Int64,
        "done_items": pl.Int64,
        "status_category": pl.String,
    }
)
ARROW_SCHEMA = pl.Schema(
    {
        "from_card": pl.String,  # the blocker's card
        "to_card": pl.String,  # the dependent's card
        "timing": pl.String,  # worst of ARROW_TIMINGS among its links
        "kind": pl.String,  # KINDS[timing]
        "cross_org": pl.Boolean,  # the two cards belong to different organisations
        "links": pl.Int64,  # item-level dependencies drawn as this arrow
    }
)
SPRINT_SCHEMA = pl.Schema(
    {
        "team": pl.String,
        "organisation": pl.String,
        "sprint_id": pl.String,
        "name": pl.String,
        "start": pl.Date,
        "end": pl.Date,
        "state": pl.String,
    }
)
LANE_SCHEMA = pl.Schema(
    {
        "organisation": pl.String,
        "team": pl.String,
        "n_cards": pl.Int64,
        "outside_filter": pl.Boolean,  # only here for a card at the far end of a kept arrow
    }
)
#: A holder's items (``holders``) and its lifted dependency edges (``holder_links``).
HOLDER_SCHEMA = pl.Schema(
    {
        "item_id": pl.String,
        "holder_id": pl.String,
        "epic_id": pl.String,
        "epic_key": pl.String,
        "leaf": pl.Boolean,  # no live item names it as parent (counted as work, as in portfolio)
    }
)
LINK_SCHEMA = pl.Schema({"from_card": pl.String, "to_card": pl.String, "timing": pl.String})


@dataclass(frozen=True)
class Board:
    """The board's four frames (``LANE_SCHEMA``, ``SPRINT_SCHEMA``, ``CARD_SCHEMA`` plus
    ``outside_filter``, ``ARROW_SCHEMA``)."""

    lanes: pl.DataFrame
    sprints: pl.DataFrame
    cards: pl.DataFrame
    arrows: pl.DataFrame


def _is_open() -> pl.Expr:
    """Not done; an unknown category counts as open (as the dependency edges count it)."""
    return (pl.col("status_category") != "done").fill_null(True)


def holders(work_items: pl.DataFrame) -> pl.DataFrame:
    """Per live item (``HOLDER_SCHEMA``): its holder (nearest feature, else nearest epic, the
    item itself included; null: neither above it) and its nearest epic. One numpy gather per
    level walked (``hierarchy.first_ancestor_where``), no join per level."""
    items = live(work_items)
    parent = parent_rows(items)
    level = items["level"]
    holder = first_ancestor_where(
        parent, level.is_in(list(CARD_LEVELS)).fill_null(False).to_numpy(), MAX_DEPTH
    )
    epic = first_ancestor_where(parent, (level == "epic").fill_null(False).to_numpy(), MAX_DEPTH)
    leaf = np.ones(items.height, dtype=bool)
    leaf[parent[parent >= 0]] = False

    def at(rows: np.ndarray, column: str) -> pl.Expr:
        return pl.when(pl.Series(rows >= 0)).then(
            pl.col(column).gather(pl.Series(np.maximum(rows, 0)))
        )

    return items.select(
        "item_id",
        at(holder, "item_id").alias("holder_id"),
        at(epic, "item_id").alias("epic_id"),
        at(epic, "key").alias("epic_key"),
        pl.Series("leaf", leaf, dtype=pl.Boolean),
    ).cast(HOLDER_SCHEMA)


def holder_links(edges: pl.DataFrame, held: pl.DataFrame) -> pl.DataFrame:
    """The open item-level dependency edges that an arrow can draw (both ends known, timing in
    ``ARROW_TIMINGS``: a done dependent waits no more) lifted to their ends' holders
    (``LINK_SCHEMA``, one row per edge); an end without holder, and an edge within one holder,
    are left out."""
    holder = held.select("item_id", "holder_id")
    return (
        edges.filter(
            pl.col("open").fill_null(False)
            & ~pl.col("unresolved").fill_null(False)
            & pl.col("timing").is_in(list(ARROW_TIMINGS))
        )
        .select("blocker_id", "dependent_id", "timing")
        .join(holder.rename({"item_id": "blocker_id", "holder_id": "from_card"}), on="blocker_id")
        .join(holder.rename({"item_id": "dependent_id", "holder_id": "to_card"}), on="dependent_id")
        .filter(pl.col("from_card") != pl.col("to_card"))
        .select(list(LINK_SCHEMA))
        .cast(LINK_SCHEMA)
    )


def board_cards(
    work_items: pl.DataFrame,
    sprints: pl.DataFrame,
    forecast_epics: pl.DataFrame,
    held: pl.DataFrame,
    links: pl.DataFrame,
) -> pl.DataFrame:
    """The cards (``CARD_SCHEMA``), unfiltered; ``held`` = ``holders(work_items)``, ``links`` =
    ``holder_links(edges, held)``.

    A feature is a card while it is open or holds open items. An epic is a card on the same
    condition and when the board needs it: no open feature card under it, or open work directly
    under it (outside its features), or a drawable dependency edge ends at what it holds itself
    (the epic, or work directly under it). An epic
    whose work all sits in features is shown through them (each carries its ``epic_id``).
    ``open_items`` / ``done_items`` count the work (leaf items) the card holds; ``planned_end``
    is the end (UTC date) of the latest sprint an open held item (the card included) is in."""
    items = live(work_items)
    ends = (
        sprints.filter(pl.col("end").is_not_null())
        .select("sprint_id", pl.col("end").dt.date().alias("_end"))
        .unique("sprint_id", keep="first")
    )
    mine = (
        held.filter(pl.col("holder_id").is_not_null())
        .select("item_id", "holder_id", "leaf")
        .join(
            items.select("item_id", "team", "sprint_id", _is_open().alias("_open")),
            on="item_id",
        )
    )
    counts = mine.group_by("holder_id").agg(
        (pl.col("leaf") & pl.col("_open")).sum().cast(pl.Int64).alias("open_items"),
        (pl.col("leaf") & ~pl.col("_open")).sum().cast(pl.Int64).alias("done_items"),
        (pl.col("_open") & (pl.col("item_id") != pl.col("holder_id"))).any().alias("_holds_open"),
    )
    planned = (
        mine.filter(pl.col("_open"))
        .join(ends, on="sprint_id")
        .sort("_end", "sprint_id")
        .group_by("holder_id")
        .agg(
            pl.col("_end").last().alias("planned_end"),
            pl.col("sprint_id").last().alias("planned_sprint_id"),
        )
    )
    team = (
        mine.filter(pl.col("team").is_not_null())
        .group_by("holder_id", "team")
        .len()
        .sort(["holder_id", "len", "team"], descending=[False, True, False])
        .unique("holder_id", keep="first")
        .select("holder_id", pl.col("team").alias("_team"))
    )
    linked = pl.concat([links["from_card"], links["to_card"]]).unique().implode()
    p85 = forecast_epics.select(pl.col("epic_id").alias("card_id"), pl.col("p85").alias("_p85"))
    candidates = (
        items.filter(pl.col("level").is_in(list(CARD_LEVELS)))
        .select(
            pl.col("item_id").alias("card_id"),
            "key",
            "title",
            "url",
            "level",
            "organisation",
            "team",
            "status_category",
            _is_open().alias("_open"),
        )
        .join(held.select(pl.col("item_id").alias("card_id"), "epic_id", "epic_key"), on="card_id")
        .join(counts.rename({"holder_id": "card_id"}), on="card_id", how="left")
        .join(planned.rename({"holder_id": "card_id"}), on="card_id", how="left")
        .join(team.rename({"holder_id": "card_id"}), on="card_id", how="left")
        .join(p85, on="card_id", how="left")
        .with_columns(
            (pl.col("_open") | pl.col("_holds_open").fill_null(False)).alias("_alive"),
            pl.col("open_items").fill_null(0),
            pl.col("done_items").fill_null(0),
            pl.coalesce("team", "_team").alias("team"),
            pl.when(pl.col("level") == "epic").then(pl.col("_p85")).alias("p85"),
        )
    )
    features_under = (
        candidates.filter((pl.col("level") == "feature") & pl.col("_alive"))
        .group_by("epic_id")
        .len("_features")
        .rename({"epic_id": "card_id"})
    )
    needed = (
        (pl.col("level") == "feature")
        | (pl.col("_features").fill_null(0) == 0)
        | pl.col("_holds_open").fill_null(False)
        | pl.col("card_id").is_in(linked)
    )
    return (
        candidates.join(features_under, on="card_id", how="left")
        .filter(pl.col("_alive") & needed)
        .with_columns(
            (
                pl.col("p85").is_not_null()
                & (pl.col("planned_end").is_null() | (pl.col("p85") > pl.col("planned_end")))
            ).alias("ghost")
        )
        .select(list(CARD_SCHEMA))
        .cast(CARD_SCHEMA)
        .sort("organisation", "team", "planned_end", "key", nulls_last=True)
    )


def board_arrows(links: pl.DataFrame, cards: pl.DataFrame) -> pl.DataFrame:
    """One arrow per (blocker card, dependent card) with at least one drawable edge between
    cards (``ARROW_SCHEMA``): ``timing`` is the worst of its edges (``ARROW_TIMINGS``),
    ``links`` how many edges it stands for. Sorted worst first, then by the two cards."""
    rank = {t: i for i, t in enumerate(ARROW_TIMINGS)}
    org = cards.select("card_id", "organisation")
    return (
        links.join(org.rename({"card_id": "from_card", "organisation": "_from_org"}), "from_card")
        .join(org.rename({"card_id": "to_card", "organisation": "_to_org"}), on="to_card")
        .group_by("from_card", "to_card")
        .agg(
            pl.col("timing").replace_strict(rank, return_dtype=pl.Int8).min().alias("_rank"),
            pl.len().cast(pl.Int64).alias("links"),
            pl.col("_from_org").first().ne_missing(pl.col("_to_org").first()).alias("cross_org"),
        )
        .sort("_rank", "from_card", "to_card")
        .with_columns(
            pl.col("_rank").replace_strict(dict(enumerate(ARROW_TIMINGS))).alias("timing"),
        )
        .with_columns(pl.col("timing").replace_strict(KINDS).alias("kind"))
        .select(list(ARROW_SCHEMA))
        .cast(ARROW_SCHEMA)
    )


def board_sprints(
    sprints: pl.DataFrame, team_organisation: pl.DataFrame, sources: pl.DataFrame
) -> pl.DataFrame:
    """Each team's sprints (``SPRINT_SCHEMA``): the rows per (sprint, team it serves) that
    ``Warehouse.frames`` hands over, so an iteration shared by several teams is drawn in each
    of their lanes. Dates are UTC days, as the dependency edges' planned ends; a sprint without
    team or dates cannot be drawn and is left out. The organisation is the team's (most of its
    items), else the sprint source's."""
    source_org = sources.select("source", pl.col("organisation").alias("_source_org"))
    return (
        sprints.filter(
            pl.col("team").is_not_null()
            & pl.col("start").is_not_null()
            & pl.col("end").is_not_null()
        )
        .unique(["team", "sprint_id"], keep="first", maintain_order=True)
        .join(team_organisation, on="team", how="left")
        .join(source_org, on="source", how="left")
        .with_columns(
            pl.coalesce("organisation", "_source_org").alias("organisation"),
            pl.col("start").dt.date(),
            pl.col("end").dt.date(),
        )
        .select(list(SPRINT_SCHEMA))
        .cast(SPRINT_SCHEMA)
        .sort("organisation", "team", "start", "sprint_id", nulls_last=True)
    )


def _lanes(cards: pl.DataFrame, sprints: pl.DataFrame) -> pl.DataFrame:
    """(organisation, team) of every card and every team sprint, once."""
    return pl.concat(
        [cards.select("organisation", "team"), sprints.select("organisation", "team")]
    ).unique()


def _in_range(column: str, date_from: date | None, date_to: date | None) -> pl.Expr:
    inside = pl.col(column).is_not_null()
    if date_from is not None:
        inside &= pl.col(column) >= date_from
    if date_to is not None:
        inside &= pl.col(column) <= date_to
    return inside.fill_null(False)


def filter_board(
    cards: pl.DataFrame,
    arrows: pl.DataFrame,
    sprints: pl.DataFrame,
    *,
    organisation: str | None = None,
    team: str | None = None,
    epic: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> Board:
    """The board for one view, from the unfiltered ``board_cards``, ``board_arrows`` and
    ``board_sprints``.

    A card is in the filter when its organisation, team and epic (``epic_id`` or ``epic_key``)
    match and its planned end or P85 falls in [date_from, date_to]. Arrows are kept when at
    least one end is in the filter; the card at the other end is shown too, with
    ``outside_filter`` (so a cross-organisation red arrow stays visible on one organisation's
    board). Lanes: those the organisation / team filter selects (with an epic filter: only
    those holding one of its cards), plus the lanes of outside cards; sprints: those lanes'
    sprints that overlap [date_from, date_to]."""
    picked = pl.lit(True)
    if organisation is not None:
        picked &= pl.col("organisation") == organisation
    if team is not None:
        picked &= pl.col("team") == team
    if epic is not None:
        picked &= (pl.col("epic_id") == epic) | (pl.col("epic_key") == epic)
    if date_from is not None or date_to is not None:
        picked &= _in_range("planned_end", date_from, date_to) | _in_range(
            "p85", date_from, date_to
        )
    inside = cards.filter(picked.fill_null(False))["card_id"].implode()
    kept_arrows = arrows.filter(pl.col("from_card").is_in(inside) | pl.col("to_card").is_in(inside))
    shown_ids = pl.concat([kept_arrows["from_card"], kept_arrows["to_card"]]).implode()
    shown = cards.filter(pl.col("card_id").is_in(inside) | pl.col("card_id").is_in(shown_ids))
    shown = shown.with_columns((~pl.col("card_id").is_in(inside)).alias("outside_filter"))

    lane_pick = pl.lit(True)
    if organisation is not None:
        lane_pick &= pl.col("organisation") == organisation
    if team is not None:
        lane_pick &= pl.col("team") == team
    selected = _lanes(cards, sprints).filter(lane_pick.fill_null(False))
    key = ["organisation", "team"]
    if epic is not None:
        holding = shown.filter(~pl.col("outside_filter")).select(key).unique()
        selected = selected.join(holding, on=key, nulls_equal=True)
    outside = (
        shown.filter(pl.col("outside_filter"))
        .select(key)
        .unique()
        .join(selected, on=key, how="anti", nulls_equal=True)
    )
    n_cards = shown.group_by(key).len("n_cards")
    lanes = (
        pl.concat(
            [
                selected.with_columns(pl.lit(False).alias("outside_filter")),
                outside.with_columns(pl.lit(True).alias("outside_filter")),
            ]
        )
        .join(n_cards, on=key, how="left", nulls_equal=True)
        .with_columns(pl.col("n_cards").fill_null(0))
        .select(list(LANE_SCHEMA))
        .cast(LANE_SCHEMA)
        .sort(key, nulls_last=True)
    )
    overlapping = pl.lit(True)
    if date_from is not None:
        overlapping &= pl.col("end") >= date_from
    if date_to is not None:
        overlapping &= pl.col("start") <= date_to
    lane_sprints = sprints.join(lanes.select(key), on=key, nulls_equal=True).filter(overlapping)
    return Board(
        lanes=lanes,
        sprints=lane_sprints.select(list(SPRINT_SCHEMA)).sort(
            "organisation", "team", "start", "sprint_id", nulls_last=True
        ),
        cards=shown,
        arrows=kept_arrows,
    )


def build_board(
    work_items: pl.DataFrame,
    sprints: pl.DataFrame,
    sources: pl.DataFrame,
    team_organisation: pl.DataFrame,
    edges: pl.DataFrame,
    forecast_epics: pl.DataFrame,
    *,
    organisation: str | None = None,
    team: str | None = None,
    epic: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> Board:
    """The whole chain in one call (tests, scripts): cards, arrows and sprints from the
    canonical frames, the dependency edges and the epic forecasts, then ``filter_board``."""
    held = holders(work_items)
    links = holder_links(edges, held)
    cards = board_cards(work_items, sprints, forecast_epics, held, links)
    return filter_board(
        cards,
        board_arrows(links, cards),
        board_sprints(sprints, team_organisation, sources),
        organisation=organisation,
        team=team,
        epic=epic,
        date_from=date_from,
        date_to=date_to,
    )
