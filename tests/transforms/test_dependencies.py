"""Dependency analytics on a small hand-built programme with exact expected outputs.

The programme: teams A, B, C (Org) wait on each other in a 3-team cycle (a1 -> c1 -> b1 -> a1,
blocker -> dependent), C (Org) blocks C (Other) in the same sprint (cross-organisation, at risk),
team E's unplanned u0 blocks D's planned u1 (unscheduled blocker), two links have an end outside
the warehouse (unresolved), and done work closes links.
"""

from __future__ import annotations

import random
from collections import deque
from datetime import UTC, date, datetime

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from pmolens.warehouse.transforms import dependencies as D
from tests.factories import frame, work_items

AS_OF = datetime(2026, 3, 1, tzinfo=UTC)


def programme() -> dict[str, pl.DataFrame]:
    items = work_items(
        {"item_id": "E1", "level": "epic", "team": "A"},
        {"item_id": "a1", "parent_id": "E1", "team": "A", "due_date": date(2026, 3, 10),
         "estimate": 3.0, "business_value": 10.0, "priority_rank": 1},
        {"item_id": "b1", "parent_id": "E1", "team": "B", "due_date": date(2026, 3, 20),
         "estimate": 5.0, "priority_rank": 3},
        {"item_id": "c1", "team": "C", "sprint_id": "s:1", "estimate": 2.0},
        {"item_id": "c2", "team": "C", "organisation": "Other", "sprint_id": "s:1",
         "estimate": 8.0, "business_value": 100.0, "flagged": True,
         "updated": datetime(2026, 2, 25, tzinfo=UTC)},
        {"item_id": "u0", "team": "E"},
        {"item_id": "u1", "team": "D", "due_date": date(2026, 3, 5), "estimate": 1.0,
         "raw_status": "Blocked", "status_category": "in_progress"},
        {"item_id": "d1", "team": "D", "status_category": "done"},
        {"item_id": "d2", "team": "D", "status_category": "done"},
    )  # fmt: skip
    links = frame(
        "links",
        *[
            {"source": "s", "link_id": str(i), "from_item": f, "to_item": t, "kind": k}
            for i, f, t, k in (
                (1, "b1", "a1", "blocks"),
                (2, "a1", "c1", "blocks"),
                (3, "c1", "b1", "blocks"),
                (4, "c1", "c2", "blocks"),
                (5, "d1", None, "blocks"),
                (6, "x:9", "c2", "blocks"),
                (7, "u0", "u1", "blocks"),
                (8, "a1", "u1", "relates"),
                (9, "d1", "u1", "blocks"),
                (10, "d1", "d2", "blocks"),
            )
        ],
    )
    sprints = frame(
        "sprints", {"sprint_id": "s:1", "source": "s", "end": datetime(2026, 3, 14, tzinfo=UTC)}
    )
    return {"work_items": items, "links": links, "sprints": sprints}


def edges() -> pl.DataFrame:
    return D.dependency_edges(programme(), AS_OF)


def by_link(frame: pl.DataFrame, *cols: str) -> dict[str, tuple]:
    return {r[0]: tuple(r[1:]) for r in frame.select("link_id", *cols).iter_rows()}


# --------------------------------------------------------------------------- edges


def test_edges_follow_the_contract_columns():
    e = edges()
    assert list(e.schema.items())[: len(D.EDGES_SCHEMA)] == list(D.EDGES_SCHEMA.items())
    assert list(e.columns[len(D.EDGES_SCHEMA) :]) == list(D.EDGE_EXTRA_SCHEMA)
    from pmolens.warehouse.transforms.alignment import EDGES_SCHEMA

    assert EDGES_SCHEMA is D.EDGES_SCHEMA


