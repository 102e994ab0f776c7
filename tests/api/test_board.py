"""GET /program-board over the seeded two-organisation warehouse, and on simulated demo data checked
against /dependencies/conflicts and /dependencies/red-lines.

``chain`` adds to the seed (NW-1 epic of Web holding NW-3; CO-1 epic of Pay holding CO-2; L1:
CO-2 blocks NW-3, neither planned):

- sprints: Web W1 5-19 Jan, W2 19 Jan-2 Feb; App A1 5-19 Jan; Contoso C1 1-29 Jan and
  C2 29 Jan-26 Feb, both shared by Pay and Risk;
- CO-F1 (feature, Pay, under CO-1) holds CO-11 (C2); CO-F2 (feature, Risk, under CO-1) holds CO-21
  (C1); NW-4 (App, A1) sits under NW-1;
- L2: CO-11 blocks NW-4: 26 Feb after 19 Jan, a cross-organisation conflict CO-F1 -> NW-1.

CO-1 holds CO-2 directly (outside its features), so it is a card too: L1 is the arrow CO-1 -> NW-1
(unplanned).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient

from pmolens.api.app import create_app
from pmolens.api.runtime import make_runtime
from pmolens.pipeline.refresh import refresh
from pmolens.warehouse.store import Staged
from pmolens.warehouse.transforms.board import ARROW_TIMINGS
from pmolens.warehouse.transforms.dependencies import RED_LINES
from tests.api.conftest import VIEWER, auth
from tests.factories import frame, simulated_chain, work_items


def _app(runtime):
    return create_app(runtime)


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC)


def _sprint(source: str, sid: str, team: str, start: datetime, end: datetime) -> dict[str, Any]:
    return {"sprint_id": f"{source}:{sid}", "source": source, "native_id": sid, "name": sid,
            "team": team, "board": team, "state": "active", "start": start, "end": end}  # fmt: skip


@pytest.fixture
def chain(runtime, settings):
    nw = work_items(
        {"item_id": "nw:4", "source": "nw", "key": "NW-4", "team": "App",
         "organisation": "Northwind", "parent_id": "nw:1", "sprint_id": "nw:A1"},
    )  # fmt: skip
    co = work_items(
        *[
            {"item_id": f"co:{n}", "source": "co", "key": f"CO-{n}", "team": team,
             "organisation": "Contoso", "parent_id": parent, "level": level,
             "sprint_id": sprint}
            for n, team, parent, level, sprint in (
                ("F1", "Pay", "co:1", "feature", None),
                ("11", "Pay", "co:F1", "story", "co:C2"),
                ("F2", "Risk", "co:1", "feature", None),
                ("21", "Risk", "co:F2", "story", "co:C1"),
            )
        ]
    )  # fmt: skip
    nw_sprints = frame(
        "sprints",
        _sprint("nw", "W1", "Web", at(1, 5), at(1, 19)),
        _sprint("nw", "W2", "Web", at(1, 19), at(2, 2)),
        _sprint("nw", "A1", "App", at(1, 5), at(1, 19)),
    )
    co_sprints = frame(
        "sprints",
        *[
            _sprint("co", sid, team, start, end)
            for sid, start, end in (("C1", at(1, 1), at(1, 29)), ("C2", at(1, 29), at(2, 26)))
            for team in ("Pay", "Risk")
        ],
    )
    links = frame(
        "links",
        {"source": "co", "link_id": "L2", "from_item": "co:11", "to_item": "nw:4",
         "kind": "blocks", "raw_type": "Blocks"},
    )  # fmt: skip
    wh = runtime.warehouse
    for source, items, sprints, link_rows in (
        ("nw", nw, nw_sprints, []),
        ("co", co, co_sprints, [links]),
    ):
        run_id = wh.begin_run(source, "incremental", None)
        wh.commit_sync(
            run_id,
            source,
            Staged(work_items=[items], sprints=[sprints], links=link_rows),
            live_ids=None,
            cursor=None,
        )
    refresh(wh, settings, as_of=at(1, 10))
    with TestClient(_app(runtime), headers=auth(VIEWER)) as c:
        yield c


def test_needs_a_viewer_token(runtime):
    with TestClient(_app(runtime)) as c:
        assert c.get("/program-board").status_code == 401


def test_the_whole_board(chain):
    got = chain.get("/program-board")
    assert got.status_code == 200, got.text
    body = got.json()
    assert [(lane["organisation"], lane["team"], lane["n_cards"]) for lane in body["lanes"]] == [
        ("Contoso", "Pay", 2),
        ("Contoso", "Risk", 1),
        ("Northwind", "App", 0),
        ("Northwind", "Web", 1),
    ]
    cards = {c["card_id"]: c for c in body["cards"]}
    assert set(cards) == {"nw:1", "co:1", "co:F1", "co:F2"}
    assert (cards["co:F1"]["planned_end"], cards["co:F1"]["epic_key"]) == ("2026-02-26", "CO-1")
    assert cards["nw:1"]["planned_end"] == "2026-01-19"
    arrows = {(a["from_card"], a["to_card"]): a for a in body["arrows"]}
    assert set(arrows) == {("co:F1", "nw:1"), ("co:1", "nw:1")}
    red = arrows[("co:F1", "nw:1")]
    assert (red["timing"], red["kind"], red["cross_org"], red["links"]) == (
        "conflict",
        "conflict",
        True,
        1,
    )
    assert arrows[("co:1", "nw:1")]["timing"] == "unplanned"
    # the shared iteration C1 is drawn in both Contoso lanes
    c1 = [s["team"] for s in body["sprints"] if s["sprint_id"] == "co:C1"]
    assert c1 == ["Pay", "Risk"]


def test_one_organisation_keeps_the_cross_organisation_red_arrow(chain):
    body = chain.get("/program-board", params={"organisation": "Northwind"}).json()
    outside = {c["card_id"]: c["outside_filter"] for c in body["cards"]}
    assert outside == {"nw:1": False, "co:1": True, "co:F1": True}
    assert any(
        a["from_card"] == "co:F1" and a["to_card"] == "nw:1" and a["timing"] == "conflict"
        for a in body["arrows"]
    )
    assert [(lane["team"], lane["outside_filter"]) for lane in body["lanes"]] == [
        ("Pay", True),
        ("App", False),
        ("Web", False),
    ]
    feb = chain.get(
        "/program-board", params={"date_from": "2026-02-01", "date_to": "2026-02-28"}
    ).json()
    assert [c["card_id"] for c in feb["cards"] if not c["outside_filter"]] == ["co:F1"]
    assert {s["sprint_id"] for s in feb["sprints"]} == {"co:C2", "nw:W2"}
    epic = chain.get("/program-board", params={"epic": "CO-1"}).json()
    assert {c["card_id"] for c in epic["cards"] if not c["outside_filter"]} == {
        "co:1",
        "co:F1",
        "co:F2",
    }


def test_unknown_organisation_or_team_is_a_422_naming_the_known_ones(chain):
    got = chain.get("/program-board", params={"organisation": "Fabrikam"})
    assert got.status_code == 422
    assert "'Contoso', 'Northwind'" in got.json()["detail"]
    got = chain.get("/program-board", params={"organisation": "Northwind", "team": "Pay"})
    assert got.status_code == 422
    assert "'App', 'Web'" in got.json()["detail"]
    assert chain.get("/program-board", params={"team": "Pay"}).status_code == 200
    got = chain.get("/program-board", params={"date_from": "2026-03-01", "date_to": "2026-02-01"})
    assert got.status_code == 422
    assert chain.get("/program-board", params={"as_of": "2026-01-10"}).status_code == 200


# ---------------------------------------------------------------- simulated demo data


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The simulated chain with a planted cross-organisation conflict (the demo need not have
    one by chance)."""
    settings, _ = simulated_chain(
        tmp_path_factory.mktemp("board-demo"), size=600, server={"auth": "none"}, plant=True
    )
    runtime = make_runtime(settings)
    with TestClient(_app(runtime)) as c:
        yield c, runtime
    runtime.warehouse.close()


