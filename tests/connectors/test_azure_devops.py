"""Azure DevOps connector: pure mapping on doc-shaped fixtures, and the fetch flow over respx."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from bisect import bisect_right
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import polars as pl
import pytest
import respx

from pmolens.connectors.azure_devops import (
    AdoContext,
    AzureDevOpsConnector,
    map_revisions,
    map_team_iterations,
    map_work_item,
    merge_sprints,
    parse_day,
    parse_time,
    states_to_categories,
    team_from_area_path,
    updates_to_revisions,
)
from pmolens.connectors.http import TrackerClient, TrackerError
from pmolens.pipeline.sync import sync_source
from pmolens.warehouse.config import SourceConfig, settings_from_dict
from pmolens.warehouse.model import Batch
from pmolens.warehouse.store import Warehouse

F_CHANGED = "System.ChangedDate"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "azure_devops"
BASE = "https://dev.azure.com/fabrikam"
PROJECT = "Fabrikam-Fiber"
TEAM_MAP = {
    "Fabrikam-Fiber\\Payments": "Payments",
    "Fabrikam-Fiber\\Payments\\Invoices\\Legacy": "Invoicing Legacy",
}


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(autouse=True)
def _fresh_window_sizes():
    """The remembered WIQL window sizes live for the process: each test starts without any."""
    AzureDevOpsConnector.window_sizes.clear()
    yield
    AzureDevOpsConnector.window_sizes.clear()


def source_dict(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "fab",
        "kind": "azure_devops",
        "organisation": "Fabrikam",
        "base_url": BASE,
        "token_env": "FAB_PAT",
        "project": PROJECT,
        "teams_from": "area_path",
        "team_map": TEAM_MAP,
    }
    values.update(overrides)
    return values


def config(**overrides: Any) -> SourceConfig:
    return SourceConfig(**source_dict(**overrides))


def states() -> dict[str, dict[str, str]]:
    agile = states_to_categories(load("states_agile.json"))
    return {
        "user story": states_to_categories(load("states_user_story.json")),
        "bug": agile,
        "epic": agile,
        "feature": agile,
    }


def ctx(**overrides: Any) -> AdoContext:
    return AdoContext.from_config(config(**overrides), states())


def raw_item(native: int) -> dict[str, Any]:
    for item in load("workitemsbatch.json")["value"]:
        if item and item["id"] == native:
            return item
    raise KeyError(native)


def mapped(native: int, **overrides: Any):
    return map_work_item(raw_item(native), ctx(**overrides))


# --------------------------------------------------------------------------- pure mapping


def test_work_item_fields_map_to_the_canonical_row():
    row, _, problems = mapped(102)
    assert problems == []
    assert row == {
        "item_id": "fab:102",
        "source": "fab",
        "native_id": "102",
        "key": "102",
        "url": "https://dev.azure.com/fabrikam/Fabrikam-Fiber/_workitems/edit/102",
        "organisation": "Fabrikam",
        "project": "Fabrikam-Fiber",
        "raw_type": "User Story",
        "level": "story",
        "title": "Customer pays an order by invoice",
        "has_description": True,
        "raw_status": "Active",
        "status_category": "in_progress",
        "team": "Payments",  # longest team_map prefix of Fabrikam-Fiber\Payments\Invoices
        "assignee": "Jamal Hartnett",
        "priority": "2",
        "priority_rank": 2,
        "rank": "00001999845654.000000",
        "estimate": 5.0,
        "created": datetime(2026, 3, 2, 9, 15, 22, 470000, tzinfo=UTC),
        "updated": datetime(2026, 5, 4, 7, 12, 33, 123000, tzinfo=UTC),
        "resolved": None,
        "due_date": date(2026, 6, 30),  # 2026-06-29T22:00Z is midnight in Amsterdam
        "sprint_id": "fab:Fabrikam-Fiber\\Release 1\\Sprint 2",
        "parent_id": "fab:101",
        "parent_key": None,
        "labels": ["chain", "invoices"],
        "business_value": 300.0,
        "cost": None,
        "time_criticality": 8.0,
        "risk_reduction": None,
        "flagged": False,
        "is_deleted": False,
    }


def test_defaults_for_other_types_and_fields():
    epic, links, _ = mapped(100)
    assert (epic["level"], epic["status_category"], epic["estimate"]) == ("epic", "todo", 40.0)
    assert epic["sprint_id"] is None  # root iteration: not a sprint
    assert epic["parent_id"] is None and links == []  # Hierarchy-Forward is not a link row
    assert epic["team"] == "Fabrikam-Fiber" and epic["due_date"] == date(2026, 9, 30)
    assert epic["business_value"] == 800.0 and epic["time_criticality"] == 13.0
    story, _, _ = mapped(103)
    assert story["estimate"] == 3.0  # Size when there are no story points
    assert story["rank"] == "00000000000042.250000"  # BacklogPriority when no StackRank
    assert story["flagged"] is True
    assert story["has_description"] is True  # empty description, but acceptance criteria
    assert story["team"] == "Checkout" and story["assignee"] is None


def test_config_fields_take_precedence():
    row, _, _ = mapped(
        102,
        fields={
            "story_points": "Microsoft.VSTS.Common.BusinessValue",
            "time_criticality": "Microsoft.VSTS.Common.Priority",
            "risk_reduction": "Microsoft.VSTS.Scheduling.StoryPoints",
            "target_date": "Microsoft.VSTS.Common.StateChangeDate",
            "flagged": "System.BoardColumnDone",
        },
        levels={"User Story": "feature"},
    )
    assert row["estimate"] == 300.0
    assert row["time_criticality"] == 2.0
    assert row["risk_reduction"] == 5.0
    assert row["due_date"] == date(2026, 3, 10)
    assert row["flagged"] is False
    assert row["level"] == "feature"


def test_parent_comes_from_hierarchy_reverse():
    assert mapped(101)[0]["parent_id"] == "fab:100"
    assert mapped(102)[0]["parent_id"] == "fab:101"
    assert mapped(103)[0]["parent_id"] == "fab:101"
    item = copy.deepcopy(raw_item(102))
    item["relations"] = []  # System.Parent is the fallback
    assert map_work_item(item, ctx())[0]["parent_id"] == "fab:101"


def test_dependency_seen_from_both_ends_is_one_blocks_link():
    _, links_a, _ = mapped(102)
    _, links_b, _ = mapped(103)
    forward = [link for link in links_a if link["kind"] == "blocks" and link["target_url"] is None]
    reverse = [link for link in links_b if link["kind"] == "blocks"]
    assert forward == reverse
    assert forward == [
        {
            "source": "fab",
            "link_id": "dep:fab:102>fab:103",
            "from_item": "fab:102",  # 102 is the predecessor: it blocks 103
            "to_item": "fab:103",
            "target_url": None,
            "kind": "blocks",
            "raw_type": forward[0]["raw_type"],
            "resolved": None,
        }
    ]
    assert {link["raw_type"] for link in forward + reverse} == {
        "System.LinkTypes.Dependency-Forward"
    }


def test_related_and_duplicate_links():
    _, links_102, _ = mapped(102)
    _, links_104, _ = mapped(104)
    related_102 = [
        link for link in links_102 if link["kind"] == "relates" and not link["target_url"]
    ]
    related_104 = [link for link in links_104 if link["raw_type"] == "System.LinkTypes.Related"]
    assert related_102 == related_104
    assert related_102[0]["link_id"] == "rel:fab:102~fab:104"
    duplicate = next(link for link in links_104 if link["kind"] == "duplicates")
    assert (duplicate["from_item"], duplicate["to_item"]) == ("fab:104", "fab:99")
    assert duplicate["link_id"] == "dup:fab:104>fab:99"


def test_hyperlink_to_jira_is_a_cross_tracker_link_with_the_right_open_end():
    _, links, _ = mapped(102)
    cross = {link["target_url"]: link for link in links if link["target_url"]}
    assert set(cross) == {  # the wiki hyperlink, the commit and the attachment are not items
        "https://northwind.atlassian.net/browse/NW-42",
        "https://dev.azure.com/contoso/6ce954b1-ce1f-45d1-b94d-e6bf2464ba2c/_apis/wit/workItems/1234",
    }
    jira = cross["https://northwind.atlassian.net/browse/NW-42"]
    assert jira == {
        "source": "fab",
        "link_id": "url:fab:102>https://northwind.atlassian.net/browse/NW-42",
        "from_item": None,  # "is blocked by": the Jira issue blocks this item
        "to_item": "fab:102",
        "target_url": "https://northwind.atlassian.net/browse/NW-42",
        "kind": "blocks",
        "raw_type": "Hyperlink",
        "resolved": None,
    }
    remote = cross[
        "https://dev.azure.com/contoso/6ce954b1-ce1f-45d1-b94d-e6bf2464ba2c/_apis/wit/workItems/1234"
    ]
    assert (remote["kind"], remote["from_item"], remote["to_item"]) == ("blocks", "fab:102", None)


@pytest.mark.parametrize(
    ("comment", "kind", "from_item", "to_item"),
    [
        ("blocks NW-7", "blocks", "fab:102", None),
        ("depends on NW-7", "blocks", None, "fab:102"),
        ("see also", "relates", "fab:102", None),
    ],
)
def test_hyperlink_comment_decides_direction(comment, kind, from_item, to_item):
    item = copy.deepcopy(raw_item(102))
    item["relations"] = [
        {
            "rel": "Hyperlink",
            "url": "https://jira.partner.example/browse/NW-7",
            "attributes": {"comment": comment, "name": "Hyperlink"},
        }
    ]
    (link,) = map_work_item(item, ctx())[1]
    assert (link["kind"], link["from_item"], link["to_item"]) == (kind, from_item, to_item)


def test_odd_field_types_and_unknown_relations_are_problems_not_failures():
    row, links, problems = mapped(104)
    assert row["item_id"] == "fab:104"  # still emitted
    assert row["estimate"] is None and row["priority_rank"] is None and row["priority"] is None
    assert row["created"] is None
    assert row["assignee"] == "Mia Krystof"  # older servers: 'Name <domain\user>'
    assert row["team"] == "Invoicing Legacy"  # the longest team_map prefix wins
    assert row["status_category"] == "done"
    assert row["resolved"] == datetime(2026, 4, 15, 9, 30, tzinfo=UTC)
    assert row["labels"] == []
    text = "\n".join(problems)
    assert "work item 104: field Microsoft.VSTS.Scheduling.StoryPoints = 'abc'" in text
    assert "estimate left empty" in text
    assert "Microsoft.VSTS.Common.Priority = 'high'" in text
    assert "no System.CreatedDate" in text
    assert "link type 'Custom.LinkTypes.Handoff-Forward' is not known; stored as relates" in text
    assert "not-a-number" in text
    handoff = next(link for link in links if link["raw_type"].startswith("Custom."))
    assert handoff["kind"] == "relates"
    assert all(problem.startswith("work item 104") for problem in problems)


def test_configured_custom_link_type_counts_as_dependency():
    # 'Handoff' named as a "depends" type: forward = 104 depends on 102, so 102 blocks 104
    _, links, problems = mapped(104, link_types={"depends": ["Handoff"]})
    handoff = next(link for link in links if link["raw_type"].startswith("Custom."))
    assert (handoff["kind"], handoff["from_item"], handoff["to_item"]) == (
        "blocks",
        "fab:102",
        "fab:104",
    )
    assert not any("Handoff" in p for p in problems)


def test_known_non_dependency_link_types_are_ignored_quietly():
    item = copy.deepcopy(raw_item(103))
    item["relations"] = [
        {
            "rel": "Microsoft.VSTS.Common.TestedBy-Forward",
            "url": f"{BASE}/_apis/wit/workItems/900",
            "attributes": {"isLocked": False, "name": "Tested By"},
        }
    ]
    _, links, problems = map_work_item(item, ctx())
    assert links == [] and problems == []


def test_missing_fields_still_give_an_item():
    row, links, problems = map_work_item({"id": 7, "rev": 1}, ctx())
    assert row["item_id"] == "fab:7" and row["status_category"] == "todo"
    assert row["level"] == "story" and links == []
    assert row["url"] == "https://dev.azure.com/fabrikam/Fabrikam-Fiber/_workitems/edit/7"
    assert any("has no state; counted as todo" in p for p in problems)


def test_state_categories_come_from_the_type_states_including_custom_ones():
    assert states_to_categories(load("states_user_story.json")) == {
        "new": "todo",
        "parked": "todo",
        "active": "in_progress",
        "ready for review": "in_progress",
        "closed": "done",
        "removed": "done",
    }
    row, _, problems = mapped(103)
    assert (row["raw_status"], row["status_category"]) == ("Ready for Review", "in_progress")
    assert problems == []
    overridden, _, _ = mapped(103, status_categories={"ready for review": "done"})
    assert overridden["status_category"] == "done"
    item = copy.deepcopy(raw_item(103))
    item["fields"]["System.State"] = "Waiting for Legal"
    row, _, problems = map_work_item(item, ctx())
    assert row["status_category"] == "in_progress"  # by its name: neither done- nor todo-like
    assert problems == [
        "state 'Waiting for Legal' of type 'User Story' is not among the type's states; "
        "counted as in_progress by its name - set status_categories to be sure"
    ]


def test_team_from_area_path():
    assert team_from_area_path("P\\A\\B", {"P\\A": "Alpha", "P\\A\\B": "Beta"}) == "Beta"
    assert team_from_area_path("P\\A\\C", {"P\\A": "Alpha", "P\\A\\B": "Beta"}) == "Alpha"
    assert team_from_area_path("P\\AB", {"P\\A": "Alpha"}) == "AB"  # no partial segments
    assert team_from_area_path("p\\a", {"P\\A": "Alpha"}) == "Alpha"  # ADO is case-insensitive
    assert team_from_area_path(None, {}) is None


def test_revision_feed_becomes_status_and_flag_changes():
    feed = load("reporting_revisions_page1.json")["values"]
    feed += load("reporting_revisions_page2.json")["values"]
    revisions = [r for r in feed if r["id"] == 103]
    rows, problems = map_revisions("fab:103", "103", revisions, ctx())
    assert problems == []
    assert [
        (r["change_id"], r["field"], r["from_status"], r["to_status"], r["to_category"])
        for r in rows
    ] == [
        ("103.2", "status", "New", "Active", "in_progress"),
        ("103.3", "status", "Active", "Ready for Review", "in_progress"),
        ("103.4.flagged", "flagged", None, "Yes", None),
    ]
    assert rows[0]["from_category"] == "todo"
    assert rows[1]["at"] == datetime(2026, 4, 20, 15, 0, tzinfo=UTC)
    bug = [r for r in feed if r["id"] == 104]
    rows, _ = map_revisions("fab:104", "104", bug, ctx())
    assert [(r["to_status"], r["to_category"]) for r in rows] == [
        ("Resolved", "done"),
        ("Closed", "done"),
    ]


def test_updates_give_the_same_history_as_the_feed():
    feed = load("reporting_revisions_page1.json")["values"]
    feed += load("reporting_revisions_page2.json")["values"]
    from_feed, _ = map_revisions("fab:103", "103", [r for r in feed if r["id"] == 103], ctx())
    snapshots = updates_to_revisions(load("workitem_updates_103.json")["value"])
    from_updates, _ = map_revisions("fab:103", "103", snapshots, ctx())
    assert from_updates == from_feed
    assert len(from_updates) == 3


def test_team_iterations_become_sprints_one_per_path_and_team():
    context = ctx(team_map={"Payments": "Payments Team"})
    payments = map_team_iterations("Payments", load("iterations_payments.json"), context)
    checkout = map_team_iterations("Checkout", load("iterations_checkout.json"), context)
    merged_rows = merge_sprints([payments, checkout])
    # Sprint 2 is shared: it serves both teams, so it is one row per team, Payments (listed
    # first) first
    assert [(s["native_id"].rsplit("\\", 1)[-1], s["team"]) for s in merged_rows] == [
        ("Sprint 1", "Payments Team"),
        ("Sprint 2", "Payments Team"),
        ("Sprint 3", "Payments Team"),
        ("Sprint 2", "Checkout"),
        ("Checkout Backlog", "Checkout"),
    ]
    sprints = {s["native_id"]: s for s in reversed(merged_rows)}  # first row per path
    assert sorted(sprints) == [
        "Fabrikam-Fiber\\Checkout Backlog",
        "Fabrikam-Fiber\\Release 1\\Sprint 1",
        "Fabrikam-Fiber\\Release 1\\Sprint 2",
        "Fabrikam-Fiber\\Release 1\\Sprint 3",
    ]
    first = sprints["Fabrikam-Fiber\\Release 1\\Sprint 1"]
    assert first == {
        "sprint_id": "fab:Fabrikam-Fiber\\Release 1\\Sprint 1",
        "source": "fab",
        "native_id": "Fabrikam-Fiber\\Release 1\\Sprint 1",
        "name": "Sprint 1",
        "team": "Payments Team",
        "board": "Payments",
        "state": "closed",
        "start": datetime(2026, 4, 6, tzinfo=UTC),
        "end": datetime(2026, 4, 17, tzinfo=UTC),
        "complete": datetime(2026, 4, 17, tzinfo=UTC),
    }
    shared = sprints["Fabrikam-Fiber\\Release 1\\Sprint 2"]
    assert (shared["board"], shared["state"], shared["complete"]) == ("Payments", "active", None)
    assert sprints["Fabrikam-Fiber\\Release 1\\Sprint 3"]["state"] == "future"
    backlog = sprints["Fabrikam-Fiber\\Checkout Backlog"]
    assert (backlog["team"], backlog["state"], backlog["start"]) == ("Checkout", None, None)
    # the sprint of an item joins on the same id
    assert mapped(102)[0]["sprint_id"] == shared["sprint_id"]


def test_merge_sprints_keeps_one_row_per_iteration_and_team():
    def row(path: str, team: str | None) -> dict[str, Any]:
        return {"sprint_id": f"fab:{path}", "native_id": path, "team": team}

    alpha = [row("P\\S1", "Alpha"), row("P\\S2", "Alpha")]
    beta = [row("P\\S1", "Beta"), row("P\\S2", "Beta"), row("P\\S1", "Beta")]
    merged_rows = merge_sprints([alpha, beta, [row("P\\S1", "Alpha")]])
    assert [(r["native_id"], r["team"]) for r in merged_rows] == [
        ("P\\S1", "Alpha"),
        ("P\\S2", "Alpha"),
        ("P\\S1", "Beta"),
        ("P\\S2", "Beta"),
    ]
    assert merge_sprints([]) == []


def test_time_parsing():
    assert parse_time("2026-03-02T09:15:22.4712345Z") == datetime(
        2026, 3, 2, 9, 15, 22, 471234, tzinfo=UTC
    )
    assert parse_time("2026-03-02T10:15:22+01:00") == datetime(2026, 3, 2, 9, 15, 22, tzinfo=UTC)
    assert parse_day("2026-06-30T04:00:00Z") == date(2026, 6, 30)  # New York midnight
    assert parse_day("2026-06-29T22:00:00Z") == date(2026, 6, 30)  # Amsterdam midnight
    assert parse_time(None) is None


# --------------------------------------------------------------------------- a fake ADO


def _revisions_to_updates(revisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What /updates would answer for the same history: deltas between snapshots."""
    updates = []
    previous: dict[str, Any] = {}
    for revision in sorted(revisions, key=lambda r: r["rev"]):
        fields = {}
        for name, value in revision["fields"].items():
            if previous.get(name) != value:
                delta = {"newValue": value}
                if name in previous:
                    delta["oldValue"] = previous[name]
                fields[name] = delta
        updates.append(
            {"id": revision["rev"], "workItemId": revision["id"], "rev": revision["rev"],
             "revisedDate": "9999-01-01T00:00:00Z", "fields": fields}
        )  # fmt: skip
        previous = dict(revision["fields"])
    return updates


