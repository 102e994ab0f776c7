"""Levels from Azure DevOps' own hierarchy (work item type categories and the process's backlog
levels), states that never default silently, iterations without a path. Payloads follow
Microsoft's REST 7.1 docs for ``workitemtypecategories``, ``processconfiguration``,
``workitemtypes/{type}/states`` and ``teamsettings/iterations``."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import respx

from pmolens.connectors.azure_devops import (
    AdoContext,
    AzureDevOpsConnector,
    categories_to_levels,
    map_revisions,
    map_team_iterations,
    map_work_item,
)
from pmolens.connectors.base import guess_category, make_client
from pmolens.pipeline.sync import sync_source
from pmolens.warehouse.config import settings_from_dict
from pmolens.warehouse.store import Warehouse
from tests.connectors.test_azure_devops import (
    FakeAdo,
    client,
    config,
    fetch_all,
    generated_item,
    load,
    merged,
    source_dict,
    states,
)

CATEGORIES = load("workitemtypecategories.json")
PROCESS = load("processconfiguration.json")
NO_LEVEL = (
    "work item type '{}' is in no backlog category of Azure DevOps and has no name rule; "
    "stored as story - map it under levels"
)
UNKNOWN_STATE = (
    "state '{}' of type '{}' is not among the type's states; counted as {} by its name "
    "- set status_categories to be sure"
)


def all_states() -> dict[str, dict[str, str]]:
    known = states()
    for name in ("task", "enabler", "initiative", "test case", "product backlog item"):
        known[name] = known["epic"]  # the Agile states
    return known


def ctx(**overrides: Any) -> AdoContext:
    return AdoContext.from_config(
        config(**overrides), all_states(), categories_to_levels(CATEGORIES, PROCESS)
    )


def typed(native: int, type_name: str, state: str = "New") -> dict[str, Any]:
    item = generated_item(native)
    item["fields"]["System.WorkItemType"] = type_name
    item["fields"]["System.State"] = state
    return item


# ------------------------------------------------------------------------------------- levels


def test_categories_and_portfolio_backlogs_give_each_type_its_level():
    assert categories_to_levels(CATEGORIES, PROCESS) == {
        "initiative": "initiative",  # a custom portfolio backlog: above Epic
        "epic": "epic",
        "feature": "feature",
        "enabler": "feature",  # a custom type in the Feature category
        "bug": "bug",
        "user story": "story",
        "task": "task",
    }
    # hidden and test categories give no level; without processconfiguration the custom
    # portfolio category is just another category (no level)
    assert "initiative" not in categories_to_levels(CATEGORIES, None)
    assert "test case" not in categories_to_levels(CATEGORIES, PROCESS)


def test_a_custom_type_in_the_feature_category_is_a_feature():
    row, _, problems = map_work_item(typed(1, "Enabler"), ctx())
    assert (row["level"], problems) == ("feature", [])
    row, _, problems = map_work_item(typed(2, "Initiative"), ctx())
    assert (row["level"], problems) == ("initiative", [])


def test_a_type_of_no_level_is_a_story_with_a_countable_problem():
    context = ctx()
    problems: list[str] = []
    for native in range(3):
        row, _, lines = map_work_item(typed(native, "Test Case"), context)
        assert row["level"] == "story"
        problems += lines
    assert problems == [NO_LEVEL.format("Test Case")] * 3  # no item id: one line, (x3)


def test_levels_config_overrides_the_categories():
    context = ctx(levels={"Enabler": "story", "Test Case": "task"})
    assert map_work_item(typed(1, "Enabler"), context)[0]["level"] == "story"
    row, _, problems = map_work_item(typed(2, "Test Case"), context)
    assert (row["level"], problems) == ("task", [])


def test_name_rules_when_the_categories_give_nothing():
    context = AdoContext.from_config(config(), all_states())  # no categories read
    assert map_work_item(typed(1, "Product Backlog Item"), context)[0]["level"] == "story"
    assert map_work_item(typed(2, "Impediment"), context)[0]["level"] == "impediment"
    row, _, problems = map_work_item(typed(3, "Enabler"), context)
    assert (row["level"], problems) == ("story", [NO_LEVEL.format("Enabler")])


def test_fetch_reads_the_hierarchy_once_and_reports_unknown_types_once_with_a_count(tmp_path):
    fake = FakeAdo.from_fixtures()
    for native, kind in [(1, "Enabler"), (2, "Initiative"), (3, "Test Case"), (4, "Test Case")]:
        fake.items[native] = typed(native, kind)
    fake.order = sorted(fake.items)
    whole = merged(fetch_all(fake))
    levels = {r["native_id"]: r["level"] for r in whole.work_items}
    assert (levels["1"], levels["2"], levels["3"], levels["100"]) == (
        "feature",
        "initiative",
        "story",
        "epic",
    )
    assert fake.calls["categories"] == 1 and fake.calls["process"] == 1
    assert Counter(whole.problems)[NO_LEVEL.format("Test Case")] == 2

    settings = settings_from_dict({"sources": [source_dict()]})

    async def go() -> Any:
        with Warehouse(tmp_path / "w.duckdb") as wh:
            await sync_source(wh, settings, settings.sources[0], client=client())
            return wh.query("SELECT problem_text FROM sync_runs").item()

    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)
        text = asyncio.run(go())
    assert f"{NO_LEVEL.format('Test Case')} (x2)" in text


def test_a_server_without_categories_or_process_configuration_uses_the_name_rules():
    fake = FakeAdo.from_fixtures()
    fake.categories = None  # 404
    fake.process = None
    fake.items[1] = typed(1, "Enabler")
    fake.order = sorted(fake.items)
    whole = merged(fetch_all(fake))
    levels = {r["native_id"]: r["level"] for r in whole.work_items}
    assert (levels["100"], levels["101"], levels["102"], levels["1"]) == (
        "epic",
        "feature",
        "story",
        "story",
    )
    assert NO_LEVEL.format("Enabler") in whole.problems


# ------------------------------------------------------------------------------------- states


def test_unknown_states_are_guessed_by_name_and_reported_per_state_with_a_count():
    fake = FakeAdo.from_fixtures()
    for native, state in [(1, "Waiting for Legal"), (2, "Waiting for Legal"), (3, "Cancelled")]:
        fake.items[native] = typed(native, "Task", state)
    fake.order = sorted(fake.items)
    whole = merged(fetch_all(fake))
    categories = {r["native_id"]: r["status_category"] for r in whole.work_items}
    assert (categories["1"], categories["3"]) == ("in_progress", "done")
    counted = Counter(whole.problems)
    assert counted[UNKNOWN_STATE.format("Waiting for Legal", "Task", "in_progress")] == 2
    assert counted[UNKNOWN_STATE.format("Cancelled", "Task", "done")] == 1


def test_config_status_categories_win_over_the_type_states_and_the_guess():
    context = ctx(status_categories={"Waiting for Legal": "todo", "Active": "done"})
    row, _, problems = map_work_item(typed(1, "Task", "Waiting for Legal"), context)
    assert (row["status_category"], problems) == ("todo", [])
    assert map_work_item(typed(2, "Task", "Active"), context)[0]["status_category"] == "done"


def test_history_states_use_the_same_resolution():
    revisions = [
        {"id": 1, "rev": 1, "fields": {"System.State": "New", "System.WorkItemType": "Task"}},
        {
            "id": 1,
            "rev": 2,
            "fields": {"System.State": "On Hold", "System.ChangedDate": "2026-02-01T00:00:00Z"},
        },
        {
            "id": 1,
            "rev": 3,
            "fields": {"System.State": "Rejected", "System.ChangedDate": "2026-02-02T00:00:00Z"},
        },
    ]
    rows, problems = map_revisions("fab:1", "1", revisions, ctx())
    assert [(r["from_category"], r["to_category"]) for r in rows] == [
        ("todo", "in_progress"),
        ("in_progress", "done"),
    ]
    assert guess_category("Rejected") == "done"
    assert set(problems) == {
        UNKNOWN_STATE.format("On Hold", "Task", "in_progress"),
        UNKNOWN_STATE.format("Rejected", "Task", "done"),
    }


# --------------------------------------------------------------------------------- iterations


def test_iterations_without_a_path_are_reported_not_skipped_silently():
    problems: list[str] = []
    rows = map_team_iterations("Payments", load("iterations_docs_sample.json"), ctx(), problems)
    assert rows == []
    assert problems == [
        "iterations of team 'Payments': 2 without a path (e.g. 'Sprint 2'); not stored as "
        "sprints, so items in them have no sprint row"
    ]


def test_microsofts_sample_shape_of_the_iteration_list_is_read_in_a_fetch():
    fake = FakeAdo.from_fixtures()
    fake.iterations["Checkout"] = load("iterations_docs_sample.json")
    whole = merged(fetch_all(fake))
    assert len(whole.sprints) == 3  # Payments' three; Checkout's two have no path
    assert any(
        p.startswith("iterations of team 'Checkout': 2 without a path") for p in whole.problems
    )


# ---------------------------------------------------------------------------- the simulator


def test_the_simulator_serves_the_hierarchy_and_a_sync_reports_no_unknown_type(
    tmp_path, monkeypatch
):
    from pmolens.simulator import DEMO_TOKEN, TOKEN_ENV, Simulator, demo_settings

    monkeypatch.setenv(TOKEN_ENV, DEMO_TOKEN)
    with Simulator(seed=7, size=600, tenants=("contoso",)) as sim:
        settings = settings_from_dict(demo_settings(sim.url))
        source = settings.source("contoso-ado")

        async def go() -> tuple[dict[str, str], Any]:
            async with make_client(source) as http:
                levels = await AzureDevOpsConnector(source, http)._type_levels()
            with Warehouse(tmp_path / "w.duckdb") as wh:
                await sync_source(wh, settings, source)
                return levels, wh.query("SELECT problem_text FROM sync_runs").item()

        levels, problems = asyncio.run(go())
    assert levels == {
        "epic": "epic",
        "feature": "feature",
        "user story": "story",
        "task": "task",
        "bug": "bug",
    }
    assert "backlog category" not in (problems or "")
