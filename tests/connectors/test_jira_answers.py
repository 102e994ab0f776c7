"""Validate before acting: a 200 of the wrong shape on any Jira endpoint fails the run cleanly.

Every listing and search endpoint of Jira Cloud and Data Center is answered with bodies shaped
like what gateways and maintenance pages really send (an error object under 200, issues that are
strings, an HTML page): the connector raises ``MalformedAnswer`` with one line naming the
endpoint, never an ``AttributeError``, never an empty listing, and leaves no task unretrieved.
"""

from __future__ import annotations

import asyncio
import gc
from datetime import UTC, datetime
from typing import Any

import pytest
import respx

from pmolens.connectors.http import MalformedAnswer, TrackerClient
from pmolens.connectors.jira import JiraConnector
from pmolens.pipeline.sync import SyncError
from pmolens.warehouse.config import settings_from_dict
from pmolens.warehouse.store import Warehouse
from tests.connectors.fake_jira import BASE, DC_BASE, FakeJira
from tests.connectors.test_jira_sync import Sleeps, run, settings, snapshot

MAINTENANCE = {"errorMessages": ["maintenance"]}
HTML = b"<!DOCTYPE html><html><body><h1>Down for maintenance</h1></body></html>"
MANY = 12  # more wrong answers than any call asks for, whichever concurrent call gets them


def connector(kind: str = "jira_cloud", **source: Any) -> JiraConnector:
    data: dict[str, Any] = {
        "name": "fk",
        "kind": kind,
        "organisation": "Fake",
        "base_url": BASE if kind == "jira_cloud" else DC_BASE,
        "token_env": "FAKE_JIRA_TOKEN",
        "jql": "project = FK",
        "boards": [1],
        **source,
    }
    if kind == "jira_cloud":
        data["email"] = "pmo@fake.example"
    config = settings_from_dict({"sources": [data]}).sources[0]
    return JiraConnector(config, TrackerClient(config.base_url, sleep=Sleeps(), max_retries=1))


def drive(fake: FakeJira, jira: JiraConnector, what: str, since: datetime | None = None):
    """Run fetch (all batches) or live_ids; returns (result or exception, unretrieved errors)."""
    unretrieved: list[dict[str, Any]] = []

    async def go() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: unretrieved.append(ctx))
        try:
            async with jira.client:
                if what == "live_ids":
                    return await jira.live_ids()
                return [batch async for batch in jira.fetch(since)]
        except Exception as exc:
            return exc
        finally:
            await asyncio.sleep(0)
            gc.collect()
            await asyncio.sleep(0)

    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)
        outcome = asyncio.run(go())
    gc.collect()
    return outcome, unretrieved


def assert_malformed(outcome: Any, unretrieved: list[Any], endpoint: str) -> None:
    assert isinstance(outcome, MalformedAnswer), outcome
    message = str(outcome)
    assert "\n" not in message
    assert endpoint in message, message
    assert "3 answers in a row" in message
    assert unretrieved == []  # no "Task exception was never retrieved"


CLOUD_CASES = [
    # (route in the fake, wrong body, endpoint named, what is called)
    ("search", MAINTENANCE, "POST /rest/api/3/search/jql", "fetch"),
    ("search", {"issues": ["10001", "10002"], "isLast": True}, "/search/jql", "live_ids"),
    ("search", HTML, "POST /rest/api/3/search/jql", "live_ids"),
    ("issues", MAINTENANCE, "POST /rest/api/3/issue/bulkfetch", "fetch"),
    ("issues", {"issues": ["FK-1"]}, "/issue/bulkfetch", "fetch"),
    ("issues", {"issues": [{"id": "10001", "fields": "oops"}]}, "/issue/bulkfetch", "fetch"),
    ("issues", HTML, "/issue/bulkfetch", "fetch"),
    ("changelog", MAINTENANCE, "POST /rest/api/3/changelog/bulkfetch", "fetch"),
    (
        "changelog",
        {"issueChangeLogs": [{"issueId": "10001", "changeHistories": "none"}]},
        "/changelog/bulkfetch",
        "fetch",
    ),
    ("changelog", {"issueChangeLogs": [{"issueId": "10001"}]}, "/changelog/bulkfetch", "fetch"),
    ("remotelink", MAINTENANCE, "/remotelink", "fetch"),
    ("remotelink", ["https://elsewhere.example/1"], "/remotelink", "fetch"),
    ("sprints", MAINTENANCE, "GET /rest/agile/1.0/board/1/sprint", "fetch"),
    ("sprints", {"values": ["Sprint 1"], "isLast": True}, "/board/1/sprint", "fetch"),
    ("status", MAINTENANCE, "GET /rest/api/3/status", "fetch"),
    ("issuetype", MAINTENANCE, "GET /rest/api/3/issuetype", "fetch"),
    ("myself", HTML, "GET /rest/api/3/myself", "fetch-since"),
]