def generated_item(native: int, changed: str = "2026-01-02T00:00:00Z") -> dict[str, Any]:
    return {
        "id": native,
        "rev": 1,
        "fields": {
            "System.Id": native,
            "System.TeamProject": PROJECT,
            "System.AreaPath": "Fabrikam-Fiber\\Payments",
            "System.IterationPath": "Fabrikam-Fiber\\Release 1\\Sprint 2",
            "System.WorkItemType": "Task",
            "System.State": "New",
            "System.CreatedDate": "2026-01-01T00:00:00Z",
            "System.ChangedDate": changed,
            "System.Title": f"Task {native}",
        },
        "url": f"{BASE}/_apis/wit/workItems/{native}",
    }


class FakeAdo:
    """Enough of Azure DevOps REST 7.1 for the connector, with a WIQL cap and fault knobs."""

    def __init__(self, items: list[dict[str, Any]], *, cap: int = 20_000) -> None:
        self.items = {item["id"]: item for item in items}
        self.order = sorted(self.items)
        self.cap = cap
        self.revisions: list[dict[str, Any]] = []
        self.feed_pages: list[dict[str, Any]] | None = None
        self.updates_fixture: dict[int, list[dict[str, Any]]] = {}
        self.wiql_calls: list[dict[str, Any]] = []
        self.batch_sizes: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.state_calls: list[str] = []
        self.update_calls: list[int] = []
        self.feed_calls = 0
        self.requests: list[httpx.Request] = []
        self.malformed: dict[int, int] = {}  # id -> malformed answers left for a page holding it
        # route -> one special answer: (status, headers, json body or None for the normal one)
        self.throttle_once: dict[str, tuple[int, dict[str, str], Any]] = {}
        # route -> answers (a JSON-able body, or bytes sent as is) given under 200 before the
        # normal ones: wiql, batch, feed, updates, states, categories, process, teams, iterations
        self.odd: dict[str, list[Any]] = {}
        self.categories: Any = load("workitemtypecategories.json")
        self.process: Any = load("processconfiguration.json")
        self.iterations: dict[str, Any] = {
            "Payments": load("iterations_payments.json"),
            "Checkout": load("iterations_checkout.json"),
        }
        self.calls: dict[str, int] = {}

    @classmethod
    def from_fixtures(cls) -> FakeAdo:
        items = [i for i in load("workitemsbatch.json")["value"] if i]
        fake = cls(items)
        fake.feed_pages = [
            load("reporting_revisions_page1.json"),
            load("reporting_revisions_page2.json"),
        ]
        fake.revisions = [r for page in fake.feed_pages for r in page["values"]]
        fake.updates_fixture = {103: load("workitem_updates_103.json")["value"]}
        return fake

    def add_generated(self, count: int, start: int = 1) -> None:
        for native in range(start, start + count):
            item = generated_item(native)
            self.items[native] = item
            self.revisions.append({"id": native, "rev": 1, "fields": dict(item["fields"])})
        self.order = sorted(self.items)

    # -- routes

    def mount(self, router: respx.MockRouter) -> None:
        project = re.escape(PROJECT)
        router.route().side_effect = self._record  # never matches; records every request
        router.post(url__regex=rf"{BASE}/{project}/_apis/wit/wiql").mock(side_effect=self._wiql)
        router.post(f"{BASE}/_apis/wit/workitemsbatch").mock(side_effect=self._batch)
        router.get(url__regex=rf"{BASE}/{project}/_apis/wit/workitemtypes/(?P<kind>[^/]+)/states").mock(
            side_effect=self._states
        )  # fmt: skip
        router.get(url__regex=rf"{BASE}/{project}/_apis/wit/reporting/workitemrevisions").mock(
            side_effect=self._feed
        )
        router.get(url__regex=rf"{BASE}/{project}/_apis/wit/workItems/(?P<native>\d+)/updates").mock(
            side_effect=self._updates
        )  # fmt: skip
        router.get(url__regex=rf"{BASE}/_apis/projects/{project}/teams").mock(
            side_effect=self._teams
        )
        router.get(
            url__regex=rf"{BASE}/{project}/(?P<team>[^/]+)/_apis/work/teamsettings/iterations"
        ).mock(side_effect=self._iterations)
        router.get(url__regex=rf"{BASE}/{project}/_apis/wit/workitemtypecategories").mock(
            side_effect=lambda request: self._reference("categories", self.categories)
        )
        router.get(url__regex=rf"{BASE}/{project}/_apis/work/processconfiguration").mock(
            side_effect=lambda request: self._reference("process", self.process)
        )

    def _odd(self, route: str) -> httpx.Response | None:
        """The next wrong answer queued for ``route``, if any (and count the call)."""
        self.calls[route] = self.calls.get(route, 0) + 1
        queued = self.odd.get(route)
        if not queued:
            return None
        body = queued.pop(0)
        if isinstance(body, bytes):
            return httpx.Response(200, content=body, headers={"Content-Type": "text/html"})
        return httpx.Response(200, json=body)

    def _reference(self, route: str, body: Any) -> httpx.Response:
        odd = self._odd(route)
        if odd is not None:
            return odd
        if body is None:
            return httpx.Response(404, json={"message": "VS800075: not found"})
        return httpx.Response(200, json=body)

    def _record(self, request: httpx.Request) -> None:
        self.requests.append(request)
        return None

    def _special(self, route: str, normal: Any) -> httpx.Response | None:
        special = self.throttle_once.pop(route, None)
        if special is None:
            return None
        status, headers, body = special
        return httpx.Response(status, headers=headers, json=normal if body is None else body)

    def _wiql(self, request: httpx.Request) -> httpx.Response:
        query = json.loads(request.content)["query"]
        top = request.url.params.get("$top")
        after = re.search(r"\[System\.Id\] > (\d+)", query)
        since = re.search(r"\[System\.ChangedDate\] >= '([^']+)'", query)
        unders = re.findall(r"\[System\.AreaPath\] UNDER '([^']+)'", query)
        ids = self.order[bisect_right(self.order, int(after.group(1))) :] if after else self.order
        if since:
            start = parse_time(since.group(1))
            ids = [i for i in ids if parse_time(self.items[i]["fields"][F_CHANGED]) >= start]
        if unders:
            ids = [
                i
                for i in ids
                if any(
                    self.items[i]["fields"]["System.AreaPath"].lower().startswith(u.lower())
                    for u in unders
                )
            ]
        size = min(len(ids), int(top)) if top else len(ids)
        call = {"query": query, "top": int(top) if top else None, "params": request.url.params}
        self.wiql_calls.append(call)
        odd = self._odd("wiql")
        if odd is not None:
            call["returned"] = "odd"
            return odd
        if size > self.cap:
            call["returned"] = "VS402337"
            return httpx.Response(400, json=load("wiql_size_limit_error.json"))
        window = ids[:size]
        call["returned"] = len(window)
        body = load("wiql_result.json")
        body["workItems"] = [{"id": i, "url": f"{BASE}/_apis/wit/workItems/{i}"} for i in window]
        return self._special("wiql", body) or httpx.Response(200, json=body)

    async def _batch(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        ids = body["ids"]
        assert body["$expand"] == "relations" and body["errorPolicy"] == "omit"
        assert "fields" not in body
        self.batch_sizes.append(len(ids))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.002)
        finally:
            self.in_flight -= 1
        value = [self.items.get(i) for i in ids]  # errorPolicy omit: unknown ids are null
        odd = self._odd("batch")
        if odd is not None:
            return odd
        special = self._special("batch", {"count": len(value), "value": value})
        if special is not None:
            return special
        broken = [i for i in ids if self.malformed.get(i, 0) > 0]
        if broken:
            self.malformed[broken[0]] -= 1
            return httpx.Response(200, content=b'{"count": 2, "value": [{"id": 1, "fie')
        return httpx.Response(200, json={"count": len(value), "value": value})

    def _states(self, request: httpx.Request, kind: str) -> httpx.Response:
        name = unquote(kind)
        self.state_calls.append(name)
        odd = self._odd("states")
        if odd is not None:
            return odd
        fixture = "states_user_story.json" if name == "User Story" else "states_agile.json"
        return httpx.Response(200, json=load(fixture))

    def _feed(self, request: httpx.Request) -> httpx.Response:
        self.feed_calls += 1
        params = request.url.params
        odd = self._odd("feed")
        if odd is not None:
            return odd
        assert "System.State" in params["fields"] and "System.ChangedDate" in params["fields"]
        token = params.get("continuationToken")
        if self.feed_pages is not None:
            index = 0 if token is None else 1
            return httpx.Response(200, json=self.feed_pages[index])
        start = int(token or 0)
        page = self.revisions[start : start + 500]
        last = start + 500 >= len(self.revisions)
        return httpx.Response(
            200,
            json={"values": page, "continuationToken": str(start + 500), "isLastBatch": last},
        )

    def _updates(self, request: httpx.Request, native: str) -> httpx.Response:
        number = int(native)
        self.update_calls.append(number)
        odd = self._odd("updates")
        if odd is not None:
            return odd
        if number in self.updates_fixture:
            updates = self.updates_fixture[number]
        else:
            updates = _revisions_to_updates([r for r in self.revisions if r["id"] == number])
        skip = int(request.url.params.get("$skip", 0))
        top = int(request.url.params.get("$top", 200))
        page = updates[skip : skip + top]
        return httpx.Response(200, json={"count": len(page), "value": page})

    def _teams(self, request: httpx.Request) -> httpx.Response:
        return self._odd("teams") or httpx.Response(200, json=load("teams.json"))

    def _iterations(self, request: httpx.Request, team: str) -> httpx.Response:
        return self._odd("iterations") or httpx.Response(200, json=self.iterations[unquote(team)])


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def client(sleeps: Sleeps | None = None, concurrency: int = 8) -> TrackerClient:
    return TrackerClient(
        BASE,
        httpx.BasicAuth("", "pat-secret"),
        sleep=sleeps or Sleeps(),
        max_retries=3,
        concurrency=concurrency,
    )


