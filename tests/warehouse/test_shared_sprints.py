"""Sprints belong to teams: two Azure DevOps teams on one shared iteration set (ADO's default).

Teams Web and App both subscribe to the project iterations S1 (5-19 Jan, closed), S2 (19 Jan -
2 Feb, closed), S3 (2-16 Feb, active) and S4 (16 Feb - 2 Mar, future); as of 10 Feb.

Web: S1 holds W1 (3, done 10 Jan), W2 (2, done 12 Jan), W3 (5, still in progress); S2 holds W4
(4, done 25 Jan) -> velocity (5 + 4) / 2 = 4.5; ready WR (9) -> ready depth 2.0.
App: S1 holds P1, P2, P3 (1 each, all done in S1); S2 holds P4 (2, done 30 Jan) -> velocity
(3 + 2) / 2 = 2.5; ready PR (5) -> ready depth 2.0.
So each team committed 3 items to S1 (not 6: the sprint is shared, the commitment is not).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest

import pmolens.warehouse.analyses  # noqa: F401  (registers the analyses)
from pmolens.connectors.azure_devops import merge_sprints
from pmolens.warehouse import schema
from pmolens.warehouse.analyses import Inputs
from pmolens.warehouse.config import settings_from_dict
from pmolens.warehouse.results import compute
from pmolens.warehouse.store import Staged, Warehouse
from tests.factories import frame, work_items

AS_OF = datetime(2026, 2, 10, tzinfo=UTC)
OLD = datetime(2025, 12, 1, tzinfo=UTC)


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC)


SETTINGS = settings_from_dict(
    {
        "sources": [
            {
                "name": "co",
                "kind": "azure_devops",
                "organisation": "Contoso",
                "base_url": "https://dev.azure.com/contoso",
                "project": "Delivery",
                "token_env": "CO_PAT",
            }
        ]
    }
)

ITERATIONS = [
    ("S1", at(1, 5), at(1, 19), "closed"),
    ("S2", at(1, 19), at(2, 2), "closed"),
    ("S3", at(2, 2), at(2, 16), "active"),
    ("S4", at(2, 16), at(3, 2), "future"),
]


def sid(name: str) -> str:
    return f"co:Delivery\\{name}"


def team_iterations(team: str) -> list[dict[str, Any]]:
    """What ``map_team_iterations`` gives for one team subscribed to the shared iterations."""
    return [
        {"sprint_id": sid(name), "source": "co", "native_id": f"Delivery\\{name}", "name": name,
         "team": team, "board": team, "state": state, "start": start, "end": end,
         "complete": end if state == "closed" else None}
        for name, start, end, state in ITERATIONS
    ]  # fmt: skip


def item(native: str, team: str, **kw: Any) -> dict[str, Any]:
    sprint = kw.pop("sprint", None)
    return {"item_id": f"co:{native}", "source": "co", "native_id": native, "team": team,
            "organisation": "Contoso", "created": OLD, "updated": at(2, 1),
            "sprint_id": sid(sprint) if sprint else None, **kw}  # fmt: skip


def done(native: str, team: str, sprint: str, estimate: float, resolved: datetime) -> dict:
    return item(native, team, sprint=sprint, estimate=estimate, status_category="done",
                raw_status="Done", resolved=resolved)  # fmt: skip


ITEMS = work_items(
    done("W1", "Web", "S1", 3.0, at(1, 10)),
    done("W2", "Web", "S1", 2.0, at(1, 12)),
    item("W3", "Web", sprint="S1", estimate=5.0, status_category="in_progress"),
    done("W4", "Web", "S2", 4.0, at(1, 25)),
    item("WR", "Web", estimate=9.0, rank="a"),
    item("U1", "Web", sprint="S3"),  # unestimated, in the active (shared) sprint
    item("W5", "Web", sprint="S4", estimate=1.0, has_description=False),
    done("P1", "App", "S1", 1.0, at(1, 8)),
    done("P2", "App", "S1", 1.0, at(1, 9)),
    done("P3", "App", "S1", 1.0, at(1, 18)),
    done("P4", "App", "S2", 2.0, at(1, 30)),
    item("PR", "App", estimate=5.0, rank="b"),
    item("P5", "App", sprint="S3", estimate=2.0),  # blocked by W5, planned in S4
)
LINKS = frame(
    "links",
    {"source": "co", "link_id": "dep:co:W5>co:P5", "from_item": "co:W5", "to_item": "co:P5",
     "kind": "blocks", "raw_type": "System.LinkTypes.Dependency-Forward"},
)  # fmt: skip


def sync(wh: Warehouse, sprint_rows: list[dict[str, Any]]) -> None:
    run_id = wh.begin_run("co", "full", None)
    staged = Staged(work_items=[ITEMS], links=[LINKS], sprints=[frame("sprints", *sprint_rows)])
    wh.commit_sync(run_id, "co", staged, live_ids=None, cursor=None)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    with Warehouse(tmp_path_factory.mktemp("shared") / "w.duckdb") as wh:
        wh.register_config(SETTINGS)
        sync(wh, merge_sprints([team_iterations("Web"), team_iterations("App")]))
        stored = {
            "sprints": wh.query("SELECT sprint_id, team FROM sprints ORDER BY sprint_id"),
            "sprint_teams": wh.query(
                "SELECT sprint_id, source, team FROM sprint_teams ORDER BY sprint_id, team"
            ),
        }
        frames = wh.frames()
        out = compute(Inputs(frames, SETTINGS, AS_OF, wh))
    return {**out, **stored, "frames": frames}


def test_one_sprint_row_per_iteration_and_one_sprint_team_row_per_team(results):
    # sprints.team is the first team that lists the iteration; sprint_teams holds them all
    assert results["sprints"].rows() == [(sid(n), "Web") for n in ("S1", "S2", "S3", "S4")]
    assert results["sprint_teams"].rows() == [
        (sid(n), "co", team) for n in ("S1", "S2", "S3", "S4") for team in ("App", "Web")
    ]
    team_sprints = results["frames"]["sprints"]
    assert team_sprints.height == 8
    assert team_sprints.group_by("team").len().sort("team").rows() == [("App", 4), ("Web", 4)]


def test_commitment_and_predictability_per_team_sprint(results):
    k = results["kpi_sprints"].filter(pl.col("closed"))
    got = {
        (r["team"], r["sprint"]): (
            r["committed_items"],
            r["committed_done_items"],
            r["throughput_items"],
            r["done_estimate"],
            r["carried_out_items"],
        )
        for r in k.iter_rows(named=True)
    }
    assert got == {
        ("Web", "S1"): (3, 2, 2, 5.0, 1),  # W1, W2, W3 committed; W3 carried out
        ("Web", "S2"): (1, 1, 1, 4.0, 0),
        ("App", "S1"): (3, 3, 3, 3.0, 0),  # P1, P2, P3: 3, not Web's 3 on top
        ("App", "S2"): (1, 1, 1, 2.0, 0),
    }
    assert set(results["kpi_sprints"]["organisation"]) == {"Contoso"}


def test_velocity_and_ready_depth_for_both_teams(results):
    teams = results["kpi_teams"].rows_by_key("team", named=True, unique=True)
    assert (teams["Web"]["sprints"], teams["Web"]["velocity"]) == (2, 4.5)
    assert (teams["App"]["sprints"], teams["App"]["velocity"]) == (2, 2.5)
    assert teams["Web"]["predictability"] == pytest.approx(3 / 4)  # (2 + 1) / (3 + 1)
    assert teams["App"]["predictability"] == 1.0
    health = (
        results["backlog_health"]
        .filter(pl.col("by") == "team")
        .rows_by_key("scope", named=True, unique=True)
    )
    web, app = health["Web"], health["App"]
    assert (web["velocity"], web["ready_estimate"], web["ready_depth_sprints"]) == (4.5, 9.0, 2.0)
    assert (app["velocity"], app["ready_estimate"], app["ready_depth_sprints"]) == (2.5, 5.0, 2.0)
    for row in (web, app):
        assert not any("ready depth unknown" in r for r in row["grade_reasons"])
    flow = results["backlog_net_flow"].filter(pl.col("closed"))
    assert sorted(flow.select("team", "sprint", "done_items").rows()) == [
        ("App", "S1", 3),
        ("App", "S2", 1),
        ("Web", "S1", 2),
        ("Web", "S2", 1),
    ]


def test_item_rules_and_dependency_timing_see_a_shared_sprint_once(results):
    unestimated = results["findings"].filter(pl.col("rule") == "unestimated_committed")
    assert unestimated["item_id"].to_list() == ["co:U1"]
    edge = results["dependency_edges"].row(0, named=True)
    assert results["dependency_edges"].height == 1
    assert (edge["blocker_planned_end"], edge["dependent_planned_end"]) == (
        date(2026, 3, 2),
        date(2026, 2, 16),
    )


def test_resync_gives_identical_sprint_teams(tmp_path):
    with Warehouse(tmp_path / "w.duckdb") as wh:
        wh.register_config(SETTINGS)
        rows = merge_sprints([team_iterations("Web"), team_iterations("App")])
        sync(wh, rows)
        first = wh.query("SELECT * FROM sprint_teams ORDER BY ALL")
        sync(wh, rows)
        assert wh.query("SELECT * FROM sprint_teams ORDER BY ALL").equals(first)
        # a team whose iterations were not read this run keeps the sprints it has items in
        sync(wh, team_iterations("Web"))
        kept = first.filter((pl.col("team") != "App") | (pl.col("sprint_id") != sid("S4")))
        assert wh.query("SELECT * FROM sprint_teams ORDER BY ALL").equals(kept)


def test_items_of_a_team_give_it_the_sprint_when_no_board_lists_one(tmp_path):
    """A sprint without a team (e.g. a Jira sprint read from an issue, board unmapped) serves
    every team with items in it; ``sprints.team`` is the team most of its items belong to."""
    teamless = [{**row, "team": None} for row in team_iterations("Web")]
    with Warehouse(tmp_path / "w.duckdb") as wh:
        wh.register_config(SETTINGS)
        sync(wh, teamless)
        got = wh.query("SELECT sprint_id, team FROM sprint_teams ORDER BY ALL").rows()
        assert got == [
            (sid("S1"), "App"),
            (sid("S1"), "Web"),
            (sid("S2"), "App"),
            (sid("S2"), "Web"),
            (sid("S3"), "App"),
            (sid("S3"), "Web"),
            (sid("S4"), "Web"),
        ]
        assert wh.query(f"SELECT team FROM sprints WHERE sprint_id = '{sid('S1')}'").item() in {
            "Web",
            "App",
        }


def test_a_warehouse_at_schema_version_2_gains_sprint_teams(tmp_path):
    """Opened by this pmolens, a version-2 warehouse is migrated: sprint_teams is backfilled
    from sprints.team and the analyses read it."""
    path = tmp_path / "v2.duckdb"
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER)")
    for version, migration in ((1, schema._v1), (2, schema._v2)):
        migration(con)
        con.execute("INSERT INTO schema_version VALUES (?)", [version])
    con.execute(
        "INSERT INTO sprints (sprint_id, source, native_id, name, team, board, state, start, "
        "\"end\") VALUES (?, 'co', ?, ?, ?, ?, 'closed', ?, ?), "
        "(?, 'co', ?, ?, NULL, NULL, 'closed', ?, ?)",
        [sid("S1"), "Delivery\\S1", "S1", "Web", "Web", at(1, 5), at(1, 19),
         sid("S2"), "Delivery\\S2", "S2", at(1, 19), at(2, 2)],
    )  # fmt: skip
    con.close()
    with Warehouse(path) as wh:
        assert wh.schema_version == schema.SCHEMA_VERSION >= 3
        backfilled = wh.query("SELECT sprint_id, source, team FROM sprint_teams").rows()
        assert backfilled == [(sid("S1"), "co", "Web")]
        sprints = wh.frames()["sprints"].sort("sprint_id")
        assert sprints.select("sprint_id", "team").rows() == [(sid("S1"), "Web"), (sid("S2"), None)]
        # and a sync after the upgrade gives the other team its share of the sprints
        wh.register_config(SETTINGS)
        sync(wh, merge_sprints([team_iterations("Web"), team_iterations("App")]))
        teams = wh.query(f"SELECT team FROM sprint_teams WHERE sprint_id = '{sid('S1')}'")
        assert sorted(teams["team"]) == ["App", "Web"]
