"""Levels from Jira's own hierarchy, status categories that never default silently, story points
and the Cloud scope rule. Payloads follow Atlassian's docs for ``/issuetype``, issue
``fields.issuetype`` / ``fields.status`` and changelog entries."""

from __future__ import annotations

import asyncio
import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import respx

from pmolens.connectors.jira import (
    JiraConnector,
    JiraContext,
    guess_category,
    map_histories,
    map_issue,
)
from pmolens.warehouse.config import ConfigError, SourceConfig, settings_from_dict
from tests.connectors.fake_jira import FakeJira
from tests.connectors.test_jira_answers import connector

FIXTURES = Path(__file__).parents[1] / "fixtures" / "jira"
CATALOGUE = json.loads((FIXTURES / "issuetypes_zh.json").read_text())
BY_NAME = {t["name"]: t for t in CATALOGUE}
STATUSES = {"to do": "todo", "in progress": "in_progress", "done": "done"}
UNKNOWN_STANDARD = (
    "issue type 'Enabler' is a standard-level Jira type (hierarchyLevel 0) of unknown kind; "
    "stored as story - map it under levels"
)
RESOLVED = (
    "status 'Resolved' is not in Jira's status list; counted as done by its name "
    "- set status_categories to be sure"
)


def ctx(kind: str = "jira_cloud", types: Any = (), **overrides: Any) -> JiraContext:
    base: dict[str, Any] = {
        "name": "hx",
        "kind": kind,
        "organisation": "Huaxia",
        "base_url": "https://huaxia.atlassian.net",
        "token_env": "HX_TOKEN",
        "fields": {"story_points": "customfield_10016"},
    }
    if kind == "jira_cloud":
        base |= {"email": "pmo@huaxia.example", "jql": "project = HX"}
    return JiraContext.from_config(SourceConfig(**(base | overrides)), STATUSES, types)


def issue(n: int, issuetype: Any, status: Any = None, **fields: Any) -> dict[str, Any]:
    """An issue as bulkfetch returns it, with the issuetype object Jira embeds."""
    return {
        "id": str(10000 + n),
        "key": f"HX-{n}",
        "fields": {
            "summary": f"Item {n}",
            "issuetype": issuetype,
            "status": status or {"name": "To Do", "statusCategory": {"key": "new"}},
            "project": {"key": "HX"},
            **fields,
        },
    }


def embedded(name: str) -> dict[str, Any]:
    """The issue payload's ``fields.issuetype``: the catalogue entry (Cloud embeds the same)."""
    return copy.deepcopy(BY_NAME[name])


def level(raw: dict[str, Any], context: JiraContext) -> tuple[str, list[str]]:
    row, _, _, problems = map_issue(raw, context)
    return row["level"], problems


# ------------------------------------------------------------------------------------- levels


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("子任务", "task"),  # subtask = true, hierarchyLevel -1
        ("任务", "task"),
        ("缺陷", "bug"),
        ("故事", "story"),
        ("长篇故事", "epic"),  # untranslatedName Epic, level 1
        ("改进", "story"),  # untranslatedName Improvement
        ("项目群", "initiative"),  # a custom type above epic (level 2)
        ("调研", "task"),  # a custom sub-task type with a name no rule knows
    ],
)
def test_chinese_site_types_get_their_level_from_the_hierarchy_and_names(name, expected):
    assert level(issue(1, embedded(name)), ctx()) == (expected, [])


def test_a_standard_type_of_unknown_kind_is_a_story_with_a_countable_problem():
    context = ctx()
    problems: list[str] = []
    for n in range(3):
        found, lines = level(issue(n, embedded("Enabler")), context)
        assert found == "story"
        problems += lines
    assert problems == [UNKNOWN_STANDARD] * 3  # no item key: the run counts them as one line


def test_levels_config_overrides_the_hierarchy():
    context = ctx(levels={"Enabler": "feature", "Programme": "epic", "子任务": "impediment"})
    assert level(issue(1, embedded("Enabler")), context) == ("feature", [])
    assert level(issue(2, embedded("项目群")), context) == ("epic", [])  # by untranslatedName
    assert level(issue(3, embedded("子任务")), context) == ("impediment", [])