async def _collect(
    fake: FakeAdo, cfg: SourceConfig, since: datetime | None, sleeps: Sleeps | None, **attrs: Any
) -> list[Batch]:
    async with client(sleeps, cfg.concurrency) as http:
        connector = AzureDevOpsConnector(cfg, http)
        for name, value in attrs.items():
            setattr(connector, name, value)
        return [batch async for batch in connector.fetch(since)]


def fetch_all(
    fake: FakeAdo,
    cfg: SourceConfig | None = None,
    since: datetime | None = None,
    sleeps: Sleeps | None = None,
    **attrs: Any,
) -> list[Batch]:
    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)
        return asyncio.run(_collect(fake, cfg or config(), since, sleeps, **attrs))


def live(fake: FakeAdo, cfg: SourceConfig | None = None, sleeps: Sleeps | None = None, **attrs):
    async def go() -> set[str]:
        async with client(sleeps) as http:
            connector = AzureDevOpsConnector(cfg or config(), http)
            for name, value in attrs.items():
                setattr(connector, name, value)
            return await connector.live_ids()

    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)
        return asyncio.run(go())


def merged(batches: list[Batch]) -> Batch:
    whole = Batch()
    for batch in batches:
        whole.extend(batch)
    return whole


# --------------------------------------------------------------------------- the fetch flow