@pytest.mark.parametrize(("route", "body", "endpoint", "what"), CLOUD_CASES)
def test_wrong_shaped_200_on_a_cloud_endpoint_fails_with_one_line(route, body, endpoint, what):
    fake = FakeJira(count=7, page=3)
    fake.odd = {route: [body] * MANY}
    jira = connector(remote_links_jql="labels = chain")
    since = datetime(2026, 1, 1, tzinfo=UTC) if what == "fetch-since" else None
    outcome, unretrieved = drive(fake, jira, "fetch" if since else what, since)
    assert_malformed(outcome, unretrieved, endpoint)


DC_CASES = [
    ("search", MAINTENANCE, "GET /rest/api/2/search", "fetch"),
    ("search", {"issues": ["FAB-1"], "total": 1}, "GET /rest/api/2/search", "fetch"),
    ("search", {"issues": [{"id": "10001", "fields": {}}]}, "/rest/api/2/search", "fetch"),
    ("search", MAINTENANCE, "GET /rest/api/2/search", "live_ids"),
    ("search", {"issues": [], "total": "many"}, "GET /rest/api/2/search", "live_ids"),
    ("search", HTML, "GET /rest/api/2/search", "live_ids"),
    ("remotelink", {"values": []}, "/remotelink", "fetch"),
    ("sprints", HTML, "GET /rest/agile/1.0/board/1/sprint", "fetch"),
    ("issue", {"id": "10001", "changelog": {"total": 9}}, "GET /rest/api/2/issue/", "fetch"),
]


@pytest.mark.parametrize(("route", "body", "endpoint", "what"), DC_CASES)
def test_wrong_shaped_200_on_a_data_center_endpoint_fails_with_one_line(
    route, body, endpoint, what
):
    fake = FakeJira(count=7, page=3, cloud=False)
    fake.dc_changelog_cap = 1  # every history needs completing from /issue/{id}
    fake.odd = {route: [body] * MANY}
    jira = connector("jira_dc", remote_links_jql="labels = chain")
    outcome, unretrieved = drive(fake, jira, what)
    assert_malformed(outcome, unretrieved, endpoint)


def test_one_wrong_answer_is_asked_again_and_the_run_goes_on():
    fake = FakeJira(count=7, page=3)
    fake.odd = {"search": [MAINTENANCE], "issues": [HTML], "changelog": [{"issueChangeLogs": 1}]}
    outcome, unretrieved = drive(fake, connector(), "fetch")
    assert not isinstance(outcome, Exception), outcome
    assert sum(len(b.work_items) for b in outcome) == 7
    assert sum(len(b.status_changes) for b in outcome) == 14
    assert unretrieved == []


def test_data_center_histories_longer_than_the_page_are_completed():
    fake = FakeJira(count=4, page=3, cloud=False)
    for native in list(fake.issues):
        fake.add(fake.issues[native], history_entries=5)
    fake.dc_changelog_cap = 2
    outcome, _ = drive(fake, connector("jira_dc"), "fetch")
    assert sum(len(b.status_changes) for b in outcome) == 4 * 5
    assert fake.calls["issue"] == 4


def test_a_missing_issue_type_catalogue_is_tolerated():
    fake = FakeJira(count=3)
    fake.fail = {"issuetype": [404]}
    outcome, _ = drive(fake, connector(), "fetch")
    assert [row["level"] for b in outcome for row in b.work_items] == ["story"] * 3


@pytest.fixture
def wh(tmp_path):
    with Warehouse(tmp_path / "t.duckdb") as warehouse:
        yield warehouse


@pytest.mark.parametrize(
    ("route", "body"),
    [("search", MAINTENANCE), ("search", {"issues": ["x"]}), ("issues", HTML)],
)
def test_a_wrong_shaped_listing_deletes_nothing_and_fails_the_run(wh, route, body):
    fake = FakeJira(count=7, page=3)
    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)
        run(wh, settings(), full=True)
        before = snapshot(wh)
        fake.odd = {route: [body] * MANY}
        with pytest.raises(SyncError) as failed:
            run(wh, settings())
    # warehouse/sync.py may leave its failed live_ids task unretrieved (reported to the lead):
    # let its finaliser run now rather than in the middle of pytest's own work
    gc.collect()
    after = snapshot(wh)
    assert all(before[name].equals(after[name]) for name in before)
    assert wh.query("SELECT count(*) AS n FROM work_items WHERE NOT is_deleted")["n"][0] == 7
    runs = wh.query("SELECT outcome, error FROM sync_runs ORDER BY started")
    assert runs["outcome"].to_list()[-1] == "failed"
    error = runs["error"].to_list()[-1]
    assert "\n" not in error and ("search/jql" in error or "bulkfetch" in error)
    assert "AttributeError" not in str(failed.value)