def test_edges_flags_timing_and_slip():
    e = edges()
    cols = ("timing", "slip_days", "cross_team", "cross_org", "open", "unresolved", "waiting")
    assert by_link(e, *cols) == {
        "1": ("conflict", 10, True, False, True, False, True),  # a1 ends 10 days before b1
        "2": ("on_track", None, True, False, True, False, True),  # c1 (sprint end) after a1
        "3": ("on_track", None, True, False, True, False, True),
        "4": ("at_risk", None, True, True, True, False, True),  # same sprint, cross-org
        "5": ("on_track", None, None, None, True, True, False),  # blocker done, dependent unknown
        "6": ("unscheduled_blocker", None, None, None, True, True, False),  # unresolved blocker
        "7": ("unscheduled_blocker", None, True, False, True, False, True),
        "9": ("on_track", None, False, False, True, False, False),  # blocker done
        "10": ("done", None, False, False, False, False, False),
    }
    row = e.filter(pl.col("link_id") == "1").row(0, named=True)
    assert (row["blocker_id"], row["dependent_id"]) == ("b1", "a1")
    assert row["blocker_planned_end"] == date(2026, 3, 20)
    assert row["dependent_planned_end"] == date(2026, 3, 10)
    assert (row["blocker_epic"], row["dependent_epic_key"]) == ("E1", "E1")
    assert (row["blocker_priority_rank"], row["dependent_priority_rank"]) == (3, 1)
    assert row["dependent_business_value"] == 10.0
    assert row["age_days"] == 59.0
    six = e.filter(pl.col("link_id") == "6").row(0, named=True)
    assert six["blocker_id"] == "x:9" and six["blocker_team"] is None
    assert six["dependent_team"] == "C" and six["dependent_planned_end"] == date(2026, 3, 14)
    assert e.filter(pl.col("link_id") == "5")["dependent_id"].to_list() == [None]


def test_timing_rules_edge_cases():
    items = work_items(
        {"item_id": "p", "due_date": date(2026, 3, 5), "team": "A"},
        {"item_id": "q", "due_date": date(2026, 3, 5), "team": "B"},  # same day: at risk
        {"item_id": "r", "team": "B"},  # unplanned
        {"item_id": "s", "team": "C"},  # unplanned
        {"item_id": "t", "due_date": date(2026, 3, 1), "team": "C"},
    )
    links = frame(
        "links",
        {"link_id": "pq", "from_item": "p", "to_item": "q", "kind": "blocks"},
        {"link_id": "rs", "from_item": "r", "to_item": "s", "kind": "blocks"},
        {"link_id": "tr", "from_item": "t", "to_item": "r", "kind": "blocks"},
    )
    e = D.dependency_edges({"work_items": items, "links": links}, AS_OF)
    assert by_link(e, "timing") == {
        "pq": ("at_risk",),
        "rs": ("unplanned",),
        "tr": ("on_track",),  # planned blocker, unplanned dependent
    }


# --------------------------------------------------------------------------- matrix / conflicts


def test_team_and_organisation_matrix():
    m = D.dependency_matrix(edges(), "team")
    assert m.select(
        "blocker_org", "blocker_team", "dependent_org", "dependent_team", "open", "conflicts",
        "at_risk", "unscheduled_blockers", "max_slip_days", "link_ids",
    ).rows() == [
        ("Org", "A", "Org", "C", 1, 0, 0, 0, None, ["2"]),
        ("Org", "B", "Org", "A", 1, 1, 0, 0, 10, ["1"]),
        ("Org", "C", "Org", "B", 1, 0, 0, 0, None, ["3"]),
        ("Org", "C", "Other", "C", 1, 0, 1, 0, None, ["4"]),
        ("Org", "E", "Org", "D", 1, 0, 0, 1, None, ["7"]),
    ]  # fmt: skip
    o = D.dependency_matrix(edges(), "organisation")
    assert o.select(
        "blocker_org", "dependent_org", "open", "conflicts", "at_risk", "unscheduled_blockers",
        "max_slip_days", "link_ids",
    ).rows() == [
        ("Org", "Org", 4, 1, 0, 1, 10, ["1", "2", "3", "7"]),
        ("Org", "Other", 1, 0, 1, 0, None, ["4"]),
    ]  # fmt: skip


def test_red_lines_ordered_conflict_unscheduled_at_risk():
    c = D.dependency_conflicts(edges())
    assert c.select("link_id", "timing", "slip_days").rows() == [
        ("1", "conflict", 10),
        ("7", "unscheduled_blocker", None),  # dependent due 5 March
        ("6", "unscheduled_blocker", None),  # dependent's sprint ends 14 March
        ("4", "at_risk", None),
    ]


# --------------------------------------------------------------------------- cycles / chains


def test_three_team_cycle_at_item_and_team_level():
    c = D.dependency_cycles(edges())
    assert c.rows() == [
        ("item", 1, 3, ["a1", "b1", "c1"], ["a1", "b1", "c1"], ["A", "B", "C"], ["Org"], 3, False),
        ("team", 1, 3, ["A", "B", "C"], ["Org/A", "Org/B", "Org/C"], ["A", "B", "C"], ["Org"], 3,
         False),
    ]  # fmt: skip