def test_full_fetch_over_doc_shaped_payloads():
    fake = FakeAdo.from_fixtures()
    batches = fetch_all(fake)
    whole = merged(batches)
    assert sorted(r["native_id"] for r in whole.work_items) == ["100", "101", "102", "103", "104"]
    # sprints come in the first batch, once per iteration path and team (Sprint 2 is shared)
    assert len(batches[0].sprints) == 5 and sum(len(b.sprints) for b in batches) == 5
    # states were read once per type, from the states endpoint
    assert sorted(fake.state_calls) == ["Bug", "Epic", "Feature", "User Story"]
    assert fake.feed_calls == 2 and fake.update_calls == []  # full history from the feed
    changes = {(c["item_id"], c["change_id"]) for c in whole.status_changes}
    assert changes == {
        ("fab:101", "101.2"),
        ("fab:102", "102.2"),
        ("fab:102", "102.3.flagged"),
        ("fab:102", "102.4.flagged"),
        ("fab:103", "103.2"),
        ("fab:103", "103.3"),
        ("fab:103", "103.4.flagged"),
        ("fab:104", "104.2"),
        ("fab:104", "104.3"),
    }
    blocks = {link["link_id"] for link in whole.links if link["kind"] == "blocks"}
    assert "dep:fab:102>fab:103" in blocks
    assert whole.history_missing == []
    assert any("StoryPoints" in p for p in whole.problems)
    assert all(r.url.params.get("api-version") == "7.1" for r in fake.requests)
    wiql = fake.wiql_calls[0]
    assert "[System.TeamProject] = @project" in wiql["query"]
    assert "ChangedDate" not in wiql["query"] and "timePrecision" not in wiql["params"]


