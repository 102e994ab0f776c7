"""Pure mapping of Jira payloads (shaped like Atlassian's docs) to canonical rows."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from pmolens.connectors.jira import (
    JiraContext,
    map_histories,
    map_issue,
    map_remote_links,
    parse_sprints,
    parse_time,
)
from pmolens.warehouse.config import SourceConfig

FIXTURES = Path(__file__).parents[1] / "fixtures" / "jira"


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def cloud_ctx(**overrides) -> JiraContext:
    config = SourceConfig(
        name="nw",
        kind="jira_cloud",
        organisation="Northwind",
        base_url="https://northwind.atlassian.net",
        token_env="NW_TOKEN",
        email="pmo@northwind.example",
        jql="project = NW",
        fields={
            "story_points": "customfield_10016",
            "sprint": "customfield_10020",
            "team": "customfield_10001",
            "rank": "customfield_10019",
            "flagged": "customfield_10021",
            "business_value": "customfield_10030",
            "cost": "customfield_10031",
        },
        **overrides,
    )
    return JiraContext.from_config(config, {"to do": "todo", "in progress": "in_progress"})


def dc_ctx() -> JiraContext:
    config = SourceConfig(
        name="fab",
        kind="jira_dc",
        organisation="Fabrikam",
        base_url="https://jira.fabrikam.example",
        token_env="FAB_TOKEN",
        teams_from="component",
        team_map={"Devices": "Devices Team"},
        status_categories={"Ready for Test": "in_progress"},
        fields={
            "story_points": "customfield_10016",
            "sprint": "customfield_10020",
            "epic_link": "customfield_10014",
        },
    )
    return JiraContext.from_config(config, {"to do": "todo", "in progress": "in_progress"})


def test_cloud_issue_maps_every_field():
    row, _links, sprints, problems = map_issue(load("cloud_issue.json"), cloud_ctx())
    assert row["item_id"] == "nw:10042"
    assert row["native_id"] == "10042" and row["key"] == "NW-42"
    assert row["url"] == "https://northwind.atlassian.net/browse/NW-42"
    assert row["level"] == "story" and row["raw_type"] == "Story"
    assert row["status_category"] == "in_progress" and row["raw_status"] == "In Progress"
    assert row["team"] == "Payments"
    assert row["assignee"] == "Mia Krystof"
    assert row["priority"] == "High" and row["priority_rank"] == 2
    assert row["rank"] == "0|i0001b:"
    assert row["estimate"] == 5.0
    assert row["business_value"] == 8.0 and row["cost"] is None
    assert row["created"] == datetime(2026, 5, 4, 7, 12, 33, tzinfo=UTC)
    assert row["updated"] == datetime(2026, 11, 20, 14, 1, 2, 123000, tzinfo=UTC)
    assert row["due_date"] == date(2026, 12, 4)
    assert row["parent_id"] == "nw:10005" and row["parent_key"] is None
    assert row["sprint_id"] == "nw:32"  # the active sprint, not the closed one
    assert row["flagged"] is True
    assert row["has_description"] is True
    assert row["labels"] == ["checkout", "chain"]
    assert {s["sprint_id"] for s in sprints} == {"nw:31", "nw:32"}
    # the unknown link type is kept as relates and reported, nothing else is a problem
    assert len(problems) == 1 and "Chain Handoff" in problems[0]


def test_link_direction_is_blocker_to_dependent():
    _, links, _, _ = map_issue(load("cloud_issue.json"), cloud_ctx())
    by_id = {link["link_id"]: link for link in links}
    # inwardIssue on a Blocks link: NW-42 "is blocked by" NW-50
    assert (by_id["20001"]["from_item"], by_id["20001"]["to_item"]) == ("nw:10050", "nw:10042")
    # outwardIssue on a Blocks link: NW-42 "blocks" NW-60
    assert (by_id["20002"]["from_item"], by_id["20002"]["to_item"]) == ("nw:10042", "nw:10060")
    # outwardIssue on a Dependency link: NW-42 "depends on" NW-70 -> NW-70 is the blocker
    assert (by_id["20003"]["from_item"], by_id["20003"]["to_item"]) == ("nw:10070", "nw:10042")
    assert {by_id[i]["kind"] for i in ("20001", "20002", "20003")} == {"blocks"}
    assert by_id["20004"]["kind"] == "relates" and by_id["20004"]["raw_type"] == "Chain Handoff"


def test_link_types_are_configurable():
    ctx = cloud_ctx(link_types={"blocks": ["Blocks", "Chain Handoff"]})
    _, links, _, problems = map_issue(load("cloud_issue.json"), ctx)
    handoff = next(link for link in links if link["link_id"] == "20004")
    assert handoff["kind"] == "blocks"
    assert (handoff["from_item"], handoff["to_item"]) == ("nw:10042", "nw:10080")
    assert problems == []


def test_same_link_seen_from_both_ends_has_one_identity():
    issue = load("cloud_issue.json")
    _, links_a, _, _ = map_issue(issue, cloud_ctx())
    other = {
        "id": "10060",
        "key": "NW-60",
        "fields": {
            "summary": "Invoice e-mails",
            "issuetype": {"name": "Story"},
            "status": {"name": "To Do", "statusCategory": {"key": "new"}},
            "issuelinks": [
                {
                    "id": "20002",
                    "type": {"name": "Blocks", "inward": "is blocked by", "outward": "blocks"},
                    "inwardIssue": {"id": "10042", "key": "NW-42"},
                }
            ],
        },
    }
    _, links_b, _, _ = map_issue(other, cloud_ctx())
    a = next(link for link in links_a if link["link_id"] == "20002")
    assert links_b[0] == a


def test_dc_issue_epic_link_sprint_strings_and_bad_story_points():
    row, links, sprints, problems = map_issue(load("dc_issue.json"), dc_ctx())
    assert row["parent_id"] is None and row["parent_key"] == "FAB-12"
    assert row["team"] == "Devices Team"
    assert row["status_category"] == "in_progress"  # config override for a custom status
    assert row["estimate"] is None
    assert "story points (customfield_10016) not a non-negative number; left empty" in problems
    assert row["sprint_id"] == "fab:8"
    by_id = {s["native_id"]: s for s in sprints}
    assert by_id["7"]["name"] == "FAB Sprint 7, hardening"  # comma inside the name survives
    assert by_id["7"]["state"] == "closed" and by_id["7"]["board"] == "3"
    assert by_id["7"]["start"] == datetime(2026, 10, 5, 7, 0, tzinfo=UTC)
    assert by_id["8"]["complete"] is None
    assert row["has_description"] is True and links == []


def test_dc_changelog_to_status_changes():
    raw = load("dc_issue.json")
    changes = map_histories("fab:20317", raw["changelog"]["histories"], dc_ctx())
    assert [(c["from_status"], c["to_status"]) for c in changes] == [
        ("To Do", "In Progress"),
        ("In Progress", "Ready for Test"),
    ]
    assert [c["to_category"] for c in changes] == ["in_progress", "in_progress"]
    assert changes[0]["from_category"] == "todo"
    assert changes[1]["at"] == datetime(2026, 11, 18, 10, 45, tzinfo=UTC)
    assert {c["change_id"] for c in changes} == {"50001.0", "50002.0"}


def test_flagged_changes_are_kept_apart_from_status():
    histories = [
        {
            "id": "1",
            "created": 1763636400000,  # bulkfetch may give epoch milliseconds
            "items": [
                {"field": "Flagged", "fieldId": "customfield_10021", "toString": "Impediment"},
                {"field": "priority", "fieldId": "priority", "toString": "High"},
            ],
        }
    ]
    changes = map_histories("nw:1", histories, cloud_ctx())
    assert len(changes) == 1 and changes[0]["field"] == "flagged"
    assert changes[0]["at"] == datetime(2025, 11, 20, 11, 0, tzinfo=UTC)


def test_remote_links_leave_the_far_end_open():
    rows = map_remote_links("nw:10042", load("remotelinks.json"), cloud_ctx())
    blocked, mention = rows
    assert blocked["kind"] == "blocks"
    assert blocked["from_item"] is None and blocked["to_item"] == "nw:10042"
    assert blocked["target_url"].endswith("/Delivery/_workitems/edit/1234")
    assert mention["kind"] == "relates" and mention["from_item"] == "nw:10042"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-05-04T09:12:33.000+0200", datetime(2026, 5, 4, 7, 12, 33, tzinfo=UTC)),
        ("2026-05-04T07:12:33Z", datetime(2026, 5, 4, 7, 12, 33, tzinfo=UTC)),
        (1777878753, datetime(2026, 5, 4, 7, 12, 33, tzinfo=UTC)),
        (None, None),
    ],
)
def test_parse_time(value, expected):
    assert parse_time(value) == expected


def test_unrecognised_sprint_value_is_an_error_not_a_crash():
    with pytest.raises(ValueError):
        parse_sprints(["garbage"])
    issue = load("dc_issue.json")
    issue["fields"]["customfield_10020"] = ["garbage"]
    row, _, sprints, problems = map_issue(issue, dc_ctx())
    assert row["sprint_id"] is None and sprints == []
    assert any("sprint" in p for p in problems)