def test_name_rules_must_agree_with_the_hierarchy_level():
    context = ctx()
    story_as_epic = {"id": "1", "name": "Story", "subtask": False, "hierarchyLevel": 1}
    assert level(issue(1, story_as_epic), context) == ("epic", [])
    feature_at_epic = {"id": "2", "name": "Feature", "subtask": False, "hierarchyLevel": 1}
    assert level(issue(2, feature_at_epic), context) == ("feature", [])
    epic_at_standard = {"id": "3", "name": "Epic", "subtask": False, "hierarchyLevel": 0}
    found, problems = level(issue(3, epic_at_standard), context)
    assert found == "story" and len(problems) == 1 and "hierarchyLevel 0" in problems[0]
    theme_above = {"id": "4", "name": "Theme", "subtask": False, "hierarchyLevel": 3}
    assert level(issue(4, theme_above), context) == ("initiative", [])
    bug_subtask = {"id": "5", "name": "Bug", "subtask": True}
    assert level(issue(5, bug_subtask), context) == ("bug", [])
    story_subtask = {"id": "6", "name": "Story", "subtask": True, "hierarchyLevel": -1}
    assert level(issue(6, story_subtask), context) == ("task", [])


def test_the_catalogue_fills_in_what_the_issue_payload_lacks():
    context = ctx(types=CATALOGUE)
    by_id = {"id": "10300", "name": "调研"}  # no flags on the issue: the catalogue knows it
    assert level(issue(1, by_id), context) == ("task", [])
    by_name = {"name": "项目群"}
    assert level(issue(2, by_name), context) == ("initiative", [])
    unknown = {"id": "99999", "name": "Werkpakket"}
    found, problems = level(issue(3, unknown), context)
    assert found == "story"
    assert problems == [
        "issue type 'Werkpakket' has no level from Jira (hierarchyLevel missing) and no name "
        "rule; stored as story - map it under levels"
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Taak", "task"),
        ("Subtaak", "task"),
        ("Verhaal", "story"),
        ("Fout", "bug"),
        ("Aufgabe", "task"),
        ("Unteraufgabe", "task"),
        ("Fehler", "bug"),
        ("Geschichte", "story"),
        ("Tâche", "task"),
        ("Sous-tâche", "task"),
        ("Bogue", "bug"),
        ("Epic", "epic"),
    ],
)
def test_data_center_localised_names_without_hierarchy_levels(name, expected):
    # Data Center sends subtask but no hierarchyLevel
    raw = issue(1, {"id": "1", "name": name, "subtask": name.lower().endswith(("taak", "tâche"))})
    assert level(raw, ctx("jira_dc")) == (expected, [])


def test_fetch_reads_the_type_catalogue_once_and_uses_it():
    fake = FakeJira(count=4, page=3)
    fake.issue_types = CATALOGUE
    fake.issues["10001"]["fields"]["issuetype"] = {"id": "10300", "name": "调研"}
    fake.issues["10002"]["fields"]["issuetype"] = {"id": "10100", "name": "Enabler"}
    fake.issues["10003"]["fields"]["issuetype"] = {"id": "10100", "name": "Enabler"}
    batches = run_fetch(fake, connector())
    levels = {r["native_id"]: r["level"] for b in batches for r in b.work_items}
    assert levels == {"10001": "task", "10002": "story", "10003": "story", "10004": "story"}
    problems = [p for b in batches for p in b.problems]
    assert Counter(problems) == {UNKNOWN_STANDARD: 2}
    assert fake.calls["issuetype"] == 1


def run_fetch(fake: FakeJira, jira: JiraConnector) -> list[Any]:
    async def go() -> list[Any]:
        async with jira.client:
            return [batch async for batch in jira.fetch(None)]

    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)
        return asyncio.run(go())


# ----------------------------------------------------------------------------------- statuses


def moves(to: str, count: int, start: str = "In Progress") -> list[dict[str, Any]]:
    """Changelog entries as changelog/bulkfetch returns them."""
    return [
        {
            "id": str(70000 + i),
            "created": f"2026-03-{1 + i % 28:02d}T10:00:00.000+0000",
            "items": [
                {
                    "field": "status",
                    "fieldtype": "jira",
                    "fieldId": "status",
                    "from": "3",
                    "fromString": start,
                    "to": "10050",
                    "toString": to,
                }
            ],
        }
        for i in range(count)
    ]


def test_37_moves_to_an_unknown_resolved_are_done_and_one_countable_problem():
    problems: list[str] = []
    changes = map_histories("hx:1", moves("Resolved", 37), ctx(), problems)
    assert len(changes) == 37
    assert {c["to_category"] for c in changes} == {"done"}
    assert {c["from_category"] for c in changes} == {"in_progress"}
    assert problems == [RESOLVED] * 37  # one text, counted 37 times by the run