def test_many_items_windowed_chunked_concurrent_and_each_exactly_once():
    fake = FakeAdo([], cap=1000)
    fake.add_generated(2450)
    batches = fetch_all(fake, wiql_top=1000)
    natives = [r["native_id"] for b in batches for r in b.work_items]
    assert sorted(natives, key=int) == [str(i) for i in range(1, 2451)]
    assert len(natives) == len(set(natives))
    assert [c["returned"] for c in fake.wiql_calls] == [1000, 1000, 450]
    assert max(fake.batch_sizes) <= 200 and sum(fake.batch_sizes) == 2450
    assert fake.max_in_flight > 1  # chunks really went out side by side
    assert all(len(b.work_items) <= 1000 for b in batches)
    assert len(merged(batches).sprints) == 5 and batches[0].sprints


def test_live_ids_windows_stay_under_the_20000_cap():
    fake = FakeAdo([])
    for native in range(1, 45_002):
        fake.items[native] = {"id": native, "fields": {}}
    fake.order = sorted(fake.items)
    ids = live(fake)
    assert ids == {str(i) for i in range(1, 45_002)}
    assert [c["returned"] for c in fake.wiql_calls] == [20_000, 20_000, 5001]
    assert all(c["top"] is not None and c["top"] <= 20_000 for c in fake.wiql_calls)
    assert all("[System.Id] >" in c["query"] for c in fake.wiql_calls)
    assert all("ChangedDate" not in c["query"] for c in fake.wiql_calls)