def _card_of(items: pl.DataFrame) -> dict[str, str]:
    """item_id -> its nearest feature, else epic, itself included: walked by hand here, as an
    oracle independent of the transform."""
    parent = dict(zip(items["item_id"], items["parent_id"], strict=True))
    level = dict(zip(items["item_id"], items["level"], strict=True))
    found = {}
    for item in parent:
        at_, depth = item, 0
        while at_ is not None and at_ in level and depth <= 6:
            if level[at_] in ("feature", "epic"):
                found[item] = at_
                break
            at_, depth = parent[at_], depth + 1
    return found


def test_demo_red_arrows_are_the_card_pairs_of_the_conflicts(demo):
    client, runtime = demo
    board = client.get("/program-board").json()
    conflicts = client.get("/dependencies/conflicts").json()
    headline = client.get("/dependencies/red-lines").json()
    card_of = _card_of(runtime.warehouse.frames()["work_items"])
    cards = {c["card_id"] for c in board["cards"]}

    def pair(edge: dict[str, Any]) -> tuple[str, str] | None:
        ends = card_of.get(edge["blocker_id"]), card_of.get(edge["dependent_id"])
        if ends[0] in cards and ends[1] in cards and ends[0] != ends[1]:
            return ends[0], ends[1]
        return None

    conflict_pairs = {pair(e) for e in conflicts if e["timing"] == "conflict"} - {None}
    red = {(a["from_card"], a["to_card"]) for a in board["arrows"] if a["timing"] == "conflict"}
    assert conflict_pairs, "the demo plants timing conflicts between cards"
    assert red == conflict_pairs
    assert any(a["cross_org"] for a in board["arrows"] if a["timing"] == "conflict")
    # every red line between two cards is drawn, at least as bad as it is
    rank = {t: i for i, t in enumerate(ARROW_TIMINGS)}
    arrows = {(a["from_card"], a["to_card"]): a for a in board["arrows"]}
    for edge in conflicts:
        ends = pair(edge)
        if ends is not None:
            assert rank[arrows[ends]["timing"]] <= rank[edge["timing"]], (edge, arrows[ends])
    red_arrows = [a for a in board["arrows"] if a["timing"] in RED_LINES]
    assert len(red_arrows) <= headline["red_lines"]
    assert sum(a["timing"] == "conflict" for a in red_arrows) <= headline["by_timing"]["conflict"]


def test_demo_board_filtered_to_one_organisation_shows_its_cross_organisation_red_arrows(demo):
    client, _ = demo
    whole = client.get("/program-board").json()
    org_of = {c["card_id"]: c["organisation"] for c in whole["cards"]}
    crossing = [a for a in whole["arrows"] if a["cross_org"] and a["timing"] == "conflict"]
    org = org_of[crossing[0]["to_card"]]
    one = client.get("/program-board", params={"organisation": org}).json()
    kept = {(a["from_card"], a["to_card"]) for a in one["arrows"]}
    assert (crossing[0]["from_card"], crossing[0]["to_card"]) in kept
    outside = {c["card_id"] for c in one["cards"] if c["outside_filter"]}
    assert crossing[0]["from_card"] in outside or org_of[crossing[0]["from_card"]] == org
    assert all(c["organisation"] == org for c in one["cards"] if not c["outside_filter"]) and all(
        c["organisation"] != org for c in one["cards"] if c["outside_filter"]
    )
