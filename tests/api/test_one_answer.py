"""One answer to "how many red lines do we have?" in every view (issue 12, point 3).

A red line is an open dependency edge whose timing is conflict, unscheduled_blocker or at_risk
(docs/dependencies.md, "Timing and red lines"). The demo summary, GET /dependencies/red-lines,
the steering report's headline and the ``dependency_timing_conflict`` findings must give the
same count, by state, and the same number of waiting items.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient
from rich.console import Console

import pmolens.warehouse.transforms.alignment as A
from pmolens.api.app import create_app
from pmolens.api.demo import _print_findings
from pmolens.pipeline.refresh import refresh
from pmolens.reports.steering import build_report
from pmolens.warehouse.store import Staged
from pmolens.warehouse.transforms.dependencies.timing import red_line_headline
from tests.api.conftest import VIEWER, auth
from tests.factories import frame, work_items

AS_OF = datetime(2026, 1, 5, tzinfo=UTC)


def _nw(item_id: str, team: str, due: date | None = None, **kw: Any) -> dict[str, Any]:
    n = item_id.split(":")[1]
    return {"item_id": item_id, "source": "nw", "key": f"NW-{n}", "team": team,
            "organisation": "Northwind", "due_date": due, **kw}  # fmt: skip


def _link(link_id: str, blocker: str, dependent: str) -> dict[str, Any]:
    return {"source": "nw", "link_id": link_id, "from_item": blocker, "to_item": dependent,
            "kind": "blocks", "raw_type": "Blocks"}  # fmt: skip


@pytest.fixture
def red(runtime, settings):
    """On top of the seed (L1: CO-2 blocks NW-3, neither planned: unplanned, no red line):

    | link | blocker (planned end) | dependent (planned end) | timing |
    | L2 | NW-5 Web (1 Feb) | NW-4 App (10 Jan) | conflict, 22 days |
    | L3 | NW-6 Web (none) | NW-4 | unscheduled_blocker |
    | L4 | NW-8 Web (20 Jan) | NW-7 App (20 Jan) | at_risk (same day) |
    | L5 | CO-3 Pay, Contoso (1 Mar) | NW-7 | conflict, 40 days, cross-org |
    | L6 | NW-12 Web (25 Jan) | NW-11 App (25 Jan) | at_risk |
    | L7 | NW-14 Web (none) | NW-13 App (30 Jan) | unscheduled_blocker |
    | L8 | NW-5 | NW-9 App (15 Jan, done) | done: no red line |
    | L9 | NW-10 Web (12 Jan) | NW-7 | on_track |

    By hand: 6 red lines (2 conflicts, 2 unscheduled blockers, 2 at risk) on 4 waiting items
    (NW-4, NW-7, NW-11, NW-13).
    """
    nw = work_items(
        _nw("nw:4", "App", date(2026, 1, 10), parent_id="nw:1"),
        _nw("nw:5", "Web", date(2026, 2, 1)),
        _nw("nw:6", "Web"),
        _nw("nw:7", "App", date(2026, 1, 20)),
        _nw("nw:8", "Web", date(2026, 1, 20)),
        _nw("nw:9", "App", date(2026, 1, 15), status_category="done"),
        _nw("nw:10", "Web", date(2026, 1, 12)),
        _nw("nw:11", "App", date(2026, 1, 25)),
        _nw("nw:12", "Web", date(2026, 1, 25)),
        _nw("nw:13", "App", date(2026, 1, 30)),
        _nw("nw:14", "Web"),
    )
    co = work_items(
        {"item_id": "co:3", "source": "co", "key": "CO-3", "team": "Pay",
         "organisation": "Contoso", "due_date": date(2026, 3, 1)},
    )  # fmt: skip
    links = frame(
        "links",
        _link("L2", "nw:5", "nw:4"),
        _link("L3", "nw:6", "nw:4"),
        _link("L4", "nw:8", "nw:7"),
        _link("L5", "co:3", "nw:7"),
        _link("L6", "nw:12", "nw:11"),
        _link("L7", "nw:14", "nw:13"),
        _link("L8", "nw:5", "nw:9"),
        _link("L9", "nw:10", "nw:7"),
    )
    wh = runtime.warehouse
    for source, items, link_rows in (("nw", nw, [links]), ("co", co, [])):
        run_id = wh.begin_run(source, "incremental", None)
        wh.commit_sync(
            run_id, source, Staged(work_items=[items], links=link_rows), live_ids=None, cursor=None
        )
    refresh(wh, settings, as_of=AS_OF)
    return runtime


HAND = {"red_lines": 6, "conflict": 2, "unscheduled_blocker": 2, "at_risk": 2, "waiting_items": 4}


def _cli(runtime, settings) -> dict[str, int]:
    """The demo summary as printed: 'Red lines', each state as 'n of N red lines', the items."""
    out = io.StringIO()
    _print_findings(runtime.warehouse, settings, Console(file=out, width=200, color_system=None))
    text = out.getvalue()

    def cell(label: str) -> str:
        found = re.search(rf"│\s+{re.escape(label)}\s+│\s+([^│]+?)\s+│", text)
        assert found, (label, text)
        return found.group(1)

    total = int(cell("Red lines"))
    got = {"red_lines": total}
    for state, label in (
        ("conflict", "Conflicts"),
        ("unscheduled_blocker", "Blocker not planned"),
        ("at_risk", "At risk (same sprint or end date)"),
    ):
        n, of = re.fullmatch(r"(\d+) of (\d+) red lines", cell(label)).groups()  # type: ignore[union-attr]
        assert int(of) == total  # a subset says which whole it is part of
        got[state] = int(n)
    got["waiting_items"] = int(cell("Waiting items with a red line"))
    return got


def _api(runtime) -> dict[str, int]:
    with TestClient(create_app(runtime), headers=auth(VIEWER)) as api:
        body = api.get("/dependencies/red-lines").json()
        assert (
            api.get("/dependencies/red-lines", params={"organisation": "Contoso"}).json()[
                "red_lines"
            ]
            == 1
        )  # L5 only: the organisation filter is /dependencies/conflicts' filter
        assert len(api.get("/dependencies/conflicts").json()) == body["red_lines"]
    return {
        "red_lines": body["red_lines"],
        **body["by_timing"],
        "waiting_items": body["waiting_items"],
    }


def _report(runtime, settings, lang: str) -> dict[str, int]:
    """The Dependencies section's headline tiles in the rendered HTML."""
    html = build_report(runtime.warehouse, settings, lang=lang)  # type: ignore[arg-type]
    section = html[html.index('<section id="dependencies">') :]
    section = section[: section.index("</section>")]
    tiles = dict(
        (label, value)
        for value, label in re.findall(r"<div><b>([^<]*)</b><span>([^<]*)</span></div>", section)
    )
    if lang == "en":
        labels = ("Red lines", "Conflicts", "Blocker not planned",
                  "At risk (same sprint or end date)", "Waiting items with a red line")  # fmt: skip
        of = r"(\d+) of (\d+) red lines"
    else:
        labels = ("Rode lijnen", "Conflicten", "Blokkerend item niet gepland",
                  "Risico (zelfde sprint of einddatum)", "Wachtende items met een rode lijn")  # fmt: skip
        of = r"(\d+) van (\d+) rode lijnen"
    total = int(tiles[labels[0]])
    got = {"red_lines": total}
    for state, label in zip(
        ("conflict", "unscheduled_blocker", "at_risk"), labels[1:4], strict=True
    ):
        n, whole = re.fullmatch(of, tiles[label]).groups()  # type: ignore[union-attr]
        assert int(whole) == total
        got[state] = int(n)
    got["waiting_items"] = int(tiles[labels[4]])
    return got