def test_a_window_that_still_hits_vs402337_is_halved():
    fake = FakeAdo([], cap=7000)  # a server with a lower cap than 20,000
    for native in range(1, 12_001):
        fake.items[native] = {"id": native, "fields": {}}
    fake.order = sorted(fake.items)
    ids = live(fake)
    assert len(ids) == 12_000
    assert [(c["top"], c["returned"]) for c in fake.wiql_calls] == [
        (20_000, "VS402337"),
        (10_000, "VS402337"),
        (5000, 5000),
        (5000, 5000),
        (5000, 2000),
    ]


def test_the_window_size_that_worked_is_remembered_for_the_next_listing():
    fake = FakeAdo([], cap=7000)
    for native in range(1, 12_001):
        fake.items[native] = {"id": native, "fields": {}}
    fake.order = sorted(fake.items)
    assert len(live(fake)) == 12_000
    assert [c["top"] for c in fake.wiql_calls][:3] == [20_000, 10_000, 5000]
    fake.wiql_calls.clear()
    assert len(live(fake)) == 12_000  # a new connector for the same source (the next run)
    assert [(c["top"], c["returned"]) for c in fake.wiql_calls] == [
        (5000, 5000),
        (5000, 5000),
        (5000, 2000),
    ]
    assert AzureDevOpsConnector.window_sizes == {f"fab@{BASE}/{PROJECT}": 5000}
    fake.wiql_calls.clear()
    live(fake, config(name="other"))  # another source starts from the cap again
    assert fake.wiql_calls[0]["top"] == 20_000