def test_team_cycle_without_item_cycle():
    items = work_items(
        {"item_id": "a", "team": "A"},
        {"item_id": "b", "team": "B", "organisation": "Z"},
        {"item_id": "b2", "team": "B", "organisation": "Z"},
        {"item_id": "a2", "team": "A"},
    )
    links = frame(
        "links",
        {"link_id": "1", "from_item": "a", "to_item": "b", "kind": "blocks"},
        {"link_id": "2", "from_item": "b2", "to_item": "a2", "kind": "blocks"},
    )
    c = D.dependency_cycles(D.dependency_edges({"work_items": items, "links": links}, AS_OF))
    assert c.select("level", "members", "member_ids", "cross_org").rows() == [
        ("team", ["A", "B"], ["Org/A", "Z/B"], True)
    ]


def test_longest_chain_overall_and_per_epic():
    ch = D.dependency_chains(edges(), AS_OF)
    cols = ("scope", "epic_id", "chain_items", "planned_days", "chain_end", "unplanned_items",
            "head_key", "tail_key", "teams", "path", "path_truncated")  # fmt: skip
    assert ch.select(cols).rows() == [
        ("all", None, 4, 19, date(2026, 3, 20), 0, "a1", "c2", 4, ["a1 +2", "c2"], False),
        ("epic", "E1", 3, 19, date(2026, 3, 20), 0, "a1", "a1", 3, ["a1 +2"], False),
    ]


def test_chain_without_cycles_and_unplanned_items():
    items = work_items(
        {"item_id": "E", "level": "epic"},
        {"item_id": "k1", "team": "A"},
        {"item_id": "k2", "team": "B", "due_date": date(2026, 2, 1)},
        {"item_id": "k3", "team": "A", "parent_id": "E"},
        {"item_id": "k4", "team": "A", "parent_id": "E", "due_date": date(2026, 3, 31)},
    )
    links = frame(
        "links",
        {"link_id": "1", "from_item": "k1", "to_item": "k2", "kind": "blocks"},
        {"link_id": "2", "from_item": "k2", "to_item": "k3", "kind": "blocks"},
        {"link_id": "3", "from_item": "k1", "to_item": "k4", "kind": "blocks"},
    )
    ch = D.dependency_chains(
        D.dependency_edges({"work_items": items, "links": links}, AS_OF), AS_OF
    )
    assert ch.select(
        "scope", "chain_items", "planned_days", "unplanned_items", "head_key", "tail_key", "teams",
        "path",
    ).rows() == [
        ("all", 3, 0, 2, "k1", "k3", 2, ["k1", "k2", "k3"]),  # k2's end is in the past
        ("epic", 3, 0, 2, "k1", "k3", 2, ["k1", "k2", "k3"]),
    ]  # fmt: skip


# --------------------------------------------------------------------------- bottlenecks


def test_bottlenecks_items_and_teams_weighted():
    items, teams = D.dependency_bottlenecks(edges())
    assert items.select(
        "key", "direct_dependents", "dependents", "dependents_estimate", "dependents_value",
        "other_teams", "exact", "weight", "epic_key",
    ).rows() == [
        ("c1", 2, 3, 16.0, 110.0, 2, True, 30.0, None),
        ("a1", 1, 3, 15.0, 100.0, 1, True, 28.0, "E1"),
        ("b1", 1, 3, 13.0, 110.0, 1, True, 27.0, "E1"),
        ("u0", 1, 1, 1.0, 0.0, 1, True, 2.0, None),
    ]  # fmt: skip
    assert teams.select(
        "organisation", "team", "blocking_items", "direct_dependents", "dependents",
        "dependents_estimate", "dependents_value", "exact", "weight",
    ).rows() == [
        ("Org", "C", 1, 2, 3, 16.0, 110.0, True, 30.0),
        ("Org", "A", 1, 1, 3, 15.0, 100.0, True, 28.0),
        ("Org", "B", 1, 1, 3, 13.0, 110.0, True, 27.0),
        ("Org", "E", 1, 1, 1, 1.0, 0.0, True, 2.0),
    ]  # fmt: skip


def _random_programme(seed: int, n: int, m: int) -> dict[str, pl.DataFrame]:
    rnd = random.Random(seed)
    items = work_items(
        *[
            {
                "item_id": f"i{i}",
                "team": f"T{i % 4}",
                "estimate": float(rnd.randint(0, 5)),
                "status_category": rnd.choice(["todo", "in_progress", "done"]),
            }
            for i in range(n)
        ]
    )
    links = frame(
        "links",
        *[
            {"link_id": str(j), "from_item": f"i{rnd.randrange(n)}",
             "to_item": f"i{rnd.randrange(n)}", "kind": "blocks"}
            for j in range(m)
        ],
    )  # fmt: skip
    return {"work_items": items, "links": links}