def _rule(findings: pl.DataFrame) -> dict[str, int]:
    """What the rule's findings count: one per waiting item, its other red lines "(+k more)"."""
    mine = findings.filter(pl.col("rule") == "dependency_timing_conflict")
    more = [
        int(m.group(1)) if (m := re.search(r"\(\+(\d+) more\)$", message)) else 0
        for message in mine["message"].to_list()
    ]
    return {"red_lines": mine.height + sum(more), "waiting_items": mine.height}


def test_every_view_gives_the_same_red_line_count(red, settings):
    cli = _cli(red, settings)
    api = _api(red)
    report_en = _report(red, settings, "en")
    report_nl = _report(red, settings, "nl")
    findings = red.results.get("findings").filter(pl.col("status") != "resolved")
    rule = _rule(findings)
    assert cli == api == report_en == report_nl == HAND
    assert rule == {"red_lines": HAND["red_lines"], "waiting_items": HAND["waiting_items"]}
    # severities from the state of each item's worst red line, owners from the team boundary
    got = sorted(
        findings.filter(pl.col("rule") == "dependency_timing_conflict")
        .select("key", "severity", "owner_role")
        .iter_rows()
    )
    assert got == [
        ("NW-11", "info", "SoS Master"),  # at risk only
        ("NW-13", "warning", "SoS Master"),  # unscheduled blocker
        ("NW-4", "critical", "SoS Master"),  # conflict of 22 days (>= 14) + unscheduled
        ("NW-7", "critical", "SoS Master"),  # conflict of 40 days + at risk
    ]