def test_live_ids_keep_area_path_scope():
    fake = FakeAdo.from_fixtures()
    ids = live(fake, config(area_paths=["Fabrikam-Fiber\\Payments"]))
    assert ids == {"101", "102", "104"}
    assert "[System.AreaPath] UNDER 'Fabrikam-Fiber\\Payments'" in fake.wiql_calls[0]["query"]


def test_incremental_uses_changed_date_and_reads_full_history_per_item():
    fake = FakeAdo.from_fixtures()
    since = datetime(2026, 4, 22, 17, 30, tzinfo=UTC)  # overlap 60 min: from 16:30
    whole = merged(fetch_all(fake, since=since))
    wiql = fake.wiql_calls[0]
    assert "[System.ChangedDate] >= '2026-04-22T16:30:00Z'" in wiql["query"]
    assert wiql["params"]["timePrecision"] == "true"
    assert sorted(r["native_id"] for r in whole.work_items) == ["102", "103"]
    assert fake.feed_calls == 0 and sorted(fake.update_calls) == [102, 103]
    changes = sorted(c["change_id"] for c in whole.status_changes)
    assert changes == ["102.2", "102.3.flagged", "102.4.flagged", "103.2", "103.3", "103.4.flagged"]


def test_incremental_with_many_changes_reads_the_feed_instead():
    fake = FakeAdo.from_fixtures()
    since = datetime(2026, 1, 1, tzinfo=UTC)
    whole = merged(fetch_all(fake, since=since, updates_threshold=2))
    assert fake.feed_calls == 2 and fake.update_calls == []
    assert len(whole.work_items) == 5 and len(whole.status_changes) == 9


def test_item_changed_after_the_feed_gets_its_history_per_item():
    fake = FakeAdo.from_fixtures()
    fake.items[103]["rev"] = 6  # the feed stops at rev 5: /updates completes it
    whole = merged(fetch_all(fake))
    assert fake.update_calls == [103]
    assert {c["change_id"] for c in whole.status_changes if c["item_id"] == "fab:103"} == {
        "103.2",
        "103.3",
        "103.4.flagged",
    }


