from __future__ import annotations

from pmolens.warehouse.transforms.portfolio import ancestors, portfolio_by, portfolio_tree
from tests.factories import work_items


def sample():
    return work_items(
        {"item_id": "I1", "level": "initiative", "team": "PMO"},
        {"item_id": "E1", "level": "epic", "parent_id": "I1", "team": "A"},
        {"item_id": "F1", "level": "feature", "parent_id": "E1", "team": "A"},
        {
            "item_id": "S1",
            "parent_id": "F1",
            "team": "A",
            "estimate": 3.0,
            "status_category": "done",
        },
        {"item_id": "S2", "parent_id": "F1", "team": "B", "estimate": 5.0},
        {"item_id": "S3", "parent_id": "E1", "team": "B", "status_category": "done"},
        {"item_id": "E2", "level": "epic", "team": "B", "organisation": "Other"},
    )


def test_ancestors_include_self_and_every_level():
    anc = ancestors(sample()).filter(item_id="S1").sort("distance")
    assert anc["ancestor_id"].to_list() == ["S1", "F1", "E1", "I1"]


def test_roll_up_counts_work_below_each_node():
    tree = {r["item_id"]: r for r in portfolio_tree(sample()).iter_rows(named=True)}
    assert (tree["F1"]["items_total"], tree["F1"]["items_done"]) == (2, 1)
    assert tree["F1"]["estimate_total"] == 8.0 and tree["F1"]["estimate_done"] == 3.0
    assert tree["F1"]["progress_count"] == 0.5 and tree["F1"]["progress_estimate"] == 0.375
    assert (tree["E1"]["items_total"], tree["E1"]["items_done"]) == (3, 2)
    assert tree["I1"]["items_total"] == 3 and tree["I1"]["depth"] == 0
    assert tree["S1"]["depth"] == 3
    # an epic with nothing under it is its own (only) work item
    assert (tree["E2"]["items_total"], tree["E2"]["items_done"]) == (1, 0)


def test_roll_up_per_organisation():
    by_org = {
        r["organisation"]: r
        for r in portfolio_by(portfolio_tree(sample()), "organisation").iter_rows(named=True)
    }
    assert by_org["Org"]["epics"] == 1 and by_org["Org"]["items_done"] == 2
    assert by_org["Other"]["progress_count"] == 0.0


def test_parent_cycles_in_bad_data_do_not_hang():
    cyclic = work_items({"item_id": "A", "parent_id": "B"}, {"item_id": "B", "parent_id": "A"})
    assert portfolio_tree(cyclic).height == 2


def test_walk_lists_a_missing_parent_and_counts_work_under_a_cycle_per_pass():
    # the row-number walk keeps the semantics of the former join-per-level walk
    items = work_items(
        {"item_id": "A", "parent_id": "B"},
        {"item_id": "B", "parent_id": "A"},
        {"item_id": "L", "parent_id": "A", "estimate": 2.0},
        {"item_id": "C", "parent_id": "X"},
    )
    anc = ancestors(items)
    assert anc.filter(item_id="C").sort("distance").rows() == [("C", "C", 0), ("C", "X", 1)]
    loop = anc.filter(item_id="L").sort("distance")
    assert loop["ancestor_id"].to_list() == ["L"] + ["A", "B"] * 4  # stops at MAX_DEPTH
    tree = portfolio_tree(items).sort("item_id")
    assert tree.select("item_id", "items_total", "estimate_total", "depth").rows() == [
        ("A", 4, 8.0, 8),
        ("B", 4, 8.0, 8),
        ("C", 1, 0.0, 1),
        ("L", 1, 2.0, 8),
    ]