def _reach(e: pl.DataFrame) -> dict[str, set[str]]:
    succ: dict[str, set[str]] = {}
    for b, d in e.filter(pl.col("waiting")).select("blocker_id", "dependent_id").iter_rows():
        if b != d:
            succ.setdefault(b, set()).add(d)
    out = {}
    for start in succ:
        seen, queue = set(), deque([start])
        while queue:
            for nxt in succ.get(queue.popleft(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        seen.discard(start)
        out[start] = seen
    return out


def test_transitive_dependents_match_breadth_first_search():
    e = D.dependency_edges(_random_programme(7, 60, 90), AS_OF)
    expected = _reach(e)
    est = dict(e.select("dependent_id", "dependent_estimate").unique("dependent_id").iter_rows())
    items, _ = D.dependency_bottlenecks(e, D.DependencyParams(sketch_size=64))
    got = {r["item_id"]: r for r in items.iter_rows(named=True)}
    assert set(got) == set(expected)
    for item, reach in expected.items():
        assert got[item]["exact"] is True
        assert got[item]["dependents"] == len(reach)
        assert got[item]["dependents_estimate"] == sum(est[x] or 0.0 for x in reach)


def test_large_sets_are_estimated_and_flagged():
    items = work_items(*[{"item_id": f"i{i:03d}", "team": "A"} for i in range(201)])
    links = frame(
        "links",
        *[
            {"link_id": str(i), "from_item": f"i{i:03d}", "to_item": f"i{i + 1:03d}",
             "kind": "blocks"}
            for i in range(200)
        ],
    )  # fmt: skip
    e = D.dependency_edges({"work_items": items, "links": links}, AS_OF)
    got, _ = D.dependency_bottlenecks(e, D.DependencyParams(sketch_size=16))
    head = got.filter(pl.col("item_id") == "i000").row(0, named=True)
    assert head["exact"] is False and 100 <= head["dependents"] <= 400  # true value: 200
    tail = got.filter(pl.col("item_id") == "i199").row(0, named=True)
    assert tail["exact"] is True and tail["dependents"] == 1


# --------------------------------------------------------------------------- blocked time / SoS


def test_blocked_time_from_flags_and_blocked_statuses():
    f = programme()
    ts = lambda d: datetime(2026, 2, d, tzinfo=UTC)  # noqa: E731
    changes = frame(
        "status_changes",
        {"item_id": "u1", "at": ts(1), "field": "flagged", "to_status": "Impediment"},
        {"item_id": "u1", "at": ts(11), "field": "flagged", "to_status": None},
        {"item_id": "u1", "at": ts(5), "field": "status", "to_status": "Blocked"},
        {"item_id": "u1", "at": ts(8), "field": "status", "to_status": "In Progress"},
        {"item_id": "u1", "at": ts(20), "field": "status", "to_status": "Blocked"},
    )
    got = D.blocked_time(f["work_items"], changes, pl.Series(["u1", "c2", "a1"]), AS_OF)
    assert got.rows() == [
        ("a1", 0.0, False, None),
        ("c2", 4.0, True, datetime(2026, 2, 25, tzinfo=UTC)),  # flagged now, no history
        ("u1", 19.0, True, ts(20)),  # 1-11 Feb (overlap counted once) + 20 Feb - 1 Mar
    ]
    joined = D.with_blocked_time(edges(), got)
    assert joined.filter(pl.col("link_id") == "7")["dependent_blocked_days"].to_list() == [19.0]


def test_blocked_time_of_changes_at_one_moment_follows_the_trackers_order_not_the_rows():
    """Flag off and on again in one edit (same ``at``): the change ids say which came last, so
    the answer is the same whatever order the rows arrive in (a join's order changes per run)."""
    f = programme()
    ts = lambda d: datetime(2026, 2, d, tzinfo=UTC)  # noqa: E731
    rows = [
        {"item_id": "u1", "at": ts(1), "field": "flagged", "to_status": "Impediment",
         "change_id": "100.0"},
        {"item_id": "u1", "at": ts(10), "field": "flagged", "to_status": None,
         "change_id": "200.0"},
        {"item_id": "u1", "at": ts(10), "field": "flagged", "to_status": "Impediment",
         "change_id": "200.1"},
        {"item_id": "u1", "at": ts(12), "field": "flagged", "to_status": None,
         "change_id": "300.0"},
    ]  # fmt: skip
    answers = set()
    for order in range(6):
        random.Random(order).shuffle(rows)
        got = D.blocked_time(f["work_items"], frame("status_changes", *rows), None, AS_OF)
        answers.add(got.filter(pl.col("item_id") == "u1").row(0))
    assert answers == {("u1", 11.0, False, None)}  # 1-12 Feb: the flag went back on at once


def test_scrum_of_scrums_three_questions():
    sos = D.scrum_of_scrums(programme()["work_items"], edges())
    assert sos.rows() == [
        ("Org", "A", 2, 1, 0, 1, 0, 1, 0.5, 1, 1, ["B (Org)", "C (Org)"]),
        ("Org", "B", 1, 1, 1, 1, 0, 1, 1.0, 1, 1, ["A (Org)", "C (Org)"]),
        ("Org", "C", 1, 2, 1, 1, 0, 1, 1.0, 1, 2, ["A (Org)", "B (Org)", "C (Other)"]),
        ("Org", "D", 1, 0, 0, 1, 0, 1, 1.0, 1, 0, ["E (Org)"]),
        ("Org", "E", 1, 1, 1, 0, 0, 1, 1.0, 0, 1, ["D (Org)"]),
        ("Other", "C", 1, 0, 0, 1, 1, 1, 1.0, 1, 0, ["C (Org)"]),
    ]
    assert D.team_hindering(edges(), "C", "Org")["link_id"].to_list() == ["4", "3"]
    assert D.team_impediments(edges(), "C")["link_id"].to_list() == ["6", "4", "2"]


# --------------------------------------------------------------------------- trend


def test_trend_snapshot_rows():
    e = edges()
    rows = {(m, s): v for m, s, v in D.trend_snapshot(e, D.dependency_cycles(e)).iter_rows()}
    assert {m: v for (m, s), v in rows.items() if s == "all"} == {
        "open": 8.0,
        "waiting": 5.0,
        "cross_team_open": 5.0,
        "cross_org_open": 1.0,
        "cross_org_share": 0.2,
        "conflicts": 1.0,
        "at_risk": 1.0,
        "unscheduled_blockers": 2.0,
        "unresolved_open": 2.0,
        "item_cycles": 1.0,
        "team_cycles": 1.0,
    }
    assert {m: v for (m, s), v in rows.items() if s == "organisation:Other"} == {
        "open": 2.0,
        "waiting": 1.0,
        "cross_team_open": 1.0,
        "cross_org_open": 1.0,
        "cross_org_share": 1.0,
        "conflicts": 0.0,
        "at_risk": 1.0,
        "unscheduled_blockers": 1.0,
        "unresolved_open": 1.0,
    }


def test_empty_inputs():
    e = D.dependency_edges({"work_items": work_items(), "links": frame("links")}, AS_OF)
    assert e.height == 0 and e.columns == list(D.FULL_EDGES_SCHEMA)
    assert D.dependency_matrix(e).height == 0
    assert D.dependency_cycles(e).height == 0
    assert D.dependency_chains(e, AS_OF).height == 0
    assert all(f.height == 0 for f in D.dependency_bottlenecks(e))
    assert D.trend_snapshot(e, D.dependency_cycles(e))["value"].sum() == 0.0


# --------------------------------------------------------------------------- property


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 11),
            st.integers(0, 11),
            st.sampled_from(["todo", "done"]),
            st.sampled_from(["todo", "done"]),
        ),
        max_size=40,
    ),
    st.lists(st.sampled_from(["A", "B", "C", None]), min_size=12, max_size=12),
    st.lists(st.sampled_from(["O1", "O2"]), min_size=12, max_size=12),
)
def test_rolled_up_matrix_sums_to_open_cross_team_edges(pairs, teams, orgs):
    cats = ["todo"] * 12
    for b, d, cb, cd in pairs:
        cats[b], cats[d] = cb, cd
    items = work_items(
        *[
            {"item_id": f"i{i}", "team": teams[i], "organisation": orgs[i],
             "status_category": cats[i]}
            for i in range(12)
        ]
    )  # fmt: skip
    links = frame(
        "links",
        *[
            {"link_id": str(j), "from_item": f"i{b}", "to_item": f"i{d}", "kind": "blocks"}
            for j, (b, d, _, _) in enumerate(pairs)
        ],
    )
    e = D.dependency_edges({"work_items": items, "links": links}, AS_OF)
    expected = e.filter(pl.col("open") & pl.col("cross_team")).height
    assert D.dependency_matrix(e, "team")["open"].sum() == expected
    assert D.dependency_matrix(e, "organisation")["open"].sum() == expected
    assert D.dependency_matrix(e, "team")["link_ids"].list.len().sum() == expected