def test_throttling_hint_on_a_200_delays_the_next_request():
    fake = FakeAdo([])
    fake.add_generated(30)
    fake.throttle_once["wiql"] = (200, {"Retry-After": "7"}, None)
    sleeps = Sleeps()
    ids = live(fake, sleeps=sleeps, wiql_top=20)
    assert len(ids) == 30 and len(fake.wiql_calls) == 2
    assert sleeps.delays and 6.0 < sleeps.delays[0] <= 7.0


def test_429_is_retried_after_the_hinted_delay():
    fake = FakeAdo.from_fixtures()
    fake.throttle_once["batch"] = (429, {"Retry-After": "2"}, {"message": "slow down"})
    sleeps = Sleeps()
    whole = merged(fetch_all(fake, sleeps=sleeps))
    assert len(whole.work_items) == 5
    assert 2.0 in sleeps.delays
    assert len(fake.batch_sizes) == 2  # the throttled call and its retry


def test_malformed_page_is_asked_again_and_recorded():
    fake = FakeAdo([])
    fake.add_generated(300)
    fake.malformed = {1: 1}  # the first chunk answers garbage once
    whole = merged(fetch_all(fake))
    assert len(whole.work_items) == 300
    assert any(
        "workitemsbatch (ids 1..200): the tracker sent malformed JSON (attempt 1 of 3)" in p
        for p in whole.problems
    )


def test_persistently_malformed_chunk_costs_only_the_item_that_breaks_it():
    fake = FakeAdo([])
    fake.add_generated(300)
    fake.malformed = {250: 10**6}  # every page holding item 250 is garbage
    whole = merged(fetch_all(fake))
    assert sorted(int(r["native_id"]) for r in whole.work_items) == [
        i for i in range(1, 301) if i != 250
    ]
    assert any(
        p.endswith("malformed JSON (3 answers in a row); work item 250 skipped this run")
        for p in whole.problems
    )
    assert max(fake.batch_sizes) <= 200


def test_a_failing_http_call_aborts_the_run():
    fake = FakeAdo.from_fixtures()
    fake.throttle_once["batch"] = (403, {}, {"message": "no"})
    with pytest.raises(TrackerError, match="403"):
        fetch_all(fake)


def test_sync_into_the_warehouse(tmp_path, monkeypatch):
    """The rows fit the canonical schemas: a sync through the real warehouse loads them."""
    fake = FakeAdo.from_fixtures()
    settings = settings_from_dict({"sources": [source_dict()]})
    source = settings.sources[0]

    async def go():
        with Warehouse(tmp_path / "w.duckdb") as wh:
            return await sync_source(wh, settings, source, client=client())

    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)
        result = asyncio.run(go())
    assert (result.items, result.sprints, result.status_changes) == (5, 4, 9)
    with Warehouse(tmp_path / "w.duckdb") as wh:
        links = wh.query("SELECT link_id, from_item, to_item FROM links WHERE kind = 'blocks'")
        assert ("dep:fab:102>fab:103", "fab:102", "fab:103") in links.rows()
        due = wh.query("SELECT due_date FROM work_items WHERE item_id = 'fab:102'").item()
        assert due == date(2026, 6, 30)
        # the shared iteration is one sprint that serves both teams
        shared = "fab:Fabrikam-Fiber\\Release 1\\Sprint 2"
        assert wh.query("SELECT count(*) FROM sprints WHERE sprint_id = ?", [shared]).item() == 1
        teams = wh.query("SELECT team FROM sprint_teams WHERE sprint_id = ?", [shared])
        assert sorted(teams["team"]) == ["Checkout", "Payments"]
        team_sprints = wh.frames()["sprints"].filter(pl.col("sprint_id") == shared)
        assert sorted(team_sprints["team"]) == ["Checkout", "Payments"]


def test_long_histories_are_paged_through_updates():
    fake = FakeAdo([])
    fake.add_generated(1)
    item = fake.items[1]
    item["rev"] = 250
    item["fields"]["System.ChangedDate"] = "2026-05-01T00:00:00Z"
    fake.revisions = [
        {
            "id": 1,
            "rev": rev,
            "fields": {
                "System.State": "New" if rev % 2 else "Active",
                "System.WorkItemType": "Task",
                "System.ChangedDate": f"2026-01-01T00:{rev // 60:02d}:{rev % 60:02d}Z",
            },
        }
        for rev in range(1, 251)
    ]
    whole = merged(fetch_all(fake, since=datetime(2026, 4, 30, tzinfo=UTC)))
    assert fake.update_calls == [1, 1]  # 200 + 50 updates
    assert len(whole.status_changes) == 249
    assert whole.status_changes[-1]["change_id"] == "1.250"


def test_server_collection_url_keeps_its_path():
    base = "https://ado.example/tfs/DefaultCollection"
    cfg = config(base_url=base)

    async def go() -> set[str]:
        async with TrackerClient(base, sleep=Sleeps()) as http:
            return await AzureDevOpsConnector(cfg, http).live_ids()

    with respx.mock() as router:
        route = router.post(f"{base}/Fabrikam-Fiber/_apis/wit/wiql").respond(
            json={
                "queryType": "flat",
                "workItems": [{"id": 7, "url": f"{base}/_apis/wit/workItems/7"}],
            }
        )
        assert asyncio.run(go()) == {"7"}
    assert route.calls.last.request.url.params["api-version"] == "7.1"
    assert map_work_item({"id": 7}, AdoContext.from_config(cfg))[0]["url"] == (
        f"{base}/Fabrikam-Fiber/_workitems/edit/7"
    )