def test_status_resolution_order():
    context = ctx(status_categories={"Resolved": "in_progress"})
    problems: list[str] = []
    changes = map_histories("hx:1", moves("Resolved", 2), context, problems)
    assert {c["to_category"] for c in changes} == {"in_progress"} and problems == []
    # the catalogue beats the payload's own statusCategory
    raw = issue(1, embedded("故事"), {"name": "Done", "statusCategory": {"key": "indeterminate"}})
    row, _, _, problems = map_issue(raw, ctx())
    assert row["status_category"] == "done" and problems == []
    # the payload's statusCategory serves a status the catalogue lacks, and is remembered
    context = ctx()
    current = {"name": "In Development", "statusCategory": {"key": "indeterminate"}}
    row, _, _, problems = map_issue(issue(2, embedded("故事"), current), context)
    assert row["status_category"] == "in_progress" and problems == []
    later: list[str] = []
    changes = map_histories("hx:3", moves("In Development", 1, start="Inbox"), context, later)
    assert changes[0]["to_category"] == "in_progress"
    assert changes[0]["from_category"] == "todo"  # Inbox: by its name, and reported
    assert later == [
        "status 'Inbox' is not in Jira's status list; counted as todo by its name "
        "- set status_categories to be sure"
    ]


def test_an_issue_status_without_category_anywhere_is_guessed_and_reported():
    raw = issue(1, embedded("故事"), {"name": "Ready for Dev", "id": "10077"})
    row, _, _, problems = map_issue(raw, ctx())
    assert row["status_category"] == "todo"
    assert problems == [
        "status 'Ready for Dev' is not in Jira's status list; counted as todo by its name "
        "- set status_categories to be sure"
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Resolved", "done"),
        ("Closed", "done"),
        ("Released", "done"),
        ("Gereed", "done"),
        ("Afgerond", "done"),
        ("Erledigt", "done"),
        ("Geschlossen", "done"),
        ("Inbox", "todo"),
        ("Backlog", "todo"),
        ("Ready for Dev", "todo"),
        ("Ready for Development", "todo"),
        ("Te doen", "todo"),
        ("Nieuw", "todo"),
        ("Open", "todo"),
        ("In Development", "in_progress"),
        ("Ready for Test", "in_progress"),
        ("Code Review", "in_progress"),
    ],
)
def test_guess_category(name, expected):
    assert guess_category(name) == expected


def test_fetch_learns_categories_from_current_statuses_for_every_history_of_the_page():
    fake = FakeJira(count=3, page=3)
    fake.issues["10003"]["fields"]["status"] = {
        "name": "In Development",
        "statusCategory": {"key": "indeterminate"},
    }
    # issue 1 (read first) moved to "In Development" and later to "Resolved"
    fake.histories["10001"] = moves("In Development", 1, start="To Do") + moves(
        "Resolved", 3, start="In Development"
    )
    batches = run_fetch(fake, connector())
    changes = [c for b in batches for c in b.status_changes if c["item_id"] == "fk:10001"]
    categories = {c["to_status"]: c["to_category"] for c in changes}
    assert categories == {"In Development": "in_progress", "Resolved": "done"}
    problems = [p for b in batches for p in b.problems]
    assert Counter(problems) == {RESOLVED: 3}


# ------------------------------------------------------------------------------ story points


@pytest.mark.parametrize(
    ("value", "expected"),
    [(5, 5.0), (0, 0.0), (2.5, 2.5), ("3", 3.0), (None, None), ({"value": 8}, 8.0)],
)
def test_story_points_that_are_numbers(value, expected):
    row, _, _, problems = map_issue(issue(1, embedded("故事"), customfield_10016=value), ctx())
    assert row["estimate"] == expected and problems == []


@pytest.mark.parametrize("value", [-3, -0.5, "three", True, [5], {"value": -1}, "inf"])
def test_negative_or_non_numeric_story_points_are_left_empty_and_reported(value):
    row, _, _, problems = map_issue(issue(1, embedded("故事"), customfield_10016=value), ctx())
    assert row["estimate"] is None
    assert problems == ["story points (customfield_10016) not a non-negative number; left empty"]


# -------------------------------------------------------------------------------- cloud scope


def _source(kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "acme",
        "kind": kind,
        "organisation": "Acme",
        "base_url": "https://acme.atlassian.net",
        "token_env": "ACME_TOKEN",
        **extra,
    }


@pytest.mark.parametrize("jql", [None, "", "   "])
def test_jira_cloud_needs_jql(jql):
    source = _source("jira_cloud", email="pmo@acme.example")
    if jql is not None:
        source["jql"] = jql
    with pytest.raises(ConfigError) as failed:
        settings_from_dict({"sources": [source]})
    message = str(failed.value)
    assert "sources[0] (acme)" in message and "needs jql" in message
    assert 'jql = "project in (ABC, DEF)"' in message


def test_jira_dc_needs_no_jql():
    settings = settings_from_dict({"sources": [_source("jira_dc")]})
    assert settings.sources[0].jql is None