def _edge(link: str, blocker: str, dependent: str, timing: str, **kw: Any) -> dict[str, Any]:
    return {"link_id": link, "blocker_id": blocker, "dependent_id": dependent,
            "blocker_key": blocker, "dependent_key": dependent, "blocker_team": "B",
            "dependent_team": "D", "blocker_org": "Org", "dependent_org": "Org",
            "blocker_category": "todo", "dependent_category": "todo", "cross_team": True,
            "cross_org": False, "open": True, "unresolved": False, "timing": timing, **kw}  # fmt: skip


def test_red_line_headline_on_a_hand_built_frame():
    """Red lines by hand: e1, e2 (D1), e3 (D2), e5 (D3) = 4; conflicts 2 (e1, e5), unscheduled
    1 (e2), at risk 1 (e3); waiting items D1, D2, D3 = 3. Not red: e4 on track, e6 a conflict
    that is closed (open false), e7 unplanned, e8 done."""
    edges = pl.DataFrame(
        [
            _edge("e1", "B1", "D1", "conflict", slip_days=5),
            _edge("e2", "B2", "D1", "unscheduled_blocker"),
            _edge("e3", "B3", "D2", "at_risk"),
            _edge("e4", "B4", "D2", "on_track"),
            _edge("e5", "B5", "D3", "conflict", slip_days=20),
            _edge("e6", "B6", "D4", "conflict", slip_days=9, open=False),
            _edge("e7", "B7", "D5", "unplanned"),
            _edge("e8", "B8", "D6", "done", dependent_category="done"),
        ],
        schema=A.EDGES_SCHEMA,
    )
    hand = {
        "red_lines": 4,
        "conflict": 2,
        "unscheduled_blocker": 1,
        "at_risk": 1,
        "waiting_items": 3,
    }
    assert red_line_headline(edges) == hand
    items = work_items(*({"item_id": i} for i in ("B1", "B2", "B3", "B5", "D1", "D2", "D3")))
    ctx = A.RuleContext({"work_items": items}, edges, AS_OF)
    found = A.run_rule(A.resolve_rules(None)["dependency_timing_conflict"], ctx)
    assert _rule(found) == {"red_lines": 4, "waiting_items": 3}
    assert sorted(found.select("item_id", "severity").iter_rows()) == [
        ("D1", "warning"),  # conflict of 5 days (< 14), +1 more (the unscheduled blocker)
        ("D2", "info"),  # at risk
        ("D3", "critical"),  # conflict of 20 days
    ]
